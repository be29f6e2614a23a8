"""The peer benchmarks' own pure logic (no benchmark runs here): parsing, ratios, the venv, the evaluator."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers import common, driver, venv  # noqa: E402


def test_parse_result_takes_the_last_json_object_line():
    out = "make: g++ ...\n{\"not\": \"this\"}\nnoise {x}\n" + json.dumps({"ms_per_sample": 0.5}) + "\n\n"
    assert common.parse_result(out) == {"ms_per_sample": 0.5}


def test_parse_result_without_a_result_says_how_the_output_ended():
    with pytest.raises(ValueError, match="Traceback"):
        common.parse_result("building\nTraceback (most recent call last):\n  boom\n")
    with pytest.raises(ValueError):
        common.parse_result("{not json}\n[1, 2]\n")


def test_ratio_and_throughput():
    assert common.ratio(1.0, 4.0) == 0.25
    assert math.isnan(common.ratio(1.0, 0.0))
    assert math.isnan(common.ratio(None, 2.0))
    assert common.samples_per_s(4000, 2.0) == 2000.0
    assert math.isnan(common.samples_per_s(10, 0))


def test_venv_path_follows_the_project_cache(tmp_path, monkeypatch):
    assert venv.venv_path(tmp_path) == tmp_path.resolve() / "peers" / "snntorch-venv"
    monkeypatch.setenv("SDSNN_CACHE", str(tmp_path / "c"))
    assert venv.venv_path() == (tmp_path / "c").resolve() / "peers" / "snntorch-venv"
    monkeypatch.setenv("SDSNN_CACHE", "")
    assert venv.venv_path() == (Path.home() / ".cache" / "sdsnn-bio").resolve() / "peers" / "snntorch-venv"


def test_a_venv_is_reused_only_with_its_interpreter_and_the_same_requirements(tmp_path):
    v = tmp_path / "venv"
    assert not venv.is_ready(v)
    (v / "bin").mkdir(parents=True)
    (v / "bin" / "python").write_text("")
    assert not venv.is_ready(v)                       # no stamp: installation never finished
    (v / venv.STAMP).write_text(venv.stamp_text())
    assert venv.is_ready(v)
    assert not venv.is_ready(v, requirements=("torch", "snntorch", "numpy", "scipy"))
    # ready: ensure_venv installs nothing and returns the interpreter
    said = []
    assert venv.ensure_venv(v, log=said.append) == v / "bin" / "python"
    assert said == []


def test_rounds_alternate_their_order():
    s = driver.peer_settings()
    assert [k for k, *_ in s] == ["snntorch_b10_t1", "snntorch_b100_t1", "sdsnn_t1", "floor_t1",
                                  "sdsnn_p2_b10", "sdsnn_p2_b20",
                                  "snntorch_b10_t2", "snntorch_b100_t2", "sdsnn_t2", "floor_t2"]
    assert [(th, b, P) for k, _, th, b, P in s if k.startswith("sdsnn_p")] == [(1, 10, 2), (1, 20, 2)]
    assert driver.round_order(s, 1) == s[::-1]
    assert driver.round_order(s, 2) == s


def test_summary_ratios_are_taken_within_a_round():
    ms = [{"snntorch_b10_t1": 1.0, "snntorch_b100_t1": 0.4, "sdsnn_t1": 0.5, "floor_t1": 0.25,
           "sdsnn_p2_b10": 0.5 / 1.6, "sdsnn_p2_b20": 0.6,
           "snntorch_b10_t2": 0.8, "snntorch_b100_t2": 0.3, "sdsnn_t2": 0.4, "floor_t2": 0.2},
          # a slower round: every setting twice as slow, same ratios
          {"snntorch_b10_t1": 2.0, "snntorch_b100_t1": 0.8, "sdsnn_t1": 1.0, "floor_t1": 0.5,
           "sdsnn_p2_b10": 1.0 / 1.6, "sdsnn_p2_b20": 1.2,
           "snntorch_b10_t2": 1.6, "snntorch_b100_t2": 0.6, "sdsnn_t2": 0.8, "floor_t2": 0.4}]
    rows = []
    for k, rnd in enumerate(ms):
        for key, kind, th, b, P in driver.peer_settings():
            rows.append({"key": key, "kind": kind, "threads": th, "batch": b, "processes": P, "round": k,
                         "ms_per_sample": rnd[key], "accuracy": None if kind == "floor" else 0.9})
    s = driver.summarise_peers(rows)
    assert s["settings"]["sdsnn_t1"]["ms_per_sample_median"] == 0.75
    assert s["settings"]["sdsnn_t1"]["samples_per_s"] == pytest.approx(1000 / 0.75, abs=0.1)
    assert s["settings"]["floor_t1"]["accuracy"] == []
    assert s["settings"]["sdsnn_p2_b20"]["processes"] == 2 and s["settings"]["sdsnn_t1"]["processes"] == 1
    for rr in s["ratios_per_round"]:
        # the split form at batch 10 is sdsnn-bio's fastest setting here
        assert rr["best_sdsnn"] == "sdsnn_p2_b10" and rr["best_snntorch"] == "snntorch_b100_t2"
    r = s["ratios"]
    assert r["sdsnn_best_over_snntorch_best"] == 0.96          # 0.3 / 0.3125 in both rounds
    assert r["sdsnn_over_snntorch_b10_t1"] == 2.0
    assert r["sdsnn_time_over_floor_t2"] == 2.0
    assert r["sdsnn_t2_over_t1"] == 1.25
    assert r["sdsnn_p2_over_t1"] == 1.6


def test_evaluate_reads_out_the_most_active_output():
    # input 0 always spikes (intensity 1), input 1 never; hidden 0 follows input 0 and
    # drives output 1; so every sample is classified 1
    w = {"W1": np.array([[1.0, 0.0], [0.0, 1.0]]), "b1": np.zeros(2),
         "W2": np.array([[0.0, 0.0], [1.0, 0.0]]), "b2": np.zeros(2)}
    x = np.array([[1.0, 0.0]] * 4)
    assert common.evaluate(w, x, np.array([1, 1, 0, 1]), n_steps=3) == 0.75
    # a silent network answers class 0 (first maximum), as sdsnn_bio.metrics.accuracy
    assert common.evaluate(w, np.zeros((2, 2)), np.array([0, 1]), n_steps=3) == 0.5


def test_initial_weights_are_pytorchs_bounds():
    w = common.init_weights(seed=1)
    assert w["W1"].shape == (300, 784) and w["W2"].shape == (10, 300)
    assert np.abs(w["W1"]).max() <= 1 / np.sqrt(784) and np.abs(w["b2"]).max() <= 1 / np.sqrt(300)


def test_spine_fields_are_the_models():
    from sdsnn_bio.spines import SPINE_VARIABLES

    assert set(driver.SPINE_MODEL_FIELDS) == set(SPINE_VARIABLES) | {"connected"}
    per_var = {v: 8 for v in driver.SPINE_MODEL_FIELDS} | {"w": 8, "_synaptic_pre": 4}
    sb = driver.spine_bytes([{"run": False}, {"run": True, "fc1_bytes_per_synapse_by_variable": per_var}])
    assert sb["model_spine_and_mask"] == 96 and sb["model_total"] == 108 and sb["strict_spine_and_mask"] == 44


def test_scaling_plan_leaves_out_what_does_not_fit():
    plan = driver.scaling_plan(units=(13, 12600), available_bytes=2 * 2**30)
    (h1, n1, run1, why1), (h2, n2, run2, why2) = plan
    assert (h1, n1, run1, why1) == (13, 13 * 794, True, None)
    assert n2 == 12600 * 794 and not run2 and "GiB available" in why2


def test_plot_scaling_draws_the_points():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax_t, ax_m = driver.plot_scaling([1e4, 1e5], [0.1, 0.5], [10.0, 40.0], color="k")
    assert list(ax_t.lines[0].get_ydata()) == [0.1, 0.5] and list(ax_m.lines[0].get_xdata()) == [1e4, 1e5]
    assert "(s)" in ax_t.get_ylabel() and "(MB)" in ax_m.get_ylabel()
    plt.close(ax_t.figure)


def test_a_setting_that_timed_out_has_no_time_and_leaves_the_ratios_to_the_others():
    rows = [{"key": "sdsnn_t1", "kind": "sdsnn", "threads": 1, "batch": 10, "round": 0, "ms_per_sample": 0.6},
            {"key": "sdsnn_t2", "kind": "sdsnn", "threads": 2, "batch": 10, "round": 0, "ms_per_sample": None,
             "why": "did not finish within 900 s"},
            {"key": "snntorch_b100_t1", "kind": "snntorch", "threads": 1, "batch": 100, "round": 0,
             "ms_per_sample": 0.3}]
    s = driver.summarise_peers(rows)
    assert s["settings"]["sdsnn_t2"]["ms_per_sample_median"] is None
    assert s["settings"]["sdsnn_t2"]["why"] == "did not finish within 900 s"
    assert s["ratios"]["sdsnn_best_over_snntorch_best"] == 0.5
    assert "sdsnn_t2_over_t1" not in s["ratios"]
    lines = driver.markdown({"peers": {"date": "d", "processor": "p", "cores": 2, "rows": rows, "passes": 2,
                                       "train_samples": 4000, "train_samples_t2": 500, "test_samples": 1000,
                                       "rounds": 1, "snntorch_versions": {}, **s}})
    assert any("not measured: did not finish" in line for line in lines)


def test_marginal_memory_per_synapse_skips_the_points_not_run():
    pts = [{"run": True, "synapses": 10_000, "binary_peak_rss_mb": 7.0},
           {"run": False, "synapses": 50_000},
           {"run": True, "synapses": 110_000, "binary_peak_rss_mb": 7.0 + 100_000 * 200 / 2**20}]
    assert driver.marginal_bytes_per_synapse(pts) == [(110_000, 200.0)]


def test_results_are_appended_and_the_latest_is_shown():
    results = {"peers": {"date": "old"}}                         # a run recorded before runs were lists
    driver.append_result(results, "peers", {"date": "new"})
    driver.append_result(results, "scaling", {"date": "s1"})
    assert results["peers"] == [{"date": "old"}, {"date": "new"}] and results["scaling"] == [{"date": "s1"}]
    assert driver._latest(results, "peers") == ({"date": "new"}, [{"date": "old"}])
    assert driver._latest(results, "cpu_profile") == (None, [])


def test_the_reference_lif_leaks_fires_and_resets_in_the_same_step():
    # one neuron, weight 0.3, bias 0: input at every step gives v = 0.3, 0.36 (no spike),
    # then 0.372 ... stays below 0.5; with weight 0.45: 0.45, 0.54 -> spike and reset, 0.45, 0.54 -> spike
    s = np.ones((4, 1, 1))
    assert common.lif_layer_spikes([[0.3]], [0.0], s)[:, 0, 0].tolist() == [0, 0, 0, 0]
    assert common.lif_layer_spikes([[0.45]], [0.0], s)[:, 0, 0].tolist() == [0, 1, 0, 1]
    # a bias alone: 0.6 > 0.5 fires at once, every step
    assert common.lif_layer_spikes([[0.0]], [0.6], s)[:, 0, 0].tolist() == [1, 1, 1, 1]


def test_the_peer_table_says_the_neuron_check():
    rows = [{"key": "sdsnn_t1", "kind": "sdsnn", "threads": 1, "batch": 10, "round": 0, "ms_per_sample": 0.6,
             "load": [1.0, 2.0]}]
    s = driver.summarise_peers(rows)
    lines = driver.markdown({"peers": [{"date": "d", "processor": "p", "cores": 2, "rows": rows, "passes": 2,
                                        "train_samples": 4000, "train_samples_t2": 500, "test_samples": 1000,
                                        "rounds": 1, "snntorch_versions": {"torch": "2", "snntorch": "1"},
                                        "snntorch_neuron_check": {"neuron_check_identical": True,
                                                                  "neuron_check_spikes": 1407}, **s}]})
    assert "spikes exactly as the SD-SNN LIF: 1407 spikes" in lines[1] and "load average 1.0-2.0" in lines[1]


def test_copies_threads_ratios_are_taken_within_a_round():
    """benchmarks/copies_threads.py: each variant's throughput over one network's of the same
    round (a round on a busier machine is slower for both), then the median over rounds."""
    from benchmarks.copies_threads import markdown, summarise

    variants = [("1 network", 1, 1, 1, None), ("8 copies, 2 threads", 8, 2, 1, {"OMP_WAIT_POLICY": "PASSIVE"}),
                ("2 x 4 copies", 4, 1, 2, None)]
    got = {"1 network": [{"samples_per_s": 1000.0, "build_and_first_run_s": 20.0},
                         {"samples_per_s": 500.0, "build_and_first_run_s": 5.0}],
           "8 copies, 2 threads": [{"samples_per_s": 1500.0, "build_and_first_run_s": 40.0},
                                   {"samples_per_s": 1000.0, "build_and_first_run_s": 9.0}],
           "2 x 4 copies": [{"samples_per_s": 1800.0, "build_and_first_run_s": 30.0},
                            {"samples_per_s": 1000.0, "build_and_first_run_s": 8.0}]}
    rows = summarise(variants, got)
    assert [r["over_one_network_rounds"] for r in rows] == [[1.0, 1.0], [1.5, 2.0], [1.8, 2.0]]
    assert [r["over_one_network"] for r in rows] == [1.0, 1.75, 1.9]
    assert rows[1]["samples_per_s"] == 1250.0 and rows[1]["omp_wait_policy"] == "PASSIVE"
    assert (rows[2]["networks"], rows[2]["processes"], rows[2]["copies_per_build"]) == (8, 2, 4)
    text = "\n".join(markdown({"K": 8, "model": "mnist5k_fc", "T": 20, "cores": 2, "n_train": 200, "repeats": 3,
                               "rounds": 2, "date": "2026-12-02 13:00", "load_min": 0.5, "load_max": 1.5,
                               "rows": rows}))
    assert "| 2 x 4 copies | 2 x 4 | 1 | default | 1400.0 | **1.9** (1.8, 2.0) |" in text
