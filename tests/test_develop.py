"""The development loop end to end (cpp_standalone): records, structure, resume, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _shared_tiny_run import copy_run, tiny_run

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.data.registry import prepare_inputs
from sdsnn_bio.loop import Development, PeriodPlan, best_score, git_state, source_digest
from sdsnn_bio.records import RunFolder, read_table
from sdsnn_bio.report import draw_figures, make_figures
from sdsnn_bio.structure import last_rate_update, n_to_prune

pytestmark = [pytest.mark.standalone, pytest.mark.slow]


def tiny(**schedule):
    cfg = load_config(find_model("tiny_dense"))
    return cfg.replace(schedule=schedule) if schedule else cfg


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The uninterrupted tiny_dense run of the whole session (tests/_shared_tiny_run.py): its
    folder and summary. Read only; a test that writes copies it."""
    out = tiny_run(tmp_path_factory)[0]
    return out, RunFolder(out).read_summary()


def test_provenance_names_the_code_outside_a_checkout(tmp_path):
    """A copy of the package without git (a snapshot, an installed package): no revision, but
    the source digest equals the checkout's, and one changed byte changes it."""
    import shutil

    import sdsnn_bio

    copy = tmp_path / "sdsnn_bio"
    shutil.copytree(Path(sdsnn_bio.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert git_state(copy) == ("unknown", None)
    assert source_digest(copy) == source_digest()
    (copy / "structure" / "pruning.py").write_text((copy / "structure" / "pruning.py").read_text() + " ")
    assert source_digest(copy) != source_digest()


def test_run_folder_and_records(full_run):
    out, summary = full_run
    cfg = tiny()
    for name in ("config.toml", "run.json", "periods.csv", "summary.json"):
        assert (out / name).is_file(), name
    # the recorded configuration reloads to the same configuration
    assert load_config(out / "config.toml").to_dict() == cfg.to_dict()
    meta = json.loads((out / "run.json").read_text())
    assert meta["device"] == "cpp_standalone" and meta["seed"] == cfg.schedule.seed
    assert meta["brian2"] == "2.10.1"
    # the code it was made with: this checkout's revision and the digest of the package's source
    assert (meta["git_revision"], meta["git_dirty"]) == git_state()
    assert meta["source_sha256"] == source_digest() and len(meta["source_sha256"]) == 64
    t = read_table(out)
    assert list(t["period"]) == list(range(cfg.schedule.periods))
    S = cfg.schedule.structure_start
    before = t["period"] < S
    assert np.all(t["compression"][before] == 0)
    assert np.all(t["compression"][~before] > 0.1)
    # the first structural period prunes floor(N rho0 / 100) neurons of fc1
    first = int(np.flatnonzero(~before)[0])
    assert t["rho_fc1"][first] == pytest.approx(cfg.layers[0].rho0)
    n_pruned = n_to_prune(40, cfg.layers[0].rho0)
    zeros_first = t["zeros_fc1"][first]
    regenerated = t["regenerated_fc1"][first]
    assert zeros_first == n_pruned * 784 - regenerated
    # the next rate follows the neurotrophic formula with the dead count of that period
    assert t["rho_fc1"][first + 1] == pytest.approx(
        last_rate_update(cfg.layers[0].rho0, S, 40 - n_pruned, 10, switch=cfg.structure.rate_switch,
                         start=S), abs=1e-6)
    assert 0.3 < summary["final_test_accuracy"] <= 1.0
    # bounded snapshots: the last period's (what a resume needs) and the best period's
    run = RunFolder(out)
    P = cfg.schedule.periods
    assert run.snapshot_periods() == [P - 1]
    assert sorted(p.name for p in run.snapshots.iterdir()) == ["best.npz", f"period_{P - 1:04d}.npz"]
    # the best period: the best mean over one pass of the rotating test slices (100 test
    # digits, 50 a period: two periods), the last period's own accuracy being the whole set's
    acc = t["test_accuracy"]
    assert cfg.schedule.test_per_period == 50 and len(prepare_inputs(cfg).y_test) == 100
    scores = [acc[0]] + [(acc[k - 1] + acc[k]) / 2 for k in range(1, P - 1)] + [acc[P - 1]]
    best_period = int(np.argmax(scores))
    best = run.load_snapshot("best")
    assert best.period == best_period and best.meta["period"] == best_period
    if best_period == P - 1:
        assert os.path.samefile(run.snapshot_path("best"), run.snapshot_path(P - 1))
    assert t["spikes"].min() > 0 and t["sops"].min() > 0
    # output units without a spike in a period (at most all 10; integers)
    assert np.all((t["silent_outputs"] >= 0) & (t["silent_outputs"] <= 10))
    assert np.all(t["silent_outputs"] == np.round(t["silent_outputs"]))
    # compact snapshots: at most 70 bytes per synapse (17 float64 arrays took 136)
    n_synapses = sum(run.read_meta()["n_synapses"].values())
    assert n_synapses == 784 * 40 + 40 * 10
    for which in ("last", "best"):
        size = run.snapshot_path(which).stat().st_size
        assert size <= 70 * n_synapses, f"{which} snapshot: {size / n_synapses:.1f} bytes per synapse"


def test_the_final_evaluation_records_its_confusion_matrix(full_run):
    """summary.json's confusion matrix (rows: label, columns: prediction) covers every test
    window of every evaluation pass, agrees with the final accuracy, and the report states the
    accuracy per class from it."""
    from sdsnn_bio.data.registry import prepare_inputs
    from sdsnn_bio.report import class_accuracy, text_report

    out, summary = full_run
    cfg = tiny()
    conf = summary["confusion"]
    counts = np.asarray(conf["counts"])
    assert conf["classes"] == [str(d) for d in range(10)] and counts.shape == (10, 10)
    y_test = prepare_inputs(cfg).y_test
    np.testing.assert_array_equal(counts.sum(1), np.bincount(y_test, minlength=10) * cfg.schedule.eval_passes)
    assert counts.sum() == summary["test_windows"]
    assert np.trace(counts) / counts.sum() == summary["final_test_accuracy"]
    names, n, acc, confused = class_accuracy(conf)
    worst = int(np.argmin(acc))
    assert acc[worst] == counts[worst, worst] / counts[worst].sum() < summary["final_test_accuracy"]
    off = counts[worst].copy()
    off[worst] = -1
    assert confused[worst] == int(np.argmax(off))
    line = next(ln for ln in text_report(out).splitlines() if ln.startswith("  per class, worst first: "))
    assert line.split(": ", 1)[1].startswith(f"{worst} {100 * acc[worst]:.1f} (as {confused[worst]})")


def test_figures_show_the_records(full_run, tmp_path_factory):
    out = copy_run(tmp_path_factory, tmp_path_factory.mktemp("figures") / "run")
    run = RunFolder(out)
    t = run.read_table()
    paths = make_figures(out)
    assert [p.name for p in paths] == ["accuracy_compression.png", "alive.png", "spine_widths.png"]
    assert all(p.parent == run.figures and p.stat().st_size > 5000 for p in paths)
    figs = draw_figures(out)
    assert sorted(figs) == sorted(p.name for p in paths)

    def line(fig, label):
        lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == label]
        assert len(lines) == 1, label
        return np.asarray(lines[0].get_xdata(), float), np.asarray(lines[0].get_ydata(), float)

    x, acc = line(figs["accuracy_compression.png"], "test accuracy")
    np.testing.assert_array_equal(x, t["period"])
    np.testing.assert_allclose(acc, 100 * t["test_accuracy"])
    x, comp = line(figs["accuracy_compression.png"], "compression")
    np.testing.assert_array_equal(x, t["period"])
    np.testing.assert_allclose(comp, 100 * t["compression"])
    assert comp[-1] > 10
    _, alive = line(figs["alive.png"], "fc1")
    np.testing.assert_array_equal(alive, t["alive_fc1"])
    # one spine-width histogram per layer: the live synapses of the last snapshot
    last = run.load_snapshot("last").arrays
    axes = {ax.get_title(): ax for ax in figs["spine_widths.png"].axes}
    assert sorted(axes) == ["fc1", "out"]
    for name, ax in axes.items():
        live = last[f"{name}/syn/connected"].sum()
        assert sum(patch.get_height() for patch in ax.patches) == live > 0, name


def test_resume_reaches_the_same_result(full_run, tmp_path):
    """A run stopped after 5 periods and resumed ends exactly as the uninterrupted one."""
    out_full, summary_full = full_run
    cfg = tiny()
    part = tmp_path / "part"
    Development(cfg.replace(schedule={"periods": 5}), part, device="cpp_standalone").run()
    from sdsnn_bio.devices import reset_brian

    reset_brian()
    summary = Development(cfg, part, device="cpp_standalone").run(resume=True)
    t_full, t_part = read_table(out_full), read_table(part)
    np.testing.assert_array_equal(t_part["period"], t_full["period"])
    for col in ("test_accuracy", "train_loss", "compression", "alive_fc1", "rho_fc1"):
        np.testing.assert_allclose(t_part[col], t_full[col], rtol=0, atol=1e-12, err_msg=col)
    assert summary["final_test_accuracy"] == summary_full["final_test_accuracy"]
    a, b = RunFolder(out_full).load_snapshot("last"), RunFolder(part).load_snapshot("last")
    assert a.period == b.period == cfg.schedule.periods - 1
    assert sorted(a.arrays) == sorted(b.arrays)
    for key in a.arrays:   # bit for bit: the compact snapshots restore exactly
        assert a.arrays[key].dtype == b.arrays[key].dtype and \
            a.arrays[key].tobytes() == b.arrays[key].tobytes(), key


def test_silent_output_units_are_counted_and_announced_when_they_change():
    """A period's output units without a spike are counted in the table and named (with their
    class) in one line whenever the set changes; none when it stays the same."""
    dev = Development.__new__(Development)
    dev.cfg, dev.dataset, lines = tiny(), None, []
    dev.progress = lines.append
    events = np.full(10, 7)
    assert dev._silent_outputs(0, events) == 0 and lines == []
    events[[2, 5]] = 0
    assert dev._silent_outputs(1, events) == 2
    assert lines == ["silent output units in period 2: 2, 5"]
    assert dev._silent_outputs(2, events) == 2 and len(lines) == 1
    events[2] = 1
    assert dev._silent_outputs(3, events) == 1
    assert lines[-1] == "silent output units in period 4: 5; spiking again: 2"
    events[5] = 3
    assert dev._silent_outputs(4, events) == 0
    assert lines[-1] == "silent output units in period 5: none; spiking again: 5"
    # named classes are given with their names
    dev.dataset = type("Named", (), {"classes": tuple("abcdefghij")})()
    events[7] = 0
    dev._silent_outputs(5, events)
    assert lines[-1] == "silent output units in period 6: 7 (h)"


def test_the_best_snapshot_is_scored_over_a_pass_of_the_test_slices():
    rows = [{"test_accuracy": a} for a in (0.5, 1.0, 0.6, 0.7, 0.8)]
    assert best_score(rows[:1], 3) == 0.5                 # fewer rows than a pass: those there are
    assert best_score(rows[:2], 3) == 0.75
    assert best_score(rows, 3) == pytest.approx(0.7)       # the last three
    assert best_score(rows, 1) == 0.8
    assert best_score(rows, 3, whole_test_set=True) == 0.8
    assert PeriodPlan(200, 100, 50, 50, 0).rotation == 2
    assert PeriodPlan(200, 100, 50, 30, 0).rotation == 4   # 30 + 30 + 30 + 10
    assert PeriodPlan(200, 100, 50, 100, 0).rotation == 1


def test_period_plan_is_deterministic_and_covers_the_data():
    plan = PeriodPlan(n_train_total=100, n_test_total=30, train_per_period=40, test_per_period=20, seed=3)
    a = np.concatenate([plan.train_indices(e) for e in range(5)])   # 200 samples = 2 passes
    assert sorted(a[:100]) == list(range(100)) and sorted(a[100:200]) == list(range(100))
    np.testing.assert_array_equal(plan.train_indices(2), plan.train_indices(2))
    assert sorted(np.concatenate([plan.test_indices(0), plan.test_indices(1)])[:30]) == list(range(30))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "sdsnn_bio", *args], capture_output=True, text=True, timeout=600)


