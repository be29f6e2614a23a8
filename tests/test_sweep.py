"""Sweeps on Dask: validation before any job, grid expansion, a loopback-only cluster, TLS,
a real sweep whose table equals its run folders, and a worker killed mid-job."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sdsnn_bio import cli
from sdsnn_bio.errors import ConfigError, SdsnnError
from sdsnn_bio.records import RunFolder
from sdsnn_bio.sweep import (_build_marker, _prepare_out, _source_digest, build_key, load_sweep, local_cluster, make_security,
                             run_options, run_sweep)

# One build for every run here: the same windows a period, only seeds and period counts differ.
OPTIONS = """
[options]
periods = {periods}
train_per_period = 20
test_per_period = 20
n_train = 100
n_test = 20
spine_streak = 1
structure_start = 2
"""
P = 12   # enough periods to kill a worker between the first snapshot and the end


def write(path, text):
    path.write_text(text)
    return path


def sweep_file(tmp_path, grid='model = ["tiny_dense"]\nseed = [0, 1]', periods=P, name="s"):
    return write(tmp_path / f"{name}.toml", f'name = "{name}"\n[grid]\n{grid}\n' + OPTIONS.format(periods=periods))


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------- validation
BAD = [
    # (file text, words the one error must contain)
    ('name = "x"\nfoo = 1\n[grid]\nseed = [0]\n[options]\nmodel = "tiny_dense"', ["unknown key 'foo'"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nsede = [0]', ["unknown key 'grid.sede'"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\nperiods = "4"',
     ["key 'options.periods'", "must be an integer", "'4'"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense", "no_such_model"]', ["key 'grid.model'", "no_such_model"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nmasks = ["soft", "medium"]',
     ["key 'grid.masks'", "soft, hard", "'medium'"]),
    ('name = "x"\n[grid]\n[options]\nmodel = "tiny_dense"', ["key 'grid' is empty"]),
    ('name = "x"\n[options]\nmodel = "tiny_dense"', ["key 'grid' is missing"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nseed = []', ["key 'grid.seed'", "non-empty array"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nseed = 3', ["key 'grid.seed'", "non-empty array"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nseed = [1, 1]', ["key 'grid.seed' repeats"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nseed = [1]\n[options]\nseed = 2',
     ["key 'seed' is both in [grid] and in [options]"]),
    ('name = "x"\n[grid]\nseed = [1]', ["key 'model' is missing"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\ntrain_per_period = 25',
     ["key 'options.train_per_period' = 25", "multiple of training.batch"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\ntraining.lr = [1e-3, -1.0]',
     ["key 'grid.training.lr' = -1.0", "training.lr", "> 0"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\n"training.lrr" = 1.0', ["unknown key 'training.lrr'"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\nlayers.fc9.rho0 = 1.0',
     ["key 'options.layers.fc9.rho0'", "no layer named 'fc9'"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\nneuron = 1', ["unknown key 'options.neuron'"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\ndense = 1', ["key 'options.dense'", "a boolean"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\ndevice = "gpu"', ["key 'options.device'"]),
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\n[options]\nn_train = 100000', ["job tiny_dense", "n_train"]),
    # options that are valid together although one alone is not
    # (checked by the real sweep below: structure_start = 2 needs spine_streak = 1)
    # a grid value that fails with the options is named ...
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nspine_streak = [1, 3]\n[options]\nstructure_start = 3',
     ["key 'grid.spine_streak' = 3", "schedule.structure_start"]),
    # ... and a combination of values that pass alone names the job and its values
    ('name = "x"\n[grid]\nmodel = ["tiny_dense"]\nspine_streak = [1, 3]\nstructure_start = [3, 5]',
     ["job tiny_dense_spine_streak-3_structure_start-3 (model = 'tiny_dense', spine_streak = 3, "
      "structure_start = 3)", "schedule.structure_start"]),
    ('name = "x y"\n[grid]\nmodel = ["tiny_dense"]', ["key 'name'"]),
    ('name = "x"\n[grid\nmodel = 1', ["not valid TOML"]),
]


@pytest.mark.parametrize("text, words", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_sweep_file_is_one_error_and_nothing_runs(tmp_path, capsys, text, words):
    path = write(tmp_path / "bad.toml", text)
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        run_sweep(path, out=out)
    msg = str(err.value)
    assert msg.startswith(f"{path}: "), msg
    for w in words:
        assert w in msg, msg
    assert not out.exists()
    # the command line: the same message, exit status 2, no folder
    assert cli.main(["sweep", str(path), "--out", str(out)]) == 2
    assert msg in capsys.readouterr().err
    assert not out.exists()


def test_missing_sweep_file(tmp_path):
    with pytest.raises(ConfigError, match="no such sweep file"):
        load_sweep(tmp_path / "none.toml")


def test_bad_tls_and_cluster_arguments(tmp_path):
    assert make_security() is None
    with pytest.raises(ConfigError, match="--tls-key is missing"):
        make_security(tls_ca_file=__file__, tls_cert=__file__)
    with pytest.raises(ConfigError, match="--tls-cert .*nope.pem: no such file"):
        make_security(__file__, str(tmp_path / "nope.pem"), __file__)
    path = sweep_file(tmp_path, periods=3)
    for kw in ({"n_workers": 0}, {"retries": -1}):
        with pytest.raises(SdsnnError, match=list(kw)[0]):
            run_sweep(path, out=tmp_path / "out", **kw)
        assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------- grid expansion
def test_grid_expansion(tmp_path):
    path = write(tmp_path / "g.toml", """
