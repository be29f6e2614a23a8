"""Reference data (sdsnn_bio.neuro) and the comparisons, on inputs whose answers are known.

No simulation: the run folder of the CLI test is a structural history written by
HistoryRecorder for tiny_dense's shapes, its structure set by hand.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sdsnn_bio.neuro import (DATASETS, SHIPPED_TAGS, MeasureError, ReferenceDataError, density_overshoot,
                             load_dataset, neuron_death, persistent_fraction, run_record, size_fits, time_axis,
                             turnover, turnover_two_weeks)
from sdsnn_bio.neuro.reference import COLUMNS, dataset_path

DATA_DIR = Path(dataset_path("spine_persistence")).parent


# ------------------------------------------------------------ reference data
def test_every_shipped_csv_is_verified_or_secondary_and_has_a_source():
    files = sorted(DATA_DIR.glob("*.csv"))
    assert {f.stem for f in files} == set(DATASETS)
    n = 0
    for f in files:
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows, f
        for k, r in enumerate(rows, start=2):
            assert r["tag"] in SHIPPED_TAGS, (f.name, k, r["tag"])
            assert "RECALLED" not in r["tag"] and "CONFIRMED" not in r["tag"]
            for col in ("authors", "journal", "location", "unit", "age", "species", "area"):
                assert r[col].strip(), (f.name, k, col)
            n += 1
        ds = load_dataset(f.stem)
        assert len(ds) == len(rows)
        assert all(r.source.count(",") >= 2 for r in ds)
    assert n >= 30


def test_reference_values_as_published():
    hol = load_dataset("spine_persistence")
    assert [(r.value, r.age_days) for r in hol] == [(35, (16, 25)), (54, (35, 80)), (66, (80, 120)),
                                                    (73, (175, 225))]
    assert all(r.short_source == "Holtmaat et al. 2005" and r.tag == "VERIFIED" for r in hol)
    zuo = load_dataset("spine_turnover")
    got = {(r.quantity, r.age): r.interval for r in zuo if r.age_days is not None}
    assert got == {("spines eliminated in 2 weeks", "~1 mo (young adolescent)"): (13, 20),
                   ("spines formed in 2 weeks", "~1 mo (young adolescent)"): (5, 8),
                   ("spines eliminated in 2 weeks", "4-6 mo (adult)"): (3, 5),
                   ("spines formed in 2 weeks", "4-6 mo (adult)"): (3, 5)}
    dens = load_dataset("synapse_density")
    peak = dens.select(quantity="peak synaptic density relative to adult")
    assert len(peak) == 1 and peak[0].value == 1.5 and peak[0].species == "human"
    assert {r.species for r in dens} >= {"human", "macaque (M. nemestrina)", "rhesus macaque"}
    south = [r for r in load_dataset("neuron_death") if r.authors.startswith("Southwell")]
    assert len(south) == 1 and south[0].value == 40 and south[0].tag == "VERIFIED"
    shape = load_dataset("spine_size").select(quantity="spine size distribution shape")
    assert shape[0].text == "lognormal" and shape[0].value is None


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def _good(**change):
    r = dict(zip(COLUMNS, ["q", "1.5", "", "", "ratio", "", "1-2 y", "365", "730", "x 365", "human", "MFG",
                           "Someone", "1979", "J 1:1", "abstract", "VERIFIED", ""]))
    r.update(change)
    return [r[c] for c in COLUMNS]


@pytest.mark.parametrize("change, message", [
    ({"tag": "RECALLED, UNVERIFIED"}, "tag 'RECALLED, UNVERIFIED' may not be shipped"),
    ({"tag": "DERIVED"}, "tag 'DERIVED' may not be shipped"),
    ({"authors": ""}, "column 'authors' is empty"),
    ({"value": "about 2"}, "column 'value' must be a number"),
    ({"value": ""}, "no value"),
    ({"low": "5", "high": "3"}, "low 5 > high 3"),
    ({"age_days_high": ""}, "give both age_days_low and age_days_high"),
    ({"age_conversion": ""}, "needs its conversion"),
])
def test_loader_names_file_and_row_of_a_bad_row(tmp_path, change, message):
    path = _write(tmp_path / "bad.csv", [_good(), _good(**change)])
    with pytest.raises(ReferenceDataError) as exc:
        load_dataset("synapse_density", path=path)
    assert f"{path}, row 3" in str(exc.value) and message in str(exc.value)


def test_loader_missing_file_wrong_columns_unknown_dataset(tmp_path):
    with pytest.raises(ReferenceDataError, match="not found"):
        load_dataset("spine_size", path=tmp_path / "none.csv")
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ReferenceDataError, match="columns"):
        load_dataset("spine_size", path=tmp_path / "cols.csv")
    with pytest.raises(ReferenceDataError, match="no reference dataset 'spines'"):
        load_dataset("spines")
    assert load_dataset("x", path=_write(tmp_path / "ok.csv", [_good()])).rows[0].value == 1.5


# ------------------------------------------------------------------ measures
def test_persistent_fraction_counted_by_hand():
    ages = [16, 20, 24, 28, 32]
    p = np.array([[1, 1, 0, 0, 1],
                  [1, 0, 1, 0, 1],
                  [1, 1, 1, 0, 1],
                  [0, 1, 0, 1, 1],
                  [0, 1, 1, 0, 1]], bool)
    # site 0: looks 0-2 (8 d, persistent); site 1: look 0 (new), then looks 2-4 (persistent, a new spine);
    # site 2: looks 1-2 (4 d), look 4 (0 d); site 3: look 3; site 4: all five looks (16 d, persistent)
    m = persistent_fraction(p, ages)
    assert (m["n_spines"], m["n_persistent"]) == (7, 3)
    assert m["fraction"] == pytest.approx(3 / 7)
    # not the survival of the spines present at the first look (3 sites, 2 of them still there 8 d later)
    assert m["fraction"] != pytest.approx(2 / 3)
    # an age bin picks its looks: 20..28 holds looks 1-3 only
    m = persistent_fraction(p, ages, age_bin=(20, 28))
    # site 0: 1,2 (4 d); site 1: 2,3 (4 d); site 2: 1,2; site 3: 3; site 4: 1-3 (8 d)
    assert (m["n_spines"], m["n_persistent"]) == (5, 1)


def test_persistent_fraction_takes_looks_every_4_days_from_finer_records():
    rng = np.random.default_rng(3)
    fine = rng.random((21, 50)) < 0.6                      # a look every 2 days, 0..40 d
    ages = np.arange(21) * 2.0
    m = persistent_fraction(fine, ages, spacing=4.0)
    np.testing.assert_array_equal(m["looks"], np.arange(0, 41, 4))
    coarse = persistent_fraction(fine[::2], ages[::2])
    assert (m["n_spines"], m["n_persistent"]) == (coarse["n_spines"], coarse["n_persistent"])
    with pytest.raises(MeasureError, match="fewer than two looks"):
        persistent_fraction(fine, ages, age_bin=(100, 120))
    with pytest.raises(MeasureError, match="give the ages"):
        persistent_fraction(fine)


def test_turnover_two_weeks_known_counts():
    # 10 spines at 30 d; 14 d later 2 are gone and 4 new ones appeared: elimination 20%, formation 40%
    p0 = np.zeros(20, bool)
    p0[:10] = True
    p1 = p0.copy()
    p1[:2] = False
    p1[10:14] = True
    # a look between them (at 37 d) with a spine that comes and goes unseen by the 14-day measure
    mid = p0.copy()
    mid[19] = True
    pres = np.stack([p0, mid, p1])
    m = turnover_two_weeks(pres, [30, 37, 44], age_bin=30)
    assert m["elimination"] == pytest.approx(0.2) and m["formation"] == pytest.approx(0.4)
    assert m["gap"] == 14 and m["n_pairs"] == 1
    # over an age bin: the mean over the looks whose partner is 14 d later
    pres = np.stack([p0, p0, p1, p1])
    t = turnover(pres, [120, 130, 134, 144])
    np.testing.assert_allclose(t["age"], [120, 130])
    np.testing.assert_allclose(t["elimination"], [0.2, 0.2])
    m = turnover_two_weeks(pres, [120, 130, 134, 144], age_bin=(120, 182))
    assert m["n_pairs"] == 2 and m["formation"] == pytest.approx(0.4)
    with pytest.raises(MeasureError, match="no look in 150..182"):
        turnover_two_weeks(pres, [120, 130, 134, 144], age_bin=(150, 182))


def test_size_fits_recover_known_lognormal_and_prefer_normal_for_normal_data():
    rng = np.random.default_rng(0)
    x = rng.lognormal(np.log(0.06), 0.7, 20000)
    f = size_fits(x, measured_range=(0.025, 0.114))
    assert f["better"] == "lognormal" and f["loglik_lognormal"] > f["loglik_normal"]
    assert f["sigma"] == pytest.approx(0.7, rel=0.02)
    assert f["median"] == pytest.approx(0.06, rel=0.02) and f["median_in_range"]
    assert size_fits(x, measured_range=(0.2, 0.5))["median_in_range"] is False
    y = rng.normal(10.0, 1.0, 20000)
    g = size_fits(y)
    assert g["better"] == "normal"
    assert g["normal_mean"] == pytest.approx(10.0, abs=0.03) and g["normal_sd"] == pytest.approx(1.0, rel=0.02)
    with pytest.raises(MeasureError, match="not positive"):
        size_fits([1.0, 2.0, -1.0])


def test_density_overshoot_peak_and_age():
    ages = np.linspace(0, 400, 401)
    d = 1.0 + 0.5 * np.exp(-((ages - 60) / 25) ** 2)       # peak 1.5 at 60 d, adult level 1
    m = density_overshoot(ages, 100 * d)
    assert m["peak_ratio"] == pytest.approx(1.5, rel=1e-6) and m["peak_age"] == 60
    assert m["adult_ages"] == (300, 400) and m["adult_level"] == pytest.approx(100)
    m = density_overshoot(ages, d, adult_ages=(55, 65))
    assert m["peak_ratio"] < 1.01
    with pytest.raises(MeasureError, match="no record in the adult ages"):
        density_overshoot(ages, d, adult_ages=(500, 600))


def test_neuron_death_fraction():
    alive = np.ones((5, 10), bool)
    alive[2:, :3] = False        # 3 die at record 2
    alive[:, 9] = False          # never alive: not counted
    alive[4, 8] = False          # dies at the last record
    m = neuron_death(alive, ages=[0, 1, 2, 3, 4])
    assert (m["n_neurons"], m["n_died"]) == (9, 4) and m["fraction_died"] == pytest.approx(4 / 9)
    np.testing.assert_allclose(m["alive_fraction"], [1, 1, 6 / 9, 6 / 9, 5 / 9])


# --------------------------------------------------------------- run folders
P = 12


def _history_run(folder):
    """tiny_dense's history, written by HistoryRecorder with a structure set by hand: from period 2 on,
    5% of the fc1 synapses flip each period; unit 3 of fc1 loses all synapses at period 4, unit 7 at
    period 6; spine widths log-normal. Returns the run folder and the masks of every period."""
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.geometry import stage_geometry
    from sdsnn_bio.history import HistoryRecorder
    from sdsnn_bio.records import RunFolder

    cfg = load_config(find_model("tiny_dense")).replace(schedule={"periods": P})
    run = RunFolder(folder)
    run.create()
    run.write_config(cfg.to_dict())
    stages = [s for s in stage_geometry(cfg) if s.learnable]
    rec = HistoryRecorder(run, stages, P)
    rec.start()
    rng = np.random.default_rng(7)
    state = {st.name: {"connected": np.ones(st.n_synapses, np.uint8),
                       "w": rng.normal(0, 0.05, st.n_synapses).astype(np.float32),
                       "r_up": rng.lognormal(np.log(0.1), 0.5, st.n_synapses).astype(np.float32),
                       "r_lo": -rng.lognormal(np.log(0.1), 0.5, st.n_synapses).astype(np.float32)}
             for st in stages}
    fc1 = stages[0]
    masks = []
    for e in range(P + 1):
        s = state["fc1"]
        if e >= 2:
            s["connected"][rng.random(fc1.n_synapses) < 0.05] ^= 1
        for unit, start in ((3, 4), (7, 6)):
            if e >= start:
                s["connected"][fc1.post_index == unit] = 0
        rec.record(e, {f"{k}/syn/{v}": a for k, d in state.items() for v, a in d.items()}, final=e == P)
        masks.append(np.concatenate([state[st.name]["connected"] != 0 for st in stages]))
    return run, np.stack(masks)


@pytest.fixture(scope="module")
def history_run(tmp_path_factory):
    return _history_run(tmp_path_factory.mktemp("neuro") / "run")


def test_run_record_from_history(history_run):
    run, masks = history_run
    rec = run_record(run.path)
    assert rec.mapping["source"] == "convention" and rec.mapping["offset"] == 0
    np.testing.assert_allclose(rec.ages, 16 + 4 * np.arange(P + 1))
    np.testing.assert_array_equal(rec.presence, masks)
    np.testing.assert_allclose(rec.density, masks.mean(axis=1))
    dead = ~rec.alive[-1]
    assert rec.alive.shape == (P + 1, 40) and np.flatnonzero(dead).tolist() == [3, 7]
    assert rec.sizes.size == int(masks[-1].sum()) and np.all(rec.sizes > 0)
    rec2 = run_record(run.path, days_per_period=2, start_day=30)
    np.testing.assert_allclose(rec2.ages, 30 + 2 * np.arange(P + 1))
    assert rec2.mapping["source"] == "arguments"
    # a measure given the run folder equals the measure on its arrays
    ages = 16 + 4 * np.arange(P + 1)
    assert persistent_fraction(run.path, age_bin=(16, 25))["fraction"] == \
        persistent_fraction(masks, ages, age_bin=(16, 25))["fraction"]
    assert neuron_death(run.path)["fraction_died"] == pytest.approx(2 / 40)


def test_time_axis_declared_by_the_run(tmp_path):
    from sdsnn_bio.errors import RunError

    (tmp_path / "run.json").write_text(json.dumps({"time_axis": {
        "unit": "days", "age_start_days": 5.0, "days_per_period": 1.5,
        "age_of_period_end": "age_start_days + (period + 1) * days_per_period"}}))
    ax = time_axis(tmp_path)
    assert (ax["start_day"], ax["days_per_period"], ax["offset"], ax["source"]) == (5.0, 1.5, 1.0, "run.json")
    ax = time_axis(tmp_path, start_day=0)
    assert ax["offset"] == 0 and ax["source"] == "mixed"
    (tmp_path / "run.json").write_text(json.dumps({"time_axis": {"days_per_period": -1}}))
    with pytest.raises(RunError, match="days_per_period = -1 .run.json. must be positive"):
        time_axis(tmp_path)


def test_compare_cli_table_and_report(history_run, tmp_path, capsys):
    from sdsnn_bio.cli import main

    run, masks = history_run
    out = tmp_path / "cmp"
    assert main(["compare", str(run.path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mapping: convention" in text and f"report: {out / 'compare.md'}" in text
    lines = {}
    for ln in text.splitlines():
        lines[ln.split("  ")[0]] = lines.get(ln.split("  ")[0], "") + ln + "\n"
    ages = 16 + 4 * np.arange(P + 1)
    pf = 100 * persistent_fraction(masks, ages, age_bin=(16, 25))["fraction"]
    row = lines["persistent spines (%), PND 16-25"]
    assert f"{pf:.3g}" in row and "35 %" in row and "Holtmaat et al. 2005" in row and "VERIFIED" in row
    assert "not covered" in lines["persistent spines (%), PND 175-225"]
    died = lines["neurons that died (%)"].splitlines()
    assert len(died) == 2 and all(ln.split()[4] == "5" for ln in died)
    assert "Southwell et al. 2012" in died[0] and "Blanquie et al. 2017" in died[1]
    ev = 100 * turnover_two_weeks(masks, ages, age_bin=30)["elimination"]
    assert f"{ev:.3g}" in lines["spines eliminated in 2 weeks (%), ~1 mo (young adolescent)"]
    # the report: every figure named in the Markdown exists, the sources are in the captions
    md = (out / "compare.md").read_text()
    for name in ("density.png", "turnover.png", "persistence.png", "sizes.png", "neuron_death.png"):
        assert f"![{name}]({name})" in md and (out / name).stat().st_size > 5000
    assert "Holtmaat et al. 2005, Neuron 45(2):279-291" in md and "Huttenlocher 1979, Brain Res" in md
    res = json.loads((out / "compare.json").read_text())
    assert res["details"]["neuron_death"]["n_died"] == 2
    assert res["details"]["persistence"]["fraction"][0] == pytest.approx(pf / 100)
    # the sizes are widths in model units: the median is not compared with volumes
    med = [r for r in res["rows"] if r["quantity"].startswith("median live spine size")][0]
    assert med["agrees"] is None and "not compared" in med["note"]


def test_compare_cli_bad_folder_and_mapping(history_run, tmp_path, capsys):
    from sdsnn_bio.cli import main

    assert main(["compare", str(tmp_path / "nothing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    run, _ = history_run
    assert main(["compare", str(run.path), "--out", str(tmp_path / "c"), "--days-per-period", "0"]) == 2
    assert "days_per_period = 0 (arguments) must be positive" in capsys.readouterr().err
    assert main(["compare", str(run.path), "--out", str(tmp_path / "c"), "--days-per-period", "7",
                 "--start-day", "150"]) == 0
    out = capsys.readouterr().out
    assert "period e = day 150 + e x 7 after birth (mapping: arguments)" in out
    # ages 150..234 d: the adult Zuo bin is covered (looks at 150, 157, 164 with partners), P16-25 is not
    assert "not covered (run ages 150-234 d)" in [ln for ln in out.splitlines() if "PND 16-25" in ln][0]
    run, masks = history_run
    ev = 100 * turnover_two_weeks(masks, 150 + 7 * np.arange(P + 1), age_bin=(121.8, 182.6))["elimination"]
    assert f"  {ev:.3g}  " in [ln for ln in out.splitlines() if "eliminated in 2 weeks (%), 4-6" in ln][0]


def test_developmental_run_folder_ages_volumes_and_deaths(tmp_path):
    """A developmental (kind = "development") run folder written by hand as loop.Development writes
    it: one record per period, then the final state (a copy of the last period's) as period P. The
    record has one look per period (no duplicate at P + 1), ages from run.json (period ends), sizes
    the exact volumes of the last snapshot (the 8-bit keyframe only where no snapshot matches), deaths
    from the table."""
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.geometry import stage_geometry
    from sdsnn_bio.history import HistoryRecorder
    from sdsnn_bio.neuro.compare import compare_record
    from sdsnn_bio.records import RunFolder

    periods = 6
    cfg = load_config(find_model("cortex_small")).replace(network={"n_exc": 40, "n_inh": 10},
                                                          schedule={"periods": periods},
                                                          time={"age_start_days": 10.0, "days_per_period": 2.0})
    run = RunFolder(tmp_path / "dev")
    run.create()
    run.write_config(cfg.to_dict())
    run.write_meta({"time_axis": cfg.time_axis()})
    st = stage_geometry(cfg)[0]
    rng = np.random.default_rng(2)
    rec = HistoryRecorder(run, [st], periods)
    rec.start()
    conn = rng.random(st.n_synapses) < 0.5
    rows, masks = [], []
    for e in range(periods):
        conn = conn ^ (rng.random(st.n_synapses) < 0.1)
        vol = rng.lognormal(np.log(0.07), 0.6, st.n_synapses)
        arrays = {"exc/syn/connected": conn.astype(np.float64), "exc/syn/vol": vol, "exc/syn/w": vol * conn,
                  "exc/syn/r_up": vol * conn, "exc/syn/r_lo": np.zeros(st.n_synapses)}
        rec.record(e, arrays)
        if e == periods - 2:
            run.save_snapshot(e, arrays, {"period": e})
        masks.append(conn.copy())
        rows.append({"period": e, "age_days": cfg.age_at_end(e), "n_alive": 50 - 3 * e,
                     "spine_density_alive": [0.2, 0.4, 0.5, 0.3, 0.25, 0.25][e]})
    rec.record(periods, arrays, final=True)       # the loop's final state: the last period's again
    run.write_table(rows, ["period"])
    exact = (vol * conn)[conn]
    # no snapshot of the last period yet: the sizes are the keyframe's 8-bit values, and say so
    r = run_record(run.path)
    assert r.sizes_source == f"history keyframe of period {periods - 1} (8-bit codes)"
    assert r.sizes.shape == exact.shape and 0 < np.max(np.abs(r.sizes - exact)) <= np.ptp(exact) / 500
    run.save_snapshot(periods - 1, arrays, {"period": periods - 1})
    r = run_record(run.path)
    assert r.kind == "development" and r.size_unit == "um3" and r.mapping["source"] == "run.json"
    np.testing.assert_array_equal(r.periods, np.arange(periods))
    np.testing.assert_allclose(r.ages, 10 + 2 * (np.arange(periods) + 1))
    np.testing.assert_array_equal(r.presence, np.stack(masks))
    # the density is the table's, over the sites between living neurons; all sites kept beside it
    np.testing.assert_allclose(r.density, [0.2, 0.4, 0.5, 0.3, 0.25, 0.25])
    np.testing.assert_allclose(r.density_all_sites, np.stack(masks).mean(axis=1))
    assert r.density_basis.startswith("potential sites between two living neurons")
    np.testing.assert_allclose(r.alive_ages, [10, 12, 14, 16, 18, 20, 22])
    np.testing.assert_array_equal(r.alive, [50, 50, 47, 44, 41, 38, 35])
    assert neuron_death(run.path)["fraction_died"] == pytest.approx(15 / 50)
    # the volumes are the snapshot's float64 values, exactly
    assert r.sizes_source == f"snapshot of period {periods - 1} (exact)"
    np.testing.assert_array_equal(r.sizes, exact)
    table, details = compare_record(r)
    assert details["sizes"]["source"] == r.sizes_source
    med = [c for c in table if c.quantity.startswith("median live spine volume")][0]
    assert med.value == pytest.approx(details["sizes"]["median"]) and med.agrees == (0.025 <= med.value <= 0.114)
    died = [c for c in table if c.quantity == "neurons that died (%)"]
    assert [c.value for c in died] == [pytest.approx(30.0)] * 2 and [c.agrees for c in died] == [True, True]
    # peak 0.5 at 16 d over the adult level (last quarter of 12-22 d: looks at 20 and 22 d, 0.25): 2.0
    dens = [c for c in table if c.quantity.startswith("synapse density, peak / adult (human")][0]
    assert dens.value == pytest.approx(2.0) and dens.agrees is False and "living neurons" in dens.note
    assert details["density"]["peak_age"] == 16.0
    alls = [c for c in table if c.quantity.startswith("synapse density over all potential sites")][0]
    d_all = np.stack(masks).mean(axis=1)
    assert alls.value == pytest.approx(d_all.max() / d_all[-2:].mean()) and alls.agrees is None
    # a snapshot whose mask is not the last look's is not read with its own mask: the history's mask
    # of the last look picks the values (History.structure_at, float32)
    run.save_snapshot(periods - 1, {**arrays, "exc/syn/connected": 1.0 - arrays["exc/syn/connected"]},
                      {"period": periods - 1})
    r = run_record(run.path)
    assert r.sizes_source == f"snapshot of period {periods - 1} (exact, float32)"
    np.testing.assert_array_equal(r.sizes, exact.astype(np.float32))


def test_turnover_at_an_age_needs_a_look_near_it():
    pres = np.ones((4, 5), bool)
    with pytest.raises(MeasureError, match="no look within 3.5 d of age 30 d"):
        turnover_two_weeks(pres, [1, 10, 15, 24], age_bin=30)       # pairs start at 1 and 10 only
    assert turnover_two_weeks(pres, [1, 10, 27, 41], age_bin=30)["ages"].tolist() == [27]
