"""The developmental rules in numpy: connectivity, the spine step's twin, trophic competition.

The spine step runs in Brian2 generated code (:data:`SPINE_STEP_CODE`, on the
synapses' structural clock); :func:`spine_step` is its numpy twin, statement
for statement, which the tests compare with the generated code. Trophic
competition and importance pruning are decisions taken between periods (as
SD-SNN's pruning decisions are, :mod:`sdsnn_bio.structure`), in numpy:
:func:`trophic_uptake`, :func:`trophic_deaths`, :func:`importance_prune`.

Random numbers of the spine step come from a Park-Miller "minimal standard"
generator (Park & Miller 1988, Commun. ACM 31:1192, multiplier 16807, modulus
2**31 - 1) kept per synapse in the variable ``rs``: its products stay below
2**46, so float64 arithmetic computes them exactly on every device and target.
A standalone binary restarts Brian2's own random stream at every run (every
period); a per-synapse state carried from period to period does not, so the
fluctuations of one day are independent of the previous day's, and a resumed
run draws the same numbers as an uninterrupted one.
"""

import numpy as np

__all__ = ["PM_MULT", "PM_MOD", "SPINE_STEP_CODE", "potential_sites", "inhibitory_sites", "initial_spines",
           "spine_step", "crowding", "formation_rate", "trophic_uptake", "trophic_deaths", "importance_prune",
           "step_code", "CONSTRAINT_CLIP_CODE", "constraint_update_code", "regeneration_site_code",
           "regenerate_sites", "cumulative_prune_count"]

PM_MULT = 16807.0
PM_MOD = 2147483647.0

#: Abstract code of one structural step of every potential excitatory synapse.
#: Namespace: mu_t, mu_s, theta_t, theta_s, sigma_t, sigma_s, v_min, v_new, v_cons,
#: k_cons, f_birth, f_adult, tau_f, age_f, w_f, tau_age, eta_act, eta_comp, a_norm (a_ref_hz x step length
#: in s), a_cap, dd (days per step), sqrt_dd, days_per_s; age0 is a shared synapse
#: variable (age at the run's start), crowd_post the postsynaptic neuron's crowding
#: (:func:`crowding`, set between periods).
SPINE_STEP_CODE = """
rs = (16807.0*rs) % 2147483647.0
u1 = rs/2147483647.0
rs = (16807.0*rs) % 2147483647.0
u2 = rs/2147483647.0
rs = (16807.0*rs) % 2147483647.0
u3 = rs/2147483647.0
z = sqrt(-2.0*log(u1))*cos(2.0*pi*u2)
act = clip(xc/a_norm, 0.0, a_cap) - 1.0
mu = mu_t + (mu_s - mu_t)*stable
th = theta_t + (theta_s - theta_t)*stable
sg = sigma_t + (sigma_s - sigma_t)*stable
lv = log(vol)
v_next = exp(lv + (th*(mu - lv) + eta_act*act - eta_comp*(crowd_post - 1.0))*dd + sg*sqrt_dd*z)
age = age0 + (t/second)*days_per_s
f_rate = f_adult/(1.0 + age/tau_age) + (f_birth - f_adult)*exp(-age/tau_f)/(1.0 + exp((age - age_f)/w_f))
born = (1.0 - connected)*alive_pre*alive_post*int(u3 < f_rate*dd)
gone = connected*int(v_next < v_min)
keep = connected - gone
promote = keep*(1.0 - stable)*int(v_next > v_cons)*int(u3 < k_cons*dd)
vol = keep*v_next + (1.0 - keep)*v_new
stable = keep*(stable + promote)
connected = keep + born
xc = 0.0
"""


def potential_sites(n_exc: int, n_total: int, p: float, rng) -> tuple:
    """Potential excitatory synapse sites: ``(pre, post)``, presynaptic-major, no autapses.

    Each ordered pair (excitatory ``pre``, any ``post`` != ``pre``) is a site
    with probability ``p``; drawn row by row (bounded memory).
    """
    pre, post = [], []
    for i in range(n_exc):
        js = np.flatnonzero(rng.random(n_total) < p)
        js = js[js != i]
        pre.append(np.full(js.size, i, dtype=np.int32))
        post.append(js.astype(np.int32))
    return np.concatenate(pre), np.concatenate(post)


