"""Configuration of the developmental network kind (``kind = "development"`` in a model file).

A developmental model file has the top-level keys ``kind``, ``name``,
``description`` and the tables ``[network]``, ``[neuron]``, ``[drive]``,
``[spines]``, ``[trophic]``, ``[time]``, ``[schedule]`` and ``[sdsnn]``.
Every key, its unit and default is in the dataclasses below; the model files
in ``models/`` (``cortex_small``, ``cortex_development``) give each value its
source. Unknown keys, wrong types and out-of-range values are rejected with a
:class:`~sdsnn_bio.errors.ConfigError` naming the file and the key, before
anything is built.

Time axis
---------
One period is ``time.days_per_period`` days of development. Its run simulates
``time.activity_s`` seconds of network activity; the spine rules run on a
slower clock, ``time.struct_steps`` times per period, each step advancing the
spines by ``days_per_period / struct_steps`` days. The compression factor is
``days_per_period * 86400 / activity_s`` (biological seconds per simulated
second). The age at the end of period ``e`` (0-based) is
``time.age_start_days + (e + 1) * days_per_period``.
"""

import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["NetworkSpec", "CortexNeuron", "DriveSpec", "SpineSpec", "TrophicSpec", "TimeSpec",
           "CortexSchedule", "SdsnnSpec", "CortexConfig", "cortex_config_from_dict", "KIND"]

#: The value of the top-level ``kind`` key that selects this network kind.
KIND = "development"


@dataclass(frozen=True)
class NetworkSpec:
    """Population sizes and potential connectivity. ``p_exc``: probability that an
    excitatory neuron has a potential synapse site (a spine position) on another
    neuron; ``p_inh``: probability of an inhibitory (shaft) synapse; no autapses."""

    n_exc: int = 800
    n_inh: int = 200
    p_exc: float = 0.1
    p_inh: float = 0.2


@dataclass(frozen=True)
class CortexNeuron:
    """Conductance-based leaky integrate-and-fire neuron (mV, ms, pF, nS)."""

    c_m_pf: float = 200.0
    g_l_ns: float = 10.0
    e_l_mv: float = -60.0
    v_th_mv: float = -50.0
    v_reset_mv: float = -60.0
    t_ref_ms: float = 5.0
    e_e_mv: float = 0.0
    e_i_mv: float = -80.0
    tau_e_ms: float = 5.0
    tau_i_ms: float = 10.0
    g_per_volume_ns: float = 3.0    # nS of excitatory conductance per um^3 of spine volume
    g_inh_ns: float = 4.0           # inhibitory conductance per synapse
    tau_pair_ms: float = 20.0       # pre-before-post pairing window (presynaptic trace)


@dataclass(frozen=True)
class DriveSpec:
    """Spontaneous activity: ``n_ext`` independent Poisson inputs per neuron at
    ``rate_hz`` each, conductance ``g_ext_ns`` each. From ``pattern_start_days``
    on, patterned input: ``n_patterns`` stimuli, each driving a random fraction
    ``pattern_fraction`` of the excitatory neurons at ``pattern_rate_hz`` extra,
    shown in turn for ``pattern_ms`` each."""

    n_ext: int = 100
    rate_hz: float = 2.0
    g_ext_ns: float = 1.0
    pattern_start_days: float = 1e9
    n_patterns: int = 4
    pattern_fraction: float = 0.2
    pattern_rate_hz: float = 20.0
    g_pattern_ns: float = 3.0
    pattern_ms: float = 100.0


@dataclass(frozen=True)
class SpineSpec:
    """Spine process of every potential excitatory synapse (volumes in um^3, rates per day).

    The log-volume ``x = ln(v / 1 um^3)`` of a present spine follows an
    Ornstein-Uhlenbeck process (multiplicative volume fluctuations):
    ``dx = [theta (mu - x) + eta_act (min(a/a_ref, a_cap) - 1) - eta_comp (c - 1)] dt + sigma dW``,
    with ``theta``, ``mu``, ``sigma`` of its pool (transient ``_t``, stable
    ``_s``), ``a`` its pre-before-post pairing rate and ``c`` the crowding of its
    postsynaptic neuron: the neuron's live spine volume over ``vol_per_site``
    um^3 per potential site (competition for a limited supply of synaptic
    material, updated once a period). A transient spine above
    ``v_consolidate`` becomes stable at ``k_consolidate`` per day; a spine below
    ``v_min`` is eliminated; an empty site forms a transient spine of volume
    ``v_new`` at ``f_adult / (1 + age / formation_aging_days) + (f_birth - f_adult) exp(-age /
    tau_formation) / (1 + exp((age - formation_end_days) / formation_end_width_days))`` per day:
    the end of the period of spinogenesis, a logistic drop around ``formation_end_days`` (the
    default, 1e9 days, has none), and a slow decline of adult formation with age, halved at
    ``formation_aging_days`` (the default, 1e9 days, has none).
    ``occupancy0``: fraction of sites holding a (transient) spine at the start.
    """

    mu_t: float = -3.2
    mu_s: float = -2.0
    theta_t: float = 0.5
    theta_s: float = 0.1
    sigma_t: float = 0.6
    sigma_s: float = 0.15
    v_min: float = 0.02
    v_new: float = 0.04
    v_consolidate: float = 0.08
    k_consolidate: float = 0.1
    f_birth: float = 0.1
    f_adult: float = 0.005
    tau_formation: float = 15.0
    formation_end_days: float = 1e9
    formation_end_width_days: float = 1.0
    formation_aging_days: float = 1e9
    eta_act: float = 0.1
    eta_comp: float = 0.0
    vol_per_site: float = 0.03
    a_ref_hz: float = 0.5
    a_cap: float = 3.0
    occupancy0: float = 0.05


