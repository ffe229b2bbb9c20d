"""The closest published relative of WLMD, side by side: BlackJAX's contour SGLD (Deng et al. 2020;
``blackjax.csgld``, jitted JAX) on the spiral-regression network of width 30 (2 -> 30 -> 30 -> 1, tanh,
1,051 parameters) with the full 250-point training set as its batch, and with the 250 test points
added (500 rows: the forward and backward arithmetic of a WLMD step, which evaluates train and test
and moves on a 2-D landscape), against this engine's compiled WLMD step on the same model and data.

    pip install "jax[cpu]" blackjax      # not a dependency of the package
    python -m entropyeng.benchmarks.peers.blackjax_csgld

Each measurement runs in its own process pinned to one core (``taskset``), with one intra-op thread
(torch) or XLA's single-threaded Eigen (JAX); both are called from a Python loop, one step per call,
as a user drives a sampler. Also reported: the JAX step inside one ``lax.fori_loop`` of 1,000 steps
(no Python per step: the floor of a jitted step). Prints one JSON line per measurement and a table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

JAX = r"""
import json, os, sys, time
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
import jax, jax.numpy as jnp, numpy as np, blackjax
dtype, rows = sys.argv[1], int(sys.argv[3])
jax.config.update("jax_enable_x64", dtype == "float64")
from entropyeng.tasks import spiral_regression
X, y = (np.asarray(a, dtype=dtype) for a in spiral_regression(250, seed=0))
if rows == 500:  # the train and the test rows: the arithmetic of a WLMD step's forward and backward
    Xt, yt = (np.asarray(a, dtype=dtype) for a in spiral_regression(250, seed=1))
    X, y = np.concatenate([X, Xt]), np.concatenate([y, yt])
rng = np.random.default_rng(0)
def layer(i, o):
    b = 1 / np.sqrt(i)
    return rng.uniform(-b, b, (i, o)).astype(dtype), rng.uniform(-b, b, (o,)).astype(dtype)
params = [layer(2, 30), layer(30, 30), layer(30, 1)]
def loss(p, batch):
    Xb, yb = batch
    h = jnp.tanh(Xb @ p[0][0] + p[0][1])
    h = jnp.tanh(h @ p[1][0] + p[1][1])
    return jnp.mean((h @ p[2][0] + p[2][1] - yb) ** 2)
logdensity = lambda p, batch: -250.0 * loss(p, batch)
grad = jax.grad(logdensity)
alg = blackjax.csgld(logdensity, grad, zeta=2, num_partitions=200, energy_gap=5.0, min_energy=0.0)
state = alg.init(params)
batch = (jnp.asarray(X), jnp.asarray(y))
step = jax.jit(lambda key, s: alg.step(key, s, batch, 1e-5, 0.01))
key = jax.random.PRNGKey(0)
keys = jax.random.split(key, 3000)
s = step(keys[0], state); jax.block_until_ready(s)
best = float("inf")
for r in range(3):
    t0 = time.perf_counter()
    for k in keys[:1000]:
        s = step(k, s)
    jax.block_until_ready(s)
    best = min(best, (time.perf_counter() - t0) / 1000)
def body(i, c):
    return step(jax.random.fold_in(key, i), c)
loop = jax.jit(lambda s: jax.lax.fori_loop(0, 1000, body, s))
s2 = loop(s); jax.block_until_ready(s2)
t0 = time.perf_counter(); s2 = loop(s2); jax.block_until_ready(s2)
inner = (time.perf_counter() - t0) / 1000
print(json.dumps(dict(peer=f"blackjax csgld, {rows} rows", dtype=dtype, us_per_step=best * 1e6,
                      us_per_step_in_loop=inner * 1e6)))
"""

ENGINE = r"""
import json, sys, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[2])
from .. import wlmd_cases as D
dtype = getattr(torch, sys.argv[1])
w = D.spiral_sampler(True, dtype)
w.run(2)
print(json.dumps(dict(peer="entropyeng WLMD, 250 + 250 rows", dtype=sys.argv[1],
                      us_per_step=D.step_us(w, 1000, rounds=3))))
"""


def measure(code, dtype, rows=250, core=0):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = ["taskset", "-c", str(core), sys.executable, "-P", "-c", code, dtype, root, str(rows)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    rows = []
    for dtype in ("float32", "float64"):
        for code, n in ((ENGINE, 500), (JAX, 250), (JAX, 500)):
            r = measure(code, dtype, n)
            rows.append(r)
            print(json.dumps(r), flush=True)
    print(f"\n{'':34s} {'dtype':8s} {'us/step':>9s}")
    for r in rows:
        print(f"{r['peer']:34s} {r['dtype']:8s} {r['us_per_step']:9.1f}"
              + (f"   (inside one fori_loop: {r['us_per_step_in_loop']:.1f})" if "us_per_step_in_loop" in r else ""))


if __name__ == "__main__":
    main()
