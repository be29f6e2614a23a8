"""Export of a run's structure at any period: a NetworkX graph, GraphML, or plain NumPy arrays.

The structure comes from the run's structural history (:class:`sdsnn_bio.history.History`).
Nodes are neurons (the input's included), with the attributes ``layer``,
``index`` (within the layer), ``unit`` (the pruning unit: the neuron of a
dense layer, the channel of a map), ``position`` (``"c,y,x"`` for a map,
``"k"`` for a vector; a string, so that a graph writes to GraphML as it is),
for a map also ``channel``, ``y``, ``x``, and ``alive`` (the neuron's unit is
alive). Node ids are integers, numbered layer after layer in network order
(the input first). Edges are the live synapses (all of them with
``live_only=False``, with an attribute ``connected``) with ``weight``,
``r_up`` and ``r_lo`` (float; NaN where the history has no value, see
:class:`~sdsnn_bio.history.LayerStructure`). The graph's own attributes name
the run, the period and where the values come from (``values_period``,
``exact``).

Measured on 784-300-10 (``mnist5k_fc``): see the README ("Export").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .history import History, HistoryError
from .records import atomic_write

__all__ = ["to_networkx", "write_graphml", "to_arrays", "write_npz", "export_run"]


def _history(run) -> History:
    return run if isinstance(run, History) else History(run)


def _period(h: History, period) -> int:
    return int(h.periods[-1]) if period is None else period


def _node_table(shape: tuple, unit_of: np.ndarray | None, alive_units: np.ndarray | None):
    """Per neuron of a layer of ``shape``: unit, position string, map coordinates, alive."""
    n = int(np.prod(shape))
    idx = np.arange(n)
    if len(shape) == 3:
        c, hgt, wid = shape
        ch, rem = np.divmod(idx, hgt * wid)
        y, x = np.divmod(rem, wid)
        coords = (ch, y, x)
        pos = [f"{a},{b},{d}" for a, b, d in zip(ch.tolist(), y.tolist(), x.tolist())]
        unit = ch if unit_of is None else np.asarray(unit_of)
    else:
        coords = None
        pos = [str(k) for k in idx.tolist()]
        unit = idx if unit_of is None else np.asarray(unit_of)
    alive = np.ones(n, bool) if alive_units is None else np.asarray(alive_units, bool)[unit]
    return unit, pos, coords, alive


def to_networkx(run, period=None, live_only: bool = True):
    """The structure of ``run`` (a run folder or a :class:`History`) at ``period`` as a ``networkx.DiGraph``.

    ``period`` defaults to the last recorded one (a finished run's final
    structure). See the module documentation for the attributes.
    """
    import networkx as nx

    h = _history(run)
    e = _period(h, period)
    layers = h.structure_at(e)
    g = nx.DiGraph(run=str(h.folder.path), model=h.cfg.name, period=int(e))
    offset = 0
    # the input, then every stage's postsynaptic neurons
    first = next(iter(layers.values()))
    blocks = [("input", first.pre_shape, None, None)] + [
        (name, s.post_shape, s.unit_of_post, s.alive) for name, s in layers.items()]
    offsets = {}
    for name, shape, unit_of, alive_units in blocks:
        unit, pos, coords, alive = _node_table(shape, unit_of, alive_units)
        n = len(pos)
        ids = range(offset, offset + n)
        if coords is None:
            g.add_nodes_from((nid, {"layer": name, "index": k, "unit": int(u), "position": p, "alive": bool(a)})
                             for nid, k, u, p, a in zip(ids, range(n), unit.tolist(), pos, alive.tolist()))
        else:
            ch, y, x = (c.tolist() for c in coords)
            g.add_nodes_from((nid, {"layer": name, "index": k, "unit": int(u), "position": p, "alive": bool(a),
                                    "channel": c_, "y": y_, "x": x_})
                             for nid, k, u, p, a, c_, y_, x_ in zip(ids, range(n), unit.tolist(), pos,
                                                                    alive.tolist(), ch, y, x))
        offsets[name] = offset
        offset += n
    values = {}
    pre_offset = offsets["input"]
    for name, s in layers.items():
        sel = np.flatnonzero(s.connected) if live_only else np.arange(len(s.i))
        src = (s.i[sel] + pre_offset).tolist()
        dst = (s.j[sel] + offsets[name]).tolist()
        w, up, lo = (np.asarray(a, np.float64)[sel].tolist() for a in (s.w, s.r_up, s.r_lo))
        if live_only:
            g.add_edges_from((a, b, {"layer": name, "weight": ww, "r_up": u, "r_lo": lw})
                             for a, b, ww, u, lw in zip(src, dst, w, up, lo))
        else:
            con = s.connected[sel].tolist()
            g.add_edges_from((a, b, {"layer": name, "weight": ww, "r_up": u, "r_lo": lw, "connected": bool(c)})
                             for a, b, ww, u, lw, c in zip(src, dst, w, up, lo, con))
        values[name] = (s.values_period, s.exact)
        pre_offset = offsets[name]
    learn = [v for n, v in values.items() if layers[n].layer_type != "pool"]
    g.graph["values_period"] = int(learn[0][0]) if learn else int(e)
    g.graph["exact"] = bool(all(x for _, x in learn))
    return g


def write_graphml(run, path, period=None, live_only: bool = True) -> Path:
    """Write :func:`to_networkx` of ``run`` at ``period`` to a GraphML file (atomically); returns the path."""
    import networkx as nx

    g = to_networkx(run, period, live_only=live_only)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        nx.write_graphml(g, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def to_arrays(run, period=None) -> dict:
    """The structure at ``period`` as plain NumPy arrays, ``{"<layer>/<field>": array}``.

    Per layer: ``i``, ``j`` (synapse indices), ``connected``, ``w``, ``r_up``,
    ``r_lo``, ``alive`` (per unit), ``unit_of_post``, ``pre_shape``,
    ``post_shape``; and ``period``, ``values_period``, ``exact`` of the whole.
    """
    h = _history(run)
    e = _period(h, period)
    layers = h.structure_at(e)
    out = {"period": np.asarray(e), "layers": np.asarray(list(layers), dtype=str)}
    vp, ex = [], []
    for name, s in layers.items():
        out[f"{name}/i"] = np.asarray(s.i)
        out[f"{name}/j"] = np.asarray(s.j)
        out[f"{name}/connected"] = np.asarray(s.connected, bool)
        out[f"{name}/w"] = np.asarray(s.w, np.float32)
        out[f"{name}/r_up"] = np.asarray(s.r_up, np.float32)
        out[f"{name}/r_lo"] = np.asarray(s.r_lo, np.float32)
        out[f"{name}/alive"] = np.asarray(s.alive, bool)
        out[f"{name}/unit_of_post"] = np.asarray(s.unit_of_post)
        out[f"{name}/pre_shape"] = np.asarray(s.pre_shape, dtype=int)
        out[f"{name}/post_shape"] = np.asarray(s.post_shape, dtype=int)
        out[f"{name}/values_period"] = np.asarray(s.values_period)
        out[f"{name}/exact"] = np.asarray(s.exact)
        if s.layer_type != "pool":
            vp.append(s.values_period)
            ex.append(s.exact)
    out["values_period"] = np.asarray(vp[0] if vp else e)
    out["exact"] = np.asarray(all(ex))
    return out


def write_npz(run, path, period=None) -> Path:
    """Write :func:`to_arrays` of ``run`` at ``period`` to a compressed ``.npz`` (atomically); returns the path."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **to_arrays(run, period))
    path = Path(path)
    atomic_write(path, buf.getvalue())
    return path


FORMATS = {"graphml": ".graphml", "npz": ".npz"}


def export_run(run_dir, period=None, fmt: str = "graphml", out=None, live_only: bool = True) -> Path:
    """Export the structure of ``run_dir`` at ``period`` (default: the last) as ``fmt``.

    ``out`` defaults to ``<run folder name>_period_NNNN.<ext>`` in the current
    folder. Bad input (no run folder, no history, a period out of range, an
    unknown format, an output folder that does not exist) raises
    :class:`~sdsnn_bio.history.HistoryError`.
    """
    if fmt not in FORMATS:
        raise HistoryError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    h = History(run_dir)
    e = h.check_period(_period(h, period))
    path = Path(out) if out else Path(f"{Path(run_dir).resolve().name}_period_{e:04d}{FORMATS[fmt]}")
    if not path.parent.is_dir():
        raise HistoryError(f"{path}: the folder {path.parent} does not exist")
    if fmt == "graphml":
        return write_graphml(h, path, e, live_only=live_only)
    return write_npz(h, path, e)
