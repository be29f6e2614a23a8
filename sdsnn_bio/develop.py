"""The development loop: train, take the structural step, evaluate, record, resume.

Period ``e`` (0-based) is one Brian2 run ``R_e`` (see :mod:`sdsnn_bio.network`)
plus the layer-wide decisions taken in numpy after it:

* after ``R_0``: the spines are initialised (``r+ = max w``, ``r- = -max w``);
* from period ``S = structure_start`` on, for the pruned layers in forward
  order: importance from the live spine widths, the lowest-ranked units pruned
  (a cumulative target ``floor(N rho/100)`` with the history set), the dead-unit
  count and the neurotrophic rate update; the regeneration threshold
  ``g(e) = percentile(w, q(e))``.

``R_{e+1}`` applies these decisions at its first step (regeneration, pruning,
mask) and its test windows measure period ``e``'s accuracy on the masked
network, so the row of period ``e`` is complete after ``R_{e+1}``; a last,
evaluation-only run completes the final period.

Deviation from the reference code's order (spec 2.5), forced by running the
per-synapse rules as generated code in one run per period: the neuron ranking
and the dead counts of period ``e`` use the masks *before* that period's
regeneration, which is applied together with the pruning at the start of the
next run (the regeneration candidates are still tested on the masks and
weights of period ``e``, as in the reference code). A pruned neuron's
regenerated synapses therefore count in its importance and liveness one period
later than in the reference code.
"""

import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .config import ModelConfig
from .errors import RunError
from .metrics import accuracy, compression, rate_mse, synaptic_operations
from .structure import (
    dead_count,
    hidden_rate_update,
    init_spines,
    last_rate_update,
    live_counts,
    regeneration_percentile,
    regeneration_threshold,
    select_pruned,
    unit_importance,
)

__all__ = ["Development", "PeriodPlan", "RUN_FILES"]

RUN_FILES = {"config": "config.toml", "table": "periods.csv", "meta": "run.json",
             "summary": "summary.json", "snapshots": "snapshots"}

#: Columns of ``periods.csv`` that every run writes (plus per-layer columns
#: ``alive_<layer>``, ``rho_<layer>``, ``regenerated_<layer>``, ``zeros_<layer>``).
#: Weights beyond this magnitude (in units of the firing threshold) count as exploded.
WEIGHT_LIMIT = 1e3

BASE_COLUMNS = ["period", "test_accuracy", "train_accuracy", "train_loss", "compression",
                "synapse_sparsity", "spikes", "sops", "lr", "wall_s", "struct_s"]


@dataclass
class PeriodPlan:
    """Which samples each period's run sees (deterministic from the seed)."""

    n_train_total: int
    n_test_total: int
    train_per_period: int
    test_per_period: int
    seed: int

    def train_indices(self, period: int) -> np.ndarray:
        """Training samples of a period: consecutive chunks of per-pass permutations."""
        start = period * self.train_per_period
        out = []
        while len(out) < self.train_per_period:
            data_epoch, offset = divmod(start + len(out), self.n_train_total)
            perm = np.random.default_rng([self.seed, data_epoch]).permutation(self.n_train_total)
            take = min(self.train_per_period - len(out), self.n_train_total - offset)
            out.extend(perm[offset:offset + take])
        return np.asarray(out, dtype=int)

    def test_indices(self, period: int) -> np.ndarray:
        """Test samples of a period: a rotating slice of the test set."""
        start = (period * self.test_per_period) % self.n_test_total
        return (start + np.arange(self.test_per_period)) % self.n_test_total