@dataclass(frozen=True)
class TrophicSpec:
    """Neurotrophic competition for survival. A target neuron supplies ``supply
    per_hz`` x its rate (Hz); each afferent takes a part in proportion to its
    synaptic conductance onto it. A neuron whose uptake, relative to the mean of
    the living neurons of its kind, stays below ``threshold`` for ``window_days``
    dies, while its age is within ``[start_days, end_days]``."""

    enabled: bool = True
    threshold: float = 0.3
    window_days: float = 3.0
    start_days: float = 0.0
    end_days: float = 30.0


@dataclass(frozen=True)
class TimeSpec:
    """The time axis (see the module documentation)."""

    age_start_days: float = 0.0
    days_per_period: float = 1.0
    activity_s: float = 1.0
    struct_steps: int = 4
    dt_ms: float = 0.1


@dataclass(frozen=True)
class CortexSchedule:
    """Number of periods and the seed of connectivity, initial state and Brian2."""

    periods: int = 100
    seed: int = 0


@dataclass(frozen=True)
class SdsnnSpec:
    """SD-SNN's rules in this mode (docs/method.md; their mapping to days in docs/development.md).
    The paper counts in periods; here one period is ``time.days_per_period`` days.

    ``importance_pruning``: after each period from ``prune_start_days`` on, prune the
    ``prune_rate`` percent of the living excitatory neurons with the smallest importance (sum of
    their live afferent spine volumes), the paper's criterion with the spine volume as its width.
    ``neurotrophic_rate`` (needs ``importance_pruning``): ``prune_rate`` is the paper's rho_0, a
    *cumulative* target (``floor(n_exc rho / 100)`` excitatory neurons pruned by importance in
    all, method §2.2), raised after each pruning by
    ``exp(-(age - prune_start_days) / neuro_tau_days) x alive_exc / alive`` (method §2.4, the
    hidden-layer rule with the recurrent network as its own target).
    ``spine_constraint``: every site carries the paper's allowed interval ``[r_lo, r_up]`` of its
    weight, here of its spine volume, initialised after the first period and moved by the streak
    rule (``constraint_n_streak`` updates, ``constraint_shrink``) once a period; from period
    ``constraint_n_streak + 1`` on, a live spine's volume is clipped into it after every
    structural step.
    ``regeneration``: from ``regen_start_days`` on, an empty site between two living neurons
    whose pairing count in a period exceeds the ``q(age)`` percentile of all sites' counts,
    ``q = min(regen_q0 + 1.1 ** (age - regen_start_days), 99)``, in more than
    ``regen_max_streak`` consecutive periods regrows a spine (method §2.3)."""

    importance_pruning: bool = False
    prune_rate: float = 1.0
    prune_start_days: float = 0.0
    spine_constraint: bool = False
    regeneration: bool = False
    neurotrophic_rate: bool = False
    constraint_n_streak: int = 18
    constraint_shrink: float = 0.75
    regen_q0: float = 60.0
    regen_start_days: float = 37.0
    regen_max_streak: int = 10
    neuro_tau_days: float = 5.0


_SECTIONS = {"network": NetworkSpec, "neuron": CortexNeuron, "drive": DriveSpec, "spines": SpineSpec,
             "trophic": TrophicSpec, "time": TimeSpec, "schedule": CortexSchedule, "sdsnn": SdsnnSpec}


