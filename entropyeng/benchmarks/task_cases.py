"""Time per WLMD / WLMC step of each paper task at its full size (the paper's data sizes and
networks), on the step its default run takes (the task's dtype, ``compile="auto"`` deciding as on a
run of the default budget), and the wall time of the default budget at that speed: the numbers behind README's
"Reproducing the paper" table. Tasks whose data is not shipped (CIFAR, polymer) run on random
stand-ins of the same shape, which costs the same per step."""

from __future__ import annotations

import time
import warnings

import numpy as np

from entropyeng.runs.build import new_sampler, total_steps
from entropyeng.runs.config import load_config
from entropyeng.tasks.catalog import build

# (task, --set overrides, label); the paper's network sizes (Supplementary Figs. 3, 7-9)
CASES = [
    ("spiral", {}, "4x8 relu"),
    ("spiral_regression", {"model.width": 30}, "W=30"),
    ("spiral_regression", {"model.width": 100}, "W=100"),
    ("spiral_regression", {"model.width": 300}, "W=300"),
    ("spiral_regression", {"model.width": 1000}, "W=1000"),
    ("house", {"model.width": 20}, "W=20"),
    ("house", {"model.width": 100}, "W=100"),
    ("digits", {"model.channels": 2}, "2 ch, 8x8 digits"),
    ("digits", {"model.channels": 2, "mnist28": True}, "2 ch, 28x28 MNIST"),
    ("polymer", {"model.width": 50}, "W=50"),
    ("cifar", {}, "ResNet-10 LN"),
]


def _stand_in(task, tmp, cfg):
    rng = np.random.default_rng(0)
    if task == "polymer":
        path = f"{tmp}/emb.npz"
        np.savez(path, X=rng.normal(size=(561, 768)), y=rng.normal(size=561))
        return path
    if task == "cifar":
        import os
        import pickle

        path = f"{tmp}/cifar-10-batches-py"
        os.makedirs(path, exist_ok=True)
        labels = np.repeat([4, 6], 3000)
        with open(f"{path}/data_batch_1", "wb") as fh:
            pickle.dump({b"data": rng.integers(0, 256, size=(6000, 3072), dtype=np.uint8),
                         b"labels": list(labels)}, fh)
        return path
    if cfg.get("mnist28"):
        path = f"{tmp}/mnist.npz"
        np.savez(path, x_train=rng.integers(0, 256, size=(1000, 28, 28), dtype=np.uint8),
                 y_train=rng.integers(0, 10, size=1000))
        return path
    return None


def time_task(task, overrides, tmp, min_time=2.0, max_steps=2000):
    sets = [f"{k}={v}" for k, v in overrides.items() if k != "mnist28"]
    data = _stand_in(task, tmp, overrides)
    config = load_config(task, sets, data=data)
    problem = build(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = new_sampler(config, problem)
    n_params = sum(p.numel() for p in problem.make_model(0).parameters())
    if problem.sampler == "wlmc":
        sampler.run(10_000, 0.1)
        n, t0 = 200_000, time.perf_counter()
        sampler.run(n, 0.1)
        per = (time.perf_counter() - t0) / n
    else:  # the step the default run takes: "auto" decides on the first run (compile not timed)
        sampler.planned_steps = total_steps(config)
        sampler.run(3)
        n, chunk, t0 = 0, 1, time.perf_counter()
        while time.perf_counter() - t0 < min_time and n < max_steps:
            sampler.run(chunk)
            n += chunk
            chunk = min(2 * chunk, 64)
        per = (time.perf_counter() - t0) / n
    budget = total_steps(config)
    form = getattr(sampler, "step_form", None)
    return dict(task=task, label=None, n_params=n_params, sampler=problem.sampler.upper(), us_per_step=per * 1e6,
                default_steps=budget, hours_for_default=per * budget / 3600, form=form,
                model_path=getattr(sampler, "model_path", None))
