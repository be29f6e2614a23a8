"""The measured results the README shows are the run records kept in docs/results/.

Each kept run is a run folder's record files (``config.toml``, ``run.json``, ``summary.json``,
``periods.csv``; snapshots and history are left out), enough for ``sdsnn-bio table`` and the
figures. The README's printed tables must be what the project's own code makes of them."""

from pathlib import Path

import pytest

from sdsnn_bio.paper_table import find_runs, format_paper_table, paper_table, read_run
from sdsnn_bio.report import main_job_table

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "results"
README = (REPO / "README.md").read_text()


@pytest.mark.parametrize("folder,layer_type,dense", [("main_job_seed0", "conv", "97.60%"),
                                                      ("main_job_local_seed0", "local", "95.70%")])
def test_the_main_job_table_is_the_kept_runs(folder, layer_type, dense):
    """The main job's seed-0 table in the README, but for its wall time: the shipped
    model's (convolutions) and its predecessor's (locally connected layers, the main job until
    2026-12-02, then also named mnist5k_main; now the model mnist5k_local)."""
    import tomllib

    runs = RESULTS / folder
    records = {r["variant"]: r for r in map(read_run, find_runs([runs]))}
    assert set(records) == {"SD-SNN", "dense"} and {r["model"] for r in records.values()} == {"mnist5k_main"}
    assert all(r["seed"] == 0 and r["periods"] == 45 for r in records.values())
    for run in ("dense", "sdsnn"):
        with open(runs / run / "config.toml", "rb") as f:
            layers = tomllib.load(f)["layers"]
        assert [layer["type"] for layer in layers if layer["name"] in ("conv1", "conv2")] == [layer_type] * 2
    table = main_job_table(runs / "dense", runs / "sdsnn").splitlines()[1:-1]
    assert table[0].startswith(f"dense baseline accuracy  {dense}")
    assert "\n".join(table) in README


def test_the_main_job_over_three_seeds_is_the_kept_runs():
    """The README's three-seed row of the main job is what ``sdsnn-bio table`` makes of the kept
    records of seeds 0, 1 and 2 (each seed its own split and initialisation)."""
    records = [read_run(p) for p in find_runs([RESULTS / f"main_job_seed{k}" for k in range(3)])]
    assert sorted((r["seed"], r["dense"]) for r in records) == [(k, d) for k in range(3) for d in (False, True)]
    rows = paper_table(records)
    assert len(rows) == 1 and rows[0]["seeds"] == 3
    row = format_paper_table(rows).splitlines()[2].rstrip()
    assert row.startswith("mnist5k  784-15c3-p2-40c3-p2-300-10  45       SD-SNN   3      97.10 +- 0.44  96.97 +- 0.75")
    assert row in README


def test_the_fashion_row_is_the_kept_runs():
    """The README's Fashion-MNIST seed-2 row is what ``sdsnn-bio table`` makes of its records:
    the shipped model's own setting, paired with its dense twin, the numbers as printed."""
    records = [read_run(p) for p in find_runs([RESULTS / "fashion_fc_seed2"])]
    assert sorted((r["dense"], r["variant"], r["seed"]) for r in records) == [(False, "SD-SNN", 2),
                                                                            (True, "dense", 2)]
    rows = paper_table(records)
    assert len(rows) == 1 and rows[0]["difference_mean"] == pytest.approx(0.87536667 - 0.8843)
    row = format_paper_table(rows).splitlines()[2].rstrip()
    assert row.startswith("fashion  784-300-10  250      SD-SNN   1      88.43        87.54         -0.89")
    assert row in README