name = "grid"
[grid]
seed = [3, 4]
masks = ["soft", "hard"]
training.lr = [0.002]
[options]
model = "tiny_dense"
periods = 5
dense = false
"layers.fc1.rho0" = 20.0
""")
    sw = load_sweep(path)
    assert sw.name == "grid" and sw.seed_key == "seed"
    assert list(sw.grid) == ["seed", "masks", "training.lr"]
    assert [j.id for j in sw.jobs] == [f"seed-{s}_masks-{m}_training.lr-0.002" for s in (3, 4) for m in ("soft", "hard")]
    for job, (s, m) in zip(sw.jobs, [(s, m) for s in (3, 4) for m in ("soft", "hard")]):
        c = job.config
        assert job.values == {"seed": s, "masks": m, "training.lr": 0.002}
        assert (c.name, c.schedule.seed, c.structure.masks, c.training.lr) == ("tiny_dense", s, m, 0.002)
        assert c.schedule.periods == 5 and c.structure.enabled and c.layers[0].rho0 == 20.0
        assert c.schedule.train_per_period == 50          # the model's own value where nothing is set
        assert job.device == "cpp_standalone"
    # run flags act as `sdsnn-bio run` applies them
    sw = load_sweep(write(tmp_path / "h.toml", 'name = "h"\n[grid]\nmodel = ["tiny_dense"]\n'
                          'dense = [false, true]\nno_regeneration = [true]\n[options]\ndevice = "runtime"'))
    assert [j.config.structure.enabled for j in sw.jobs] == [True, False]
    assert all(not j.config.structure.regeneration and j.device == "runtime" for j in sw.jobs)
    assert sw.seed_key is None


def test_run_options_are_the_run_commands():
    opts = run_options()
    assert opts["periods"] == (int, None) and opts["dense"] == (bool, None)
    assert opts["masks"] == (str, ("soft", "hard")) and "mnist5k" in opts["dataset"][1]
    assert not {"out", "resume", "json", "threads", "help"} & set(opts)


# ----------------------------------------------------------------- the cluster
def _listening(pids):
    import psutil

    found = []
    for pid in pids:
        for s in psutil.Process(pid).net_connections(kind="inet"):
            if s.status == psutil.CONN_LISTEN:
                found.append((pid, s.laddr.ip, s.laddr.port))
    return found


def test_local_cluster_listens_on_loopback_only():
    from distributed import Client

    with local_cluster(n_workers=2) as cluster, Client(cluster) as client:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        for addr, info in workers.items():
            assert addr.startswith("tcp://127.0.0.1:") and info["nanny"].startswith("tcp://127.0.0.1:")
            assert info["nthreads"] == 1
        # every socket the scheduler, nannies and workers listen on (here and in the workers)
        pids = [os.getpid()] + list(client.run(os.getpid).values())
        sockets = _listening(pids)
        assert {p for p, _, _ in sockets} == set(pids)
        assert all(ip == "127.0.0.1" for _, ip, _ in sockets), sockets


def test_tls_cluster_and_security_from_files(tmp_path):
    """A TLS-only local cluster (self-signed, Security.temporary) reached through the
    Security that make_security builds from PEM files, as for a remote scheduler."""
    from distributed import Client
    from distributed.security import Security

    temp = Security.temporary()
    files = {}
    for name, pem in (("ca", temp.tls_ca_file), ("cert", temp.tls_client_cert), ("key", temp.tls_client_key)):
        files[name] = write(tmp_path / f"{name}.pem", pem)
    sec = make_security(files["ca"], files["cert"], files["key"])
    assert isinstance(sec, Security) and sec.require_encryption
    assert (sec.tls_ca_file, sec.tls_client_cert, sec.tls_client_key) == tuple(map(str, files.values()))
    with local_cluster(n_workers=1, security=temp) as cluster:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        with Client(cluster.scheduler_address, security=sec) as client:
            assert client.submit(sum, [1, 2, 3]).result() == 6
            assert all(a.startswith("tls://127.0.0.1:") for a in client.scheduler_info()["workers"])
        # without the files the scheduler is out of reach
        with pytest.raises(Exception):
            Client(cluster.scheduler_address, timeout=2)


# ----------------------------------------------------------------- a real sweep
def sweep_cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "sdsnn_bio", "sweep", *map(str, args)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def marker(path):
    """The file that says this machine has built the sweep's (one) build."""
    job = load_sweep(path).jobs[0]
    return _build_marker(build_key(job.config, job.device), _source_digest())