@dataclass(frozen=True)
class CortexConfig:
    """A complete, validated developmental model configuration."""

    name: str
    description: str = ""
    network: NetworkSpec = field(default_factory=NetworkSpec)
    neuron: CortexNeuron = field(default_factory=CortexNeuron)
    drive: DriveSpec = field(default_factory=DriveSpec)
    spines: SpineSpec = field(default_factory=SpineSpec)
    trophic: TrophicSpec = field(default_factory=TrophicSpec)
    time: TimeSpec = field(default_factory=TimeSpec)
    schedule: CortexSchedule = field(default_factory=CortexSchedule)
    sdsnn: SdsnnSpec = field(default_factory=SdsnnSpec)
    source: str = "<dict>"
    kind: str = KIND

    @property
    def n_neurons(self) -> int:
        return self.network.n_exc + self.network.n_inh

    @property
    def days_per_step(self) -> float:
        """Days of development per structural step."""
        return self.time.days_per_period / self.time.struct_steps

    @property
    def compression(self) -> float:
        """Biological seconds per simulated second of activity."""
        return self.time.days_per_period * 86400.0 / self.time.activity_s

    def age_at_end(self, period: int) -> float:
        """Age in days at the end of ``period`` (0-based)."""
        return self.time.age_start_days + (period + 1) * self.time.days_per_period

    def time_axis(self) -> dict:
        """The mapping of simulated time to age, as written to ``run.json``."""
        t = self.time
        return {"unit": "days", "age_start_days": t.age_start_days, "days_per_period": t.days_per_period,
                "activity_s_per_period": t.activity_s, "struct_steps_per_period": t.struct_steps,
                "days_per_struct_step": self.days_per_step, "compression": self.compression,
                "age_of_period_end": "age_start_days + (period + 1) * days_per_period",
                "final_age_days": self.age_at_end(self.schedule.periods - 1)}

    def to_dict(self) -> dict:
        """Plain dictionary (TOML-serialisable) of the whole configuration."""
        d = dataclasses.asdict(self)
        d.pop("source")
        return d

    def replace(self, **sections) -> "CortexConfig":
        """Copy with ``section={key: value}`` overrides (validated again)."""
        d = self.to_dict()
        for key, value in sections.items():
            if key not in d:
                raise ConfigError(f"{self.source}: a developmental model has no '{key}' to override")
            if isinstance(value, dict) and isinstance(d.get(key), dict):
                d[key].update(value)
            else:
                d[key] = value
        return cortex_config_from_dict(d, source=self.source)