def inhibitory_sites(n_exc: int, n_total: int, p: float, rng) -> tuple:
    """Inhibitory synapses ``(pre, post)``: ``pre`` counts from 0 within the inhibitory neurons."""
    pre, post = [], []
    for k, i in enumerate(range(n_exc, n_total)):
        js = np.flatnonzero(rng.random(n_total) < p)
        js = js[js != i]
        pre.append(np.full(js.size, k, dtype=np.int32))
        post.append(js.astype(np.int32))
    return np.concatenate(pre), np.concatenate(post)


def initial_spines(n_sites: int, spines, rng) -> dict:
    """Initial spine state: a fraction ``occupancy0`` of the sites holds a transient spine of
    volume ``v_new``; every empty site also holds ``v_new`` (the size a new spine starts at);
    independent Park-Miller seeds in [1, 2**31 - 2]."""
    connected = (rng.random(n_sites) < spines.occupancy0).astype(np.float64)
    return {"vol": np.full(n_sites, spines.v_new), "connected": connected, "stable": np.zeros(n_sites),
            "rs": rng.integers(1, 2 ** 31 - 1, n_sites).astype(np.float64)}


def formation_rate(age_days, spines) -> np.ndarray:
    """Formation rate per empty site and day at ``age_days`` (a :class:`~sdsnn_bio.cortex.config.SpineSpec`):
    ``f_adult / (1 + age / formation_aging_days) + (f_birth - f_adult) exp(-age / tau_formation) /
    (1 + exp((age - formation_end_days) / formation_end_width_days))``."""
    a = np.asarray(age_days, float)
    with np.errstate(over="ignore"):
        drop = 1.0 + np.exp((a - spines.formation_end_days) / spines.formation_end_width_days)
    return (spines.f_adult / (1.0 + a / spines.formation_aging_days)
            + (spines.f_birth - spines.f_adult) * np.exp(-a / spines.tau_formation) / drop)


def _pm(rs):
    rs = (PM_MULT * rs) % PM_MOD
    return rs, rs / PM_MOD