def test_cli_list_and_errors(tmp_path):
    r = run_cli("list")
    assert r.returncode == 0 and "mnist5k_main" in r.stdout and "mnist_paper" in r.stdout
    r = run_cli("run", "no_such_model")
    assert r.returncode == 2 and "unknown model 'no_such_model'" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[[layers]]\nname = "out"\ntype = "dense"\nunits = 10\nsize_typo = 3\n')
    r = run_cli("run", str(bad))
    assert r.returncode == 2 and "bad.toml" in r.stderr and "size_typo" in r.stderr
    r = run_cli("run", "tiny_dense", "--device", "gpu")
    assert r.returncode != 0 and "invalid choice: 'gpu'" in r.stderr
    r = run_cli("report", str(tmp_path))
    assert r.returncode == 2 and "not a run folder" in r.stderr


def test_cli_run_and_report(tmp_path):
    out = tmp_path / "cli_run"
    r = run_cli("run", "tiny_dense", "--periods", "6", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("period ")]
    assert len(lines) == 6 and all("time left" in ln and "train acc" in ln for ln in lines)
    # a period's test windows open the next run: the first line has no test accuracy yet,
    # the others name the period whose network they measured
    assert "test acc    - " in lines[0]
    assert all(f"(after period {e})" in ln for e, ln in enumerate(lines[1:], start=1))
    assert "final test accuracy" in r.stdout
    assert (out / "figures" / "accuracy_compression.png").is_file()
    r = run_cli("report", str(out))
    assert r.returncode == 0 and "compression" in r.stdout
    r = run_cli("run", "tiny_dense", "--out", str(out))
    assert r.returncode == 2 and "exists" in r.stderr


