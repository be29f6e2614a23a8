"""How the CALIBRATED spine parameters of ``models/cortex_development.toml`` were found.

The spine process alone (no neurons: neutral activity, every neuron alive), in numpy with
:func:`sdsnn_bio.cortex.rules.spine_step` (the twin of the generated code), from P0 to P230 at
the model's 4 structural steps a day, on 5000 sites spread over 100 dendrites (competition per
dendrite, :func:`sdsnn_bio.cortex.rules.crowding`, updated daily). Measured as the data were:

* density overshoot: peak of the fraction of sites holding a spine over its mean in P172-P230;
* Zuo et al. 2005: spines present at t0 and gone at t0 + 14 d (elimination), present at t0 + 14 d
  and not at t0 (formation), as % of the spines at t0; t0 = P30 and P130;
* Holtmaat et al. 2005: looks every 4 days over each age bin (P16-25, P35-80, P80-120, P175-225);
  of all distinct spines seen (a reappearance at the same site is a new spine), the fraction
  seen in at least 3 consecutive looks.

The loss sums squared deviations from the targets' centres (peak/adult 1.5 with scale 0.15;
elimination/formation 16.5/6.5 % at P30, 4/4 % at P130; Holtmaat 35/54/66/73 % with scale 7).
A random search over the ranges in :data:`RANGES` (log-uniform), then a local refinement
(log-normal steps of 15% of half of the parameters, kept when the loss falls).

Usage: ``python benchmarks/cortex_calibration.py --search 300 --refine 120`` (about 10 min).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sdsnn_bio.cortex import rules  # noqa: E402

DD = 0.25
LAST_DAY = 230

BASE = dict(mu_t=-3.2, mu_s=-2.0, theta_t=0.5, theta_s=0.1, sigma_t=0.6, sigma_s=0.15, v_min=0.02, v_new=0.04,
            v_cons=0.08, k_cons=0.1, f_birth=0.1, f_adult=0.005, tau_f=15.0, occ0=0.05, comp=0.5, vps=0.03,
            age_f=1e9, w_f=1.0, age_a=1e9)
RANGES = dict(mu_t=(-3.8, -2.6), mu_s=(-2.6, -1.5), theta_t=(0.2, 1.5), theta_s=(0.02, 0.3), sigma_t=(0.3, 1.0),
              sigma_s=(0.05, 0.3), v_cons=(0.05, 0.15), k_cons=(0.02, 0.5), f_birth=(0.05, 0.6),
              f_adult=(0.002, 0.03), tau_f=(5, 40), comp=(0.05, 2.0), vps=(0.01, 0.06), age_f=(12.0, 35.0),
              w_f=(0.5, 6.0), age_a=(50.0, 2000.0))


def simulate(p, n=5000, seed=0):
    """Daily presence (days x sites) and the final live volumes of the spine process ``p``."""
    rng = np.random.default_rng(seed)
    st = {"vol": np.full(n, p["v_new"]), "connected": (rng.random(n) < p["occ0"]) * 1.0, "stable": np.zeros(n),
          "rs": rng.integers(1, 2 ** 31 - 1, n) * 1.0, "xc": np.ones(n)}
    ns = dict(mu_t=p["mu_t"], mu_s=p["mu_s"], theta_t=p["theta_t"], theta_s=p["theta_s"], sigma_t=p["sigma_t"],
              sigma_s=p["sigma_s"], v_min=p["v_min"], v_new=p["v_new"], v_cons=p["v_cons"], k_cons=p["k_cons"],
              f_birth=p["f_birth"], f_adult=p["f_adult"], tau_f=p["tau_f"], age_f=p.get("age_f", 1e9),
              w_f=p.get("w_f", 1.0), tau_age=p.get("age_a", 1e9), eta_act=0.0, eta_comp=p["comp"],
              a_norm=1.0, a_cap=3.0, dd=DD, sqrt_dd=DD ** 0.5, days_per_s=1.0)
    one = np.ones(n)
    post = np.arange(n) % 100
    per_post = np.bincount(post, minlength=100)
    pres = [st["connected"] > 0]
    for day in range(1, LAST_DAY + 1):
        crowd = rules.crowding(st["vol"], st["connected"], post, per_post, p["vps"], 100)[post]
        for k in range(4):
            st["xc"] = one
            st = rules.spine_step(st, one, one, 0.0, day - 1 + k * DD, ns, crowd)
        pres.append(st["connected"] > 0)
    return np.array(pres), st["vol"][st["connected"] > 0]


def zuo(pres, t0):
    """Elimination and formation (% of the spines at t0) between looks at t0 and t0 + 14 days."""
    a, b = pres[t0], pres[t0 + 14]
    return 100 * (a & ~b).sum() / a.sum(), 100 * (b & ~a).sum() / a.sum()


def holtmaat(pres, lo, hi):
    """Fraction (%) of the distinct spines seen in looks every 4 days over [lo, hi] that are seen
    in at least 3 consecutive looks."""
    looks = pres[np.arange(lo, hi + 1, 4)]
    padded = np.vstack([np.zeros((1, looks.shape[1]), bool), looks, np.zeros((1, looks.shape[1]), bool)])
    total = persistent = 0
    for s in range(looks.shape[1]):
        col = padded[:, s].astype(int)
        starts = np.flatnonzero(np.diff(col) == 1)
        ends = np.flatnonzero(np.diff(col) == -1)
        total += len(starts)
        persistent += int(np.sum(ends - starts >= 3))
    return 100 * persistent / max(total, 1)


def score(p, seed=0, peak_age=None, rising=False):
    pres, vols = simulate(p, seed=seed)
    dens = pres.mean(1)
    adult = dens[172:].mean()
    ratio = dens.max() / adult
    e30, f30 = zuo(pres, 30)
    ea, fa = zuo(pres, 130)
    h = [holtmaat(pres, 16, 25), holtmaat(pres, 35, 80), holtmaat(pres, 80, 120), holtmaat(pres, 175, 225)]
    loss = ((ratio - 1.5) / 0.15) ** 2 + ((e30 - 16.5) / 3.5) ** 2 + ((f30 - 6.5) / 3) ** 2 \
        + ((ea - 4) / 1.5) ** 2 + ((fa - 4) / 1.5) ** 2 + sum(((x - t) / 7) ** 2 for x, t in zip(h, (35, 54, 66, 73)))
    if peak_age is not None:      # a peak outside [lo, hi] days costs (days outside / 2)^2
        lo, hi = peak_age
        a = int(dens.argmax())
        loss += (max(0, lo - a, a - hi) / 2.0) ** 2
    if rising:      # Holtmaat's fractions rise with age: a bin not above the one before costs (shortfall + 1 pt)^2
        loss += sum(max(0.0, a - b + 1.0) ** 2 for a, b in zip(h, h[1:]))
    return float(loss), dict(peak_ratio=float(ratio), peak_age=int(dens.argmax()), elim_p30=e30, form_p30=f30,
                             elim_p130=ea, form_p130=fa, holtmaat=h, median_volume=float(np.median(vols)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--search", type=int, default=300)
    ap.add_argument("--refine", type=int, default=120)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cortex_calibration.json"))
    ap.add_argument("--start", help="JSON file of a previous calibration: its parameters are the first set")
    ap.add_argument("--vary", help="comma-separated parameters to vary (default: all of RANGES)")
    ap.add_argument("--peak-age", type=float, nargs=2, metavar=("LO", "HI"),
                    help="also penalise a density peak outside [LO, HI] days")
    ap.add_argument("--rising", action="store_true",
                    help="also penalise a Holtmaat bin that is not at least 1 point above the one before")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    base = dict(BASE)
    if args.start:
        base.update(json.loads(Path(args.start).read_text())["parameters"])
    ranges = {k: RANGES[k] for k in args.vary.split(",")} if args.vary else RANGES
    score_ = lambda p: score(p, peak_age=args.peak_age, rising=args.rising)  # noqa: E731
    best = None
    for it in range(args.search):
        p = dict(base)
        if it:
            for k, (lo, hi) in ranges.items():
                p[k] = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if lo > 0 else float(rng.uniform(lo, hi))
        loss, m = score_(p)
        if best is None or loss < best[0]:
            best = (loss, p, m)
            print(f"search {it}: loss {loss:.2f} {json.dumps(m)}", flush=True)
    for it in range(args.refine):
        p = dict(best[1])
        for k in ranges:
            if rng.random() < 0.5:
                p[k] = p[k] * float(np.exp(rng.normal(0, 0.15))) if p[k] > 0 else p[k] + rng.normal(0, 0.1)
        loss, m = score_(p)
        if loss < best[0]:
            best = (loss, p, m)
            print(f"refine {it}: loss {loss:.2f} {json.dumps(m)}", flush=True)
    Path(args.out).write_text(json.dumps({"loss": best[0], "parameters": best[1], "measures": best[2]}, indent=1))


if __name__ == "__main__":
    main()
