"""The developmental network: excitatory and inhibitory conductance-based LIF neurons whose
excitatory synapses carry spines with volumes (Brian2, any device).

One run of :class:`CortexNetwork` is one period of development
(:mod:`sdsnn_bio.cortex.config`, time axis): ``time.activity_s`` seconds of
spontaneous (and, from ``drive.pattern_start_days``, patterned) activity at
``time.dt_ms``, during which the spine step of every potential excitatory
synapse (:data:`~sdsnn_bio.cortex.rules.SPINE_STEP_CODE`) runs
``time.struct_steps`` times on the synapses' slower structural clock. Between
periods, :meth:`CortexNetwork.decide` takes the neuron-level decisions in numpy:
trophic deaths (:func:`~sdsnn_bio.cortex.rules.trophic_deaths`) and, where
switched on, SD-SNN's importance pruning with its neurotrophic rate; they apply
at the next run's start. SD-SNN's per-synapse rules, where switched on, run in
generated code: the spine constraint's interval update and regeneration once a
period at its start (``period_start``), the constraint's clip after every
spine step (docs/development.md, "SD-SNN's rules in biological time").

Brian2 objects: the neurons ``cortex`` (excitatory first, then inhibitory),
the spine-bearing synapses ``syn_exc`` (every potential site, ``connected``
marks a present spine; weight ``g_per_volume x vol``), the inhibitory shaft
synapses ``syn_inh``, the Poisson drive and the pattern sources ``patterns``.
State carried from run to run (standalone runs hand it over as files,
:class:`~sdsnn_bio.runner.PeriodRunner`): membrane and conductances, traces,
alive flags, every spine variable.

The loop (:mod:`sdsnn_bio.loop`) sees one recorded stage, ``exc``: the
spine-bearing synapses as a :class:`~sdsnn_bio.geometry.StageGeometry` whose
"spine width" ``r_up + |r_lo|`` is the spine volume (``r_up = vol``,
``r_lo = 0``), so the structural history keeps the masks (which sites hold a
spine, every period) and the volume distributions.
"""

import os

import numpy as np

from ..errors import RunError
from ..geometry import StageGeometry
from ..interface import StructuralState
from . import rules

__all__ = ["CortexNetwork", "build_cortex", "cortex_stages", "COLUMNS"]

#: Columns of the per-period table of a developmental run (in this order).
COLUMNS = ["period", "age_days", "n_alive", "n_alive_exc", "n_alive_inh", "died", "pruned", "spines",
           "spine_density", "spine_density_alive", "spines_per_exc", "stable_fraction", "formed", "eliminated", "vol_median_um3",
           "vol_mean_um3", "logvol_mean", "logvol_sd", "rate_exc_hz", "rate_inh_hz", "wall_s", "struct_s"]

_NEURON_EQS = """
dv/dt = (g_l*(e_l - v) + ge*(e_e - v) + gi*(e_i - v))/c_m : volt (unless refractory)
dge/dt = -ge/tau_e : siemens
dgi/dt = -gi/tau_i : siemens
dapre/dt = -apre/tau_pair : 1
alive : 1
nspk : 1
crowd : 1
"""

_SPINE_EQS = """
vol : 1
connected : 1
stable : 1
rs : 1
xc : 1
age0 : 1 (shared)
"""

NEURON_CARRY = ("v", "ge", "gi", "apre", "alive")
EXC_CARRY = ("vol", "connected", "stable", "rs", "xc")
INH_CARRY = ("connected",)
#: Per-site state of SD-SNN's rules, where switched on (``[sdsnn]``), and its key prefix in the
#: snapshots (``exc/syn/r_up`` there is the history's view, the volume).
REGEN_CARRY = ("xp", "regen_k", "regen_prev")


def _connectivity(cfg):
    """Sites and initial state, drawn from the seed (no Brian2)."""
    net = cfg.network
    rng = np.random.default_rng([cfg.schedule.seed, 1])
    n = cfg.n_neurons
    e_pre, e_post = rules.potential_sites(net.n_exc, n, net.p_exc, rng)
    i_pre, i_post = rules.inhibitory_sites(net.n_exc, n, net.p_inh, rng)
    return e_pre, e_post, i_pre, i_post, rng


