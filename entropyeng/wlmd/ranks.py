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

__all__ = ["init_distributed", "backend_for", "rank_device", "comm_device", "all_reduce", "all_gather", "RANK_STRIDE",
           "LandscapeShare"]

RANK_STRIDE = 1 << 40  # the noise seeds of different ranks are seed + rank * 2^40: disjoint Philox keys


def backend_for(device) -> str:
    """The process-group backend a model's device takes: NCCL for a CUDA model, gloo for a CPU one
    (also on a GPU host: NCCL moves only CUDA tensors)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def rank_device(device, environ=None) -> torch.device:
    """This rank's device for a model on ``device``: the CPU for a CPU model; ``cuda:LOCAL_RANK`` for a
    CUDA model (one GPU a rank), made the current device. A ValueError in one line when LOCAL_RANK is
    beyond the GPUs present or the model sits on another GPU than the rank's."""
    device = torch.device(device)
    if device.type != "cuda":
        return device
    env = os.environ if environ is None else environ
    try:
        local = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ValueError(f"distributed: LOCAL_RANK must be an integer, got {env.get('LOCAL_RANK')!r}") from None
    count = torch.cuda.device_count()
    if not 0 <= local < count:
        raise ValueError(f"distributed: LOCAL_RANK {local}, but this host has {count} GPU(s): start torchrun with "
                         f"--nproc_per_node at most {count} (one GPU a rank)")
    if device.index is not None and device.index != local:
        raise ValueError(f"distributed: the model is on {device}, but this rank's GPU is cuda:{local} (LOCAL_RANK): "
                         "move it with model.to(torch.device('cuda', int(os.environ['LOCAL_RANK'])))")
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


def _agree_on_devices(store, rank: int, world: int, kind: str) -> None:
    """Every rank's model device kind through the job's store, before the process group forms (ranks
    on other devices would pick other backends and wait on each other until the timeout)."""
    store.set(f"entropyeng/device/{rank}", kind)
    kinds = [store.get(f"entropyeng/device/{r}").decode() for r in range(world)]
    if len(set(kinds)) > 1:
        where = ", ".join(f"rank {r}: {k}" for r, k in enumerate(kinds))
        raise ValueError(f"distributed: the ranks' models are on different devices ({where}); put every rank's "
                         "model on the CPU (gloo) or every one on its own GPU (NCCL)")


def init_distributed(device="cpu", backend=None, timeout_s=120.0):
    """Join the ``torchrun`` job (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` in the
    environment) if this process has not yet, on the backend of the model's ``device``
    (:func:`backend_for`: gloo for a CPU model, also on a GPU host; NCCL for a CUDA model, each rank on
    ``cuda:LOCAL_RANK``); the ranks first check through the job's store that their models sit on one
    kind of device. A group formed already must suit the model's device. Collectives that wait longer
    than ``timeout_s`` (a rank died) raise instead of hanging. Returns (rank, world size)."""
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("distributed: this torch build has no torch.distributed")
    device = torch.device(device)
    rank_device(device)
    backend = backend or backend_for(device)
    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise RuntimeError("distributed: RANK / WORLD_SIZE are not set; start the script with torchrun "
                               "(torchrun --nproc_per_node P script.py) or call init_process_group first")
        timeout = timedelta(seconds=timeout_s)
        store, rank, world = next(dist.rendezvous("env://", timeout=timeout))
        store.set_timeout(timeout)
        _agree_on_devices(store, rank, world, device.type)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    elif backend_for(device) == "nccl" and str(dist.get_backend()).lower() != "nccl":
        raise ValueError(f"distributed: the process group's backend is {dist.get_backend()}, a CUDA model needs NCCL")
    elif backend_for(device) == "gloo" and str(dist.get_backend()).lower() == "nccl":
        raise ValueError("distributed: the process group's backend is NCCL, which moves only CUDA tensors: a CPU "
                         "model needs a gloo group (init_process_group('gloo'))")
    return dist.get_rank(), dist.get_world_size()


def comm_device() -> torch.device:
    """The device a collective's tensors must live on: this rank's GPU under NCCL, else the CPU."""
    import torch.distributed as dist

    if str(dist.get_backend()).lower() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _to_comm(t: torch.Tensor) -> torch.Tensor:
    return t.to(comm_device())


def _from_comm(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return c.to(like.device)


def all_reduce(t: torch.Tensor, op=None) -> torch.Tensor:
    """``t`` all-reduced over the ranks (op default SUM), through the backend's device, returned on
    ``t``'s device (every collective of the package goes through here or :func:`all_gather`)."""
    import torch.distributed as dist

    c = _to_comm(t)
    dist.all_reduce(c, op=dist.ReduceOp.SUM if op is None else op)
    return _from_comm(c, t)


def all_gather(t: torch.Tensor) -> list:
    """Every rank's ``t`` (same shape on every rank), through the backend's device, on ``t``'s device."""
    import torch.distributed as dist

    c = _to_comm(t.contiguous())
    parts = [torch.empty_like(c) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, c)
    return [_from_comm(p, t) for p in parts]


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
            box = all_reduce(box, op=dist.ReduceOp.MAX)
            i0, i1, j0, j1 = -int(box[0]), int(box[1]), -int(box[2]), int(box[3])
            if i1 <= i0 or j1 <= j0:
                return
            sl = (slice(i0, i1), slice(j0, j1))
            inc = all_reduce(torch.stack([S[sl] - S0[sl], H[sl] - H0[sl]]))
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