def crowding(vol, connected, post, n_sites_post, target_per_site: float, n: int) -> np.ndarray:
    """Crowding of each neuron's dendrite: its live spine volume over ``target_per_site`` times
    its potential sites (1 = at the target; neurons without sites 1)."""
    total = np.bincount(post, weights=np.asarray(vol, float) * np.asarray(connected, float), minlength=n)
    target = target_per_site * np.asarray(n_sites_post, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(target > 0, total / target, 1.0)


def spine_step(state: dict, alive_pre, alive_post, t_s: float, age0: float, ns: dict, crowd_post=1.0,
               clip=None) -> dict:
    """Numpy twin of :data:`SPINE_STEP_CODE` (and of :func:`step_code`'s additions): one structural
    step at simulated time ``t_s``.

    ``state`` holds ``vol``, ``connected``, ``stable``, ``rs``, ``xc`` per synapse (and ``xp``, the
    period's pairing count of SD-SNN's regeneration, where it is switched on);
    ``alive_pre``/``alive_post`` the alive flags of each synapse's neurons,
    ``crowd_post`` the crowding of its postsynaptic neuron; ``ns`` the step's
    namespace (see :data:`SPINE_STEP_CODE`); ``clip``: ``(r_lo, r_up)`` of SD-SNN's spine
    constraint while it is active (:data:`CONSTRAINT_CLIP_CODE`), else None. Returns the new state.
    """
    out = _spine_step(state, alive_pre, alive_post, t_s, age0, ns, crowd_post)
    if "xp" in state:
        out["xp"] = np.asarray(state["xp"], np.float64) + np.asarray(state["xc"], np.float64)
    if clip is not None:
        live = out["connected"] > 0
        out["vol"] = np.where(live, np.minimum(np.maximum(out["vol"], clip[0]), clip[1]), out["vol"])
    return out


def _spine_step(state, alive_pre, alive_post, t_s, age0, ns, crowd_post):
    rs = np.asarray(state["rs"], np.float64)
    rs, u1 = _pm(rs)
    rs, u2 = _pm(rs)
    rs, u3 = _pm(rs)
    vol, conn, stable, xc = (np.asarray(state[k], np.float64) for k in ("vol", "connected", "stable", "xc"))
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    act = np.clip(xc / ns["a_norm"], 0.0, ns["a_cap"]) - 1.0
    mu = ns["mu_t"] + (ns["mu_s"] - ns["mu_t"]) * stable
    th = ns["theta_t"] + (ns["theta_s"] - ns["theta_t"]) * stable
    sg = ns["sigma_t"] + (ns["sigma_s"] - ns["sigma_t"]) * stable
    lv = np.log(vol)
    v_next = np.exp(lv + (th * (mu - lv) + ns["eta_act"] * act - ns["eta_comp"] * (crowd_post - 1.0)) * ns["dd"]
                    + sg * ns["sqrt_dd"] * z)
    age = age0 + t_s * ns["days_per_s"]
    f_rate = ns["f_adult"] / (1.0 + age / ns["tau_age"]) + (ns["f_birth"] - ns["f_adult"]) * np.exp(-age / ns["tau_f"]) / \
        (1.0 + np.exp((age - ns["age_f"]) / ns["w_f"]))
    born = (1.0 - conn) * alive_pre * alive_post * (u3 < f_rate * ns["dd"])
    gone = conn * (v_next < ns["v_min"])
    keep = conn - gone
    promote = keep * (1.0 - stable) * (v_next > ns["v_cons"]) * (u3 < ns["k_cons"] * ns["dd"])
    return {"vol": keep * v_next + (1.0 - keep) * ns["v_new"], "stable": keep * (stable + promote),
            "connected": keep + born, "rs": rs, "xc": np.zeros_like(xc)}


def trophic_uptake(rate, alive, pre, post, g, n: int) -> np.ndarray:
    """Trophic factor taken up by each neuron.

    Each living target ``j`` supplies factor in proportion to its rate (the
    constant cancels in :func:`trophic_deaths`); an afferent synapse takes the
    part ``g_s / sum of g over j's live afferent synapses`` of it, ``g`` being
    its conductance (0 for a synapse that is not live). ``pre``/``post``/``g``
    list every synapse of the network (excitatory and inhibitory, global
    neuron indices). Returns the uptake summed over each neuron's efferents.
    """
    g = np.asarray(g, np.float64)
    supply = np.asarray(rate, np.float64) * (np.asarray(alive) > 0)
    total = np.bincount(post, weights=g, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        part = np.where(total[post] > 0, g / total[post], 0.0)
    return np.bincount(pre, weights=part * supply[post], minlength=n)


def trophic_deaths(uptake, alive, is_inh, low_days, days: float, threshold: float, window_days: float,
                   in_window: bool) -> tuple:
    """Who dies of trophic deprivation after a period of ``days``: ``(low_days, dies)``.

    A living neuron's *share* is its uptake over the mean uptake of the living
    neurons of its kind (excitatory or inhibitory). Below ``threshold`` its
    deprivation time ``low_days`` grows by ``days``, otherwise it returns to 0;
    it dies once ``low_days >= window_days``, if the age is ``in_window``.
    """
    uptake, alive, is_inh = np.asarray(uptake, float), np.asarray(alive) > 0, np.asarray(is_inh, bool)
    share = np.zeros_like(uptake)
    for kind in (False, True):
        sel = alive & (is_inh == kind)
        m = uptake[sel].mean() if sel.any() else 0.0
        share[sel] = uptake[sel] / m if m > 0 else 1.0
    low = alive & (share < threshold)
    low_days = np.where(low, np.asarray(low_days, float) + days, 0.0)
    dies = low & (low_days >= window_days - 1e-9) & bool(in_window)
    return low_days, dies


def importance_prune(vol, connected, post, alive, is_inh, rate_percent: float, count=None) -> np.ndarray:
    """SD-SNN's importance pruning on the excitatory neurons: bool per neuron, pruned now.

    Importance is the sum of a neuron's live afferent spine volumes (the
    paper's sum of spine widths, with the volume as the width); the
    ``rate_percent`` percent (rounded down) of the living excitatory neurons
    (or ``count`` of them, where given) with the smallest importance are pruned,
    ties to the lower index.
    """
    n = len(alive)
    imp = np.bincount(post, weights=np.asarray(vol, float) * np.asarray(connected, float), minlength=n)
    cand = np.flatnonzero((np.asarray(alive) > 0) & ~np.asarray(is_inh, bool))
    k = int(len(cand) * rate_percent / 100.0) if count is None else min(int(count), len(cand))
    out = np.zeros(n, bool)
    if k > 0:
        order = cand[np.lexsort((cand, imp[cand]))]
        out[order[:k]] = True
    return out


# ------------------------------------------------------------ SD-SNN's rules in biological time
# The per-synapse parts of SD-SNN's spine constraint and regeneration run in generated code; their
# maths is the training kind's (sdsnn_bio.structure.constraint / .regeneration), applied to the
# spine volume (the weight of a spine-bearing synapse is g_per_volume x vol) and, for regeneration,
# to the period's pairing count of an empty site (the Hebbian signal a soft-masked weight follows).

#: The synaptic constraint on the volume of a live spine, after each structural step (``clip_on``
#: is 1 from period N + 1 on, :func:`sdsnn_bio.structure.constraint.constraint_active`).
CONSTRAINT_CLIP_CODE = "vol = connected*clip_on*clip(vol, r_lo, r_up) + (1.0 - connected*clip_on)*vol\n"


def step_code(constraint: bool = False, regeneration: bool = False) -> str:
    """The structural step's code: :data:`SPINE_STEP_CODE`, with SD-SNN's additions where on.

    ``regeneration``: the step first adds its pairing count ``xc`` to the period's count ``xp``;
    ``constraint``: a live spine's volume is clipped into ``[r_lo, r_up]`` after the step.
    Without either, the code is :data:`SPINE_STEP_CODE` unchanged.
    """
    code = SPINE_STEP_CODE
    if regeneration:
        code = "\nxp += xc" + code
    if constraint:
        code = code + CONSTRAINT_CLIP_CODE
    return code


def constraint_update_code() -> str:
    """SD-SNN's spine update (method §2.1) on the spine volume, once per period.

    The training kind's generated code (:func:`sdsnn_bio.structure.constraint.spine_update_code`)
    with the masked weight ``wm = vol*connected``: the same streak rule moves ``r_up``/``r_lo``.
    """
    from ..structure.constraint import spine_update_code

    code = spine_update_code("connected")
    line = "wm = w*connected"
    if line not in code:
        raise RuntimeError("sdsnn_bio.structure.constraint.spine_update_code no longer starts with "
                           f"{line!r}; the developmental constraint needs its masked-weight line")
    return code.replace(line, "wm = vol*connected")


def regeneration_site_code() -> str:
    """SD-SNN's regeneration (method §2.3) of an empty spine site, at the start of a period.

    The training kind's generated code (:func:`sdsnn_bio.structure.regeneration.regeneration_code`,
    no count) with the site's value ``xp`` (its pre-before-post pairings in the last period) in
    place of the trained weight, and candidates only between two living neurons. A regrown site
    holds a new transient spine of volume ``v_new`` (every empty site's volume), then ``xp = 0``.
    """
    from ..structure.regeneration import regeneration_code

    code = regeneration_code(count="")
    line = "cand = (1 - connected)*int(w > regen_threshold)*regen_on"
    if line not in code:
        raise RuntimeError("sdsnn_bio.structure.regeneration.regeneration_code no longer has the line "
                           f"{line!r}; the developmental regeneration needs it")
    return code.replace(line, "cand = (1 - connected)*int(xp > regen_threshold)*regen_on*alive_pre*alive_post") + \
        "xp = 0.0\n"


def regenerate_sites(connected, xp, alive_pre, alive_post, threshold: float, streak, cand_prev, max_streak: int):
    """Numpy twin of :func:`regeneration_site_code` (with ``regen_on`` = 1):
    :func:`sdsnn_bio.structure.regeneration.regenerate` on the values ``xp`` of the sites between
    living neurons (the others are never candidates). Returns ``(connected, streak, cand_prev, regrown)``."""
    from ..structure.regeneration import RegenerationState, regenerate

    live = (np.asarray(alive_pre) > 0) & (np.asarray(alive_post) > 0)
    values = np.where(live, np.asarray(xp, np.float64), -np.inf)
    conn, st, regrown = regenerate(np.asarray(connected, np.float64), values, threshold,
                                   RegenerationState(streak, cand_prev), max_streak)
    return conn, st.streak, st.cand_prev, regrown


def cumulative_prune_count(n_exc: int, rho_percent: float, already: int) -> int:
    """Neurons to prune now under SD-SNN's cumulative target (method §2.2): ``floor(N rho / 100)``
    excitatory neurons pruned by importance in all, less the ``already`` pruned."""
    return max(0, int(np.floor(n_exc * rho_percent / 100.0)) - int(already))
