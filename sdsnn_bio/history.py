"""The structural history of a run: the network's structure at every period, after the run.

A run folder keeps snapshots of its newest and its best period only
(:mod:`sdsnn_bio.records`); the history keeps enough to redraw the structure
at *any* period, at a fraction of a snapshot's size. :class:`HistoryRecorder`
writes it from the period loop (:mod:`sdsnn_bio.loop`), :class:`History`
reads it back.

What period ``e`` means
-----------------------
The history's period ``e`` is the state of snapshot ``period_e.npz``: the
masks the network had during period ``e``'s run (the decisions of period
``e - 1``, applied at the run's first step), and the weights and spine bounds
at the end of that run, after period ``e``'s decisions between runs (so
period 0 carries the initialised spines). The table's columns ``alive_<layer>``
and ``zeros_<layer>`` of row ``e`` describe the structure *after* period
``e``'s decisions, which is the history's period ``e + 1``. A finished run
adds one more entry, period ``P`` (``schedule.periods``): the final structure
that the final evaluation ran on (the last period's decisions applied), to
which ``summary.json`` refers.

What is stored (``history/`` in the run folder, every file atomic)
------------------------------------------------------------------
``period_NNNN.npz``, one per period, for every layer with learnable synapses:

* the connection mask: in full (bit-packed) in the first period, then the
  indices of the synapses that flipped since the previous period
  (difference-coded); pruning and regeneration events follow from them
  (:meth:`History.events`);
* which units are alive (pruned layers; a unit, a neuron of a dense layer or
  a channel of a locally connected one, is alive with at least
  ``theta_dead`` live afferent synapses per position, as ``alive_<layer>``
  counts them);
* per-unit summaries of the live synapses: their number (exact), the mean
  weight, the mean ``|w|`` and the mean spine width (float16, relative error
  below 2**-11);
* histograms (exact counts) of the weights and of the spine widths
  ``r_up + |r_lo|`` of the live synapses over fixed bin edges chosen in the
  first period (:func:`bin_edges`), with the values outside them counted
  apart.

``keyframe_NNNN.npz`` for a bounded set of periods (:func:`fixed_keyframes`
and the ``n_change`` periods whose masks changed most): the weights and
spine bounds of the live synapses, each quantised to 8 bits over its range
in that period (:func:`quantise`; the error bound, half a step, is stored
with it). Where a snapshot of a period exists, :class:`History` takes that
period's values from it instead, exactly.

Only the changes of the masks and the keyframes grow with the network; a
period's other records are per unit or per bin. For 784-300-10
(``mnist5k_fc``) the measured size is in the README ("A run folder").
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np

from .errors import RunError, SdsnnError
from .records import RunFolder

__all__ = ["History", "LayerStructure", "HistoryRecorder", "HistoryError", "quantise", "dequantise",
           "bin_edges", "fixed_keyframes", "EVENT_KINDS", "HISTORY_FORMAT"]

#: Version of the history files' layout.
HISTORY_FORMAT = 1
#: Kinds of structural event (:meth:`History.events`).
EVENT_KINDS = ("unit_pruned", "unit_revived", "synapse_pruned", "synapse_regenerated")
#: Histogram variables: the weights and the spine widths ``r_up + |r_lo|``.
HIST_VARS = ("w", "width")
_QUANT_LEVELS = 255
_UNIT_STATS = ("w_mean", "absw_mean", "width_mean")


class HistoryError(SdsnnError, ValueError):
    """A structural history is missing, malformed, or asked for a period or layer it lacks."""


# ------------------------------------------------------------------ numerics
def quantise(x) -> tuple:
    """8-bit codes of ``x`` over its range: ``(codes, lo, hi)``.

    ``x ~ lo + codes*(hi - lo)/255`` with an error of at most half a step,
    ``(hi - lo)/510`` (plus float32 rounding in :func:`dequantise`).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, np.uint8), 0.0, 0.0
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(x.shape, np.uint8), lo, hi
    codes = np.rint((x - lo) * (_QUANT_LEVELS / (hi - lo)))
    return np.clip(codes, 0, _QUANT_LEVELS).astype(np.uint8), lo, hi


def dequantise(codes, lo: float, hi: float) -> np.ndarray:
    """The float32 values of :func:`quantise`'s codes."""
    codes = np.asarray(codes, dtype=np.float64)
    return (lo + codes * ((hi - lo) / _QUANT_LEVELS)).astype(np.float32)