def cortex_stages(cfg, sites=None) -> list:
    """The recorded stage ``exc`` of a developmental configuration (no Brian2)."""
    from ..config import LayerSpec

    e_pre, e_post = (sites if sites is not None else _connectivity(cfg)[:2])
    n = cfg.n_neurons
    spec = LayerSpec(name="exc", type="dense", units=n, spines=True, prune=False)
    return [StageGeometry(spec=spec, index=1, in_shape=(1, 1, cfg.network.n_exc), out_shape=(1, 1, n),
                          kind="spiking", pre_kind="spiking", n_neurons=n, pre_index=e_pre.astype(np.int64),
                          post_index=e_post.astype(np.int64), unit_of_neuron=np.arange(n), n_units=n,
                          fan_in=int(np.bincount(e_post, minlength=n).max()), reference_params=len(e_pre))]


class CortexNetwork:
    """A developmental E/I network on one device (see the module documentation).

    Parameters
    ----------
    cfg : CortexConfig
    device : str
        ``runtime``, ``cpp_standalone`` or ``cuda_standalone`` (already set up).
    directory : str
        Build folder of a standalone project.
    """

    n_windows = 0

    def __init__(self, cfg, device: str, directory: str, profile: bool = False):
        import brian2 as b2

        from ..runner import PeriodRunner

        self.cfg = cfg
        self.standalone = device != "runtime"
        neu, drv, sp, tm = cfg.neuron, cfg.drive, cfg.spines, cfg.time
        n, n_exc = cfg.n_neurons, cfg.network.n_exc
        self.n, self.n_exc = n, n_exc
        self.is_inh = np.arange(n) >= n_exc
        e_pre, e_post, i_pre, i_post, rng = _connectivity(cfg)
        self.e_pre, self.e_post, self.i_pre, self.i_post = e_pre, e_post, i_pre, i_post
        self.stages = cortex_stages(cfg, (e_pre, e_post))
        b2.defaultclock.dt = tm.dt_ms * b2.ms
        b2.seed(cfg.schedule.seed)
        self.duration = tm.activity_s * b2.second
        step_s = tm.activity_s / tm.struct_steps
        ms, mV, nS, pF = b2.ms, b2.mV, b2.nS, b2.pF
        ns = {"g_l": neu.g_l_ns * nS, "e_l": neu.e_l_mv * mV, "e_e": neu.e_e_mv * mV, "e_i": neu.e_i_mv * mV,
              "c_m": neu.c_m_pf * pF, "tau_e": neu.tau_e_ms * ms, "tau_i": neu.tau_i_ms * ms,
              "tau_pair": neu.tau_pair_ms * ms, "v_th": neu.v_th_mv * mV, "v_reset": neu.v_reset_mv * mV,
              "g_vol": neu.g_per_volume_ns * nS, "g_inh": neu.g_inh_ns * nS, "g_pat": drv.g_pattern_ns * nS,
              "r_pat": drv.pattern_rate_hz * b2.Hz, "pattern_dur": drv.pattern_ms * ms,
              "n_pat": drv.n_patterns, **self.step_namespace()}
        self.namespace = ns
        G = b2.NeuronGroup(n, _NEURON_EQS, threshold="v > v_th and alive > 0.5",
                           reset="v = v_reset\napre += 1\nnspk += 1", refractory=neu.t_ref_ms * ms,
                           method="euler", namespace=ns, name="cortex")
        G.v = "e_l + rand()*(v_th - e_l)"
        G.alive = 1.0
        G.crowd = 1.0
        self.n_sites_post = np.bincount(e_post, minlength=n)
        sd = cfg.sdsnn
        spine_eqs, self.exc_extra = _SPINE_EQS, []
        if sd.spine_constraint:
            from ..structure.constraint import CLIP_FLAG_EQS, SPINE_EQS, SPINE_FIELDS

            spine_eqs += SPINE_EQS + CLIP_FLAG_EQS
            self.exc_extra += [("exc/constraint", f) for f in SPINE_FIELDS]
            ns.update(n_streak=float(sd.constraint_n_streak), shrink=sd.constraint_shrink)
        if sd.regeneration:
            from ..structure.regeneration import REGENERATION_EQS, REGENERATION_FLAG_EQS

            spine_eqs += "xp : 1\n" + REGENERATION_EQS + REGENERATION_FLAG_EQS
            self.exc_extra += [("exc/regen", f) for f in REGEN_CARRY]
            ns.update(regen_M=float(sd.regen_max_streak))
        S = b2.Synapses(G[:n_exc], G, spine_eqs, on_pre="ge_post += g_vol*vol*connected",
                        on_post="xc += apre_pre", namespace=ns, name="syn_exc")
        S.connect(i=e_pre, j=e_post)
        init = rules.initial_spines(len(e_pre), sp, rng)
        for k, v in init.items():
            S.variables[k].set_value(v)
        # a neutral pairing count for the step at t = 0 of the first run
        S.xc = ns["a_norm"]
        S.age0 = tm.age_start_days
        S.run_regularly(rules.step_code(sd.spine_constraint, sd.regeneration), dt=step_s * b2.second,
                        when="start", name="spine_step")
        if sd.spine_constraint or sd.regeneration:
            # once a period, at its start (before its first spine step): the constraint's interval
            # update from the volumes at the end of the last period, then regeneration
            code = (rules.constraint_update_code() if sd.spine_constraint else "") + \
                (rules.regeneration_site_code() if sd.regeneration else "")
            S.run_regularly(code, dt=self.duration, when="start", order=-1, name="period_start")
        I = b2.Synapses(G[n_exc:], G, "connected : 1", on_pre="gi_post += g_inh*connected", namespace=ns,
                        name="syn_inh")
        I.connect(i=i_pre, j=i_post)
        I.connected = 1.0
        objects = [G, S, I]
        if drv.n_ext > 0 and drv.rate_hz > 0:
            objects.append(b2.PoissonInput(G, "ge", N=drv.n_ext, rate=drv.rate_hz * b2.Hz,
                                           weight=drv.g_ext_ns * nS))
        P = b2.NeuronGroup(n_exc, "pattern_on : 1 (shared)",
                           threshold="pattern_on > 0.5 and (i % n_pat) == (int(t/pattern_dur) % n_pat) "
                                     "and rand() < r_pat*dt", namespace=ns, name="patterns")
        PS = b2.Synapses(P, G, on_pre="ge_post += g_pat", namespace=ns, name="syn_pattern")
        PS.connect(j="i")
        objects += [P, PS]
        self.G, self.S, self.I, self.P = G, S, I, P
        self.net = b2.Network(objects)
        carry = [(G, NEURON_CARRY), (S, EXC_CARRY + tuple(f for _, f in self.exc_extra)), (I, INH_CARRY)]
        self.runner = PeriodRunner(self.net, self.duration, self.standalone, directory, carry=carry,
                                   seed=cfg.schedule.seed, profile=profile)
        # decisions and their state (numpy, between periods)
        self.low_days = np.zeros(n)
        self.death_age = np.full(n, np.nan)
        self.death_cause = np.zeros(n, np.int8)      # 1 trophic, 2 importance pruning
        # SD-SNN's rates between periods: the pruning rate rho (%), the next period's regeneration
        # switch and threshold
        self.rho = float(sd.prune_rate)
        self.regen_next = np.zeros(2)
        self._last = {}
        self._prev_conn = None
        self._ran = False
        self._initial = {k: v.copy() for k, v in init.items()}

    # ---------------------------------------------------------- code
    def step_namespace(self) -> dict:
        """Constants of the spine step (:data:`~sdsnn_bio.cortex.rules.SPINE_STEP_CODE`)."""
        sp, tm = self.cfg.spines, self.cfg.time
        dd = self.cfg.days_per_step
        step_s = tm.activity_s / tm.struct_steps
        return {"mu_t": sp.mu_t, "mu_s": sp.mu_s, "theta_t": sp.theta_t, "theta_s": sp.theta_s,
                "sigma_t": sp.sigma_t, "sigma_s": sp.sigma_s, "v_min": sp.v_min, "v_new": sp.v_new,
                "v_cons": sp.v_consolidate, "k_cons": sp.k_consolidate, "f_birth": sp.f_birth,
                "f_adult": sp.f_adult, "tau_f": sp.tau_formation, "age_f": sp.formation_end_days,
                "w_f": sp.formation_end_width_days, "tau_age": sp.formation_aging_days, "eta_act": sp.eta_act,
                "eta_comp": sp.eta_comp, "a_norm": sp.a_ref_hz * step_s, "a_cap": sp.a_cap, "dd": dd, "sqrt_dd": float(np.sqrt(dd)),
                "days_per_s": tm.days_per_period / tm.activity_s}

    # ------------------------------------------------------ runs
    def get(self, owner, var):
        return self.runner.get(owner, var)

    def compile(self):
        """Generate and compile the standalone project (runtime compiles as it runs)."""
        if self.standalone:
            self.runner.build()

    def begin_period(self, e: int):
        """Settings of period ``e``'s run: the age at its start and the drive of that age."""
        age0 = self.cfg.time.age_start_days + e * self.cfg.time.days_per_period
        self.runner.set_shared(self.S, "age0", float(age0))
        self.runner.set_shared(self.P, "pattern_on", float(age0 >= self.cfg.drive.pattern_start_days))
        sd = self.cfg.sdsnn
        if sd.spine_constraint:
            from ..structure.constraint import constraint_active

            self.runner.set_shared(self.S, "clip_on", float(constraint_active(e, sd.constraint_n_streak)))
        if sd.regeneration:
            self.runner.set_shared(self.S, "regen_on", float(self.regen_next[0]))
            self.runner.set_shared(self.S, "regen_threshold", float(self.regen_next[1]))
        if not self.standalone:
            # a standalone run starts from the built values: no spike counted, none recent
            self.G.nspk = 0.0
            self.G.variables["lastspike"].set_value(np.full(self.n, -1e4))
            self.G.variables["not_refractory"].set_value(np.ones(self.n, bool))
        self._prev_conn = self._connected_now()
        if self.cfg.spines.eta_comp > 0:      # crowding of each dendrite at the period's start
            vol = self._value(self.S, "vol")
            self.runner.set_next(self.G, "crowd", rules.crowding(vol, self._prev_conn, self.e_post, self.n_sites_post,
                                                                 self.cfg.spines.vol_per_site, self.n))

    def _value(self, owner, var):
        """A spine variable as the next run starts from it (pending decisions, or the initial
        state before a standalone project's first run, or the last run's value)."""
        pend = self.runner.pending().get((owner.name, var))
        if pend is not None:
            return np.asarray(pend)
        if self.standalone and not self._ran:
            return self._initial[var]
        return self.get(owner, var)

    def _connected_now(self):
        return self._value(self.S, "connected")

    def run(self) -> np.ndarray:
        """Run one period; returns the spike counts per neuron."""
        self._last = {}
        self.runner.run()
        self._ran = True
        counts = self.get(self.G, "nspk")
        self._last["counts"] = counts
        return counts

    # ------------------------------------------------ decisions
    def decide(self, e: int) -> dict:
        """Trophic deaths (and importance pruning) after period ``e``; applied at the next run.

        Returns ``{"died": indices, "pruned": indices}``.
        """
        cfg, tr = self.cfg, self.cfg.trophic
        age = cfg.age_at_end(e)
        alive = self.get(self.G, "alive")
        rate = self._last["counts"] / cfg.time.activity_s
        vol, conn = self.get(self.S, "vol"), self.get(self.S, "connected")
        iconn = self.get(self.I, "connected")
        died = np.zeros(self.n, bool)
        if tr.enabled:
            pre = np.concatenate([self.e_pre, self.i_pre + self.n_exc])
            post = np.concatenate([self.e_post, self.i_post])
            g = np.concatenate([cfg.neuron.g_per_volume_ns * vol * conn, cfg.neuron.g_inh_ns * iconn])
            uptake = rules.trophic_uptake(rate, alive, pre, post, g, self.n)
            self.low_days, died = rules.trophic_deaths(uptake, alive, self.is_inh, self.low_days,
                                                       cfg.time.days_per_period, tr.threshold, tr.window_days,
                                                       tr.start_days <= age <= tr.end_days)
        pruned = np.zeros(self.n, bool)
        sd = cfg.sdsnn
        if sd.importance_pruning and age >= sd.prune_start_days:
            if sd.neurotrophic_rate:      # rho is a cumulative target, adapted after each pruning
                done = int(np.count_nonzero((self.death_cause == 2) & ~self.is_inh))
                k = rules.cumulative_prune_count(self.n_exc, self.rho, done)
                pruned = rules.importance_prune(vol, conn, self.e_post, alive * ~died, self.is_inh, 0.0, count=k)
            else:
                pruned = rules.importance_prune(vol, conn, self.e_post, alive * ~died, self.is_inh, sd.prune_rate)
            if sd.neurotrophic_rate:
                from ..structure.neurotrophic import next_rate

                left = (alive > 0) & ~died & ~pruned
                self.rho = next_rate("hidden", self.rho, age, float(left[:self.n_exc].sum()),
                                     start=sd.prune_start_days, alive_target=float(max(1, left.sum())),
                                     tau=sd.neuro_tau_days)
        self._sdsnn_site_decisions(e, age, vol, conn)
        gone = died | pruned
        self.death_age[gone] = age
        self.death_cause[died] = 1
        self.death_cause[pruned & ~died] = 2
        self._last["died"], self._last["pruned"] = died, pruned & ~died
        if gone.any():
            keep = (~gone).astype(float)
            self.runner.set_next(self.G, "alive", alive * keep)
            self.runner.set_next(self.S, "connected", conn * keep[self.e_pre] * keep[self.e_post])
            self.runner.set_next(self.I, "connected", iconn * keep[self.i_pre + self.n_exc] * keep[self.i_post])
        return {"died": np.flatnonzero(died), "pruned": np.flatnonzero(pruned & ~died)}

    def _sdsnn_site_decisions(self, e: int, age: float, vol, conn):
        """SD-SNN's per-site rules between periods: the constraint's intervals after the first
        period (:func:`~sdsnn_bio.structure.constraint.init_spines` on the volumes), and the next
        period's regeneration threshold (percentile of the period's pairing counts)."""
        sd = self.cfg.sdsnn
        if sd.spine_constraint and e == 0:
            from ..structure.constraint import SPINE_FIELDS, init_spines

            st = init_spines(vol * conn)
            for f in SPINE_FIELDS:
                self.runner.set_next(self.S, f, getattr(st, f))
        if sd.regeneration:
            from ..structure.regeneration import regeneration_decision

            if age >= sd.regen_start_days:
                _, thr = regeneration_decision(age, self.get(self.S, "xp"), sd.regen_q0, start=sd.regen_start_days)
                self.regen_next = np.array([1.0, thr])
            else:
                self.regen_next = np.zeros(2)

    def period_row(self, e: int) -> dict:
        """The table row of period ``e`` (after its decisions)."""
        cfg = self.cfg
        s = self.state_arrays()
        alive = s["cortex/alive"] > 0
        conn = s["exc/syn/connected"] > 0
        before = self._prev_conn > 0
        after_run = self.get(self.S, "connected") > 0
        vol = s["exc/syn/vol"][conn]
        lv = np.log(vol) if vol.size else np.zeros(0)
        counts = self._last["counts"]
        n_alive_exc = int(alive[:self.n_exc].sum())
        with np.errstate(invalid="ignore"):
            rate_e = float(counts[:self.n_exc][alive[:self.n_exc]].mean() / cfg.time.activity_s) \
                if n_alive_exc else float("nan")
            rate_i = float(counts[self.n_exc:][alive[self.n_exc:]].mean() / cfg.time.activity_s) \
                if alive[self.n_exc:].any() else float("nan")
        return {"period": e, "age_days": cfg.age_at_end(e), "n_alive": int(alive.sum()),
                "n_alive_exc": n_alive_exc, "n_alive_inh": int(alive[self.n_exc:].sum()),
                "died": int(self._last["died"].sum()), "pruned": int(self._last["pruned"].sum()),
                "spines": int(conn.sum()), "spine_density": float(conn.mean()),
                "spine_density_alive": float(conn.sum() / max(1, np.count_nonzero(alive[self.e_pre]
                                                                                  & alive[self.e_post]))),
                "spines_per_exc": float(conn.sum() / max(1, n_alive_exc)),
                "stable_fraction": float(s["exc/syn/stable"][conn].mean()) if conn.any() else float("nan"),
                "formed": int((after_run & ~before).sum()), "eliminated": int((before & ~after_run).sum()),
                "vol_median_um3": float(np.median(vol)) if vol.size else float("nan"),
                "vol_mean_um3": float(vol.mean()) if vol.size else float("nan"),
                "logvol_mean": float(lv.mean()) if vol.size else float("nan"),
                "logvol_sd": float(lv.std()) if vol.size else float("nan"),
                "rate_exc_hz": rate_e, "rate_inh_hz": rate_i}

    def time_axis(self) -> dict:
        return self.cfg.time_axis()

    # -------------------------------------------- DevelopingNetwork
    def weights(self, stage: str) -> np.ndarray:
        return self.structural_state(stage).weights

    def structural_state(self, stage: str) -> StructuralState:
        """The spine-bearing synapses as a structural state (``upper`` = volume, ``lower`` = 0)."""
        if stage != "exc":
            raise RunError(f"the developmental network has one recorded stage 'exc', not {stage!r}")
        s = self.state_arrays()
        conn = s["exc/syn/connected"]
        live = np.bincount(self.e_post, weights=conn, minlength=self.n)
        imp = np.bincount(self.e_post, weights=conn * s["exc/syn/vol"], minlength=self.n)
        return StructuralState(weights=s["exc/syn/w"], upper=s["exc/syn/r_up"], lower=s["exc/syn/r_lo"],
                               connected=conn, importance=imp, live=live, regenerated=np.zeros(self.n))

    def events(self) -> tuple:
        """``(input events, [events of each stage])``: no input layer; spikes per neuron."""
        return np.zeros(0), [np.asarray(self._last.get("counts", np.zeros(self.n)))]

    def state_arrays(self) -> dict:
        """Everything to continue, with the decisions waiting for the next run already applied;
        plus the history's view ``exc/syn/{connected,w,r_up,r_lo}``."""
        pend = self.runner.pending()
        out = {}
        for prefix, owner, names in (("cortex", self.G, NEURON_CARRY), ("exc/syn", self.S, EXC_CARRY),
                                     ("inh/syn", self.I, INH_CARRY)):
            for var in names:
                val = pend.get((owner.name, var))
                out[f"{prefix}/{var}"] = np.array(val if val is not None else self.get(owner, var))
        conn, vol = out["exc/syn/connected"], out["exc/syn/vol"]
        out["exc/syn/w"] = self.cfg.neuron.g_per_volume_ns * vol * conn
        out["exc/syn/r_up"] = vol * conn
        out["exc/syn/r_lo"] = np.zeros_like(vol)
        for prefix, var in self.exc_extra:
            val = pend.get((self.S.name, var))
            out[f"{prefix}/{var}"] = np.array(val if val is not None else self.get(self.S, var))
        if self.exc_extra or self.cfg.sdsnn.neurotrophic_rate:
            out["sdsnn/rho"] = np.array([self.rho])
            out["sdsnn/regen_next"] = self.regen_next.copy()
        out["trophic/low_days"] = self.low_days.copy()
        out["trophic/death_age"] = self.death_age.copy()
        out["trophic/death_cause"] = self.death_cause.copy()
        return out

    def restore_state(self, arrays: dict):
        owners = {"cortex": (self.G, NEURON_CARRY), "exc/syn": (self.S, EXC_CARRY), "inh/syn": (self.I, INH_CARRY)}
        for prefix, (owner, names) in owners.items():
            for var in names:
                self.runner.set_next(owner, var, arrays[f"{prefix}/{var}"])
        for prefix, var in self.exc_extra:
            self.runner.set_next(self.S, var, arrays[f"{prefix}/{var}"])
        if "sdsnn/rho" in arrays:
            self.rho = float(arrays["sdsnn/rho"][0])
            self.regen_next = np.array(arrays["sdsnn/regen_next"], float)
        self.low_days = np.array(arrays["trophic/low_days"], float)
        self.death_age = np.array(arrays["trophic/death_age"], float)
        self.death_cause = np.array(arrays["trophic/death_cause"], np.int8)

    def close(self):
        if getattr(self, "build_folder", None) is not None:
            self.build_folder.remove()


def build_cortex(cfg, device: str, run_dir, threads: int = 1, profile: bool = False) -> CortexNetwork:
    """Set up ``device`` and build the developmental network of ``cfg`` for a run in ``run_dir``."""
    from ..devices import set_up_device
    from ..runner import BuildFolder

    folder = BuildFolder(device, os.path.join(run_dir, "build"))
    try:
        set_up_device(device, str(folder.path), threads=threads)
        net = CortexNetwork(cfg, device, str(folder.path), profile=profile)
    except BaseException:
        folder.remove()
        raise
    net.build_folder = folder
    return net