def test_the_figures_draw_the_mean_over_a_full_pass_of_the_test_slices():
    """Each period tests a rotating slice of the test set (Fashion-MNIST: 2000 of 10000 images,
    the main job: 100 of 1000 digits), so the raw per-period accuracy is a sawtooth; the figures
    draw, over it, the trailing mean over the periods of one full pass."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np

    from sdsnn_bio.paper_table import table_figure
    from sdsnn_bio.records import read_table
    from sdsnn_bio.report import main_job_figure, test_rotation

    fashion, main = RESULTS / "fashion_fc_seed2", RESULTS / "main_job_seed0"
    assert [test_rotation(fashion / k) for k in ("sdsnn", "dense")] == [5, 5]
    assert test_rotation(main / "sdsnn") == 10
    fig = table_figure([read_run(p) for p in find_runs([fashion])], "fashion")
    lines = [ax for sub in fig.subfigs for ax in sub.axes][0].get_lines()
    raw = 100 * np.asarray(read_table(fashion / "sdsnn")["test_accuracy"], float)
    sd_raw, sd_mean = lines[2], lines[3]
    np.testing.assert_allclose(sd_raw.get_ydata(), raw)
    np.testing.assert_allclose(sd_mean.get_xdata(), np.arange(4, 250))
    np.testing.assert_allclose(sd_mean.get_ydata()[0], raw[:5].mean())
    np.testing.assert_allclose(sd_mean.get_ydata()[-1], raw[-5:].mean())
    assert sd_mean.get_label() == "SD-SNN (mean of 5 periods)"
    # the mean over a full pass is much smoother than the raw curve over the last 100 periods
    assert np.std(np.diff(sd_mean.get_ydata()[-100:])) < 0.3 * np.std(np.diff(raw[-100:]))
    fig = main_job_figure(main / "dense", main / "sdsnn")
    assert [ln.get_label() for ln in fig.axes[0].get_lines()][1::2] == ["dense (mean of 10 periods)",
                                                                       "SD-SNN (mean of 10 periods)"]


def test_the_report_gives_the_best_mean_over_a_pass_of_the_test_slices():
    """``sdsnn-bio report`` on the (locally connected) main job: its periods test rotating 100-digit slices (one
    of them reads 100% at period 22), so the best accuracy it states is that of the best ten
    consecutive periods, one pass over the 1000 test digits."""
    import numpy as np

    from sdsnn_bio.records import read_table
    from sdsnn_bio.report import text_report

    run = RESULTS / "main_job_local_seed0" / "sdsnn"
    acc = np.asarray(read_table(run)["test_accuracy"], float)
    assert acc.max() == 1.0 and int(np.argmax(acc)) == 22
    acc = acc[:-1]      # the last row is the final evaluation's, over all 1000 digits
    means = [acc[k:k + 10].mean() for k in range(len(acc) - 9)]
    k = int(np.argmax(means))
    line = f"  best test accuracy   {100 * means[k]:.2f}% (mean of periods {k}-{k + 9}, one pass over the " \
           "10 rotating test slices)"
    assert line in text_report(run).splitlines()
    assert "95.60%" in line and "periods 25-34" in line


def _ablation_records():
    records = [read_run(p) for p in find_runs([RESULTS / "ablation_mnist5k_fc"])]
    names = {"SD-SNN": "full", "dense": "dense"}
    for r in records:
        r["name"] = names.get(r["ablation"], r["ablation"].removeprefix("SD-SNN "))
    return records


def test_the_ablation_table_is_the_kept_runs():
    """The README's ablation table on ``mnist5k_fc`` (3 seeds, 250 periods) is what the
    project's own table code makes of the kept runs, each run's configuration being its
    ablation's switches on the shipped model."""
    from sdsnn_bio.ablation import ABLATIONS, ablation_table, format_ablation_table, model_variants
    from sdsnn_bio.config import find_model, load_config

    records = _ablation_records()
    model = load_config(find_model("mnist5k_fc"))
    variants = model_variants(model)
    assert sorted((r["name"], r["seed"]) for r in records) == sorted((v, s) for v in variants for s in range(3))
    for r in records:
        cfg = load_config(Path(r["dir"]) / "config.toml")
        assert cfg.structure == \
            model.replace(structure=ABLATIONS[r["name"]]).structure, r["dir"]
        assert r["periods"] == 250 and cfg.schedule.periods == 250
    rows = [{"ablation": r["name"], "seed": r["seed"], "final_test_accuracy": r["accuracy"],
             "compression": r["compression"]} for r in records]
    rows.sort(key=lambda r: (variants.index(r["ablation"]), r["seed"]))
    text = "\n".join(line.rstrip() for line in format_ablation_table(ablation_table(rows)).splitlines())
    assert text.splitlines()[2].startswith("full               3      95.33 +- 0.40  0 (reference)    49.04")
    assert text in README


def test_the_784_300_10_row_and_its_operations_are_the_kept_runs():
    """The README's summary row for 784-300-10 (full SD-SNN against its dense twin, 3 seeds)
    and the operations and energy it states for the ablations."""
    records = _ablation_records()
    rows = {r["variant"]: r for r in paper_table(records)}
    full = rows["SD-SNN"]
    assert (full["seeds"], full["dense_seeds"]) == (3, 3)
    assert f"{100 * full['accuracy_mean']:.2f} +- {100 * full['accuracy_std']:.2f}%" == "95.33 +- 0.40%"
    assert f"{100 * full['dense_accuracy_mean']:.2f} +- {100 * full['dense_accuracy_std']:.2f}%" == "95.74 +- 0.28%"
    assert f"{100 * full['difference_mean']:+.2f} +- {100 * full['difference_std']:.2f}" == "-0.41 +- 0.28"
    summary_row = ("| 784-300-10, 250 periods, 3 seeds | 4000/1000 MNIST digits | 95.33 +- 0.40% | 95.74 +- 0.28% "
                   f"| -0.41 +- 0.28 | {100 * full['compression_mean']:.2f}% | {full['sops_ratio_mean']:.3f} |")
    assert summary_row in README
    ops = {name: (rows[name]["sops_mean"], rows[name]["sops_ratio_mean"], rows[name]["energy_ratio_ann_mean"])
           for name in ("SD-SNN", "SD-SNN fixed_rate", "SD-SNN soft_masks")}
    assert f"does {ops['SD-SNN'][0]:,.0f} synaptic operations" in README.replace("\n  ", " ")
    for name, words in (("SD-SNN", "per test sample, {:.3f} of its dense twin's, an estimated\n  {:.3f} of"),
                        ("SD-SNN fixed_rate", "with a fixed rate {:.3f} and {:.3f}"),
                        ("SD-SNN soft_masks", "with soft masks {:.3f} and {:.3f}")):
        assert words.format(*ops[name][1:]).replace("\n  ", " ") in README.replace("\n  ", " "), name