def quantisation_error(lo: float, hi: float) -> float:
    """Largest difference between a value and its dequantised code (half a step)."""
    return (hi - lo) / (2 * _QUANT_LEVELS)


def bin_edges(w, n_bins: int = 64) -> dict:
    """Fixed histogram edges of a layer from its first period's weights.

    ``A = max |w|`` (1 if the weights are all 0): weights over ``[-2A, 2A]``,
    spine widths over ``[0, 4A]`` (the spines start at ``r_up = max w``,
    ``r_lo = -max w``, a width of at most ``2A``), ``n_bins`` equal bins each.
    Values outside the edges are counted apart (below, above).
    """
    w = np.asarray(w, dtype=np.float64)
    a = float(np.max(np.abs(w))) if w.size else 0.0
    if not np.isfinite(a) or a <= 0:
        a = 1.0
    return {"w": np.linspace(-2 * a, 2 * a, n_bins + 1), "width": np.linspace(0.0, 4 * a, n_bins + 1)}


def _hist(x, edges) -> np.ndarray:
    """Counts of ``x``: ``[below, bin 0, ..., bin n-1, above]`` (the last bin includes its right edge)."""
    x = np.asarray(x, dtype=np.float64)
    below = int(np.count_nonzero(x < edges[0]))
    above = int(np.count_nonzero(x > edges[-1]))
    inner, _ = np.histogram(x[(x >= edges[0]) & (x <= edges[-1])], bins=edges)
    return np.concatenate([[below], inner, [above]]).astype(np.int64)


def fixed_keyframes(periods: int, n_geometric: int = 5) -> list:
    """Keyframe periods chosen in advance: the first, ``n_geometric`` geometrically
    spaced ones in between, the last (``periods - 1``) and the final structure (``periods``)."""
    last = periods - 1
    inner = []
    if last > 1 and n_geometric > 0:
        g = np.unique(np.rint(np.geomspace(1, last, n_geometric + 1)[:-1]).astype(int))
        inner = [int(e) for e in g if 0 < e < last]
    return sorted({0, *inner, max(last, 0), periods})


def _diff_encode(idx: np.ndarray) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    return np.diff(idx, prepend=0).astype(np.uint32)


def _diff_decode(d: np.ndarray) -> np.ndarray:
    return np.cumsum(np.asarray(d, dtype=np.int64))


def _unit_alive(connected: np.ndarray, st) -> np.ndarray:
    """Bool per unit: at least ``theta_dead`` live afferent synapses per position."""
    live = np.bincount(st.post_index, weights=connected.astype(np.float64), minlength=st.n_neurons)
    per_unit = np.bincount(st.unit_of_neuron, weights=live, minlength=st.n_units)
    return per_unit / st.positions_per_unit >= st.spec.theta_dead


def _structural(st) -> bool:
    return bool(getattr(st, "structural", False))