def test_compare_runs_table(full_run):
    out, summary = full_run
    r = subprocess.run([sys.executable, "analysis/compare_runs.py", str(out)], capture_output=True, text=True,
                       cwd=str(Path(__file__).resolve().parent.parent))
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert "tiny_dense" in line and f"{100 * summary['final_test_accuracy']:.2f}%" in line


def test_clip_ranges_of_a_constrained_run_and_of_weights_pushed_out(tmp_path_factory, tmp_path):
    """analysis/clip_ranges.py: the run clips from period N + 1 = 3, so after its last period (7) every live weight
    lies in its range (fc1: per-synapse spines; out: the fixed range of period 0, one value);
    weights pushed out of range by a known amount give the share outside and the norm removed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "analysis"))
    from clip_ranges import clip_ranges, main, markdown

    run = RunFolder(copy_run(tmp_path_factory, tmp_path / "run"))
    rows = {r["layer"]: r for r in clip_ranges(run.path)}
    assert [(r["kind"], r["period"], r["outside"], r["norm_removed"]) for r in rows.values()] == \
        [("spines", 7, 0.0, 0.0), ("fixed", 7, 0.0, 0.0)]
    snap = run.load_snapshot("last")
    a = dict(snap.arrays)
    up = a["out/syn/r_up"]
    assert np.all(up == up[0]) and np.all(a["out/syn/r_lo"] == -up[0])   # one range, +-max after period 0
    assert rows["out"]["r_up"] == up[0] and rows["out"]["live"] == len(up)
    live = a["fc1/syn/connected"] > 0
    assert rows["fc1"]["live"] == int(live.sum()) < len(live)             # pruned synapses left out
    # fc1's first range: the one r+ every synapse had at period 0 in the structural history
    from sdsnn_bio.history import History

    first = History(run.path).structure_at(0)["fc1"].r_up
    assert np.all(first == first[0]) and rows["fc1"]["first_r_up"] == pytest.approx(first[0], rel=1e-6)
    assert rows["fc1"]["unchanged"] + rows["fc1"]["narrower"] + rows["fc1"]["wider"] == pytest.approx(1.0)
    assert "first_r_up" not in rows["out"]                                # no spines: no first range
    w = a["out/syn/w"].copy()
    w[:3] = up[0] + np.array([1.0, 2.0, 2.0])                             # 3 weights out, moved by 1, 2, 2
    a["out/syn/w"] = w
    # fc1's live ranges set back to the first one, then 5 narrowed (x0.75), 2 widened above, 1 below
    r0, idx = float(first[0]), np.flatnonzero(live)
    r_up, r_lo = np.full(len(live), r0), np.full(len(live), -r0)
    r_up[idx[:5]] *= 0.75
    r_lo[idx[:5]] *= 0.75
    r_up[idx[5:7]] += 0.1
    r_lo[idx[7]] -= 0.1
    a["fc1/syn/r_up"], a["fc1/syn/r_lo"] = r_up, r_lo
    a["fc1/syn/w"] = np.clip(a["fc1/syn/w"], r_lo, r_up)
    run.save_snapshot(snap.period + 1, a, snap.meta)
    rows = {r["layer"]: r for r in clip_ranges(run.path)}
    out, n = rows["out"], len(idx)
    assert out["period"] == 8 and out["outside"] == pytest.approx(3 / len(w))
    assert out["norm_removed"] == pytest.approx(3.0 / np.linalg.norm(w))
    assert out["max_abs_w"] == pytest.approx(max(np.abs(w).max(), up[0] + 2))
    assert (rows["fc1"]["unchanged"], rows["fc1"]["narrower"], rows["fc1"]["wider"]) == \
        pytest.approx(((n - 8) / n, 5 / n, 3 / n))
    text = markdown({"run": list(rows.values())})
    assert f"| {100 * (n - 8) / n:.1f}% / {100 * 5 / n:.1f}% / {100 * 3 / n:.1f}% |" in text
    assert main([str(tmp_path / "missing")]) == 2


def test_cli_main_job_table(tmp_path):
    """`sdsnn-bio main` (the README's first command) on the tiny model: both runs, the final table."""
    out = tmp_path / "main"
    r = run_cli("main", "--model", "tiny_dense", "--seed", "3", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "seed 3" in r.stdout
    assert "[dense] period 8/8" in r.stdout and "[sdsnn] period 8/8" in r.stdout
    for name in ("dense", "sdsnn"):
        meta = RunFolder(out / name).read_meta()
        assert meta["seed"] == 3
        assert (out / f"{name}.log").stat().st_size > 0
    dense, sdsnn = read_table(out / "dense"), read_table(out / "sdsnn")
    assert np.all(dense["compression"] == 0) and sdsnn["compression"][-1] > 0
    acc = {n: RunFolder(out / n).read_summary()["final_test_accuracy"] for n in ("dense", "sdsnn")}
    # the table reports what the two run folders hold
    assert f"dense baseline accuracy  {100 * acc['dense']:.2f}%" in r.stdout
    assert f"SD-SNN accuracy          {100 * acc['sdsnn']:.2f}%" in r.stdout
    assert f"SD-SNN compression       {100 * sdsnn['compression'][-1]:.2f}%" in r.stdout
    # main.png after the table: both runs' accuracy over the periods (its data: tests/test_viz.py)
    from PIL import Image

    assert r.stdout.strip().endswith(f"figure: {out / 'main.png'}")
    assert Image.open(out / "main.png").size[0] > 1000