def test_the_report_of_a_dense_twin_states_no_pruning_rate():
    """A dense twin records its layers' configured pruning rate, which it never applies."""
    from sdsnn_bio.report import text_report

    runs = RESULTS / "fashion_fc_seed2"
    assert "  pruning rate fc1     10.00%" not in text_report(runs / "dense")
    assert "  pruning rate fc1     " in text_report(runs / "sdsnn")


def test_the_best_mean_leaves_out_the_final_evaluation():
    """A finished run's last row holds the final evaluation over the whole test set: it has
    its own line and does not enter the means over the slices."""
    import numpy as np

    from sdsnn_bio.report import _best_test_line

    t = {"period": np.arange(6), "test_accuracy": np.array([0.5, 0.6, 0.5, 0.6, 0.5, 0.9])}
    assert _best_test_line(t, 2, finished=True) == \
        "  best test accuracy   55.00% (mean of periods 0-1, one pass over the 2 rotating test slices)"
    assert "70.00% (mean of periods 4-5" in _best_test_line(t, 2)
    assert _best_test_line(t, 1, finished=True) == "  best period test accuracy 60.00% (period 1)"
    # a one-period run has only the final evaluation's row
    assert _best_test_line({"period": np.arange(1), "test_accuracy": np.array([0.8])}, 1, finished=True) is None


def test_the_fashion_capacity_table_is_the_kept_runs():
    """The README's table of seed 2's Fashion-MNIST runs beside a dense network of SD-SNN's
    final size: every figure is what the kept records hold (final evaluation, means over the
    rotating test slices without the final row, synaptic operations per sample, units alive)."""
    import json

    import numpy as np

    from sdsnn_bio.report import read_table

    def row(folder):
        table = read_table(RESULTS / folder)
        summary = json.loads((RESULTS / folder / "summary.json").read_text())
        acc = 100 * np.asarray(table["test_accuracy"], float)
        assert len(acc) == 250 and summary["periods"] == 250
        return (int(table["alive_fc1"][-1]), f"{100 * summary['final_test_accuracy']:.2f}",
                f"{acc[199:249].mean():.2f}", f"{acc[99:199].mean():.2f}",
                f"{summary['energy']['sops_per_sample']:.3e}")

    small = RESULTS / "fashion_fc_151_seed2" / "dense"
    meta = json.loads((small / "run.json").read_text())
    assert meta["seed"] == 2 and meta["n_neurons"] == {"fc1": 151, "out": 10}
    assert "prune = false" in (small / "config.toml").read_text()
    alive = np.asarray(read_table(RESULTS / "fashion_fc_seed2" / "sdsnn")["alive_fc1"], int)
    assert alive[18] == 158 and alive[17] > 158 and alive[224] == 151 and alive[223] > 151
    for label, folder in (("dense twin", "fashion_fc_seed2/dense"),
                          ("dense 784-151-10 from the start", "fashion_fc_151_seed2/dense"),
                          ("SD-SNN (158 units alive from period 18, 151 from period 224)", "fashion_fc_seed2/sdsnn"),
                          ("SD-SNN `no_constraint`", "fashion_fc_no_constraint_seed2/sdsnn"),
                          ("SD-SNN `no_fixed_clip`", "fashion_fc_no_fixed_clip_seed2/sdsnn")):
        line = "| " + " | ".join([label, *map(str, row(folder))]) + " |"
        assert line in README, line