# ------------------------------------------------------------------ recorder
class HistoryRecorder:
    """Writes the structural history of a run, one period at a time.

    Parameters
    ----------
    folder : RunFolder
        The run folder (the files go to its ``history/``).
    stages : list of StageGeometry
        The network's stages; those with learnable synapses are recorded.
    periods : int
        Periods of the run (``schedule.periods``): the last one and the final
        structure (``periods``) are keyframes.
    n_geometric, n_change : int
        Keyframes spaced geometrically, and those given to the periods whose
        masks changed most (fraction of a layer's synapses flipped, summed
        over the layers; ties to the earlier period).
    n_bins : int
        Bins of the histograms.
    """

    def __init__(self, folder: RunFolder, stages, periods: int, n_geometric: int = 5, n_change: int = 3,
                 n_bins: int = 64):
        self.folder = folder
        self.stages = [s for s in stages if s.learnable]
        self.periods = int(periods)
        self.fixed = set(fixed_keyframes(self.periods, n_geometric))
        self.n_change = int(n_change)
        self.n_bins = int(n_bins)
        self._reset()

    def _reset(self):
        self.mask = {}           # stage -> bool mask of the last recorded period
        self.alive = {}          # stage -> bool per unit of the last recorded period
        self.edges = {}          # stage -> {"w": edges, "width": edges}
        self.change = {}         # period -> score of the change keyframes on disk
        self.last = None

    # -------------------------------------------------------- run control
    def start(self):
        """A new run: remove any history left in the folder."""
        self.folder.clear_history(after=-1)
        self._reset()

    def resume(self, period: int):
        """A run resumed from the snapshot of ``period``: drop the history after it, read back the rest.

        A folder without any history (written before histories existed) starts
        its history at the next period.
        """
        self.folder.clear_history(after=period)
        self._reset()
        have = self.folder.history_periods("period")
        if not have:
            return
        want = list(range(have[0], period + 1))
        if have != want:
            missing = sorted(set(want) - set(have))
            raise RunError(f"{self.folder.history}: the structural history lacks the periods {missing} "
                           f"before the snapshot of period {period}; it cannot be continued")
        keyframes = set(self.folder.history_periods("keyframe"))
        for e in have:
            try:
                rec = self.folder.load_history(e)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
                raise RunError(f"{self.folder.history_path(e)}: unreadable history record ({exc})") from exc
            for st in self.stages:
                name = st.name
                if f"{name}/mask" in rec.arrays:
                    self.mask[name] = rec.arrays[f"{name}/mask"].astype(bool)
                    self.edges[name] = {v: rec.arrays[f"{name}/edges_{v}"] for v in HIST_VARS
                                        if f"{name}/edges_{v}" in rec.arrays}
                else:
                    idx = _diff_decode(rec.arrays[f"{name}/flips"])
                    self.mask[name][idx] = ~self.mask[name][idx]
                if f"{name}/alive" in rec.arrays:
                    self.alive[name] = rec.arrays[f"{name}/alive"].astype(bool)
            if rec.meta.get("keyframe") == "change" and e in keyframes:
                self.change[e] = float(rec.meta["score"])
        self.last = period

    # ------------------------------------------------------------ records
    @staticmethod
    def _layer_arrays(arrays: dict, name: str) -> dict:
        """A stage's synapse arrays as the next run starts from them (pending values win)."""
        out = {var: arrays.get(f"{name}/syn/{var}") for var in ("connected", "w", "r_up", "r_lo")}
        for var in out:
            pending = arrays.get(f"pending/syn_{name}/{var}")
            if pending is not None:
                out[var] = pending
        return out

    def record(self, period: int, arrays: dict, final: bool = False):
        """Record the structure of ``period`` from the network's ``state_arrays()``.

        Writes the keyframe (if ``period`` is one) before the period's record,
        and gives up a change keyframe only after both are in place.
        """
        e = int(period)
        first = not self.mask
        pa, ka = {}, {}
        quant, flips_n, score = {}, {}, 0.0
        masks, alive = {}, {}
        for st in self.stages:
            name = st.name
            a = self._layer_arrays(arrays, name)
            if a["connected"] is None or a["w"] is None:
                raise RunError(f"{self.folder.path}: period {e}: no synapse state of layer '{name}' to record")
            conn = np.asarray(a["connected"]) != 0
            w = np.asarray(a["w"], dtype=np.float64)
            structural = _structural(st)
            width = (np.asarray(a["r_up"], np.float64) + np.abs(np.asarray(a["r_lo"], np.float64))
                     if structural else None)
            if first:
                pa[f"{name}/mask"] = conn.astype(np.uint8)
                self.edges[name] = bin_edges(w[conn] if conn.any() else w, self.n_bins)
                for v, edges in self.edges[name].items():
                    if v == "w" or structural:
                        pa[f"{name}/edges_{v}"] = edges
                flips_n[name] = 0
            else:
                idx = np.flatnonzero(conn != self.mask[name])
                pa[f"{name}/flips"] = _diff_encode(idx)
                flips_n[name] = int(idx.size)
                score += idx.size / max(1, st.n_synapses)
            masks[name] = conn
            if st.pruned:
                alive[name] = _unit_alive(conn, st)
                pa[f"{name}/alive"] = alive[name].astype(np.uint8)
            # per-unit summaries of the live synapses
            unit = st.unit_of_neuron[st.post_index][conn]
            n_live = np.bincount(unit, minlength=st.n_units)
            pa[f"{name}/unit_live"] = n_live.astype(np.int64)
            with np.errstate(invalid="ignore", divide="ignore"):
                stats = {"w_mean": np.bincount(unit, weights=w[conn], minlength=st.n_units) / n_live,
                         "absw_mean": np.bincount(unit, weights=np.abs(w[conn]), minlength=st.n_units) / n_live}
                if structural:
                    stats["width_mean"] = np.bincount(unit, weights=width[conn], minlength=st.n_units) / n_live
            for k, v in stats.items():
                pa[f"{name}/unit_{k}"] = v.astype(np.float16)
            pa[f"{name}/hist_w"] = _hist(w[conn], self.edges[name]["w"])
            if structural:
                pa[f"{name}/hist_width"] = _hist(width[conn], self.edges[name]["width"])
            # keyframe values of the live synapses
            q = {}
            values = {"w": w[conn]}
            if structural:
                values["r_up"] = np.asarray(a["r_up"], np.float64)[conn]
                values["r_lo"] = np.asarray(a["r_lo"], np.float64)[conn]
            for var, x in values.items():
                if np.all(np.isfinite(x)):
                    codes, lo, hi = quantise(x)
                    ka[f"{name}/{var}"] = codes
                    q[var] = {"lo": lo, "hi": hi, "err": quantisation_error(lo, hi)}
                else:   # not representable on a scale: kept exactly
                    ka[f"{name}/{var}"] = x.astype(np.float32)
                    q[var] = {"exact": True}
            quant[name] = q
        kind, evict = self._keyframe_kind(e, score)
        meta = {"format": HISTORY_FORMAT, "period": e, "final": bool(final), "score": score,
                "keyframe": kind, "flips": flips_n, "layers": [s.name for s in self.stages]}
        if kind is not None:
            self.folder.save_history(e, ka, {"format": HISTORY_FORMAT, "period": e, "kind": kind,
                                             "quant": quant}, kind="keyframe")
        self.folder.save_history(e, pa, meta, kind="period")
        if evict is not None:
            self.folder.remove_history(evict, kind="keyframe")
            del self.change[evict]
        if kind == "change":
            self.change[e] = score
        self.mask, self.alive, self.last = masks, alive, e

    def _keyframe_kind(self, e: int, score: float):
        """``(kind, evicted)``: ``"fixed"``, ``"change"`` or None, and the change keyframe given up."""
        if e in self.fixed:
            return "fixed", None
        if score <= 0 or self.n_change <= 0:
            return None, None
        if len(self.change) < self.n_change:
            return "change", None
        # rank: higher score first, the earlier period on a tie
        weakest = min(self.change, key=lambda p: (self.change[p], -p))
        if (score, -e) > (self.change[weakest], -weakest):
            return "change", weakest
        return None, None


