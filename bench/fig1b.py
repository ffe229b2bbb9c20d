"""docs/fig1b.* and docs/convergence.* from the shipped sweeps: Fig. 1b at a reduced budget, and the
convergence of the spiral's entropy advantage with the budget.

    python -m bench.fig1b            # the sweeps (resumable: finished runs are kept), then the figures
    python -m bench.fig1b --figures  # the figures from finished runs only

- Fig. 1b: ``entropyeng sweep fig1b-reduced``: the networks 3x6, 3x8, 4x6, 4x8 (hidden layers x width;
  3x6 has the paper's 109 parameters) on 3 data sets (train seed k, test seed 1000 + k) at 2e8 WLMC
  steps each (the paper: 6 data sets at 3.2e10 steps, 160 times more) -> ``docs/fig1b.png`` and
  ``docs/fig1b.json`` (equilibrium vs SGD accuracy at the train loss where SGD's mean is best,
  standard errors over the data sets).
- Convergence: ``entropyeng sweep spiral-convergence``: 4x8 on data set 0 at 1e8, 2e8, 4e8 and 1.6e9
  steps -> ``docs/convergence.png`` and ``docs/convergence.json``: the advantage at fixed train loss
  and the shared gap against the budget.

Each sweep writes its run directories under ``--root`` (default ``runs/``), ``--workers`` runs at a
time (one thread each).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
FIG1B, CONVERGENCE = "fig1b-reduced", "spiral-convergence"


def finished(root, name):
    """The summaries (with their axes) of a sweep's finished runs, in the spec's order."""
    from .fig_width import finished as runs_of

    return [(axes, summary) for axes, summary, _ in runs_of(root, name)]


def figures(root):
    from entropyeng.analysis import combine_summaries
    from entropyeng.analysis.plot import _plt, advantage_figure
    from entropyeng.sweep import load_spec

    spec = load_spec(FIG1B)
    steps = spec.runs[0].config["wlmc"]["stages"] * spec.runs[0].config["wlmc"]["steps_per_stage"]
    data_sets = spec.axes["data_set"]
    runs = [s for _, s in finished(root, FIG1B)]
    if runs:
        points = combine_summaries(runs)
        title = f"spiral: {steps:.0e} WLMC steps x {len(data_sets)} data sets\n(the paper: 3.2e10 x 6)"
        advantage_figure(points, DOCS / "fig1b.png", title=title.replace("+", ""))
        record = dict(spec=FIG1B, steps=steps, data_sets=data_sets, paper_steps=3.2e10, paper_data_sets=6,
                      readout="equilibrium (Eq. 1) and mean SGD accuracy at the train loss where SGD's mean is "
                              "best (among those at least half the SGD runs reach)",
                      points=points,
                      runs=[dict(label=s["label"], n_params=s["n_params"], x=s["x"], sgd=s["sgd"],
                                 equilibrium=s["equilibrium"], advantage=s["advantage"], shared_gap=s["shared_gap"],
                                 wall_seconds=s["wall_seconds"]) for s in runs])
        (DOCS / "fig1b.json").write_text(json.dumps(record, indent=1) + "\n")
        for p in points:
            print(f"  {p['label']:8s} n={p['n']}  SGD {p['sgd']:.3f} ± {p['sgd_error']:.3f}   equilibrium "
                  f"{p['equilibrium']:.3f} ± {p['error']:.3f}   advantage {p['advantage']:+.3f} ± {p['advantage_error']:.3f}")
    conv = [(axes["steps"], s) for axes, s in finished(root, CONVERGENCE)]
    if conv:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=120)
        b = [c[0] for c in conv]
        ax.plot(b, [c[1]["advantage"] for c in conv], "o-", color="m", label="advantage at SGD's best train loss")
        ax.plot(b, [c[1]["shared_gap"]["gap"] if c[1]["shared_gap"] else float("nan") for c in conv], "s--",
                color="k", label="shared gap (mean over shared train losses)")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("WLMC steps")
        ax.set_ylabel("equilibrium - SGD test accuracy")
        ax.set_title("spiral 4x8, data set 0: the advantage against the budget", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(DOCS / "convergence.png")
        plt.close(fig)
        (DOCS / "convergence.json").write_text(json.dumps([dict(steps=st, x=s["x"], sgd=s["sgd"],
                                                                equilibrium=s["equilibrium"], advantage=s["advantage"],
                                                                shared_gap=s["shared_gap"],
                                                                wall_seconds=s["wall_seconds"])
                                                           for st, s in conv], indent=1) + "\n")
        for st, s in conv:
            gap = s["shared_gap"]["gap"] if s["shared_gap"] else float("nan")
            print(f"  4x8 data 0 at {st:.1e}: SGD {s['sgd']:.3f}, equilibrium {s['equilibrium']:.3f}, advantage "
                  f"{s['advantage']:+.3f} at ln L = {s['x']:.2f}; shared gap {gap:+.3f}")


def main(argv=None):
    from entropyeng.sweep import load_spec, run_sweep

    parser = argparse.ArgumentParser(prog="python -m bench.fig1b", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="runs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--figures", action="store_true", help="only draw the figures from finished runs")
    args = parser.parse_args(argv)
    if not args.figures:
        for name in (FIG1B, CONVERGENCE):
            run_sweep(load_spec(name), os.path.join(args.root, name), workers=args.workers, threads=1)
    figures(args.root)


if __name__ == "__main__":
    main()
