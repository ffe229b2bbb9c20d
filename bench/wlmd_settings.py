"""WLMD on the exact case of docs/design.md at several settings: the slope bias of the test's
settings, of the paper's (Table 6) hills, grid, schedule shape, wall constant and time step, and of
the two integrators at two time steps.

    python -m bench.wlmd_settings          # ~15 minutes on one core; writes docs/wlmd-settings.json

The exact case: Linear(5, 1) on identity rows (3 train, 2 test), zero targets, MSE, box [-1, 1]:
S(x, y) = (3/2) x + y + c below x = ln(1/3), y = ln(1/2). Slopes are fitted over the visited cells
at least 0.4 from the walls (as in tests/test_wlmd.py).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import tempfile
import time
import warnings

import numpy as np
import torch
from torch import nn

from entropyeng import WLMD, Grid, WLMDError

XA, YB = math.log(1 / 3), math.log(1 / 2)
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def schedule_of(shape, steps, f_max):
    """The schedule's (t1, t2, t3) as fractions of the run: "test" (1e4 steps, half, 0) or "paper"
    (Table 6's spiral regression and MNIST: 2e5, 1e7, 8e6 of 2e7 steps -> 0.01, 0.5, 0.4)."""
    if shape == "test":
        return dict(f_max=f_max, t1=min(1e4, steps / 30), t2=steps / 2, t3=0.0)
    return dict(f_max=f_max, t1=0.01 * steps, t2=0.5 * steps, t3=0.4 * steps)


CASES = {
    # name: (bin, sigma, cutoff, wall_c, dt, gamma, integrator, schedule shape, f_max, steps)
    "test settings, paper scheme": (0.05, 0.15, 0.6, 30.0, 0.01, 0.1, "paper", "test", 0.08, 300_000),
    "test settings, BAOAB": (0.05, 0.15, 0.6, 30.0, 0.01, 0.1, "baoab", "test", 0.08, 300_000),
    "test settings, paper scheme, dt / 2": (0.05, 0.15, 0.6, 30.0, 0.005, 0.05, "paper", "test", 0.04, 600_000),
    "test settings, BAOAB, dt / 2": (0.05, 0.15, 0.6, 30.0, 0.005, 0.05, "baoab", "test", 0.04, 600_000),
    "test settings, paper scheme, gamma 0.3": (0.05, 0.15, 0.6, 30.0, 0.01, 0.3, "paper", "test", 0.08, 300_000),
    "test settings, BAOAB, gamma 0.3": (0.05, 0.15, 0.6, 30.0, 0.01, 0.3, "baoab", "test", 0.08, 300_000),
    "test settings, paper scheme, gamma 0.5": (0.05, 0.15, 0.6, 30.0, 0.01, 0.5, "paper", "test", 0.08, 300_000),
    "test settings, BAOAB, gamma 0.5": (0.05, 0.15, 0.6, 30.0, 0.01, 0.5, "baoab", "test", 0.08, 300_000),
    # Table 6's hills (sigma 0.2, cutoff 0.8 on bins of 0.02), schedule shape and wall constant (3000).
    # A hill's height is its mass in cells, so f_max keeps the test's total mass in the landscape's
    # units: x (0.05 / 0.02)^2 for the smaller cells, x 1.25 for the schedule's shorter tail
    # (0.842 / 0.674 of f_max per step), / 5 for five times the steps at dt 0.002
    "paper hills, grid, schedule, wall 3000; dt 0.01": (0.02, 0.2, 0.8, 3000.0, 0.01, 0.1, "paper", "paper", 0.625,
                                                        300_000),
    "paper hills, grid, schedule, wall 3000; dt 0.002": (0.02, 0.2, 0.8, 3000.0, 0.002, 0.02, "paper", "paper",
                                                         0.125, 1_500_000),
    "paper hills, grid, schedule, wall 3000; dt 0.002, BAOAB": (0.02, 0.2, 0.8, 3000.0, 0.002, 0.02, "baoab",
                                                                "paper", 0.125, 1_500_000),
    # Table 6's time step and friction (spiral regression: dt 5e-5, friction 3e-5 per step)
    "paper settings, dt 5e-5, friction 3e-5": (0.02, 0.2, 0.8, 3000.0, 5e-5, 3e-5, "paper", "paper", 0.125,
                                               1_500_000),
}


def config_temperature(integrator, gamma, kT=1.0):
    """The temperature at which the integrator samples configurations in the small-dt limit at a
    fixed friction per step: the paper's kick-friction-drift scheme kT (2 - gamma) / (2 (1 - gamma))
    (exact for a harmonic well, any dt: the kick is damped in its own step), BAOAB kT. The
    landscape's slopes come out scaled by it / kT."""
    return kT * (2 - gamma) / (2 * (1 - gamma)) if integrator == "paper" else kT


def run_case(name, seed=1):
    bin_, sigma, cutoff, wall_c, dt, gamma, integrator, shape, f_max, steps = CASES[name]
    nx, ny = round(6.0 / bin_), round(6.5 / bin_)
    grid = Grid(-5.0, 1.0, nx, -5.0, 1.5, ny)
    model = nn.Sequential(nn.Linear(5, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.fill_(0.3)
    eye = torch.eye(5, dtype=torch.float64)
    train, test = (eye[:3], torch.zeros(3, 1, dtype=torch.float64)), (eye[3:], torch.zeros(2, 1, dtype=torch.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WLMD(model, train, test, loss="mse", grid=grid, sigma=sigma, cutoff=cutoff,
                 walls=dict(x_min=-4.0, y_min=-4.0, x_max=XA, y_max=YB), wall_c=wall_c,
                 schedule=schedule_of(shape, steps, f_max), dt=dt, gamma=gamma, bound=1.0, seed=seed,
                 integrator=integrator, compile=True)
    temps = []
    t0 = time.perf_counter()
    try:
        w.run(steps, callback=lambda info: temps.append(info.kinetic_temperature), every=5000,
              checkpoint=pathlib.Path(tempfile.gettempdir()) / "wlmd-settings-last-good.npz")
    except WLMDError as e:
        return dict(name=name, failed=str(e).split("\n")[0], step=w.t)
    L = w.landscape
    X, Y = np.meshgrid(*grid.centers, indexing="ij")
    region = (X > -3.5) & (X < XA - 0.4) & (Y > -3.5) & (Y < YB - 0.4) & L.visited
    full = (X > -3.5) & (X < XA - 0.4) & (Y > -3.5) & (Y < YB - 0.4)
    sx, sy = np.linalg.lstsq(np.c_[X[region], Y[region], np.ones(region.sum())], L.entropy[region], rcond=None)[0][:2]
    return dict(name=name, slope_x=float(sx), slope_y=float(sy), bias_x=float(sx / 1.5 - 1), bias_y=float(sy - 1),
                config_temperature=config_temperature(integrator, gamma),
                visited=float(region.sum() / full.sum()), round_trips=int(w.round_trips),
                kinetic_temperature=float(np.mean(temps)) if temps else None, steps=steps, seed=seed,
                seconds=time.perf_counter() - t0)


def table(results) -> str:
    """The results as a markdown table: per case, the mean slope bias over its seeds (and their
    range), the prediction of the configurational temperature, round trips."""
    rows = ["| case | seeds | slope x bias | slope y bias | T_conf / kT - 1 | kinetic T / kT | round trips |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name in CASES:
        runs = [r for r in results if r["name"] == name]
        if not runs:
            continue
        ok = [r for r in runs if "failed" not in r]
        if not ok:
            rows.append(f"| {name} | {len(runs)} | failed: {runs[0]['failed'].split(';')[0].replace('WLMD stopped: ', '')} "
                        "| | | | |")
            continue

        def cell(key):
            v = [100 * r[key] for r in ok]
            spread = f" ({min(v):+.1f} ... {max(v):+.1f})" if len(v) > 1 else ""
            return f"{np.mean(v):+.1f} %{spread}"

        t = config_temperature(CASES[name][6], CASES[name][5])
        kin = np.mean([r["kinetic_temperature"] for r in ok])
        rows.append(f"| {name} | {len(ok)} | {cell('bias_x')} | {cell('bias_y')} | {100 * (t - 1):+.1f} % | {kin:.2f} | "
                    f"{int(np.mean([r['round_trips'] for r in ok]))} |")
    return "\n".join(rows) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.wlmd_settings")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--seeds", type=int, nargs="*", default=[1])
    parser.add_argument("--table", action="store_true", help="print the table of docs/wlmd-settings.json only")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads((DOCS / "wlmd-settings.json").read_text())), end="")
        return
    torch.set_num_threads(1)
    path = DOCS / "wlmd-settings.json"
    results = json.loads(path.read_text()) if path.exists() else []
    for name in args.cases:
        for seed in args.seeds:
            r = run_case(name, seed)
            results = [q for q in results if (q["name"], q.get("seed")) != (name, seed)] + [r]
            path.write_text(json.dumps(results, indent=1) + "\n")
            if "failed" in r:
                print(f"{name:55s} seed {seed}: failed at step {r['step']}: {r['failed']}", flush=True)
            else:
                print(f"{name:55s} seed {seed}: slopes {r['slope_x']:.3f} ({100 * r['bias_x']:+.1f} %), "
                      f"{r['slope_y']:.3f} ({100 * r['bias_y']:+.1f} %); visited {r['visited']:.2f}, "
                      f"{r['round_trips']} round trips, kT {r['kinetic_temperature']:.2f}, {r['seconds']:.0f} s",
                      flush=True)


if __name__ == "__main__":
    main()