# -------------------------------------------------------------------- reader
@dataclass
class LayerStructure:
    """The structure of one layer at one period.

    Synapse arrays follow Brian2's synapse order (presynaptic-major): for a
    dense layer ``w.reshape(n_pre, n_post)`` is the weight matrix and the
    receptive field of unit ``k`` is ``w[j == k].reshape(pre_shape)``.
    ``w``, ``r_up`` and ``r_lo`` are the values of period ``values_period``
    (a keyframe or a snapshot, the nearest one to ``period``): exact where
    ``exact``, else quantised to 8 bits (error at most ``(max - min)/510`` of
    the layer's live values in that period); NaN for a synapse that was not
    live in ``values_period``, and ``r_up``/``r_lo`` NaN in a layer without
    spine bounds.

    A convolution's synapses are those of its positions (as a locally connected layer's,
    ``i``/``j`` over the positional neurons), each with the values and mask of the kernel
    weight it reads, ``kernel_index`` (the kernel's own arrays are ``w[first]`` etc. at
    the first synapse reading each element).
    """

    name: str
    period: int
    pre_shape: tuple
    post_shape: tuple
    i: np.ndarray
    j: np.ndarray
    connected: np.ndarray
    alive: np.ndarray
    unit_of_post: np.ndarray
    w: np.ndarray
    r_up: np.ndarray
    r_lo: np.ndarray
    values_period: int
    exact: bool
    layer_type: str = ""          # "dense", "local", "conv" or "pool"
    pruned: bool = False          # the layer prunes units
    kernel_index: np.ndarray = None   # a convolution: the kernel weight each synapse reads
    kernel_shape: tuple = None        # a convolution: (C_out, C_in, k, k)

    def kernel_values(self, values) -> np.ndarray:
        """A convolution's per-synapse ``values`` (one of ``connected``, ``w``, ``r_up``, ``r_lo``
        or an array of the same length) as its kernel, ``(C_out, C_in, k, k)``: each element
        the value at a synapse that reads it (all of them carry the same), NaN for an element
        no synapse reads."""
        if self.kernel_index is None:
            raise ValueError(f"layer {self.name!r} ({self.layer_type}) has no kernel")
        c_out, c_in, k, _ = self.kernel_shape
        flat = np.full(c_in * c_out * k * k, np.nan)
        flat[self.kernel_index] = np.asarray(values, float)
        # the kernel's elements are stored input-channel-major: ((c_in*C_out + c_out)*k + ky)*k + kx
        return flat.reshape(c_in, c_out, k, k).transpose(1, 0, 2, 3)

    @property
    def n_live(self) -> int:
        """Live synapses."""
        return int(np.count_nonzero(self.connected))