def built_at(job_dir):
    """When the first attempt's run had built: its start plus the build time it printed."""
    rec = json.loads((job_dir / "job.json").read_text())
    line = next(ln for ln in (job_dir / "job.log").read_text().splitlines() if ln.startswith("sdsnn-bio: network built"))
    return rec["attempts"][0]["start"] + float(line.split()[-2])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two seeds of tiny_dense through `sdsnn-bio sweep` on the embedded cluster; the build is
    new to the sweep (no marker), so the second job waits for the first one's build."""
    tmp = tmp_path_factory.mktemp("sweep")
    path = sweep_file(tmp)
    out = tmp / "out"
    marker(path).unlink(missing_ok=True)
    p = sweep_cli(path, "--out", out)
    stdout, stderr = p.communicate(timeout=900)
    assert p.returncode == 0, stdout + stderr
    return path, out, stdout


def test_sweep_staggers_a_new_build_and_marks_it(finished):
    path, out, stdout = finished
    assert "1 job waits for job tiny_dense_seed-0 to build the code they share" in stdout
    twin = json.loads((out / "tiny_dense_seed-1" / "job.json").read_text())["attempts"][0]
    assert twin["start"] >= built_at(out / "tiny_dense_seed-0")
    assert marker(path).is_file()


def summaries(out, ids):
    return {i: RunFolder(out / i / "run").read_summary() for i in ids}


def test_sweep_table_equals_the_run_folders(finished):
    path, out, stdout = finished
    ids = ["tiny_dense_seed-0", "tiny_dense_seed-1"]
    assert json.loads((out / "jobs.json").read_text())[1] == {
        "id": ids[1], "values": {"model": "tiny_dense", "seed": 1}, "model": "tiny_dense", "device": "cpp_standalone"}
    rows = read_csv(out / "results.csv")
    assert [r["job"] for r in rows] == ids
    sums = summaries(out, ids)
    for r, (i, s) in zip(rows, sums.items()):
        run = RunFolder(out / i / "run")
        assert (r["model"], int(r["seed"]), r["status"], r["attempts"], r["resumed"]) == \
            ("tiny_dense", int(i[-1]), "done", "1", "0")
        assert run.read_meta()["seed"] == int(i[-1]) and len(run.read_table()["period"]) == P
        for col in ("final_test_accuracy", "compression", "synapse_sparsity", "alive_fc1"):
            assert float(r[col]) == pytest.approx(s[col], rel=1e-5, abs=1e-9), col
        assert 0 < float(r["wall_s"]) < 900
        log = (out / i / "job.log").read_text()
        assert log.startswith(f"sdsnn-bio sweep: attempt 1 of job {i}") and f"period {P}/{P}" in log
    # structure developed (pruning from period 2), so the compared numbers are not all zero
    assert any(s["compression"] > 0 for s in sums.values())
    assert "tiny_dense_seed-1" in stdout and "mean +- std over seeds" in stdout
    assert (out / "results.txt").read_text().strip() in stdout