@dataclass
class LayerState:
    """Numpy-side structural state of one pruned layer."""

    rho: float
    history: np.ndarray           # bool per unit: pruned at some period (H)
    prune_now: np.ndarray = None  # bool per unit: pruned at the end of this period
    dead: int = 0
    extra: dict = field(default_factory=dict)


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, text=True,
                              capture_output=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _remove_stale_builds(shm: Path):
    """Remove build folders in ``/dev/shm`` left by runs that were killed."""
    import shutil

    for d in shm.glob("sdsnn-build-*"):
        try:
            pid = int((d / "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _atomic_write(path: Path, data: bytes):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Development:
    """Train a network while it develops its structure, recording every period.

    Parameters
    ----------
    cfg : ModelConfig
    run_dir : path
        Output folder (created): config, per-period table, snapshots, figures.
    device : str
        ``runtime``, ``cpp_standalone`` or ``cuda_standalone``.
    dataset : Dataset, optional
        Data to use instead of loading ``cfg.data``.
    progress : callable, optional
        Called with one line of text per period.
    """

    def __init__(self, cfg: ModelConfig, run_dir, device: str = "cpp_standalone", dataset=None,
                 progress=None, threads: int = 1, keep_snapshots: int = 3, profile: bool = False):
        from .devices import check_device

        check_device(device)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = device
        self.progress = progress or (lambda line: None)
        self.threads = threads
        self.keep_snapshots = keep_snapshots
        self.profile = profile
        self.dataset = dataset
        self.rows = []
        self.state = {}
        self.start_period = 0
        self.timings = {"build_s": 0.0, "run_s": 0.0, "struct_s": 0.0}

    # ----------------------------------------------------------------- set-up
    def _load_data(self):
        from .data.encoding import stimulus_matrix
        from .data.mnist import load_dataset, subset

        d = self.cfg.data
        if self.dataset is None:
            if d.dataset == "mnist5k":
                kw = {"seed": d.split_seed}
            elif d.directory:
                kw = {"directory": d.directory}
            elif d.dataset == "mnist":
                raise RunError(f"{self.cfg.source}: data.directory is required for dataset 'mnist'")
            else:
                kw = {}
            self.dataset = load_dataset(d.dataset, **kw)
        ds = self.dataset
        if d.n_train or d.n_test:
            ds = subset(ds, n_train=d.n_train or None, n_test=d.n_test or None)
        self.dataset = ds
        shape = tuple(ds.x_train.shape[1:])
        if shape != tuple(self.cfg.input_shape):
            raise RunError(f"{self.cfg.source}: input_shape {list(self.cfg.input_shape)} does not match "
                           f"the data's image shape {list(shape)}")
        self.x_train = stimulus_matrix(ds.x_train)
        self.x_test = stimulus_matrix(ds.x_test)
        self.y_train = np.asarray(ds.y_train)
        self.y_test = np.asarray(ds.y_test)
        if self.y_train.max() >= self.cfg.n_classes:
            raise RunError(f"{self.cfg.source}: labels reach {self.y_train.max()} but the output layer "
                           f"has {self.cfg.n_classes} units")

    def _plan(self):
        sch = self.cfg.schedule
        n_test = sch.test_per_period or len(self.y_test)
        n_test = min(n_test, len(self.y_test))
        self.plan = PeriodPlan(len(self.y_train), len(self.y_test), sch.train_per_period, n_test, sch.seed)

    def _build(self):
        from .devices import set_up_device

        from .network import check_memory

        check_memory(self.cfg, self.plan.test_per_period + self.plan.train_per_period)
        build_dir = self._build_dir()
        set_up_device(self.device, str(build_dir), threads=self.threads)
        from .network import SDSNNNetwork

        t = time.time()
        self.net = SDSNNNetwork(self.cfg, self.plan.test_per_period, self.plan.train_per_period,
                                device=self.device, directory=str(build_dir), seed=self.cfg.schedule.seed,
                                profile=self.profile)
        self.timings["build_s"] += time.time() - t
        self.pruned_stages = [s for s in self.net.stages if s.learnable and s.spec.prune]
        for st in self.pruned_stages:
            self.state[st.spec.name] = LayerState(rho=st.spec.rho0, history=np.zeros(st.n_units, bool))

    def _build_dir(self) -> Path:
        """Folder of the standalone project and of its per-period result files.

        A standalone binary writes its whole state at the end of every period
        (tens of MB). On a memory file system (``/dev/shm``) this costs nothing;
        on this machine kind's disk it tripled the period time when two runs
        wrote in parallel. The snapshots, which a resume needs, stay in the run
        folder; the build folder is removed when the run ends.
        """
        shm = Path("/dev/shm")
        if self.device != "runtime" and shm.is_dir() and os.access(shm, os.W_OK):
            import tempfile

            _remove_stale_builds(shm)
            self._tmp_build = Path(tempfile.mkdtemp(prefix="sdsnn-build-", dir=shm))
            (self._tmp_build / "owner.pid").write_text(str(os.getpid()))
            return self._tmp_build
        self._tmp_build = None
        return self.run_dir / "build"

    def close(self):
        """Remove the temporary build folder (results are in the run folder)."""
        import shutil

        if getattr(self, "_tmp_build", None) is not None:
            shutil.rmtree(self._tmp_build, ignore_errors=True)
            self._tmp_build = None

    def _write_meta(self):
        import brian2

        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / RUN_FILES["snapshots"]).mkdir(exist_ok=True)
        _atomic_write(self.run_dir / RUN_FILES["config"], _to_toml(self.cfg.to_dict()).encode())
        meta = {
            "model": self.cfg.name, "source": self.cfg.source, "device": self.device,
            "seed": self.cfg.schedule.seed, "threads": self.threads, "sdsnn_bio": __version__,
            "brian2": brian2.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "git_revision": _git_revision(),
            "n_synapses": {s.spec.name: s.n_synapses for s in self.net.stages},
            "n_neurons": {s.spec.name: s.n_neurons for s in self.net.stages},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _atomic_write(self.run_dir / RUN_FILES["meta"], json.dumps(meta, indent=2).encode())

    # ------------------------------------------------------------ one period
    def _flags(self, e: int, learn: bool = True):
        cfg = self.cfg
        tr, sch, stc = cfg.training, cfg.schedule, cfg.structure
        decay_steps = e // tr.lr_decay_every if tr.lr_decay_every else 0
        lr = tr.lr * tr.lr_decay ** decay_steps
        structural = stc.enabled
        self.net.set_shared(
            lr=lr, adam_k0=e * (sch.train_per_period // tr.batch), learn_on=1.0 if learn else 0.0,
            struct_on=1.0 if (structural and learn and e >= 1) else 0.0,
            hard_mask=1.0 if stc.masks == "hard" else 0.0,
            bias_mask_on=1.0 if stc.mask_biases else 0.0,
        )
        for st in self.net.learnable_stages:
            if st.structural:
                self.net.set_stage_flags(st, clip_on=1.0 if (structural and e > sch.spine_streak) else 0.0)
        return lr

    def _apply_decisions(self, e_prev: int):
        """Decisions of period ``e_prev`` for the start of the next run."""
        cfg = self.cfg
        active = cfg.structure.enabled and e_prev >= cfg.schedule.structure_start
        for st in self.net.learnable_stages:
            if not st.structural:
                continue
            ls = self.state.get(st.spec.name)
            regen = active and ls is not None and cfg.structure.regeneration
            thr = ls.extra.get("regen_threshold", 0.0) if (regen and ls is not None) else 0.0
            self.net.set_stage_flags(st, regen_on=1.0 if regen else 0.0, regen_threshold=thr,
                                     mask_on=1.0 if active else 0.0)
            if ls is not None:
                now = ls.prune_now if (active and ls.prune_now is not None) else np.zeros(st.n_units, bool)
                self.net.set_next(st.group, "prune_now", now[st.unit_of_neuron].astype(float))

    def _structural_step(self, e: int):
        """Layer-wide decisions of period ``e`` from the state at the end of its run."""
        cfg = self.cfg
        net = self.net
        if not cfg.structure.enabled:
            return
        if e == 0:
            for st in net.learnable_stages:
                if not st.structural:
                    continue
                w = net.get(st.synapses, "w")
                sp = init_spines(w)
                for name in ("r_up", "r_lo", "c_up", "s_up", "c_lo", "s_lo", "c_ret", "a_prev",
                             "prev_up", "prev_lo", "prev_ret"):
                    net.set_next(st.synapses, name, getattr(sp, name))
        S = cfg.schedule.structure_start
        if e < S:
            return
        stc = cfg.structure
        stages = self.pruned_stages
        for idx, st in enumerate(stages):
            ls = self.state[st.spec.name]
            r_up = net.get(st.synapses, "r_up")
            r_lo = net.get(st.synapses, "r_lo")
            width = r_up + np.abs(r_lo)
            lo, hi = float(width.min()), float(width.max())
            imp = net.get(st.group, "imp")
            live = net.get(st.group, "live")
            # S_i = sum_j m_ij (width_ij - min)/(max - min); 0.5 per live synapse if max == min
            neuron_score = (imp - lo * live) / (hi - lo) if hi > lo else 0.5 * live
            score = unit_importance(neuron_score, st.unit_of_neuron, st.n_units)
            new = select_pruned(score, ls.rho, ls.history)
            ls.prune_now = new
            ls.history = ls.history | new
            live_unit = unit_importance(live, st.unit_of_neuron, st.n_units)
            live_unit = np.where(new, 0.0, live_unit)
            per_position = st.n_neurons // st.n_units
            ls.dead = dead_count(live_unit / per_position, st.spec.theta_dead)
            ls.extra["rho_used"] = ls.rho
            # neurotrophic update (spec 2.4), after this layer's pruning
            alive = st.n_units - ls.dead
            if st.spec.neurotrophic == "hidden":
                nxt = stages[idx + 1]
                # the target layer has not been pruned yet in this period: its previous count
                target_alive = nxt.n_units - self.state[nxt.spec.name].dead
                ls.rho = hidden_rate_update(ls.rho, e, alive, target_alive, start=S, tau=stc.rate_tau)
            else:
                ls.rho = last_rate_update(ls.rho, e, alive, cfg.n_classes, a=stc.rate_a, c=stc.rate_c,
                                          switch=stc.rate_switch, start=S)
            if stc.regeneration:
                q = regeneration_percentile(e, st.spec.regen_q0, start=S, growth=stc.regen_growth,
                                            cap=stc.regen_cap)
                ls.extra["regen_q"] = q
                ls.extra["regen_threshold"] = regeneration_threshold(net.get(st.synapses, "w"), q)

    def _structure_summary(self):
        """Per-layer alive units, zeros and regenerations from the current network state."""
        out = {}
        zeros, sizes, refs = {}, {}, {}
        for st in self.net.learnable_stages:
            name = st.spec.name
            conn = self.net.get(st.synapses, "connected")
            zeros[name] = int(np.sum(conn == 0))
            sizes[name] = st.n_synapses
            refs[name] = st.reference_params
            out[f"zeros_{name}"] = zeros[name]
            if st.spec.prune:
                live = live_counts(conn, st.post_index, st.n_neurons)
                live_unit = unit_importance(live, st.unit_of_neuron, st.n_units)
                per_position = st.n_neurons // st.n_units
                out[f"alive_{name}"] = st.n_units - dead_count(live_unit / per_position, st.spec.theta_dead)
                out[f"regenerated_{name}"] = int(self.net.get(st.group, "regrown").sum())
                out[f"rho_{name}"] = round(self.state[name].extra.get("rho_used", self.state[name].rho), 6)
        comp, sparsity = compression(zeros, sizes, refs)
        out["compression"] = comp
        out["synapse_sparsity"] = sparsity
        return out

    def _check_health(self, e: int):
        """Stop on NaN or exploding weights, or on a layer that stayed silent for a whole period.

        The run folder keeps the last good snapshot (period ``e - 1``); the error
        names the period and the layer.
        """
        net = self.net
        for st in net.learnable_stages:
            w = net.get(st.synapses, "w")
            bad = ~np.isfinite(w)
            if bad.any():
                raise RunError(f"{self.run_dir}: period {e}: {int(bad.sum())} weights of layer "
                               f"'{st.spec.name}' are NaN or infinite; the last good snapshot is kept")
            big = float(np.abs(w).max()) if w.size else 0.0
            if big > WEIGHT_LIMIT:
                raise RunError(f"{self.run_dir}: period {e}: weights of layer '{st.spec.name}' exploded "
                               f"(max |w| = {big:.3g} > {WEIGHT_LIMIT:g}); the last good snapshot is kept")
        # A network whose output stays silent for a whole period after the first one
        # has no prediction and, once its membranes sit at 0, no surrogate gradient either
        # (the first period may start silent: potentials in (0, 1) still carry gradient).
        out = net.stages[-1]
        if e >= 1 and net.get(out.group, "spike_total").sum() == 0:
            silent = [st.spec.name for st in net.stages
                      if st.kind == "spiking" and net.get(st.group, "spike_total").sum() == 0]
            raise RunError(f"{self.run_dir}: period {e}: the network is silent (no spike in layers "
                           f"{', '.join(silent)} for the whole period); raise training.weight_init or the "
                           "input rates; the last good snapshot is kept")

    def _activity(self):
        """Spikes and synaptic operations of the run just finished."""
        net = self.net
        groups = [net.input_group] + [s.group for s in net.stages]
        spikes = 0.0
        sops = 0.0
        for k, st in enumerate(net.stages):
            pre_group = groups[k]
            events = net.get(pre_group, "spike_total")
            if st.learnable:
                conn = net.get(st.synapses, "connected")
                deg = np.bincount(st.pre_index, weights=conn, minlength=len(events))
            else:
                deg = np.bincount(st.pre_index, minlength=len(events)).astype(float)
            sops += synaptic_operations(events, deg)
            if k == 0 or net.stages[k - 1].kind == "spiking":
                spikes += float(events.sum())
        spikes += float(net.get(net.stages[-1].group, "spike_total").sum())
        return spikes, sops

    # ------------------------------------------------------------- snapshots
    def snapshot(self, e: int):
        """Write the whole state after period ``e``'s run and decisions (atomic)."""
        net = self.net
        arrays = {}
        from .network import NEURON_CARRY, SYNAPSE_CARRY

        for st in net.learnable_stages:
            for var in NEURON_CARRY:
                arrays[f"{st.spec.name}/group/{var}"] = net.get(st.group, var)
            for var in SYNAPSE_CARRY:
                arrays[f"{st.spec.name}/syn/{var}"] = net.get(st.synapses, var)
        for (owner_name, var), (owner, value) in net._pending.items():
            if owner_name in ("stim", "target"):
                continue
            arrays[f"pending/{owner_name}/{var}"] = np.asarray(value)
        numpy_state = {name: {"rho": ls.rho, "history": ls.history.tolist(),
                              "prune_now": None if ls.prune_now is None else ls.prune_now.tolist(),
                              "dead": ls.dead, "extra": ls.extra}
                       for name, ls in self.state.items()}
        meta = {"period": e, "rows": self.rows, "state": numpy_state}
        snap_dir = self.run_dir / RUN_FILES["snapshots"]
        path = snap_dir / f"period_{e:04d}.npz"
        tmp = snap_dir / f".period_{e:04d}.npz.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        snaps = sorted(snap_dir.glob("period_*.npz"))
        for old in snaps[:-self.keep_snapshots]:
            old.unlink()

    def _restore(self):
        snaps = sorted((self.run_dir / RUN_FILES["snapshots"]).glob("period_*.npz"))
        if not snaps:
            return False
        with np.load(snaps[-1]) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            for key in z.files:
                if key == "__meta__":
                    continue
                parts = key.split("/")
                if parts[0] == "pending":
                    owner_name, var = parts[1], parts[2]
                    owner = next(o for o in self._owners() if o.name == owner_name)
                    self.net.set_next(owner, var, z[key])
                    continue
                st = self.net.stage(parts[0])
                owner = st.group if parts[1] == "group" else st.synapses
                self.net.set_next(owner, parts[2], z[key])
        for name, s in meta["state"].items():
            ls = self.state[name]
            ls.rho = s["rho"]
            ls.history = np.array(s["history"], bool)
            ls.prune_now = None if s["prune_now"] is None else np.array(s["prune_now"], bool)
            ls.dead = s["dead"]
            ls.extra = s["extra"]
        self.rows = meta["rows"]
        self.start_period = meta["period"] + 1
        return True

    def _owners(self):
        for st in self.net.stages:
            yield st.group
            if st.synapses is not None:
                yield st.synapses

    # -------------------------------------------------------------- the loop
    def _set_period_inputs(self, train_idx, test_idx, eval_idx=None):
        K = self.cfg.n_classes
        if eval_idx is not None:
            stim = self.x_test[eval_idx]
            labels = self.y_test[eval_idx]
        else:
            stim = np.concatenate([self.x_test[test_idx], self.x_train[train_idx]])
            labels = np.concatenate([self.y_test[test_idx], self.y_train[train_idx]])
        target = np.zeros((len(labels), K))
        target[np.arange(len(labels)), labels] = 1.0
        self.net.set_inputs(stim, target)

    def run(self, resume: bool = False) -> dict:
        """Run all periods (or the rest of them with ``resume``) and the final evaluation."""
        try:
            return self._run(resume)
        finally:
            self.close()

    def _run(self, resume: bool) -> dict:
        self._load_data()
        self._plan()
        if resume and not (self.run_dir / RUN_FILES["meta"]).exists():
            raise RunError(f"{self.run_dir}: nothing to resume (no {RUN_FILES['meta']})")
        self._build()
        if not (resume and self._restore()):
            self._write_meta()
        P = self.cfg.schedule.periods
        T = self.cfg.schedule.n_steps
        n_test = self.plan.test_per_period
        t_loop = time.time()
        pending_row = self.rows.pop() if (self.rows and "test_accuracy" not in self.rows[-1]) else None
        for e in range(self.start_period, P):
            t0 = time.time()
            lr = self._flags(e)
            if e > 0:
                self._apply_decisions(e - 1)
            test_idx = self.plan.test_indices(e)
            train_idx = self.plan.train_indices(e)
            self._set_period_inputs(train_idx, test_idx)
            counts = self.net.run()
            t_run = time.time() - t0
            self.timings["run_s"] += t_run
            test_acc = accuracy(counts[:n_test], self.y_test[test_idx])
            if pending_row is not None:
                pending_row["test_accuracy"] = test_acc
                pending_row.update(self._structure_summary())
                self._finish_row(pending_row)
            spikes, sops = self._activity()
            self._check_health(e)
            t1 = time.time()
            self._structural_step(e)
            t_struct = time.time() - t1
            self.timings["struct_s"] += t_struct
            train_counts = counts[n_test:]
            pending_row = {
                "period": e,
                "train_accuracy": accuracy(train_counts, self.y_train[train_idx]),
                "train_loss": rate_mse(train_counts, self.y_train[train_idx], T),
                "spikes": spikes, "sops": sops, "lr": lr, "wall_s": t_run + t_struct, "struct_s": t_struct,
            }
            if self.profile:
                pending_row["struct_code_s"] = self.net.structural_code_time()
            self.rows.append(pending_row)
            self.snapshot(e)
            self.rows.pop()
            self._report_progress(e, P, t_loop, pending_row["train_accuracy"])
        return self.evaluate(pending_row, passes=self.cfg.schedule.eval_passes)

    def _finish_row(self, row):
        self.rows.append(row)
        self._write_table()
        self._keep_best(row)

    def _keep_best(self, row):
        """Keep the snapshot of the period with the best test accuracy as ``snapshots/best.npz``."""
        import shutil

        acc = row.get("test_accuracy", float("nan"))
        best = max((r.get("test_accuracy", float("-inf")) for r in self.rows[:-1]), default=float("-inf"))
        snap_dir = self.run_dir / RUN_FILES["snapshots"]
        src = snap_dir / f"period_{row['period']:04d}.npz"
        if not (acc > best or not (snap_dir / "best.npz").exists()) or not src.exists():
            return
        tmp = snap_dir / ".best.npz.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, snap_dir / "best.npz")

    def _report_progress(self, e, P, t_loop, train_acc):
        """One line per period: its training accuracy, and the test accuracy and structure
        after the previous period (a period's test windows open the next period's run)."""
        done = e - self.start_period + 1
        left = (time.time() - t_loop) / done * (P - e - 1)
        last = self.rows[-1] if self.rows else {}
        alive = " ".join(f"{k[6:]} {last[k]}" for k in last if k.startswith("alive_"))
        acc = last.get("test_accuracy", float("nan"))
        test = f"test acc {100 * acc:5.1f}% (after period {e})" if np.isfinite(acc) else "test acc    - "
        self.progress(
            f"period {e + 1}/{P} | train acc {100 * train_acc:5.1f}% | {test} | compression "
            f"{100 * last.get('compression', 0.0):4.1f}% | alive {alive or '-'} | "
            f"time left {int(left // 60)}m{int(left % 60):02d}s"
        )

    def evaluate(self, pending_row=None, passes: int = 1) -> dict:
        """Evaluation-only runs over the whole test set on the final structure."""
        P = self.cfg.schedule.periods
        n_win = self.net.n_windows
        n_total = len(self.y_test)
        correct, seen = 0, 0
        first = True
        for p in range(passes):
            # a standalone run restarts its random stream, so each pass presents the test
            # images in another order: each image then meets other input noise
            order = np.arange(n_total) if p == 0 else \
                np.random.default_rng([self.cfg.schedule.seed, 7919, p]).permutation(n_total)
            for start in range(0, n_total, n_win):
                idx = order[(start + np.arange(n_win)) % n_total]
                self._flags(P, learn=False)
                if first:
                    self._apply_decisions(P - 1)
                else:
                    for st in self.net.learnable_stages:
                        if st.structural:
                            self.net.set_stage_flags(st, regen_on=0.0)
                        if st.spec.prune:
                            self.net.set_next(st.group, "prune_now", np.zeros(st.n_neurons))
                self._set_period_inputs(None, None, eval_idx=idx)
                counts = self.net.run()
                if first and pending_row is not None:
                    pending_row.update(self._structure_summary())
                first = False
                valid = min(n_win, n_total - start)
                idx = idx[:valid]
                correct += int(np.sum(np.argmax(counts[:valid], 1) == self.y_test[idx]))
                seen += valid
        final_acc = correct / seen
        if pending_row is not None:
            pending_row["test_accuracy"] = final_acc
            self._finish_row(pending_row)
        summary = {"model": self.cfg.name, "device": self.device, "periods": P,
                   "final_test_accuracy": final_acc, "test_windows": seen,
                   **{k: v for k, v in (self.rows[-1] if self.rows else {}).items()
                      if k.startswith(("compression", "synapse_sparsity", "alive_", "rho_"))},
                   "timings": self.timings}
        _atomic_write(self.run_dir / RUN_FILES["summary"], json.dumps(summary, indent=2).encode())
        return summary

    def _write_table(self):
        cols = list(BASE_COLUMNS)
        for row in self.rows:
            for k in row:
                if k not in cols:
                    cols.append(k)
        lines = [",".join(cols)]
        for row in self.rows:
            lines.append(",".join(_fmt(row.get(c, "")) for c in cols))
        _atomic_write(self.run_dir / RUN_FILES["table"], ("\n".join(lines) + "\n").encode())


def _fmt(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def _to_toml(d: dict, prefix: str = "") -> str:
    """Minimal TOML writer for a configuration dictionary."""
    scalars, tables, arrays = [], [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            arrays.append((k, v))
        else:
            scalars.append(f"{k} = {_toml_value(v)}")
    out = "\n".join(scalars) + ("\n" if scalars else "")
    for k, v in tables:
        out += f"\n[{prefix}{k}]\n" + _to_toml(v, prefix=f"{prefix}{k}.")
    for k, items in arrays:
        for item in items:
            out += f"\n[[{prefix}{k}]]\n" + _to_toml(item, prefix=f"{prefix}{k}.")
    return out


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))
