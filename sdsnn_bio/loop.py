"""The period loop: train, take the structural decisions, evaluate, record, resume.

Period ``e`` (0-based) is one run of the network plus the layer-wide
decisions taken after it (:class:`sdsnn_bio.structure.step.StructuralDevelopment`).
The run of period ``e + 1`` applies them at its first step, and its test
windows measure period ``e``'s accuracy on the masked network, so the row of
period ``e`` is complete after that run; a last, evaluation-only run
completes the final period.

The loop knows neither Brian2 nor file formats: it talks to the network
through :class:`sdsnn_bio.interface.DevelopingNetwork` and to the run folder
through :class:`sdsnn_bio.records.RunFolder`.

Network kinds: a configuration's ``kind`` selects the network. Training
models (no ``kind``, or ``"training"``) build :func:`sdsnn_bio.network.build_network`
and run the classification loop above. ``kind = "development"`` builds the
developmental network (:func:`sdsnn_bio.cortex.build_cortex`, a
:class:`sdsnn_bio.interface.SelfDrivenNetwork`): no data, labels or accuracy;
each period is one run, the network's own decisions (trophic deaths) and its
own table row (columns :data:`sdsnn_bio.cortex.COLUMNS`, with ``age_days``),
then the same structural history, snapshot and table writes as a training
run, and the same resume.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RunError
from .history import HistoryRecorder
from .energy import energy_summary
from .metrics import accuracy, layer_operations, period_activity, rate_mse, slice_rotation
from .records import RunFolder
from .structure.step import StructuralDevelopment

__all__ = ["Development", "PeriodPlan", "BASE_COLUMNS", "WEIGHT_LIMIT"]

#: Weights beyond this magnitude (in units of the firing threshold) count as exploded.
WEIGHT_LIMIT = 1e3
#: Stream of the training images' shifts (``data.augment_shift``), with the seed and the period.
AUGMENT_STREAM = 104729

#: Columns of the per-period table that every run writes (plus per-layer columns
#: ``alive_<layer>``, ``rho_<layer>``, ``regenerated_<layer>``, ``zeros_<layer>``).
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

    @property
    def rotation(self) -> int:
        """Periods whose rotating test slices cover the test set once (1: each period tests it all)."""
        return slice_rotation(self.n_test_total, self.test_per_period)

    def test_indices(self, period: int) -> np.ndarray:
        """Test samples of a period: a rotating slice of the test set."""
        start = (period * self.test_per_period) % self.n_test_total
        return (start + np.arange(self.test_per_period)) % self.n_test_total


def best_score(rows: list, rotation: int, whole_test_set: bool = False) -> float:
    """How good the last of ``rows`` is, for keeping the best snapshot: the mean test accuracy
    of the last ``rotation`` rows (one pass over the rotating test slices, fewer at the start),
    or the row's own accuracy where it was measured on the whole test set. A single slice's
    accuracy says as much about the slice as about the network (the main job's easiest 100
    digits read 100%)."""
    if whole_test_set:
        return rows[-1].get("test_accuracy", float("nan"))
    return float(np.mean([r.get("test_accuracy", np.nan) for r in rows[-max(1, rotation):]]))


def source_digest(root=None) -> str:
    """SHA-256 over the package's own source (every ``.py`` and ``.toml`` file under
    ``sdsnn_bio/``, by relative path and content, in path order): names the code a run was made
    with where no git revision can (a copy of the tree, an installed package) and tells apart
    two runs from one revision with uncommitted changes. ``root``: another copy of the package."""
    import hashlib

    root = Path(root) if root is not None else Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".toml") and p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def git_state(here=None) -> tuple:
    """``(revision, dirty)`` of the checkout holding the package (or the folder ``here``):
    ``("unknown", None)`` outside one (or without git); ``dirty`` whether the package's tracked
    files differ from that revision."""
    import subprocess

    here = Path(here) if here is not None else Path(__file__).parent

    def git(*args):
        return subprocess.run(["git", *args], cwd=here, text=True, capture_output=True, timeout=5)

    try:
        rev = git("rev-parse", "HEAD")
        if rev.returncode or not rev.stdout.strip():
            return "unknown", None
        status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
        return rev.stdout.strip(), (bool(status.stdout.strip()) if status.returncode == 0 else None)
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def provenance(cfg, device: str, threads: int, stages) -> dict:
    """What a run was made with: model, device, seed, versions, code (git revision, whether the
    package differed from it, digest of its source), machine, network size."""
    import platform
    import sys
    from importlib.metadata import version

    from . import __version__

    rev, dirty = git_state()
    return {
        "model": cfg.name, "source": cfg.source, "device": device, "seed": cfg.schedule.seed,
        "threads": threads, "sdsnn_bio": __version__, "brian2": version("brian2"), "numpy": np.__version__,
        "python": sys.version.split()[0], "platform": platform.platform(), "git_revision": rev,
        "git_dirty": dirty, "source_sha256": source_digest(),
        "n_synapses": {s.name: s.n_synapses for s in stages}, "n_neurons": {s.name: s.n_neurons for s in stages},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


class Development:
    """Train a network while it develops its structure, recording every period.

    Parameters
    ----------
    cfg : ModelConfig
    run_dir : path
        Output folder (created): config, per-period table, snapshots, structural
        history (:mod:`sdsnn_bio.history`), figures.
    device : str
        ``runtime``, ``cpp_standalone`` or ``cuda_standalone``.
    dataset : Dataset, optional
        Data to use instead of loading ``cfg.data``.
    progress : callable, optional
        Called with one line of text per period.
    keep_snapshots : int
        Period snapshots kept besides the best period's (resume needs one).
    """

    def __init__(self, cfg, run_dir, device: str = "cpp_standalone", dataset=None, progress=None,
                 threads: int = 1, keep_snapshots: int = 1, profile: bool = False):
        from .devices import check_device

        check_device(device)
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.folder = RunFolder(self.run_dir)
        self.device = device
        self.progress = progress or (lambda line: None)
        self.threads = threads
        self.keep_snapshots = keep_snapshots
        self.profile = profile
        self.dataset = dataset
        self.rows = []
        self.start_period = 0
        self.timings = {"build_s": 0.0, "run_s": 0.0, "struct_s": 0.0}

    @property
    def kind(self) -> str:
        """The configuration's network kind: ``"training"`` or ``"development"``."""
        return getattr(self.cfg, "kind", "training")

    # ----------------------------------------------------------------- set-up
    def _prepare_development(self, resume: bool):
        """Set-up of a developmental run: build the network, then start or restore the folder."""
        from .cortex import build_cortex

        self._build(resume, lambda: build_cortex(self.cfg, self.device, self.run_dir, threads=self.threads,
                                                 profile=self.profile))
        self._open_folder(resume, kind=self.kind, time_axis=self.net.time_axis())

    def _build(self, resume: bool, build):
        """Check there is something to resume, then build (``build()``) and compile the network."""
        if resume and not self.folder.has_meta():
            raise RunError(f"{self.run_dir}: nothing to resume (no {self.folder.meta.name})")
        t = time.time()
        self.net = build()
        self.net.compile()
        self.timings["build_s"] += time.time() - t
        self.progress(f"sdsnn-bio: network built in {time.time() - t:.1f} s")
        why = getattr(getattr(self.net, "build_folder", None), "on_disk_because", None)
        if why:
            self.progress(f"sdsnn-bio: build folder on disk, {self.net.build_folder.path}: {why}")

    def _open_folder(self, resume: bool, **meta):
        """Restore the run folder's last snapshot (``resume``), or start the folder: history,
        configuration and provenance (plus ``meta``)."""
        self.history = HistoryRecorder(self.folder, self.net.stages, self.cfg.schedule.periods)
        if not (resume and self._restore()):
            self.history.start()
            self.folder.create()
            self.folder.write_config(self.cfg.to_dict())
            self.folder.write_meta({**provenance(self.cfg, self.device, self.threads, self.net.stages), **meta})

    def _prepare(self, resume: bool):
        from .data.registry import prepare_inputs
        from .network import build_network

        self.data = prepare_inputs(self.cfg, self.dataset)
        sch = self.cfg.schedule
        n_test = min(sch.test_per_period or len(self.data.y_test), len(self.data.y_test))
        self.plan = PeriodPlan(len(self.data.y_train), len(self.data.y_test), sch.train_per_period, n_test,
                               sch.seed)
        self._build(resume, lambda: build_network(self.cfg, n_test, sch.train_per_period, self.device,
                                                  self.run_dir, threads=self.threads, profile=self.profile))
        self.structure = StructuralDevelopment(self.cfg, self.net.stages)
        self._open_folder(resume)

    def _configure(self, e: int, learn: bool = True, decisions_of=None, repeat: bool = False):
        period = self.structure.period_settings(e, learn=learn)
        stages = self.structure.stage_settings(e, decisions_of=decisions_of, repeat=repeat)
        self.net.configure(period, stages)
        return period.lr

    def _set_inputs(self, test_idx, train_idx=None, period: int = 0):
        d = self.data
        if train_idx is None:
            stim, labels = d.x_test[test_idx], d.y_test[test_idx]
        else:
            train = d.x_train[train_idx]
            shift = self.cfg.data.augment_shift
            if shift:
                # the period's own stream: a resumed run shifts each image as the uninterrupted one
                from .data.encoding import shift_images

                rng = np.random.default_rng([self.cfg.schedule.seed, AUGMENT_STREAM, period])
                train = shift_images(train, self.cfg.input_shape, shift, rng)
            stim = np.concatenate([d.x_test[test_idx], train])
            labels = np.concatenate([d.y_test[test_idx], d.y_train[train_idx]])
        target = np.zeros((len(labels), self.cfg.n_classes))
        target[np.arange(len(labels)), labels] = 1.0
        self.net.set_inputs(stim, target)

    # -------------------------------------------------------------- the loop
    def run(self, resume: bool = False) -> dict:
        """Run all periods (or the rest of them with ``resume``) and the final evaluation."""
        try:
            if self.kind != "training":
                self._prepare_development(resume)
                return self._loop_development()
            self._prepare(resume)
            return self._loop()
        finally:
            if getattr(self, "net", None) is not None:
                self.net.close()

    def _loop(self) -> dict:
        P, T = self.cfg.schedule.periods, self.cfg.schedule.n_steps
        n_test = self.plan.test_per_period
        y_train, y_test = self.data.y_train, self.data.y_test
        t_loop = time.time()
        pending_row = self.rows.pop() if (self.rows and "test_accuracy" not in self.rows[-1]) else None
        for e in range(self.start_period, P):
            t0 = time.time()
            lr = self._configure(e, decisions_of=e - 1 if e > 0 else None)
            test_idx, train_idx = self.plan.test_indices(e), self.plan.train_indices(e)
            self._set_inputs(test_idx, train_idx, period=e)
            counts = self.net.run()
            t_run = time.time() - t0
            self.timings["run_s"] += t_run
            if pending_row is not None:
                pending_row["test_accuracy"] = accuracy(counts[:n_test], y_test[test_idx])
                pending_row.update(self.structure.summary(self.net))
                self._finish_row(pending_row)
            input_events, events = self.net.events()
            spikes, sops = period_activity(self.net.stages, input_events, events,
                                           lambda name: self.net.structural_state(name).connected)
            self._check_health(e)
            silent = self._silent_outputs(e, events[-1])
            t1 = time.time()
            self.structure.decide(e, self.net)
            t_struct = time.time() - t1
            self.timings["struct_s"] += t_struct
            train_counts = counts[n_test:]
            pending_row = {
                "period": e, "train_accuracy": accuracy(train_counts, y_train[train_idx]),
                "train_loss": rate_mse(train_counts, y_train[train_idx], T),
                "spikes": spikes, "sops": sops, "lr": lr, "wall_s": t_run + t_struct, "struct_s": t_struct,
                "sops_per_sample": sops / self.net.n_windows, "silent_outputs": silent,
            }
            if self.profile:
                pending_row["struct_code_s"] = self.net.structural_code_time()
            self._snapshot(e, pending_row)
            self._report_progress(e, P, t_loop, pending_row["train_accuracy"])
        return self.evaluate(pending_row, passes=self.cfg.schedule.eval_passes)

    def _loop_development(self) -> dict:
        """Periods of a developmental network: run, decide, record (row complete after the period)."""
        P = self.cfg.schedule.periods
        t_loop = time.time()
        for e in range(self.start_period, P):
            t0 = time.time()
            self.net.begin_period(e)
            self.net.run()
            t_run = time.time() - t0
            self.timings["run_s"] += t_run
            self._check_development(e)
            t1 = time.time()
            self.net.decide(e)
            t_struct = time.time() - t1
            self.timings["struct_s"] += t_struct
            row = self.net.period_row(e)
            row.update(wall_s=t_run + t_struct, struct_s=t_struct)
            self._snapshot(e, row)
            self._finish_row(row)
            done = e - self.start_period + 1
            left = (time.time() - t_loop) / done * (P - e - 1)
            self.progress(f"period {e + 1}/{P} | age {row['age_days']:.1f} d | alive {row['n_alive']} | "
                          f"spines {row['spines']} ({100 * row['spine_density']:.1f}% of sites) | died "
                          f"{row['died']} | rates E {row['rate_exc_hz']:.1f} Hz I {row['rate_inh_hz']:.1f} Hz | "
                          f"time left {int(left // 60)}m{int(left % 60):02d}s")
        if not (self.folder.history_periods() and self.folder.history_periods()[-1] == P):
            self.history.record(P, self.net.state_arrays(), final=True)
        last = self.rows[-1] if self.rows else {}
        summary = {"model": self.cfg.name, "kind": self.kind, "device": self.device, "periods": P,
                   "final_age_days": self.cfg.age_at_end(P - 1),
                   **{k: last[k] for k in ("n_alive", "n_alive_exc", "n_alive_inh", "spines", "spine_density",
                                           "vol_median_um3") if k in last},
                   "neurons_died_fraction": 1.0 - last.get("n_alive", 0) / self.cfg.n_neurons,
                   "time_axis": self.net.time_axis(), "timings": self.timings}
        self.folder.write_summary(summary)
        return summary

    def _check_development(self, e: int):
        """Stop on NaN spine volumes (the last good snapshot is kept)."""
        vol = self.net.structural_state("exc").upper
        bad = ~np.isfinite(vol)
        if bad.any():
            raise RunError(f"{self.run_dir}: period {e}: {int(bad.sum())} spine volumes are NaN or infinite; "
                           "the last good snapshot is kept")

    def _class_names(self, k: int) -> tuple:
        from .data import registry

        names = tuple(getattr(self.dataset, "classes", None) or registry.get(self.cfg.data.dataset).classes)
        return names if len(names) == k else tuple(str(c) for c in range(k))

    def evaluate(self, pending_row=None, passes: int = 1) -> dict:
        """Evaluation-only runs over the whole test set on the final structure."""
        P = self.cfg.schedule.periods
        n_win, n_total = self.net.n_windows, len(self.data.y_test)
        correct = seen = 0
        K = self.cfg.n_classes
        confusion = np.zeros((K, K), np.int64)      # rows: the label, columns: the prediction
        ops, windows = np.zeros(len(self.net.stages)), 0
        first = True
        for p in range(passes):
            # a standalone run restarts its random stream, so each pass presents the test
            # images in another order: each image then meets other input noise
            order = np.arange(n_total) if p == 0 else \
                np.random.default_rng([self.cfg.schedule.seed, 7919, p]).permutation(n_total)
            for start in range(0, n_total, n_win):
                idx = order[(start + np.arange(n_win)) % n_total]
                self._configure(P, learn=False, decisions_of=P - 1 if first else None, repeat=not first)
                self._set_inputs(idx)
                counts = self.net.run()
                # synaptic operations of the final structure, every window a test sample
                ops += layer_operations(self.net.stages, *self.net.events(),
                                        lambda name: self.net.structural_state(name).connected)
                windows += n_win
                if first and pending_row is not None:
                    pending_row.update(self.structure.summary(self.net))
                    # the final structure (the last period's decisions applied)
                    self.history.record(P, self.net.state_arrays(), final=True)
                first = False
                valid = min(n_win, n_total - start)
                predicted, label = np.argmax(counts[:valid], 1), self.data.y_test[idx[:valid]]
                np.add.at(confusion, (label, predicted), 1)
                correct += int(np.sum(predicted == label))
                seen += valid
        final_acc = correct / seen
        if pending_row is not None:
            pending_row["test_accuracy"] = final_acc
            self._finish_row(pending_row, whole_test_set=True)
        summary = {"model": self.cfg.name, "device": self.device, "periods": P,
                   "final_test_accuracy": final_acc, "test_windows": seen,
                   "confusion": {"classes": list(self._class_names(K)), "counts": confusion.tolist()},
                   **{k: v for k, v in (self.rows[-1] if self.rows else {}).items()
                      if k.startswith(("compression", "synapse_sparsity", "alive_", "rho_"))},
                   "energy": energy_summary(self.net.stages, ops / max(windows, 1)),
                   "timings": self.timings}
        self.folder.write_summary(summary)
        return summary

    def _silent_outputs(self, e: int, output_events) -> int:
        """The output units that did not spike in period ``e``'s run (its test and training
        windows); a line when that set changes. Such a unit's class is never predicted, and
        while its membrane stays outside the surrogate's window (below 0 with the default
        rectangular one) it gets no gradient and can stay silent for many periods (seen on
        Fashion-MNIST: README, Data)."""
        silent = tuple(int(k) for k in np.flatnonzero(np.asarray(output_events) == 0))
        before = getattr(self, "_silent", ())
        if silent != before:
            names = self._class_names(self.cfg.n_classes)

            def unit(k):
                return str(k) if names[k] == str(k) else f"{k} ({names[k]})"
            named = ", ".join(map(unit, silent)) or "none"
            back = [k for k in before if k not in silent]
            again = f"; spiking again: {', '.join(map(unit, back))}" if back else ""
            self.progress(f"silent output units in period {e + 1}: {named}{again}")
        self._silent = silent
        return len(silent)

    def _check_health(self, e: int):
        """Stop on NaN or exploding weights, or on a network that stayed silent for a whole period.

        The run folder keeps the last good snapshot (period ``e - 1``); the error
        names the period and the layer.
        """
        for st in (s for s in self.net.stages if s.learnable):
            w = self.net.weights(st.name)
            bad = ~np.isfinite(w)
            if bad.any():
                raise RunError(f"{self.run_dir}: period {e}: {int(bad.sum())} weights of layer "
                               f"'{st.name}' are NaN or infinite; the last good snapshot is kept")
            big = float(np.abs(w).max()) if w.size else 0.0
            if big > WEIGHT_LIMIT:
                raise RunError(f"{self.run_dir}: period {e}: weights of layer '{st.name}' exploded "
                               f"(max |w| = {big:.3g} > {WEIGHT_LIMIT:g}); the last good snapshot is kept")
        # A network whose output stays silent for a whole period after the first one has
        # no prediction and, once its membranes sit at 0, no surrogate gradient either
        # (the first period may start silent: potentials in (0, 1) still carry gradient).
        _, events = self.net.events()
        if e >= 1 and events[-1].sum() == 0:
            silent = [st.name for st, ev in zip(self.net.stages, events) if st.kind == "spiking" and ev.sum() == 0]
            raise RunError(f"{self.run_dir}: period {e}: the network is silent (no spike in layers "
                           f"{', '.join(silent)} for the whole period); raise training.weight_init or the "
                           "input rates; the last good snapshot is kept")

    # ------------------------------------------------------------- records
    def _snapshot(self, e: int, pending_row: dict):
        """Write the structural history of period ``e``, then the whole state after its run and
        decisions (atomic; a snapshot of ``e`` implies the history of ``e``)."""
        state = self.structure.to_dict() if self.kind == "training" else {}
        meta = {"period": e, "rows": self.rows + [pending_row], "state": state}
        arrays = self.net.state_arrays()
        self.history.record(e, arrays)
        self.folder.save_snapshot(e, arrays, meta, keep=self.keep_snapshots)

    def _restore(self) -> bool:
        self.folder.clean_temporary()
        if not self.folder.snapshot_periods():
            return False
        snap = self.folder.load_snapshot("last")
        self.net.restore_state(snap.arrays)
        if self.kind == "training":
            self.structure.load_dict(snap.meta["state"])
        self.rows = snap.meta["rows"]
        self.start_period = snap.meta["period"] + 1
        self.history.resume(snap.meta["period"])
        return True

    def _finish_row(self, row, whole_test_set: bool = False):
        """Append a completed row, rewrite the table, and keep the best period's snapshot
        (:func:`best_score`; ``whole_test_set``: the row's accuracy is the final evaluation's)."""
        self.rows.append(row)
        if self.kind != "training":
            from .cortex import COLUMNS

            self.folder.write_table(self.rows, COLUMNS)
            return
        self.folder.write_table(self.rows, BASE_COLUMNS)
        score = best_score(self.rows, self.plan.rotation, whole_test_set=whole_test_set)
        best = max((best_score(self.rows[:k], self.plan.rotation) for k in range(1, len(self.rows))),
                   default=float("-inf"))
        if (score > best or not self.folder.has_best()) and row["period"] in self.folder.snapshot_periods():
            self.folder.mark_best(row["period"])

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
