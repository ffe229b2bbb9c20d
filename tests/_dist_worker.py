"""One rank of the two-process WLMD tests (started by tests/test_wlmd_walkers.py with the torchrun
environment variables set): the exact case of docs/design.md with walkers sharing one landscape."""

import argparse
import math
import os
import sys

import numpy as np
import torch

from entropyeng import Grid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the tests' conftest: the exact case
from conftest import exact_case, exact_wlmd  # noqa: E402


def exact_sampler(walkers, steps, seed, sync_every, timeout_s, schedule=None):
    total = walkers * int(os.environ["WORLD_SIZE"])
    kw = dict(schedule=schedule) if schedule else {}
    return exact_wlmd(steps * total, seed=seed, walkers=walkers, distributed=True, sync_every=sync_every,
                      timeout_s=timeout_s, **kw)


def rewl_main(out, stages, steps):
    """The exact case under REWL spread over the ranks; rank 0 writes the joined landscape."""
    from entropyeng.wlmc.rewl import REWL

    model, train, test = exact_case(3, 2)
    xa, yb = math.log(4 / 3), math.log(4 / 2)
    grid = Grid(xa - 4.5, xa + 0.5, 50, yb - 4.5, yb + 0.5, 50)
    r = REWL(model, train, test, loss="mse", metric="loss", grid=grid, windows=3,
             overlap=0.75, walkers_per_window=2, seed=1, exchange_every=5000, threads=1, distributed=True,
             timeout_s=60)
    r.run_stages(stages, steps)
    L = r.landscape  # a collective
    r.save(os.path.join(out, "rewl.npz"))
    if r.rank == 0:
        np.savez(os.path.join(out, "rewl_joined.npz"), S=L.entropy, H=L.histogram, exchanges=r.exchanges)
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def main():
    if sys.argv[1] == "rewl":
        torch.set_num_threads(1)
        return rewl_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--walkers", type=int, default=2)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--sync-every", type=int, default=50)
    p.add_argument("--die-at", type=int, default=-1, help="rank 1 exits abruptly after this many steps")
    p.add_argument("--die-before-save", type=int, default=-1,
                   help="rank 1 exits abruptly just before the checkpoint of this step (its collective)")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--resume", default="")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--schedule", default="", help="f_max,t1,t2,t3 (default: from --steps)")
    a = p.parse_args()
    torch.set_num_threads(1)
    schedule = dict(zip(("f_max", "t1", "t2", "t3"), map(float, a.schedule.split(",")))) if a.schedule else None
    w = exact_sampler(a.walkers, a.steps, a.seed, a.sync_every, a.timeout, schedule)
    rank = w.rank
    if a.resume:
        w.load_checkpoint(a.resume)
    ckpt = os.path.join(a.out, "checkpoint.npz")
    chunk = a.checkpoint_every or a.steps
    while w.t < a.steps:
        n = min(chunk, a.steps - w.t)
        if a.die_at >= 0 and rank == 1 and w.t + n > a.die_at:
            w.run(a.die_at - w.t)
            sys.stderr.write(f"rank 1 dies at step {w.t}\n")
            sys.stderr.flush()
            os._exit(3)
        w.run(n)
        if a.die_before_save == w.t and rank == 1:
            sys.stderr.write(f"rank 1 dies before the checkpoint of step {w.t}\n")
            sys.stderr.flush()
            os._exit(3)
        if a.checkpoint_every:
            try:
                w.save(ckpt)
            except RuntimeError as e:
                if not str(e).startswith("distributed:"):
                    raise
                sys.stderr.write(f"{e}\n")  # one line, as `entropyeng run` prints it
                sys.stderr.flush()
                os._exit(4)
    L = w.landscape
    np.savez(os.path.join(a.out, f"rank{rank}.npz"), S=L.entropy, H=L.histogram, t=w.t)
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()  # not left to the interpreter's shutdown (gloo aborted a rank there)
    # and no interpreter teardown at all: a resumed two-rank run still aborted once at exit after all
    # its work was written ("terminate called without an active exception", CI, this version)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
