"""The ranks of a ``torch.distributed`` job sharing one landscape (multiple-walker metadynamics;
Raiteri, Laio, Gervasio, Micheletti and Parrinello, J. Phys. Chem. B 110, 3533 (2006)): joining the
job, and the all-reduce of the landscape and histogram increments since the last sync.

Every rank runs its own walkers on its own copy of the landscape; every ``sync_every`` steps the
ranks add up what each deposited since the last sync, so that all ranks hold the same landscape
afterwards."""

from __future__ import annotations

import os
from datetime import timedelta

import torch

__all__ = ["init_distributed", "RANK_STRIDE", "LandscapeShare"]

RANK_STRIDE = 1 << 40  # the noise seeds of different ranks are seed + rank * 2^40: disjoint Philox keys


def init_distributed(backend=None, timeout_s=120.0):
    """Join the ``torchrun`` job (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` in the
    environment) if this process has not yet: gloo on CPU, NCCL on GPUs. Collectives that wait longer
    than ``timeout_s`` (a rank died) raise instead of hanging. Returns (rank, world size)."""
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("distributed: this torch build has no torch.distributed")
    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise RuntimeError("distributed: RANK / WORLD_SIZE are not set; start the script with torchrun "
                               "(torchrun --nproc_per_node P script.py) or call init_process_group first")
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


class LandscapeShare:
    """The landscape S and histogram H (float64 tensors, updated in place by the steps) as of the
    last sync; :meth:`__call__` all-reduces the increments since then over the ranks. Only the box of
    cells that changed on some rank travels (hills are local: a sync every 100 steps moves a few
    hundred cells of a 10^4-cell grid)."""

    def __init__(self, S: torch.Tensor, H: torch.Tensor):
        self.S, self.H = S, H
        self.S0, self.H0 = S.clone(), H.clone()

    def __call__(self, rank: int, step: int) -> None:
        import torch.distributed as dist

        S, H, S0, H0 = self.S, self.H, self.S0, self.H0
        try:
            changed = (S != S0) | (H != H0)
            rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
            nx, ny = S.shape
            if rows.numel():
                box = torch.tensor([-int(rows[0]), int(rows[-1]) + 1, -int(cols[0]), int(cols[-1]) + 1])
            else:
                box = torch.tensor([-nx, 0, -ny, 0])  # an empty box
            dist.all_reduce(box, op=dist.ReduceOp.MAX)
            i0, i1, j0, j1 = -int(box[0]), int(box[1]), -int(box[2]), int(box[3])
            if i1 <= i0 or j1 <= j0:
                return
            sl = (slice(i0, i1), slice(j0, j1))
            inc = torch.stack([S[sl] - S0[sl], H[sl] - H0[sl]])
            dist.all_reduce(inc, op=dist.ReduceOp.SUM)
            S[sl] = S0[sl] + inc[0]
            H[sl] = H0[sl] + inc[1]
            S0[sl] = S[sl]
            H0[sl] = H[sl]
        except RuntimeError as e:
            raise RuntimeError(f"distributed: the landscape all-reduce at step {step} failed on rank {rank} "
                               f"(another rank died or timed out): {e}") from None

    def reset(self) -> None:
        """The current S and H are the synced state (after a restore from a checkpoint)."""
        self.S0.copy_(self.S)
        self.H0.copy_(self.H)