def test_sweep_mean_and_std_over_seeds(finished):
    _, out, _ = finished
    (row,) = read_csv(out / "seeds.csv")
    sums = list(summaries(out, ["tiny_dense_seed-0", "tiny_dense_seed-1"]).values())
    assert row["model"] == "tiny_dense" and row["n"] == "2"
    for col in ("final_test_accuracy", "compression", "alive_fc1"):
        vals = np.array([s[col] for s in sums], float)
        assert float(row[f"{col}_mean"]) == pytest.approx(vals.mean(), rel=1e-5, abs=1e-9)
        assert float(row[f"{col}_std"]) == pytest.approx(vals.std(ddof=1), rel=1e-5, abs=1e-9)


def test_sweep_rerun_needs_resume_and_keeps_finished_jobs(finished):
    path, out, _ = finished
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/run/summary.json")}
    rows_before = read_csv(out / "results.csv")
    p = sweep_cli(path, "--out", out)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and "use --resume" in err
    p = sweep_cli(path, "--out", out, "--resume", "--workers", "1", "--stagger", "always")
    stdout, err = p.communicate(timeout=300)
    assert p.returncode == 0, stdout + err
    assert "wait" not in stdout         # finished jobs build nothing: none waits for another
    rows = read_csv(out / "results.csv")
    assert [r["status"] for r in rows] == ["kept", "kept"]
    for a, b in zip(rows, rows_before):
        assert {k: v for k, v in a.items() if k != "status"} == {k: v for k, v in b.items() if k != "status"}
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/run/summary.json")} == before
    assert "attempt 2" not in (out / "tiny_dense_seed-0" / "job.log").read_text()


def test_sweep_refuses_a_changed_job(finished, tmp_path):
    path, out, _ = finished
    # a job.toml without a key that has its default (as written before the key existed) is the same job
    old = tmp_path / "old" / "tiny_dense_seed-0" / "job.toml"
    old.parent.mkdir(parents=True)
    text = (out / "tiny_dense_seed-0" / "job.toml").read_text()
    assert "eval_passes = 1\n" in text
    old.write_text(text.replace("eval_passes = 1\n", ""))
    _prepare_out(load_sweep(path), tmp_path / "old", resume=True)
    changed = write(tmp_path / "s.toml", path.read_text().replace("n_test = 20", "n_test = 30"))
    with pytest.raises(ConfigError, match="holds another configuration"):
        run_sweep(changed, out=out, resume=True)


