"""Export of a run's structure: NetworkX graph, GraphML round trip, npz arrays, the CLI command.

Uses the tiny_dense run shared with tests/test_history.py (tests/_shared_tiny_run.py).
"""

import networkx as nx
import numpy as np
import pytest
from _shared_tiny_run import P, tiny_run

from sdsnn_bio.cli import main
from sdsnn_bio.export import to_arrays, to_networkx, write_graphml, write_npz
from sdsnn_bio.history import History, HistoryError

pytestmark = [pytest.mark.standalone]


@pytest.fixture(scope="module")
def hist(tmp_path_factory):
    return History(tiny_run(tmp_path_factory)[0])


def _check_graph(g, structure, live_only=True):
    n_in, sizes = 784, {"fc1": 40, "out": 10}
    assert g.number_of_nodes() == n_in + sum(sizes.values())
    offsets = {"input": 0, "fc1": n_in, "out": n_in + 40}
    pre = {"fc1": "input", "out": "fc1"}
    n_edges = 0
    for name, ls in structure.items():
        sel = np.flatnonzero(ls.connected) if live_only else np.arange(len(ls.i))
        n_edges += len(sel)
        for s in sel:
            d = g.edges[int(ls.i[s]) + offsets[pre[name]], int(ls.j[s]) + offsets[name]]
            for attr, var in (("weight", "w"), ("r_up", "r_up"), ("r_lo", "r_lo")):
                want = float(getattr(ls, var)[s])
                assert d[attr] == want or (np.isnan(d[attr]) and np.isnan(want)), (name, s, attr)
        alive = [g.nodes[offsets[name] + k]["alive"] for k in range(sizes[name])]
        np.testing.assert_array_equal(alive, ls.alive[ls.unit_of_post])
        assert all(g.nodes[offsets[name] + k]["layer"] == name and g.nodes[offsets[name] + k]["index"] == k
                   for k in range(sizes[name]))
    assert g.number_of_edges() == n_edges
    assert all(g.nodes[k]["layer"] == "input" and g.nodes[k]["alive"] for k in range(n_in))
    assert g.nodes[30]["position"] == "0,1,2" and (g.nodes[30]["y"], g.nodes[30]["x"]) == (1, 2)


def test_graph_of_the_final_structure(hist):
    g = to_networkx(hist)
    assert g.graph["period"] == P
    s = hist.structure_at(P)
    _check_graph(g, s)
    # alive nodes of fc1 are the history's alive units; edges are the live synapses
    assert sum(g.nodes[784 + k]["alive"] for k in range(40)) == int(hist.alive("fc1")[1][-1].sum())
    assert g.number_of_edges() == s["fc1"].n_live + s["out"].n_live < 784 * 40 + 400


def test_graph_all_synapses(hist):
    g = to_networkx(hist, 6, live_only=False)
    s = hist.structure_at(6)
    _check_graph(g, s, live_only=False)
    con = nx.get_edge_attributes(g, "connected")
    assert sum(con.values()) == s["fc1"].n_live + s["out"].n_live


def test_graphml_round_trip(hist, tmp_path):
    path = write_graphml(hist, tmp_path / "g.graphml", period=5)
    back = nx.read_graphml(path, node_type=int)
    g = to_networkx(hist, 5)
    assert back.number_of_nodes() == g.number_of_nodes()
    assert back.number_of_edges() == g.number_of_edges()
    assert back.graph["period"] == 5
    for u, v, d in g.edges(data=True):
        b = back.edges[u, v]
        for attr in ("weight", "r_up", "r_lo"):
            assert b[attr] == d[attr] or (np.isnan(b[attr]) and np.isnan(d[attr]))
    for n, d in g.nodes(data=True):
        assert back.nodes[n] == d


def test_npz_arrays(hist, tmp_path):
    arrays = to_arrays(hist, 5)
    s = hist.structure_at(5)
    for name, ls in s.items():
        np.testing.assert_array_equal(arrays[f"{name}/connected"], ls.connected)
        np.testing.assert_array_equal(arrays[f"{name}/w"], ls.w)
        np.testing.assert_array_equal(arrays[f"{name}/alive"], ls.alive)
        assert tuple(arrays[f"{name}/pre_shape"]) == ls.pre_shape
    path = write_npz(hist, tmp_path / "s.npz", period=5)
    with np.load(path) as z:
        assert sorted(z.files) == sorted(arrays)
        for k in arrays:
            np.testing.assert_array_equal(z[k], arrays[k], err_msg=k)


def test_cli_export(hist, tmp_path, capsys):
    out = tmp_path / "final.npz"
    assert main(["export", str(hist.folder.path), "--format", "npz", "--out", str(out)]) == 0
    with np.load(out) as z:
        assert int(z["period"]) == P
        np.testing.assert_array_equal(z["fc1/connected"], hist.mask("fc1", P))
    assert main(["export", str(hist.folder.path), "--period", "3", "--out", str(tmp_path / "g.graphml")]) == 0
    assert nx.read_graphml(tmp_path / "g.graphml").graph["period"] == 3
    capsys.readouterr()
    assert main(["export", str(hist.folder.path), "--period", str(P + 5)]) == 2
    err = capsys.readouterr().err
    assert f"period {P + 5} is not in the history (periods 0..{P})" in err
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["export", str(hist.folder.path), "--out", str(tmp_path / "no" / "x.graphml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(HistoryError, match="format"):
        from sdsnn_bio.export import export_run
        export_run(hist.folder.path, fmt="gexf")
