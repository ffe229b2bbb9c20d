"""The head-to-head's spiral rows on the spiral's known landscape: each method's mean (the seeds that
reached the target) as a star at its mean train loss, over the landscape's Eq. 1 curve.

    python -m bench.maxent_on_landscape [--landscape runs/maxent-landscapes/spiral]

reads ``docs/maxent-results.json`` (``python -m bench --section maxent``) and the finished spiral
run the harvest rows drew from (``entropyeng run spiral``, 10^8 WLMC steps), and writes
``docs/maxent-on-landscape.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def main(argv=None):
    from entropyeng import Landscape
    from entropyeng.analysis.plot import landscape_figure
    from entropyeng.train.compare import METHODS

    parser = argparse.ArgumentParser(prog="python -m bench.maxent_on_landscape", description=__doc__.split("\n")[0])
    parser.add_argument("--landscape", default=os.path.join("runs", "maxent-landscapes", "spiral"))
    args = parser.parse_args(argv)
    with open(os.path.join(DOCS, "maxent-results.json")) as fh:
        rows = [r for r in json.load(fh) if r["task"] == "spiral" and r.get("reached")]
    points = []
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method]
        if rs:
            points.append((f"{method} ({len(rs)} seeds, mean)", float(np.mean([math.log(r["train_loss"]) for r in rs])),
                           float(np.mean([r["test_metric"] for r in rs]))))
    L = Landscape.load(os.path.join(args.landscape, "landscape.npz"))
    path = os.path.join(DOCS, "maxent-on-landscape.png")
    landscape_figure(L, path, points=points, title="spiral 4x8: the methods on the 1e8-step WLMC landscape",
                     y_label="test accuracy")
    for label, x, y in points:
        print(f"{label:28s} ln L {x:+.3f}  test accuracy {y:.3f}")
    print(path)


if __name__ == "__main__":
    main()