def _typed(cls, table, where: str, source: str):
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: key '{where}' must be a table, got {table!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key '{where}.{key}' (known: {', '.join(sorted(known))})")
        default = known[key].default
        if isinstance(default, bool):
            ok, expect = isinstance(value, bool), "a boolean"
        elif isinstance(default, int):
            ok, expect = isinstance(value, int) and not isinstance(value, bool), "an integer"
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            expect = "a finite number"
            value = float(value) if ok else value
        if not ok:
            raise ConfigError(f"{source}: key '{where}.{key}' must be {expect}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def _require(cond, source, key, expected, value):
    if not cond:
        raise ConfigError(f"{source}: key '{key}' must be {expected}, got {value!r}")


def cortex_config_from_dict(d: dict, source: str = "<dict>") -> CortexConfig:
    """Validate a developmental configuration dictionary and build a :class:`CortexConfig`."""
    top = {"kind", "name", "description", *_SECTIONS}
    for key in d:
        if key not in top:
            raise ConfigError(f"{source}: unknown key {str(key)!r} for kind '{KIND}' "
                              f"(known: {', '.join(sorted(top))})")
    name = d.get("name", source.rsplit("/", 1)[-1].removesuffix(".toml"))
    _require(isinstance(name, str) and bool(name), source, "name", "a non-empty string", name)
    sec = {k: _typed(cls, d.get(k, {}), k, source) for k, cls in _SECTIONS.items()}
    net, neu, drv, sp, tr, tm, sch, sd = (sec[k] for k in _SECTIONS)
    _require(net.n_exc >= 2, source, "network.n_exc", ">= 2", net.n_exc)
    _require(net.n_inh >= 1, source, "network.n_inh", ">= 1", net.n_inh)
    _require(0 < net.p_exc <= 1, source, "network.p_exc", "a probability in (0, 1]", net.p_exc)
    _require(0 <= net.p_inh <= 1, source, "network.p_inh", "a probability in [0, 1]", net.p_inh)
    n_sites = net.n_exc * (net.n_exc + net.n_inh - 1) * net.p_exc
    _require(n_sites <= 2e7, source, "network", "at most 2e7 expected potential synapses (memory)",
             int(n_sites))
    for key in ("c_m_pf", "g_l_ns", "t_ref_ms", "tau_e_ms", "tau_i_ms", "tau_pair_ms"):
        _require(getattr(neu, key) > 0, source, f"neuron.{key}", "> 0", getattr(neu, key))
    _require(neu.v_th_mv > neu.v_reset_mv, source, "neuron.v_th_mv", "above neuron.v_reset_mv", neu.v_th_mv)
    _require(neu.g_per_volume_ns >= 0 and neu.g_inh_ns >= 0, source, "neuron.g_per_volume_ns/g_inh_ns",
             ">= 0", (neu.g_per_volume_ns, neu.g_inh_ns))
    _require(drv.n_ext >= 0 and drv.rate_hz >= 0 and drv.g_ext_ns >= 0, source, "drive.n_ext/rate_hz/g_ext_ns",
             ">= 0", (drv.n_ext, drv.rate_hz, drv.g_ext_ns))
    _require(drv.n_patterns >= 1, source, "drive.n_patterns", ">= 1", drv.n_patterns)
    _require(0 <= drv.pattern_fraction <= 1, source, "drive.pattern_fraction", "in [0, 1]",
             drv.pattern_fraction)
    _require(drv.pattern_ms > 0 and drv.pattern_rate_hz >= 0 and drv.g_pattern_ns >= 0, source,
             "drive.pattern_ms/pattern_rate_hz/g_pattern_ns", "> 0 / >= 0 / >= 0",
             (drv.pattern_ms, drv.pattern_rate_hz, drv.g_pattern_ns))
    for key in ("theta_t", "theta_s", "sigma_t", "sigma_s", "k_consolidate", "f_birth", "f_adult", "eta_act", "eta_comp"):
        _require(getattr(sp, key) >= 0, source, f"spines.{key}", ">= 0", getattr(sp, key))
    for key in ("v_min", "v_new", "v_consolidate", "tau_formation", "a_ref_hz", "a_cap", "vol_per_site",
                "formation_end_width_days", "formation_aging_days"):
        _require(getattr(sp, key) > 0, source, f"spines.{key}", "> 0", getattr(sp, key))
    _require(sp.v_new > sp.v_min, source, "spines.v_new", f"above spines.v_min ({sp.v_min})", sp.v_new)
    _require(0 <= sp.occupancy0 <= 1, source, "spines.occupancy0", "in [0, 1]", sp.occupancy0)
    _require(0 <= tr.threshold <= 1, source, "trophic.threshold", "in [0, 1] (a share of the mean)",
             tr.threshold)
    _require(tr.window_days > 0, source, "trophic.window_days", "> 0", tr.window_days)
    _require(tr.end_days >= tr.start_days, source, "trophic.end_days", ">= trophic.start_days", tr.end_days)
    _require(tm.days_per_period > 0, source, "time.days_per_period", "> 0", tm.days_per_period)
    _require(tm.activity_s > 0, source, "time.activity_s", "> 0", tm.activity_s)
    _require(tm.struct_steps >= 1, source, "time.struct_steps", ">= 1", tm.struct_steps)
    _require(0 < tm.dt_ms <= 1, source, "time.dt_ms", "in (0, 1]", tm.dt_ms)
    steps = tm.activity_s * 1000.0 / tm.dt_ms
    per_struct = steps / tm.struct_steps
    _require(abs(per_struct - round(per_struct)) < 1e-6 and round(per_struct) >= 1, source, "time.struct_steps",
             f"a divisor of the {steps:g} time steps of a period", tm.struct_steps)
    _require(sch.periods >= 1, source, "schedule.periods", ">= 1", sch.periods)
    _require(sch.seed >= 0, source, "schedule.seed", ">= 0", sch.seed)
    _require(0 <= sd.prune_rate <= 100, source, "sdsnn.prune_rate", "a percentage in [0, 100]", sd.prune_rate)
    _require(not sd.neurotrophic_rate or sd.importance_pruning, source, "sdsnn.neurotrophic_rate",
             "false unless sdsnn.importance_pruning is true (it adapts the pruning rate)", sd.neurotrophic_rate)
    _require(sd.constraint_n_streak >= 1, source, "sdsnn.constraint_n_streak", ">= 1", sd.constraint_n_streak)
    _require(0 < sd.constraint_shrink <= 1, source, "sdsnn.constraint_shrink", "in (0, 1]", sd.constraint_shrink)
    _require(0 <= sd.regen_q0 <= 99, source, "sdsnn.regen_q0", "a percentile in [0, 99]", sd.regen_q0)
    _require(sd.regen_max_streak >= 0, source, "sdsnn.regen_max_streak", ">= 0", sd.regen_max_streak)
    _require(sd.neuro_tau_days > 0, source, "sdsnn.neuro_tau_days", "> 0", sd.neuro_tau_days)
    return CortexConfig(name=name, description=str(d.get("description", "")), source=source,
                        network=net, neuron=neu, drive=drv, spines=sp, trophic=tr, time=tm, schedule=sch,
                        sdsnn=sd)
