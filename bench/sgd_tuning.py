"""SGD's learning rate and batch size for the spiral classification (the paper has no table for it):
a grid, each setting trained from 5 seeds on 80 % of the training set and scored on the held-out
20 % (the test set is not touched), the score being the best held-out accuracy along the run (the
paper's best-early-stopping readout). python -m bench.sgd_tuning writes docs/sgd-tuning.json."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

LRS = (0.01, 0.03, 0.1, 0.3)
BATCHES = (4, 8, 16, 32)


def tune(seeds=5, epochs=400, out="docs/sgd-tuning.json"):
    from entropyeng.analysis.baselines import train_one
    from entropyeng.tasks import spiral_classification
    from entropyeng.tasks.catalog import _factory

    torch.set_num_threads(1)
    X, y = spiral_classification(20, seed=0)
    X, y = np.asarray(X), np.asarray(y)
    perm = np.random.default_rng(0).permutation(len(X))
    n_fit = int(0.8 * len(X))
    fit, held = (X[perm[:n_fit]], y[perm[:n_fit]]), (X[perm[n_fit:]], y[perm[n_fit:]])
    make = _factory("spiral_mlp", None, depth=4, width=8, activation="relu")
    rows = []
    for lr in LRS:
        for bs in BATCHES:
            scores = [float(train_one(make, fit, held, loss="bce", metric="accuracy", epochs=epochs, lr=lr,
                                      batch_size=bs, seed=s, record_every=10)[:, 1].max()) for s in range(seeds)]
            rows.append(dict(lr=lr, batch_size=bs, held_out_accuracy=float(np.mean(scores)),
                             stderr=float(np.std(scores, ddof=1) / np.sqrt(seeds))))
            print(f"lr {lr:<5g} batch {bs:3d}: held-out accuracy {rows[-1]['held_out_accuracy']:.3f} "
                  f"+- {rows[-1]['stderr']:.3f}", flush=True)
    best = max(rows, key=lambda r: r["held_out_accuracy"])
    result = dict(grid=dict(lr=LRS, batch_size=BATCHES), seeds=seeds, epochs=epochs,
                  split="80 % of the training set fitted, 20 % held out (seed 0)", rows=rows, best=best)
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"best: lr {best['lr']} batch {best['batch_size']} ({best['held_out_accuracy']:.3f})")
    return result


if __name__ == "__main__":
    tune(out=sys.argv[1] if len(sys.argv) > 1 else "docs/sgd-tuning.json")