def test_the_fashion_constraint_ablations_are_the_kept_runs():
    """Seed 2's two ablations of the constraint on Fashion-MNIST: each run's configuration is
    fashion_fc with its ablation's switch and nothing else, both keep the full SD-SNN's
    number of units alive in every period, and the README's differences are the records'."""
    import json

    import numpy as np

    from sdsnn_bio.ablation import ABLATIONS
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.report import read_table

    model = load_config(find_model("fashion_fc"))
    full = read_table(RESULTS / "fashion_fc_seed2" / "sdsnn")
    final = {}
    for name, folder in (("full", "fashion_fc_seed2"), ("dense", "fashion_fc_seed2"),
                         ("no_constraint", "fashion_fc_no_constraint_seed2"),
                         ("no_fixed_clip", "fashion_fc_no_fixed_clip_seed2")):
        d = RESULTS / folder / ("dense" if name == "dense" else "sdsnn")
        cfg = load_config(d / "config.toml")
        assert cfg.structure == model.replace(structure=ABLATIONS[name]).structure, d
        assert json.loads((d / "run.json").read_text())["seed"] == 2
        final[name] = 100 * json.loads((d / "summary.json").read_text())["final_test_accuracy"]
        if name in ("no_constraint", "no_fixed_clip"):
            table = read_table(d)
            for col in ("alive_fc1", "compression"):
                np.testing.assert_array_equal(table[col], full[col], err_msg=f"{name}: {col}")
    assert len(full["alive_fc1"]) == 250
    text = (f"Without any clipping SD-SNN ends {final['dense'] - final['no_constraint']:.2f} points below its twin\n"
            f"  ({final['no_constraint']:.2f}%, above the dense 151-unit network), at the same synaptic operations. "
            f"Freeing only the\n  output layer changes little (+{final['no_fixed_clip'] - final['full']:.2f} final")
    assert text in README, text
    assert f"the remaining {final['no_constraint'] - final['no_fixed_clip']:.2f}\n  points" in README
    s0 = RESULTS / "fashion_fc_no_fixed_clip_seed0" / "sdsnn"
    cfg = load_config(s0 / "config.toml")
    assert cfg.structure == model.replace(structure=ABLATIONS["no_fixed_clip"]).structure
    assert json.loads((s0 / "run.json").read_text())["seed"] == 0
    acc = 100 * json.loads((s0 / "summary.json").read_text())["final_test_accuracy"]
    alive = int(read_table(s0)["alive_fc1"][-1])
    assert f"ends at {acc:.2f}% with {alive} units, against 87.76% for that seed's full SD-SNN" in README.replace("\n  ", " ")
    assert "| 0 | 88.40 | 87.76 | -0.65 |" in README


def test_the_fashion_runs_without_the_constraint_are_the_kept_runs():
    """The README's three seeds of Fashion-MNIST without the spine constraint: each record is
    fashion_fc with `no_constraint` and nothing else, of its seed, 250 periods; every figure of
    the table (against the seed table's dense twins and full SD-SNN runs, whose folders are
    gone) and the wall times are what the records hold."""
    import json
    import re

    import numpy as np

    from sdsnn_bio.ablation import ABLATIONS
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.report import read_table

    model = load_config(find_model("fashion_fc"))
    flat = README.replace("\n", " ")
    seeds, nc, twin, full = [], [], [], []
    for seed in (0, 1, 2):
        d = RESULTS / f"fashion_fc_no_constraint_seed{seed}" / "sdsnn"
        cfg = load_config(d / "config.toml")
        assert cfg.structure == model.replace(structure=ABLATIONS["no_constraint"]).structure, d
        assert cfg.schedule.periods == 250 and cfg.schedule.train_per_period == 6000
        assert json.loads((d / "run.json").read_text())["seed"] == seed
        summary = json.loads((d / "summary.json").read_text())
        table = read_table(d)
        assert len(table["test_accuracy"]) == 250 and int(table["alive_fc1"][-1]) == 151
        # the seed table's printed dense twin and full SD-SNN of this seed
        m = re.search(rf"^\| {seed} \| (\d+\.\d\d) \| (\d+\.\d\d) \| ", README, re.M)
        assert m, seed
        acc = 100 * summary["final_test_accuracy"]
        nc.append(acc), twin.append(float(m.group(1))), full.append(float(m.group(2)))
        row = (f"| {seed} | {m.group(1)} | {m.group(2)} | {acc:.2f} | {acc - twin[-1]:+.2f} | {acc - full[-1]:+.2f} | "
               f"{100 * summary['compression']:.2f} | {summary['energy']['sops_per_sample']:.3e} |")
        assert row in README, row
        seeds.append(summary)
    nc, twin, full = map(np.asarray, (nc, twin, full))

    def ms(v):
        return f"{v.mean():+.2f} +- {v.std(ddof=1):.2f}"

    assert f"| **{nc.mean():.2f} +- {nc.std(ddof=1):.2f}** | **{ms(nc - twin)}** | **{ms(nc - full)}** |" in README
    assert max(twin - nc) < 0.5          # the target's 0.5 points, on every seed
    walls = [s["timings"]["run_s"] / 60 for s in seeds[:2]]
    assert f"cores, {walls[0]:.1f} and {walls[1]:.1f} min for the 250 periods" in flat
