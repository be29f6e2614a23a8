"""Energy per sample and the paper's table.

* synaptic operations per layer against a hand count, the energy block's numbers;
* a tiny_dense run (runtime, 2 periods) records them: the per-layer counts are whole
  events times the full fan-outs (nothing pruned yet), the table column is sops / windows;
* ``sdsnn-bio table`` on run folders written with RunFolder (no simulation) whose
  answer is known: pairing with the dense twin by seed, mean and spread, the figure's data,
  errors for missing and unfinished folders.
"""

import json

import numpy as np
import pytest

from sdsnn_bio import energy
from sdsnn_bio.cli import main
from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.errors import SdsnnError
from sdsnn_bio.geometry import stage_geometry
from sdsnn_bio.metrics import layer_operations, period_activity
from sdsnn_bio.paper_table import find_runs, format_paper_table, paper_table, read_run, table_figure
from sdsnn_bio.records import RunFolder


def tiny():
    return load_config(find_model("tiny_dense"))


# ------------------------------------------------------------------ operations and energy
def test_layer_operations_hand_count():
    stages = stage_geometry(tiny())
    fc1, out = stages
    rng = np.random.default_rng(0)
    inp = rng.integers(0, 4, fc1.in_shape[0] * fc1.in_shape[1] * fc1.in_shape[2]).astype(float)
    ev = [rng.integers(0, 5, st.n_neurons).astype(float) for st in stages]
    conn = {st.name: (rng.uniform(size=st.n_synapses) > 0.4).astype(float) for st in stages}
    ops = layer_operations(stages, inp, ev, conn.get)
    # by hand: for every synapse, its presynaptic events if it is live
    expect_fc1 = sum(inp[i] * c for i, c in zip(fc1.pre_index, conn["fc1"]))
    expect_out = sum(ev[0][i] * c for i, c in zip(out.pre_index, conn["out"]))
    np.testing.assert_allclose(ops, [expect_fc1, expect_out], rtol=1e-12)
    _, sops = period_activity(stages, inp, ev, conn.get)
    assert sops == pytest.approx(ops.sum(), rel=1e-12)


def test_energy_summary_numbers():
    stages = stage_geometry(tiny())     # 784*40 + 40*10 = 31760 synapses
    e = energy.energy_summary(stages, [1000.0, 50.0])
    assert e["sops_per_sample"] == 1050.0
    assert e["sops_per_layer"] == {"fc1": 1000.0, "out": 50.0}
    assert e["ann_macs_per_sample"] == 31760.0 and e["ann_acs_per_sample"] == 0
    assert e["snn_energy_pj"] == pytest.approx(1050 * 0.9)
    assert e["ann_energy_pj"] == pytest.approx(31760 * 4.6)
    assert e["energy_ratio_snn_to_ann"] == pytest.approx(1050 * 0.9 / (31760 * 4.6))
    assert (energy.E_AC_PJ, energy.E_MAC_PJ) == (0.9, 4.6) and "Horowitz" in e["source"]
    with pytest.raises(SdsnnError, match="3 operation counts for 2 stages"):
        energy.energy_summary(stages, [1.0, 2.0, 3.0])
    with pytest.raises(SdsnnError, match="x.json: summary.json has no energy block"):
        energy.read_energy({"final_test_accuracy": 0.5}, "x.json")