@pytest.mark.slow
@pytest.mark.standalone
def test_worker_killed_mid_job_resumes(finished, tmp_path):
    """SIGKILL the worker of a running job after its first snapshot: the scheduler runs the
    job again, which resumes from the snapshot and ends as the uninterrupted run did."""
    _, ref_out, _ = finished
    path = sweep_file(tmp_path)
    out = tmp_path / "out"
    victim = out / "tiny_dense_seed-0"
    assert marker(path).is_file()       # built before: both jobs start at once
    p = sweep_cli(path, "--out", out, "--workers", "2")
    run = RunFolder(victim / "run")
    deadline = time.time() + 600
    while not run.snapshot_periods():
        assert p.poll() is None, p.communicate()
        assert time.time() < deadline, "no snapshot after 600 s"
        time.sleep(0.005)
    attempt = json.loads((victim / "job.json").read_text())["attempts"][-1]
    assert not run.is_finished() and run.snapshot_periods()[-1] < P - 1
    os.kill(attempt["worker_pid"], signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stdout + stderr
    assert "wait" not in stdout
    rec = json.loads((victim / "job.json").read_text())
    assert [a["worker_pid"] for a in rec["attempts"]][0] == attempt["worker_pid"]
    assert len(rec["attempts"]) == 2 and rec["attempts"][0]["returncode"] == "lost"
    resumed_from = rec["attempts"][1]["resume_from"]
    assert 0 <= resumed_from < P - 1
    assert "attempt 2 of job tiny_dense_seed-0 on worker" in (victim / "job.log").read_text()
    assert f"resuming from the snapshot of period {resumed_from}" in (victim / "job.log").read_text()
    # the run of the killed attempt died with its worker: one process wrote the folder at a time
    with pytest.raises(ProcessLookupError):
        os.kill(attempt["pid"], 0)
    rows = {r["job"]: r for r in read_csv(out / "results.csv")}
    assert rows["tiny_dense_seed-0"]["attempts"] == "2" and rows["tiny_dense_seed-0"]["resumed"] == "1"
    assert rows["tiny_dense_seed-1"]["attempts"] == "1"
    ids = list(rows)
    for i, s in summaries(out, ids).items():
        assert rows[i]["status"] == "done"
        assert len(RunFolder(out / i / "run").read_table()["period"]) == P
        # resumed or not, each job ends exactly as the same job of the uninterrupted sweep
        ref = RunFolder(ref_out / i / "run")
        assert {k: v for k, v in s.items() if k != "timings"} == \
            {k: v for k, v in ref.read_summary().items() if k != "timings"}
        t, rt = RunFolder(out / i / "run").read_table(), ref.read_table()
        for col in ("test_accuracy", "train_accuracy", "compression", "alive_fc1", "spikes"):
            assert np.array_equal(t[col], rt[col]), (i, col)
        assert float(rows[i]["final_test_accuracy"]) == pytest.approx(s["final_test_accuracy"])


# ----------------------------------------------------------------- several jobs in one build
def test_builds_group_jobs_that_differ_only_in_run_time_keys(tmp_path):
    from sdsnn_bio.sweep import copies_key, plan_builds

    path = sweep_file(tmp_path, grid='model = ["tiny_dense"]\nperiods = [4, 6]\nseed = [0, 1, 2]\n'
                                      'training.lr = [0.001, 0.003]', periods=4)
    path.write_text(path.read_text().replace("periods = 4\n", ""))
    sweep = load_sweep(path)
    jobs = [j.to_dict(tmp_path / "out") for j in sweep.jobs]
    assert len(jobs) == 12
    keys = {j["id"]: j["copies_key"] for j in jobs}
    # seed and learning rate are run-time keys; the number of periods is not
    assert len(set(keys.values())) == 2
    assert all((keys[a] == keys[b]) == (sa["values"]["periods"] == sb["values"]["periods"])
               for a, sa in zip(keys, jobs) for b, sb in zip(keys, jobs))
    assert [len(b) for b in plan_builds(jobs, 1)] == [1] * 12
    for k, sizes in ((2, [2, 2, 2, 2, 2, 2]), (4, [3, 3, 3, 3]), (5, [3, 3, 3, 3]), (6, [6, 6]), (8, [6, 6])):
        builds = plan_builds(jobs, k)
        assert [len(b) for b in builds] == sizes, k
        # each build: one network, in grid order; every job exactly once
        assert all(len({j["copies_key"] for j in b}) == 1 for b in builds)
        assert sorted(j["id"] for b in builds for j in b) == sorted(keys)
        assert [j["id"] for b in builds for j in b] == [j["id"] for j in jobs if j["values"]["periods"] == 4] + \
            [j["id"] for j in jobs if j["values"]["periods"] == 6]
    # a job that cannot be a copy is a build of its own
    cfg = load_sweep(path).jobs[0].config
    assert copies_key(cfg.replace(training={"parallel_windows": True}), "cpp_standalone") is None
    assert copies_key(cfg.replace(training={"processes": 2}), "cpp_standalone") is None
    from sdsnn_bio.sweep import default_workers

    split = dict(jobs[0], config=cfg.replace(training={"processes": 2}).to_dict())
    assert default_workers(jobs, cores=4) == 4 and default_workers(jobs + [split], cores=4) == 2
    assert default_workers([split], cores=1) == 1
    assert copies_key(cfg, "cpp_standalone") != copies_key(cfg, "runtime")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(SdsnnError, match="copies_per_build"):
            plan_builds(jobs, bad)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Two seeds and two learning rates of tiny_dense as copies of builds of two."""
    tmp = tmp_path_factory.mktemp("shared")
    path = sweep_file(tmp, grid='model = ["tiny_dense"]\nseed = [0, 1]', name="shared")
    out = tmp / "out"
    p = sweep_cli(path, "--out", out, "--copies-per-build", "2", "--workers", "1")
    stdout, stderr = p.communicate(timeout=900)
    assert p.returncode == 0, stdout + stderr
    return path, out, stdout


@pytest.mark.slow
@pytest.mark.standalone
def test_jobs_of_one_build_run_as_copies_of_one_network(shared):
    path, out, stdout = shared
    ids = ["tiny_dense_seed-0", "tiny_dense_seed-1"]
    assert json.loads((out / "builds.json").read_text()) == [ids]
    assert "2 of them as copies in 1 shared build ->" not in stdout and "2 of them as copies in 1 shared build" in stdout
    rows = read_csv(out / "results.csv")
    assert [r["job"] for r in rows] == ids and [r["status"] for r in rows] == ["done", "done"]
    # one build for both, and each run folder says so
    built = [ln for ln in (out / ids[0] / "job.log").read_text().splitlines() if ln.startswith("sdsnn-bio: network built")]
    assert len(built) == 1 and built[0].endswith("(2 copies in one build)")
    for k, i in enumerate(ids):
        run = RunFolder(out / i / "run")
        meta = run.read_meta()
        assert meta["copy"] == k and meta["shared_build"]["copies"] == 2
        assert meta["shared_build"]["run_dirs"] == [str(out.resolve() / j / "run") for j in ids]
        assert meta["seed"] == k and len(run.read_table()["period"]) == P
        s = run.read_summary()
        assert float(rows[k]["final_test_accuracy"]) == pytest.approx(s["final_test_accuracy"])
        assert float(rows[k]["compression"]) == pytest.approx(s["compression"], rel=1e-5, abs=1e-9)
        rec = json.loads((out / i / "job.json").read_text())
        assert rec["attempts"][0]["build"] == ids and rec["attempts"][0]["copy"] == k
        log = (out / i / "job.log").read_text()
        # the build's output, both copies' periods, in each member's log
        assert f"copy {k} of a build of 2" in log and f"[copy 0] period {P}/{P}" in log \
            and f"[copy 1] period {P}/{P}" in log
    # each copy is its own network: another seed, other weights than its twin
    w = [RunFolder(out / i / "run").load_snapshot("last").arrays["fc1/syn/w"] for i in ids]
    assert not np.array_equal(w[0], w[1])
    # resuming with other builds than the sweep started with is refused before anything runs
    with pytest.raises(SdsnnError, match="other builds"):
        run_sweep(path, out=out, resume=True, copies_per_build=1)


@pytest.mark.slow
@pytest.mark.standalone
def test_worker_killed_mid_build_resumes_every_copy(shared, tmp_path):
    """SIGKILL the worker of a shared build after its copies' first snapshots: the build runs
    again, resumes every copy from the period both hold, and each ends as in the uninterrupted
    sweep."""
    path, ref_out, _ = shared
    out = tmp_path / "out"
    p = sweep_cli(path, "--out", out, "--copies-per-build", "2", "--workers", "1")
    ids = ["tiny_dense_seed-0", "tiny_dense_seed-1"]
    runs = [RunFolder(out / i / "run") for i in ids]
    deadline = time.time() + 600
    while not all(r.snapshot_periods() for r in runs):
        assert p.poll() is None, p.communicate()
        assert time.time() < deadline, "no snapshots after 600 s"
        time.sleep(0.005)
    attempt = json.loads((out / ids[0] / "job.json").read_text())["attempts"][-1]
    assert not runs[0].is_finished()
    os.kill(attempt["worker_pid"], signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stdout + stderr
    for k, i in enumerate(ids):
        rec = json.loads((out / i / "job.json").read_text())
        assert len(rec["attempts"]) == 2 and rec["attempts"][0]["returncode"] == "lost"
        assert 0 <= rec["attempts"][1]["resume_from"] < P - 1
        assert rec["attempts"][0]["resume_from"] is None
        assert f"resuming from the snapshot of period {rec['attempts'][1]['resume_from']}" in \
            (out / i / "job.log").read_text()
        s, ref = runs[k].read_summary(), RunFolder(ref_out / i / "run")
        assert {a: v for a, v in s.items() if a != "timings"} == \
            {a: v for a, v in ref.read_summary().items() if a != "timings"}
        t, rt = runs[k].read_table(), ref.read_table()
        for col in ("test_accuracy", "train_accuracy", "compression", "alive_fc1", "spikes"):
            assert np.array_equal(t[col], rt[col]), (i, col)
        a, b = runs[k].load_snapshot("last").arrays, ref.load_snapshot("last").arrays
        for key in ("fc1/syn/w", "fc1/syn/connected", "out/syn/w"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{i}: {key}")
    rows = read_csv(out / "results.csv")
    assert [r["attempts"] for r in rows] == ["2", "2"] and [r["resumed"] for r in rows] == ["1", "1"]


# ----------------------------------------------------------------- data cache
def test_data_cache_key_follows_every_key_that_changes_the_loaded_data(tmp_path, monkeypatch):
    """Jobs whose [data] differ in crop or downsampling load their data separately; jobs that
    differ only in how loaded recordings are encoded (event_coding) share one load."""
    from sdsnn_bio.data import registry
    from sdsnn_bio.data.event_input import synthetic_recordings, write_nmnist_folder
    from sdsnn_bio.sweep import data_cache_key

    rec, y = synthetic_recordings(1, 10, (34, 34), 0, n_events=40)
    write_nmnist_folder(tmp_path / "data", rec, y, rec, y)

    def model(name, shape, **data):
        data = {"crop": 0, "downsample": 4, "event_coding": "spikes", **data}
        keys = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in data.items())
        return write(tmp_path / f"{name}.toml", f"""name = "{name}"
input_shape = {shape}
[data]
dataset = "nmnist"
directory = "{tmp_path / 'data'}"
{keys}
[[layers]]
name = "out"
type = "dense"
units = 10
[schedule]
periods = 2
train_per_period = 10
test_per_period = 10
n_steps = 4
""")

    paths = [model("a", [2, 9, 9]), model("b", [2, 8, 8], crop=1), model("c", [2, 5, 5], downsample=7),
             model("d", [2, 9, 9], event_coding="frames")]
    grid = "model = [" + ", ".join(f'"{p}"' for p in paths) + "]"
    loads = []
    real_load = registry.load

    def counting_load(spec, source="<config>"):
        ds = real_load(spec, source)
        loads.append((spec.crop, spec.downsample, ds.sensor))
        return ds

    monkeypatch.setattr(registry, "load", counting_load)
    sweep = load_sweep(write(tmp_path / "s.toml", f'name = "s"\n[grid]\n{grid}\n'))
    keys = {job.id: data_cache_key(job.config.data) for job in sweep.jobs}
    assert len(keys) == 4
    # a, b, c differ in what is loaded: three keys, three loads, each on its own grid
    # (the sensors 9x9, 8x8 and 5x5 that crop and downsampling give); d shares a's load
    assert sorted(loads) == [(0, 4, (9, 9)), (0, 7, (5, 5)), (1, 4, (8, 8))]
    by_model = {job.config.name: keys[job.id] for job in sweep.jobs}
    assert by_model["a"] == by_model["d"]
    assert len({by_model[m] for m in "abc"}) == 3
    assert dict(by_model["b"])["crop"] == 1 and dict(by_model["c"])["downsample"] == 7
    # the same spec gives the same key, any changed loading key another one
    spec = sweep.jobs[0].config.data
    from dataclasses import replace
    assert data_cache_key(replace(spec)) == data_cache_key(spec)
    for change in ({"denoise_us": 100}, {"split_seed": 3}, {"n_train": 5}, {"directory": "elsewhere"}):
        assert data_cache_key(replace(spec, **change)) != data_cache_key(spec), change