class History:
    """The structural history of a run folder (see the module documentation).

    Parameters
    ----------
    run_dir : path or RunFolder

    Attributes
    ----------
    periods : numpy.ndarray
        Recorded periods, ascending (a finished run's final structure is period ``P``).
    layers : list of str
        The pruned layers, in network order.
    keyframes : numpy.ndarray
        Periods with stored (quantised) weights and spine bounds.
    final_period : int or None
        The period number of the final structure, once the run has finished.
    """

    def __init__(self, run_dir):
        from .config import load_config
        from .geometry import stage_geometry

        self.folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
        path = self.folder.path
        if not path.is_dir():
            raise HistoryError(f"{path}: no such run folder")
        if not self.folder.config.is_file():
            raise HistoryError(f"{path}: not a run folder (no {self.folder.config.name})")
        periods = self.folder.history_periods("period")
        if not periods:
            raise HistoryError(f"{path}: the run folder has no structural history "
                               f"({self.folder.history.name}/period_NNNN.npz); it was written before "
                               "histories were recorded, or no period has finished")
        try:
            self.cfg = load_config(self.folder.config)
        except SdsnnError as exc:
            raise HistoryError(f"{path}: cannot read the run's configuration: {exc}") from exc
        self.stages = stage_geometry(self.cfg)
        self._by_name = {s.name: s for s in self.stages}
        self.recorded = [s for s in self.stages if s.learnable]
        self.layers = [s.name for s in self.stages if s.pruned]
        missing = sorted(set(range(periods[0], periods[-1] + 1)) - set(periods))
        if missing:
            raise HistoryError(f"{self.folder.history}: history files of periods {missing} are missing")
        self.periods = np.asarray(periods, dtype=int)
        self._records = [self._load(e) for e in periods]
        self._check_first(self._records[0], periods[0])
        last_meta = self._records[-1].meta
        self.final_period = int(periods[-1]) if last_meta.get("final") else None
        self.keyframes = np.asarray(self.folder.history_periods("keyframe"), dtype=int)
        self._events = None
        self._snap_periods = None

    # ------------------------------------------------------------- loading
    def _load(self, e: int, kind: str = "period"):
        path = self.folder.history_path(e, kind)
        try:
            rec = self.folder.load_history(e, kind)
        except FileNotFoundError as exc:
            raise HistoryError(f"{path}: missing history file") from exc
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
            raise HistoryError(f"{path}: malformed history file ({type(exc).__name__}: {exc})") from exc
        if rec.period != e or rec.meta.get("format") != HISTORY_FORMAT:
            raise HistoryError(f"{path}: not a history record of period {e} (format "
                               f"{rec.meta.get('format')!r}, period {rec.period})")
        if kind == "period":
            self._check_record(rec, path)
        return rec

    def _check_record(self, rec, path):
        for st in self.recorded:
            name = st.name
            need = [f"{name}/unit_live", f"{name}/hist_w"] + ([f"{name}/alive"] if st.pruned else [])
            need.append(f"{name}/mask" if f"{name}/mask" in rec.arrays else f"{name}/flips")
            for key in need:
                if key not in rec.arrays:
                    raise HistoryError(f"{path}: array '{key}' is missing")
            if f"{name}/flips" in rec.arrays:
                idx = _diff_decode(rec.arrays[f"{name}/flips"])
                if idx.size and (idx[-1] >= st.n_synapses or np.any(np.diff(idx) <= 0)):
                    raise HistoryError(f"{path}: flipped synapses of layer '{name}' out of range "
                                       f"or unordered ({st.n_synapses} synapses)")
            elif rec.arrays[f"{name}/mask"].shape != (st.n_synapses,):
                raise HistoryError(f"{path}: mask of layer '{name}' has shape "
                                   f"{rec.arrays[f'{name}/mask'].shape}, the network has {st.n_synapses} synapses")
            if st.pruned and rec.arrays[f"{name}/alive"].shape != (st.n_units,):
                raise HistoryError(f"{path}: alive units of layer '{name}' have shape "
                                   f"{rec.arrays[f'{name}/alive'].shape}, the layer has {st.n_units} units")

    def _check_first(self, rec, e):
        for st in self.recorded:
            if f"{st.name}/mask" not in rec.arrays:
                raise HistoryError(f"{self.folder.history_path(e)}: the first period's record lacks the "
                                   f"full mask of layer '{st.name}'")

    # ------------------------------------------------------------- lookups
    def _index(self, period) -> int:
        try:
            e = int(period)
        except (TypeError, ValueError):
            raise HistoryError(f"{self.folder.path}: period must be an integer, got {period!r}") from None
        if e != period or not (self.periods[0] <= e <= self.periods[-1]):
            raise HistoryError(f"{self.folder.path}: period {period!r} is not in the history "
                               f"(periods {self.periods[0]}..{self.periods[-1]})")
        return e - int(self.periods[0])

    def check_period(self, period) -> int:
        """``period`` as an int if it is recorded, else a :class:`HistoryError` naming the range."""
        return int(self.periods[self._index(period)])

    def _stage(self, layer: str, recorded: bool = True):
        st = self._by_name.get(layer)
        if st is None or (recorded and not st.learnable):
            names = [s.name for s in (self.recorded if recorded else self.stages)]
            raise HistoryError(f"{self.folder.path}: no recorded layer {layer!r} (layers: {', '.join(names)})")
        return st

    def mask(self, layer: str, period) -> np.ndarray:
        """The connection mask (bool per synapse) of ``layer`` at ``period``."""
        self._stage(layer)
        k = self._index(period)
        m = self._records[0].arrays[f"{layer}/mask"].astype(bool)
        for rec in self._records[1:k + 1]:
            idx = _diff_decode(rec.arrays[f"{layer}/flips"])
            m[idx] = ~m[idx]
        return m

    def alive(self, layer: str):
        """``(periods, alive)``: bool matrix ``[n_periods, n_units]`` (all True in a layer that prunes no units)."""
        st = self._stage(layer)
        if not st.pruned:
            return self.periods.copy(), np.ones((len(self.periods), st.n_units), bool)
        return self.periods.copy(), np.stack([r.arrays[f"{layer}/alive"].astype(bool) for r in self._records])

    def histogram(self, layer: str, var: str):
        """``(periods, bin_edges, counts[n_periods, n_bins])`` of ``var`` (``"w"`` or ``"width"``) over
        the live synapses; values outside the edges are counted in the end bins
        (:meth:`histogram_outside` gives them apart)."""
        counts, edges = self._hist(layer, var)
        folded = counts[:, 1:-1].copy()
        folded[:, 0] += counts[:, 0]
        folded[:, -1] += counts[:, -1]
        return self.periods.copy(), edges, folded

    def histogram_outside(self, layer: str, var: str):
        """``(periods, below, above)``: live synapses whose ``var`` lies outside the bin edges."""
        counts, _ = self._hist(layer, var)
        return self.periods.copy(), counts[:, 0].copy(), counts[:, -1].copy()

    def _hist(self, layer, var):
        st = self._stage(layer)
        if var not in HIST_VARS:
            raise HistoryError(f"histogram variable must be one of {HIST_VARS}, got {var!r}")
        key = f"{layer}/hist_{var}"
        if key not in self._records[0].arrays:
            raise HistoryError(f"{self.folder.path}: layer '{st.name}' has no spine bounds: no '{var}' histogram")
        edges = self._records[0].arrays[f"{layer}/edges_{var}"]
        return np.stack([r.arrays[key] for r in self._records]), edges

    def unit_summary(self, layer: str) -> dict:
        """Per-unit summaries of the live synapses, ``{name: matrix [n_periods, n_units]}``:
        ``live`` (count), ``w_mean``, ``absw_mean``, ``width_mean`` (NaN for a unit without live synapses)."""
        self._stage(layer)
        out = {"live": np.stack([r.arrays[f"{layer}/unit_live"] for r in self._records])}
        for k in _UNIT_STATS:
            key = f"{layer}/unit_{k}"
            if key in self._records[0].arrays:
                out[k] = np.stack([r.arrays[key].astype(np.float32) for r in self._records])
        return out

    def events(self, layer: str | None = None) -> dict:
        """Pruning and regeneration events, ``{"period", "layer", "kind", "index"}`` (numpy arrays).

        An event of period ``e`` is a change from period ``e - 1`` to ``e``:
        ``synapse_pruned`` / ``synapse_regenerated`` (index: the synapse) from
        the mask, ``unit_pruned`` / ``unit_revived`` (index: the unit) from the
        alive units. Sorted by period, layer (network order), kind and index.
        """
        if layer is not None:
            self._stage(layer)
        if self._events is None:
            self._events = self._all_events()
        ev = self._events
        if layer is None:
            return {k: v.copy() for k, v in ev.items()}
        sel = ev["layer"] == layer
        return {k: v[sel] for k, v in ev.items()}

    def _all_events(self) -> dict:
        cols = {"period": [], "layer": [], "kind": [], "index": []}

        def add(e, name, kind, idx):
            if idx.size:
                cols["period"].append(np.full(idx.size, e, dtype=int))
                cols["layer"].append(np.full(idx.size, name, dtype=object))
                cols["kind"].append(np.full(idx.size, kind, dtype=object))
                cols["index"].append(idx.astype(int))

        masks = {st.name: self._records[0].arrays[f"{st.name}/mask"].astype(bool) for st in self.recorded}
        for k, rec in enumerate(self._records[1:], start=1):
            e = int(self.periods[k])
            for st in self.recorded:
                name = st.name
                if st.pruned:
                    before = self._records[k - 1].arrays[f"{name}/alive"].astype(bool)
                    now = rec.arrays[f"{name}/alive"].astype(bool)
                    add(e, name, "unit_pruned", np.flatnonzero(before & ~now))
                    add(e, name, "unit_revived", np.flatnonzero(~before & now))
                idx = _diff_decode(rec.arrays[f"{name}/flips"])
                m = masks[name]
                add(e, name, "synapse_pruned", idx[m[idx]])
                add(e, name, "synapse_regenerated", idx[~m[idx]])
                m[idx] = ~m[idx]
        if not cols["period"]:
            return {"period": np.zeros(0, int), "layer": np.zeros(0, str), "kind": np.zeros(0, str),
                    "index": np.zeros(0, int)}
        return {"period": np.concatenate(cols["period"]),
                "layer": np.concatenate(cols["layer"]).astype(str),
                "kind": np.concatenate(cols["kind"]).astype(str),
                "index": np.concatenate(cols["index"])}

    # ----------------------------------------------------------- structure
    def _snapshot_periods(self) -> dict:
        """``{period: which}`` of the snapshots in the folder (``best`` included)."""
        if self._snap_periods is None:
            found = {e: e for e in self.folder.snapshot_periods()}
            if self.folder.has_best():
                try:
                    found.setdefault(self.folder.load_snapshot("best", keys=[]).period, "best")
                except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                    pass
            self._snap_periods = found
        return self._snap_periods

    def values_source(self, period) -> tuple:
        """``(values_period, exact)``: where :meth:`structure_at` takes weights and spines from.

        The nearest keyframe or snapshot to ``period`` (a snapshot, exact, on a
        tie; then the earlier period).
        """
        e = int(self.periods[self._index(period)])
        cands = [(abs(k - e), 0, k) for k in self._snapshot_periods()]
        cands += [(abs(int(k) - e), 1, int(k)) for k in self.keyframes]
        if not cands:
            raise HistoryError(f"{self.folder.history}: no keyframe and no snapshot to take values from")
        d, src, k = min(cands, key=lambda c: (c[0], c[1], c[2]))
        return k, src == 0

    def _values(self, k: int, exact: bool) -> dict:
        """``{layer: {"w", "r_up", "r_lo"}}`` of period ``k`` (float32, NaN where unknown)."""
        out = {}
        if exact:
            which = self._snapshot_periods()[k]
            try:
                names = set(self.folder.snapshot_names(which))
                keys = [n for st in self.recorded for v in ("w", "r_up", "r_lo")
                        for n in (f"{st.name}/syn/{v}", f"pending/syn_{st.name}/{v}") if n in names]
                snap = self.folder.load_snapshot(which, keys=keys)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
                raise HistoryError(f"{self.folder.snapshot_path(which)}: unreadable snapshot ({exc})") from exc
            for st in self.recorded:
                # the values as the next run starts from them, as the recorder reads them
                lay = HistoryRecorder._layer_arrays(snap.arrays, st.name)
                out[st.name] = {v: np.asarray(lay[v], dtype=np.float32) for v in ("w", "r_up", "r_lo")}
                if not _structural(st):
                    for v in ("r_up", "r_lo"):
                        out[st.name][v] = np.full(st.n_synapses, np.nan, np.float32)
            return out
        kf = self._load(k, kind="keyframe")
        for st in self.recorded:
            live = self.mask(st.name, k)
            q = kf.meta["quant"][st.name]
            out[st.name] = {}
            for v in ("w", "r_up", "r_lo"):
                full = np.full(st.n_synapses, np.nan, np.float32)
                key = f"{st.name}/{v}"
                if v in q:
                    if key not in kf.arrays or kf.arrays[key].shape != (int(live.sum()),):
                        raise HistoryError(f"{self.folder.history_path(k, 'keyframe')}: values '{key}' do "
                                           f"not match the {int(live.sum())} live synapses of period {k}")
                    full[live] = (kf.arrays[key].astype(np.float32) if q[v].get("exact")
                                  else dequantise(kf.arrays[key], q[v]["lo"], q[v]["hi"]))
                out[st.name][v] = full
        return out

    def quantisation_error(self, period, layer: str, var: str = "w") -> float:
        """Stated error bound of a keyframe's values (0 where they are stored exactly)."""
        kf = self._load(int(period), kind="keyframe")
        q = kf.meta["quant"].get(layer, {}).get(var)
        if q is None:
            raise HistoryError(f"{self.folder.history_path(period, 'keyframe')}: no values '{var}' of layer {layer!r}")
        return 0.0 if q.get("exact") else float(q["err"])

    def structure_at(self, period) -> dict:
        """``{layer: LayerStructure}`` of every stage with synapses at ``period`` (network order)."""
        k_idx = self._index(period)
        e = int(self.periods[k_idx])
        vp, exact = self.values_source(e)
        values = self._values(vp, exact)
        shapes_in = {s.name: tuple(s.in_shape) for s in self.stages}
        out = {}
        for st in self.stages:
            n_post = st.n_neurons
            post_shape = tuple(st.out_shape)
            if st.learnable:
                connected = self.mask(st.name, e)
                unit_of_post = np.asarray(st.unit_of_neuron)
                if st.pruned:
                    alive = self._records[k_idx].arrays[f"{st.name}/alive"].astype(bool)
                else:
                    alive = np.ones(st.n_units, bool)
                v = values[st.name]
                i, j, kernel = np.asarray(st.pre_index), np.asarray(st.post_index), None
                if st.positions is not None:      # a convolution: its positions' synapses
                    P = st.positions
                    i, j, kernel = np.asarray(P.pre_index), np.asarray(P.post_index), np.asarray(P.weight_index)
                    connected, unit_of_post = connected[kernel], np.asarray(P.channel)
                    v = {name: value[kernel] for name, value in v.items()}
                out[st.name] = LayerStructure(
                    name=st.name, period=e, pre_shape=shapes_in[st.name], post_shape=post_shape,
                    i=i, j=j, connected=connected, alive=alive,
                    unit_of_post=unit_of_post, w=v["w"], r_up=v["r_up"], r_lo=v["r_lo"], values_period=vp,
                    exact=exact, layer_type=st.spec.type, pruned=st.pruned, kernel_index=kernel,
                    kernel_shape=None if kernel is None else (st.spec.channels, shapes_in[st.name][0],
                                                              st.spec.kernel, st.spec.kernel))
            else:   # a pooling relay: fixed synapses of weight 1/size^2
                pw = np.float32(1.0 / (st.spec.size * st.spec.size))
                nan = np.full(st.n_synapses, np.nan, np.float32)
                channels = post_shape[0] if len(post_shape) == 3 else n_post
                unit_of_post = np.arange(n_post) // max(1, n_post // channels)
                out[st.name] = LayerStructure(
                    name=st.name, period=e, pre_shape=shapes_in[st.name], post_shape=post_shape,
                    i=np.asarray(st.pre_index), j=np.asarray(st.post_index),
                    connected=np.ones(st.n_synapses, bool), alive=np.ones(channels, bool),
                    unit_of_post=unit_of_post, w=np.full(st.n_synapses, pw, np.float32), r_up=nan, r_lo=nan.copy(),
                    values_period=e, exact=True, layer_type="pool", pruned=False)
        return out

    # ---------------------------------------------------------------- misc
    @property
    def size_bytes(self) -> int:
        """Bytes of the history files in the run folder."""
        return self.folder.history_bytes()

    def __repr__(self):
        return (f"History({str(self.folder.path)!r}: periods {self.periods[0]}..{self.periods[-1]}, "
                f"layers {self.layers}, keyframes {self.keyframes.tolist()})")
