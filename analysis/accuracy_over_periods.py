"""Test accuracy of several finished runs over their periods, in one figure.

Usage: ``python analysis/accuracy_over_periods.py --out FIGURE.png [--passes K] RUN_DIR [RUN_DIR ...]``

Each run is labelled by its variant as ``sdsnn-bio table`` names it (``dense``, ``SD-SNN``,
``SD-SNN no_constraint`` ...), with its network where the runs' networks differ. Two panels:
each run's trailing mean over one pass of the rotating test slices (every period), and over
``K`` passes (default 10) from the period where the learning rate first decays (the whole run
where it never does), where differences of a few tenths of a point show above the slices'
noise. All runs must have the same rotation of test slices (the same test set and slice size).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdsnn_bio.errors import SdsnnError  # noqa: E402


def labels_of(records) -> list:
    """Each record's variant, with its network where the records' networks differ."""
    nets = {r["network"] for r in records}
    return [r["variant"] + (f" {r['network']}" if len(nets) > 1 else "") for r in records]


def figure(run_dirs, passes: int = 10):
    """The figure (see the module's doc) of the finished runs ``run_dirs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sdsnn_bio.config import load_config
    from sdsnn_bio.paper_table import read_run
    from sdsnn_bio.records import read_table
    from sdsnn_bio.report import test_rotation
    from sdsnn_bio.viz import plot_accuracy_runs

    records = [read_run(d) for d in run_dirs]
    rotations = {test_rotation(d) for d in run_dirs}
    if len(rotations) > 1:
        raise SdsnnError(f"the runs test on different slices ({sorted(rotations)} periods a pass): "
                         "their means would not be over the same samples")
    rotation = rotations.pop()
    tables = [read_table(d) for d in run_dirs]
    labels = labels_of(records)
    cfg = load_config(Path(run_dirs[0]) / "config.toml")
    start = cfg.training.lr_decay_every if cfg.training.lr_decay and cfg.training.lr_decay_every else 0
    late = [{k: v[start:] for k, v in t.items()} for t in tables]
    fig, (ax_all, ax_late) = plt.subplots(1, 2, figsize=(13, 4.2))
    plot_accuracy_runs(tables, labels, window=rotation, axes=ax_all)
    ax_all.set_title(f"each period (mean of one pass over the {rotation} test slices)")
    plot_accuracy_runs(late, labels, window=rotation * passes, axes=ax_late)
    ax_late.set_title(f"from period {start}: mean of {passes} passes ({rotation * passes} periods)")
    for ax in (ax_all, ax_late):        # one legend for both, below them
        ax.get_legend().remove()
    fig.legend(*ax_all.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.02),
               ncol=min(len(labels), 3), frameon=False)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="accuracy_over_periods", description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--out", type=Path, required=True, help="the figure file (PNG, SVG, PDF)")
    ap.add_argument("--passes", type=int, default=10, help="passes over the test slices per mean, right panel")
    args = ap.parse_args(argv)
    if args.passes < 1:
        print(f"accuracy_over_periods: --passes must be >= 1, got {args.passes}", file=sys.stderr)
        return 2
    try:
        fig = figure(args.runs, args.passes)
    except SdsnnError as exc:
        print(f"accuracy_over_periods: {exc}", file=sys.stderr)
        return 2
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
