"""A check of the harvest's one assumption that a landscape cannot test: that a walker biased over
the train loss alone visits, within a train loss, every network it should. A WLMC walker biased
over *both* axes (the landscape's S itself, frozen, on the cells within ``--cut`` nats of their
column's largest, walls elsewhere and beyond the reach) is driven through every such cell; its
samples in the window, reweighted by exp(S) (the multicanonical estimator: exact whatever the
errors of S, given a walk that visits the cells), give the window's mean test metric to compare
with the harvest's and with the landscape's Eq. 1.

    python -m bench.harvest_2d_check runs/long/spiral --seed 1 --steps 2e7 [--ln-train-loss -1.6]

Prints one JSON line: the reweighted mean, the plain mean of the samples, the effective sample
size (sum w)^2 / sum w^2.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np


def main(argv=None):
    from entropyeng import WLMC
    from entropyeng.harvest.bias import UNVISITED, frozen_bias
    from entropyeng.harvest.core import reach_columns
    from entropyeng.harvest.run import _run, _start
    from entropyeng.tasks.box import into_box

    parser = argparse.ArgumentParser(prog="python -m bench.harvest_2d_check", description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--ln-train-loss", type=float, default=-1.6)
    parser.add_argument("--window", type=float, default=0.1)
    parser.add_argument("--reach", type=float, default=0.3)
    parser.add_argument("--cut", type=float, default=10.0)
    parser.add_argument("--steps", type=float, default=2e7)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    config, problem, L = _run(args.run)
    g, x0 = L.grid, args.ln_train_loss
    lo, hi = x0 - args.reach, x0 + args.reach
    reach = reach_columns(g, lo, hi)
    S = np.where(L.histogram > 0, L.entropy, -np.inf)
    keep = reach[:, None] & np.isfinite(S) & (S >= S.max(axis=1, keepdims=True) - args.cut)
    bias = np.ascontiguousarray(np.where(keep, S - S[keep].max(), UNVISITED))

    model = into_box(problem.make_model(config["wlmc"].get("seed", 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WLMC(model, problem.train, problem.test, loss=problem.loss, metric=problem.metric, grid=g,
                 seed=2_000_003 + args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    w._chain.set_params(np.ascontiguousarray(_start(args.run, n_params), dtype=np.float64))

    def allowed():
        try:
            i, j = g.index(math.log(w.train_loss), w.test_metric)
        except ValueError:
            return False
        return bool(keep[i, j])

    w._chain.lnG = frozen_bias(L, lo, hi)  # walk in under the harvest's bias, into an allowed cell
    while not allowed():
        w.run(args.every, 0.0)
    w._chain.lnG = bias
    t0 = time.perf_counter()
    ys, lng = [], []
    for _ in range(int(args.steps) // args.every):
        w.run(args.every, 0.0)
        x, y = math.log(w.train_loss), w.test_metric
        if abs(x - x0) <= args.window / 2:
            ys.append(y)
            lng.append(bias[g.index(x, y)])
    ys, lng = np.array(ys), np.array(lng)
    wt = np.exp(lng - lng.max())
    print(json.dumps(dict(run=args.run, seed=args.seed, steps=int(args.steps), samples=int(ys.size),
                          reweighted=float((wt * ys).sum() / wt.sum()), plain_mean=float(ys.mean()),
                          effective_samples=float(wt.sum() ** 2 / (wt ** 2).sum()),
                          seconds=time.perf_counter() - t0)))


if __name__ == "__main__":
    main()