def test_run_records_energy(tmp_path, numpy_runtime):
    from sdsnn_bio.loop import Development

    # on Brian2's numpy target (tests/conftest.py): the counts are what is checked, not Cython
    cfg = tiny().replace(schedule={"periods": 2})
    Development(cfg, tmp_path / "run", device="runtime").run()
    folder = RunFolder(tmp_path / "run")
    t = folder.read_table()
    np.testing.assert_allclose(t["sops_per_sample"], t["sops"] / 100, rtol=1e-5)
    e = folder.read_summary()["energy"]
    windows = 100     # the final evaluation: one pass over the 100 test images in runs of 100 windows
    n_win = 100
    # nothing is pruned in 2 periods: every input spike reaches 40 synapses, every fc1 spike 10
    runs = -(-windows // n_win)
    for layer, fan_out in (("fc1", 40), ("out", 10)):
        events = e["sops_per_layer"][layer] * runs * n_win / fan_out
        assert events == pytest.approx(round(events), abs=1e-6) and events > 0, layer
    assert e["sops_per_sample"] == pytest.approx(sum(e["sops_per_layer"].values()))
    assert e["ann_macs_per_sample"] == 31760
    assert e["snn_energy_pj"] == pytest.approx(0.9 * e["sops_per_sample"])
    from sdsnn_bio.report import text_report

    assert f"synaptic ops/sample  {e['sops_per_sample']:.4g}" in text_report(tmp_path / "run")


# ------------------------------------------------------------------ the table
def write_run(path, seed, dense, acc, comp, sops, periods=5, structure=None, base=None):
    cfg = (base or tiny()).replace(schedule={"seed": seed, "periods": periods},
                         structure={"enabled": not dense, **(structure or {})})
    f = RunFolder(path)
    f.create()
    f.write_config(cfg.to_dict())
    f.write_meta({"model": cfg.name, "seed": seed})
    stages = stage_geometry(cfg)
    f.write_summary({"model": cfg.name, "periods": periods, "final_test_accuracy": acc, "compression": comp,
                     "energy": energy.energy_summary(stages, [sops * 0.9, sops * 0.1])})
    rows = [{"period": e, "test_accuracy": acc - 0.01 * (periods - e), "compression": comp * e / periods,
             "synapse_sparsity": comp * e / periods, "alive_fc1": 40 - e, "rho_fc1": 35.0 + e}
            for e in range(periods)]
    f.write_table(rows, ["period", "test_accuracy", "compression", "synapse_sparsity"])
    return path


@pytest.fixture
def runs(tmp_path):
    sd = {0: (0.80, 0.50, 900.0), 1: (0.84, 0.40, 1100.0)}
    de = {0: (0.82, 0.0, 2000.0), 1: (0.83, 0.0, 2000.0)}
    for s in (0, 1):
        write_run(tmp_path / f"sd{s}", s, False, *sd[s])
        write_run(tmp_path / "dense" / f"d{s}", s, True, *de[s])
    write_run(tmp_path / "abl0", 0, False, 0.70, 0.30, 800.0, structure={"constraint": False})
    return tmp_path


def test_table_pairs_twins_by_seed(runs):
    records = [read_run(p) for p in find_runs([runs / "sd0", runs / "sd1", runs / "dense", runs / "abl0"])]
    assert len(records) == 5
    rows = {r["variant"]: r for r in paper_table(records)}
    assert set(rows) == {"SD-SNN", "SD-SNN no_constraint"}
    r = rows["SD-SNN"]
    assert (r["dataset"], r["network"], r["periods"], r["seeds"], r["dense_seeds"]) == \
        ("mnist5k", "784-40-10", 5, 2, 2)
    assert r["accuracy_mean"] == pytest.approx(0.82) and r["accuracy_std"] == pytest.approx(np.std([.8, .84], ddof=1))
    assert r["dense_accuracy_mean"] == pytest.approx(0.825)
    d = [0.80 - 0.82, 0.84 - 0.83]
    assert r["difference_mean"] == pytest.approx(np.mean(d)) and r["difference_std"] == pytest.approx(np.std(d, ddof=1))
    assert r["compression_mean"] == pytest.approx(0.45)
    assert r["sops_mean"] == pytest.approx(1000.0)
    assert r["sops_ratio_mean"] == pytest.approx(np.mean([0.45, 0.55]))
    assert r["energy_ratio_ann_mean"] == pytest.approx(1000 * 0.9 / (31760 * 4.6))
    a = rows["SD-SNN no_constraint"]
    assert a["seeds"] == 1 and a["difference_mean"] == pytest.approx(0.70 - 0.82) and np.isnan(a["accuracy_std"])
    # variants are named against the model's own file: mnist5k_fc's hard masks are its full SD-SNN
    fc = load_config(find_model("mnist5k_fc"))
    write_run(runs / "fc", 0, False, 0.9, 0.5, 1000.0, base=fc)
    write_run(runs / "fc_soft", 0, False, 0.9, 0.5, 1000.0, base=fc, structure={"masks": "soft"})
    assert (read_run(runs / "fc")["variant"], read_run(runs / "fc_soft")["variant"]) == \
        ("SD-SNN", "SD-SNN soft_masks")
    text = format_paper_table(list(rows.values()))
    assert "82.50 +- 0.71" in text and "82.00 +- 2.83" in text and "-0.50 +- 2.12" in text
    assert "0.500 +- 0.071" in text
    assert "paired" not in text        # every seed has its twin
    # a second seed of the ablation without a dense twin: the row says over how many seeds its
    # dense columns are, and the footnote what that means
    write_run(runs / "abl2", 2, False, 0.74, 0.30, 800.0, structure={"constraint": False})
    records = [read_run(p) for p in find_runs([runs / "dense", runs / "abl0", runs / "abl2"])]
    (a,) = paper_table(records)
    assert (a["seeds"], a["dense_seeds"]) == (2, 1) and a["difference_mean"] == pytest.approx(0.70 - 0.82)
    text = format_paper_table([a])
    line = next(x for x in text.splitlines() if x.startswith("mnist5k"))
    assert line.split()[3:8] == ["SD-SNN", "no_constraint", "2", "(1", "paired)"]
    assert "-12.00 " in line and "72.00 +- 2.83" in line
    assert "N (k paired): only k of the N seeds have a dense twin" in text


def test_table_figure_draws_the_runs(runs):
    import matplotlib

    matplotlib.use("Agg")
    records = [read_run(p) for p in find_runs([runs])]
    fig = table_figure(records, "mnist5k")
    axes = [ax for sub in fig.subfigs for ax in sub.axes]
    acc = axes[0].get_lines()
    np.testing.assert_allclose(acc[0].get_ydata(), 100 * (0.82 - 0.01 * (5 - np.arange(5))))   # dense seed 0
    np.testing.assert_allclose(acc[1].get_ydata(), 100 * (0.80 - 0.01 * (5 - np.arange(5))))   # SD-SNN seed 0
    rho = axes[-1].get_lines()
    assert axes[-1].get_ylabel() == "pruning rate rho (%)"
    np.testing.assert_allclose(rho[0].get_ydata(), 35.0 + np.arange(5))
    # four panels in a row, evenly spaced (the right subfigure's default margins once left a
    # gap before the pruning-rate panel wider than the panels themselves)
    fig.canvas.draw()
    boxes = [ax.get_window_extent() for ax in axes]   # pixels: positions are per subfigure
    gaps = [b.x0 - a.x1 for a, b in zip(boxes, boxes[1:])]
    assert min(gaps) > 0 and max(gaps) < 1.5 * min(gaps), gaps


def test_table_command(runs, capsys):
    assert main(["table", str(runs), "--out", str(runs / "out")]) == 0
    out = capsys.readouterr().out
    assert "mnist5k  784-40-10  5        SD-SNN" in out and "MNIST 99.51% at 49.83% compression" in out
    assert (runs / "out" / "table_mnist5k.png").stat().st_size > 0
    assert "82.00 +- 2.83" in (runs / "out" / "table.txt").read_text()
    # errors: a missing folder, an unfinished one, a malformed summary
    assert main(["table", str(runs / "nope")]) == 2
    assert "nope: no such run folder" in capsys.readouterr().err
    (runs / "unfinished").mkdir()
    RunFolder(runs / "unfinished").write_config(tiny().to_dict())
    assert main(["table", str(runs / "unfinished")]) == 2
    assert "not a finished run folder (no summary.json" in capsys.readouterr().err
    (runs / "sd1" / "summary.json").write_text("{not json")
    assert main(["table", str(runs / "sd1")]) == 2
    assert "sd1: malformed run folder" in capsys.readouterr().err
    (runs / "sd1" / "summary.json").write_text(json.dumps({"periods": 5}))
    with pytest.raises(SdsnnError, match="no final_test_accuracy"):
        read_run(runs / "sd1")


def test_table_keeps_other_settings_apart(tmp_path):
    """Runs that differ from their model in more than the seed (an --copies sweep over learning
    rates) are rows of their own, each beside the dense twin of its own setting; a structural
    constant (rho0) names the SD-SNN row and does not part it from its dense twin."""
    base = tiny()
    lr = base.training.lr
    other = base.replace(training={"lr": lr / 10})
    write_run(tmp_path / "a", 0, False, 0.80, 0.5, 900.0)
    write_run(tmp_path / "a_dense", 0, True, 0.90, 0.0, 2000.0)
    write_run(tmp_path / "b", 0, False, 0.60, 0.5, 800.0, base=other)
    write_run(tmp_path / "b_dense", 0, True, 0.70, 0.0, 1600.0, base=other)
    rho = base.to_dict()
    rho["layers"][0]["rho0"] = 20.0
    from sdsnn_bio.config import config_from_dict

    write_run(tmp_path / "c", 0, False, 0.85, 0.3, 950.0, base=config_from_dict(rho, source="rho0 20"))
    rows = {r["variant"]: r for r in paper_table([read_run(p) for p in find_runs([tmp_path])])}
    slow = f"SD-SNN (training.lr={lr / 10})"
    assert set(rows) == {"SD-SNN", slow, "SD-SNN (layers.fc1.rho0=20.0)"}
    assert rows["SD-SNN"]["seeds"] == 1 and rows["SD-SNN"]["difference_mean"] == pytest.approx(0.80 - 0.90)
    assert rows[slow]["difference_mean"] == pytest.approx(0.60 - 0.70)
    assert rows["SD-SNN (layers.fc1.rho0=20.0)"]["difference_mean"] == pytest.approx(0.85 - 0.90)
    # the figure draws a full SD-SNN run with its twin also when its setting is not the model's
    import matplotlib

    matplotlib.use("Agg")
    only_b = [read_run(tmp_path / "b"), read_run(tmp_path / "b_dense")]
    fig = table_figure(only_b, "mnist5k")
    acc = [ax for sub in fig.subfigs for ax in sub.axes][0].get_lines()
    np.testing.assert_allclose(acc[1].get_ydata(), 100 * (0.60 - 0.01 * (5 - np.arange(5))))



def test_accuracy_over_periods_figure(tmp_path, capsys):
    """analysis/accuracy_over_periods.py on two written runs with 3 rotating test slices and a
    learning-rate decay at period 10: the left panel's lines are each run's trailing means over
    3 periods, the right panel's over passes x 3 periods from period 10; runs tested on other
    slices are refused, as is --passes 0."""
    import sys
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "analysis"))
    from accuracy_over_periods import figure, main as script_main

    from sdsnn_bio.metrics import rolling_mean

    base = tiny().replace(training={"lr_decay_every": 10})
    acc = {"sd": 0.80, "dense": 0.84}
    for name in acc:
        write_run(tmp_path / name, 0, name == "dense", acc[name], 0.4, 900.0, periods=30, base=base)
        f = RunFolder(tmp_path / name)
        # 150 test samples in slices of tiny_dense's 50: a pass is 3 periods
        f.write_summary({**f.read_summary(), "test_windows": 150 * base.schedule.eval_passes})
    fig = figure([tmp_path / "dense", tmp_path / "sd"], passes=2)
    left, right = fig.axes
    # labelled as the table names them: the variant and what differs from the model's file
    assert [t.get_text() for t in fig.legends[0].get_texts()] == \
        ["dense (training.lr_decay_every=10)", "SD-SNN (training.lr_decay_every=10)"]
    for line, name in zip(left.get_lines(), ("dense", "sd")):
        y = 100 * (acc[name] - 0.01 * (30 - np.arange(30)))
        idx, mean = rolling_mean(y, 3)
        np.testing.assert_allclose(line.get_xdata(), idx)
        np.testing.assert_allclose(line.get_ydata(), mean)
    for line, name in zip(right.get_lines(), ("dense", "sd")):
        y = 100 * (acc[name] - 0.01 * (30 - np.arange(10, 30)))
        np.testing.assert_allclose(line.get_xdata(), np.arange(15, 30))
        np.testing.assert_allclose(line.get_ydata(), np.convolve(y, np.ones(6) / 6, mode="valid"))
    assert "from period 10: mean of 2 passes (6 periods)" == right.get_title()
    assert script_main(["--out", str(tmp_path / "acc.png"), str(tmp_path / "dense"), str(tmp_path / "sd")]) == 0
    assert (tmp_path / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # another slicing of the test set (2 passes' worth of samples: 2 periods a pass)
    f = RunFolder(tmp_path / "sd")
    f.write_summary({**f.read_summary(), "test_windows": 100 * base.schedule.eval_passes})
    capsys.readouterr()
    assert script_main(["--out", str(tmp_path / "x.png"), str(tmp_path / "dense"), str(tmp_path / "sd")]) == 2
    assert "different slices ([2, 3] periods a pass)" in capsys.readouterr().err
    assert script_main(["--passes", "0", "--out", str(tmp_path / "x.png"), str(tmp_path / "sd")]) == 2
    assert "--passes must be >= 1, got 0" in capsys.readouterr().err
