"""Fig. 1b at a reduced budget, and the convergence of the spiral's entropy advantage with the budget.

    python -m bench.fig1b            # the runs (resumable: finished runs are kept), then the figures
    python -m bench.fig1b --figures  # the figures from finished runs only

Runs (``entropyeng run spiral``, one process per run, ``--jobs`` at once, one thread each):

- Fig. 1b: the networks 3x6, 3x8, 4x6, 4x8 (hidden layers x width; 3x6 has the paper's 109
  parameters) on 3 data sets (train seed k, test seed 1000 + k) at 2e8 WLMC steps each (the paper:
  6 data sets at 3.2e10 steps, 160 times more) -> ``docs/fig1b.png`` and ``docs/fig1b.json``
  (``entropyeng compare`` of the runs: equilibrium vs SGD accuracy at the train loss where SGD's
  mean is best, standard errors over the data sets).
- Convergence: 4x8 on data set 0 at 1e8, 2e8 (the Fig. 1b run), 4e8 and 1.6e9 steps -> ``docs/convergence.png`` and
  ``docs/convergence.json``: the advantage at fixed train loss and the shared gap against the budget.

Each run writes its own directory under ``--root`` (default ``runs/fig1b``); an interrupted
invocation resumes the unfinished runs (``entropyeng resume``) and skips the finished ones.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import subprocess
import sys
import time

NETWORKS = [(3, 6), (3, 8), (4, 6), (4, 8)]
DATA_SETS = [0, 1, 2]
FIG1B_STEPS = 2e8
CONVERGENCE = [(4, 8, 0, 1e8), (4, 8, 0, 2e8), (4, 8, 0, 4e8), (4, 8, 0, 1.6e9)]
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def run_dir(root, depth, width, k, steps):
    return pathlib.Path(root) / f"spiral-{depth}x{width}-data{k}-{steps:.2g}".replace("+", "")


def jobs_list(root):
    jobs = [(d, w, k, FIG1B_STEPS) for d, w in NETWORKS for k in DATA_SETS]
    jobs += [c for c in CONVERGENCE if c not in jobs]
    return sorted(jobs, key=lambda j: -j[3])  # the longest first: the pool ends together


def run_one(root, depth, width, k, steps):
    out = run_dir(root, depth, width, k, steps)
    if (out / "summary.json").exists():
        return out, "kept", 0.0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if (out / "checkpoint.npz").exists():
        cmd = [sys.executable, "-P", "-m", "entropyeng", "resume", str(out), "--threads", "1", "--quiet"]
    else:
        cmd = [sys.executable, "-P", "-m", "entropyeng", "run", "spiral", "--steps", f"{steps:.0f}",
               "--set", f"model.depth={depth}", "--set", f"model.width={width}", "--set", f"data.train_seed={k}",
               "--set", f"data.test_seed={1000 + k}", "--threads", "1", "--out", str(out), "--force", "--quiet"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{out}: {' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return out, "ran", time.perf_counter() - t0


def load(root, depth, width, k, steps):
    path = run_dir(root, depth, width, k, steps) / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def figures(root):
    from entropyeng.analysis import combine_summaries
    from entropyeng.analysis.plot import _plt, advantage_figure

    runs = [s for d, w in NETWORKS for k in DATA_SETS if (s := load(root, d, w, k, FIG1B_STEPS))]
    if runs:
        points = combine_summaries(runs)
        title = f"spiral: {FIG1B_STEPS:.0e} WLMC steps x {len(DATA_SETS)} data sets\n(the paper: 3.2e10 x 6)"
        advantage_figure(points, DOCS / "fig1b.png", title=title.replace("+", ""))
        record = dict(steps=FIG1B_STEPS, data_sets=DATA_SETS, paper_steps=3.2e10, paper_data_sets=6,
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
    conv = [(steps, s) for d, w, k, steps in CONVERGENCE if (s := load(root, d, w, k, steps))]
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
    parser = argparse.ArgumentParser(prog="python -m bench.fig1b", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="runs/fig1b")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--figures", action="store_true", help="only draw the figures from finished runs")
    args = parser.parse_args(argv)
    if not args.figures:
        jobs = jobs_list(args.root)
        print(f"{len(jobs)} runs, {args.jobs} at a time, under {args.root}", flush=True)
        with cf.ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_one, args.root, *j) for j in jobs]
            for f in cf.as_completed(futures):
                out, what, seconds = f.result()
                print(f"  {out.name}: {what} ({seconds:.0f} s)", flush=True)
    figures(args.root)


if __name__ == "__main__":
    main()
