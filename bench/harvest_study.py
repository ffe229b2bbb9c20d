"""The harvest on the spiral's known landscape: harvested networks' mean test accuracy against the
landscape's own readout (Eq. 1) at several train losses, with the scatter of independent landscapes.

    python -m bench.harvest_study            # the runs (kept when finished), the harvests, the figure

- Landscapes: ``entropyeng run spiral`` (the README demo: 1e8 WLMC steps) with seeds 0, 1, 2 under
  ``--root`` (default ``runs/harvest-study``); their Eq. 1 readouts' spread is the landscape's error.
- Harvests: from each landscape at ln L = -0.7, -1.05, -1.6, -2.1 (window 0.1, reach 0.3, 2e7
  walker-steps): the harvest's samples must not depend on the landscape it is biased by.
-> ``docs/harvest-spiral.png`` and ``docs/harvest-spiral.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib

import numpy as np

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
TARGETS = (-0.7, -1.05, -1.6, -2.1)
SEEDS = (0, 1, 2)


def landscapes(root):
    from entropyeng.cli import main

    dirs = []
    for seed in SEEDS:
        out = os.path.join(root, f"spiral-seed{seed}")
        if not os.path.exists(os.path.join(out, "summary.json")):
            code = main(["run", "spiral", "--seed", str(seed), "--threads", "1", "--out", out, "--force", "--quiet",
                         *(["--set", "sgd.runs=2", "--set", "sgd.epochs=5"] if seed else [])])
            assert code == 0, f"the landscape run {out} failed"
        dirs.append(out)
    return dirs


def readout(run_dir, lo, hi):
    """Eq. 1 of a run's landscape averaged over the x cells within [lo, hi] (equal weights)."""
    from entropyeng import Landscape
    from entropyeng.analysis import equilibrium

    x, eq, valid = equilibrium(Landscape.load(os.path.join(run_dir, "landscape.npz")))
    use = (x >= lo) & (x <= hi) & valid
    return float(eq[use].mean())


def main(argv=None):
    from entropyeng.harvest import harvest_run

    parser = argparse.ArgumentParser(prog="python -m bench.harvest_study", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="runs/harvest-study")
    parser.add_argument("--steps", type=float, default=2e7)
    args = parser.parse_args(argv)
    dirs = landscapes(args.root)
    rows = []
    for x0 in TARGETS:
        hs = [harvest_run(d, train_loss=math.exp(x0), steps=int(args.steps), seed=1) for d in dirs]
        lands = [readout(d, x0 - 0.05, x0 + 0.05) for d in dirs]
        row = dict(ln_train_loss=x0, harvests=[dict(mean=h.mean, error=h.error, tau_steps=h.tau * h.every,
                                                    samples=h.samples, round_trips=h.round_trips, flatness=h.flatness,
                                                    landscape_mean=h.landscape_mean, seconds=h.seconds) for h in hs],
                   harvest_mean=float(np.mean([h.mean for h in hs])),  # the harvests are independent
                   harvest_error=float(math.sqrt(sum(h.error ** 2 for h in hs)) / len(hs)),
                   landscapes=lands, landscape_mean=float(np.mean(lands)),
                   landscape_error=float(np.std(lands, ddof=1) / math.sqrt(len(lands))))
        rows.append(row)
        print(f"ln L {x0:+.2f}: harvests {', '.join(f'{h.mean:.3f}±{h.error:.3f}' for h in hs)} (mean "
              f"{row['harvest_mean']:.3f} ± {row['harvest_error']:.3f})  landscapes "
              f"{', '.join(f'{v:.3f}' for v in lands)} (mean {row['landscape_mean']:.3f} ± {row['landscape_error']:.3f})",
              flush=True)
    (DOCS / "harvest-spiral.json").write_text(json.dumps(dict(steps=args.steps, window=0.1, reach=0.3, rows=rows),
                                                         indent=1) + "\n")
    figure(dirs, rows)


def figure(dirs, rows):
    from entropyeng import Landscape
    from entropyeng.analysis import equilibrium
    from entropyeng.analysis.plot import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    for k, d in enumerate(dirs):
        x, eq, valid = equilibrium(Landscape.load(os.path.join(d, "landscape.npz")))
        ax.plot(x[valid], eq[valid], "-", color="magenta", alpha=0.9 if k == 0 else 0.35, lw=1.2,
                label="Eq. 1 of the landscape (seed 0; seeds 1, 2 faint)" if k == 0 else None)
    ax.errorbar([r["ln_train_loss"] for r in rows], [r["harvest_mean"] for r in rows],
                yerr=[r["harvest_error"] for r in rows], fmt="o", color="k", ms=5, capsize=3,
                label="harvested networks (mean ± s.e.)")
    try:
        with open(DOCS / "maxent-results.json") as fh:
            sgd = [r for r in json.load(fh) if r["task"] == "spiral" and r["method"] == "sgd" and r.get("reached")]
        if sgd:
            ax.plot([math.log(r["train_loss"]) for r in sgd], [r["test_metric"] for r in sgd], "s", color="0.5",
                    ms=4, label="SGD stopped at train loss 0.2 (seeds)")
    except OSError:
        pass
    ax.set_xlim(-3.0, 0.5)
    ax.set_ylim(0.4, 1.0)
    ax.set_xlabel("ln(train loss)")
    ax.set_ylabel("test accuracy")
    ax.set_title("spiral 4x8: networks harvested from the landscape", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(DOCS / "harvest-spiral.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
