"""Distributed runs on GPU hosts, tested without a GPU: the backend follows the model's device, each
rank of a CUDA model takes cuda:LOCAL_RANK, the ranks agree on one kind of device before the group
forms, and every collective's tensor goes to the backend's device (a stand-in NCCL group refuses a
tensor that did not, as NCCL refuses CPU tensors)."""

import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from entropyeng import WLMD, Grid
from entropyeng.wlmd import ranks


def test_the_backend_follows_the_models_device():
    assert ranks.backend_for("cpu") == "gloo"
    assert ranks.backend_for(torch.device("cuda", 1)) == "nccl"


def test_a_cpu_model_keeps_the_cpu_on_a_gpu_host(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert ranks.rank_device("cpu", {"LOCAL_RANK": "3"}) == torch.device("cpu")
    assert ranks.backend_for("cpu") == "gloo"


class FakeCuda:
    def __init__(self, count):
        self.count, self.current = count, None

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "device_count", lambda: self.count)
        monkeypatch.setattr(torch.cuda, "set_device", lambda d: setattr(self, "current", d))


@pytest.mark.parametrize("local, model, expect", [("1", "cuda", 1), ("1", "cuda:1", 1), ("0", "cuda:0", 0)])
def test_each_rank_of_a_cuda_model_takes_cuda_local_rank(monkeypatch, local, model, expect):
    cuda = FakeCuda(2)
    cuda.install(monkeypatch)
    assert ranks.rank_device(model, {"LOCAL_RANK": local}) == torch.device("cuda", expect)
    assert cuda.current == expect


@pytest.mark.parametrize("env, model, message", [
    ({"LOCAL_RANK": "2"}, "cuda", "LOCAL_RANK 2, but this host has 2 GPU"),
    ({"LOCAL_RANK": "1"}, "cuda:0", r"the model is on cuda:0, but this rank's GPU is cuda:1"),
    ({"LOCAL_RANK": "x"}, "cuda", "LOCAL_RANK must be an integer"),
])
def test_a_rank_on_the_wrong_gpu_is_one_line(monkeypatch, env, model, message):
    FakeCuda(2).install(monkeypatch)
    with pytest.raises(ValueError, match=message) as info:
        ranks.rank_device(model, env)
    assert "\n" not in str(info.value)


def test_ranks_on_different_devices_are_refused_before_the_group_forms():
    store = dist.HashStore()
    store.set("entropyeng/device/1", "cuda")  # the other rank's model is on a GPU
    with pytest.raises(ValueError, match="rank 0: cpu, rank 1: cuda"):
        ranks._agree_on_devices(store, 0, 2, "cpu")
    same = dist.HashStore()
    same.set("entropyeng/device/1", "cpu")
    ranks._agree_on_devices(same, 0, 2, "cpu")


class OnNcclDevice(torch.Tensor):
    """A tensor the stand-in says lives on the NCCL device (moved there by ranks._to_comm)."""


class StandInNccl:
    """A one-rank NCCL group: every collective refuses a tensor that was not moved to its device."""

    def __init__(self):
        self.calls = []

    def _check(self, what, t):
        if not isinstance(t, OnNcclDevice):
            raise RuntimeError(f"NCCL {what}: a CPU tensor (NCCL moves only tensors on its device)")
        self.calls.append(what)

    def all_reduce(self, t, op=None, **kw):
        self._check("all_reduce", t)

    def all_gather(self, parts, t, **kw):
        self._check("all_gather", t)
        for p in parts:
            self._check("all_gather output", p)
            p.copy_(t)

    def install(self, monkeypatch):
        monkeypatch.setattr(dist, "is_initialized", lambda: True)
        monkeypatch.setattr(dist, "get_backend", lambda *a: "nccl")
        monkeypatch.setattr(dist, "get_rank", lambda *a: 0)
        monkeypatch.setattr(dist, "get_world_size", lambda *a: 1)
        monkeypatch.setattr(dist, "all_reduce", self.all_reduce)
        monkeypatch.setattr(dist, "all_gather", self.all_gather)
        monkeypatch.setattr(ranks, "_to_comm", lambda t: t.clone().as_subclass(OnNcclDevice))
        monkeypatch.setattr(ranks, "_from_comm", lambda c, like: c.as_subclass(torch.Tensor).to(like.device))
        # the run's model is a CPU stand-in for a CUDA one: the group's backend check is the CUDA model's
        monkeypatch.setattr(ranks, "backend_for", lambda device: "nccl")


def test_every_collective_of_a_distributed_run_goes_to_the_backends_device(monkeypatch, tmp_path):
    """Landscape shares, the alive count, the stop flag and the checkpoint's gathers of a distributed
    run, all under a stand-in NCCL group: a CPU tensor in any collective fails."""
    from entropyeng.runs.loop import _any_rank

    nccl = StandInNccl()
    nccl.install(monkeypatch)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 1, bias=False)).double()
    eye = torch.eye(5, dtype=torch.float64)
    data = (eye[:3], torch.zeros(3, 1, dtype=torch.float64)), (eye[3:], torch.zeros(2, 1, dtype=torch.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = WLMD(model, *data, loss="mse", grid=Grid(-12, 2, 70, -12, 2, 70), steps=1000, bound=0.5, walkers=2,
                 distributed=True, sync_every=10)
    assert (w.rank, w.world) == (0, 1)
    w.run(50)
    assert _any_rank(w, False) is False and _any_rank(w, True) is True
    w.save(tmp_path / "c.npz")
    assert {"all_reduce", "all_gather", "all_gather output"} <= set(nccl.calls)
    assert np.isfinite(w.landscape.entropy).all() and w.landscape.histogram.sum() == 100


def test_a_cpu_model_in_an_nccl_group_is_one_line(monkeypatch):
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda *a: "nccl")
    with pytest.raises(ValueError, match="a CPU model needs a gloo group"):
        ranks.init_distributed("cpu")
