"""CUDA graphs of the WLMD step: ``n`` calls of the step function over its buffers, captured once and
replayed (:class:`entropyeng.WLMD` on a CUDA device, the step function compiled or eager).

A replay launches the captured kernels from the device's own queue: no Python, no dispatcher, no
launch from the host per kernel, so a step costs its kernels' device time. The step function was
written for this (every input and output a buffer it updates in place, the step counter and the
noise counter in a device tensor, no host synchronisation), so a replay of ``n`` steps is ``n``
calls of the same kernels on the same addresses (to rounding: a library such as cuBLAS may choose
another algorithm under capture).

What a capture holds and what invalidates it: the kernels of the step function it was captured
from, on the addresses of the sampler's buffers. Loading a checkpoint, the host's restore of a
walker's last good state and the all-reduce of a distributed landscape write into those buffers in
place and keep it valid (a replay reads whatever they hold). A different step function (the form
chosen by ``compile="auto"`` after the capture, a rebuilt step) or a different number of steps per
replay needs a new capture; the sampler keys its capture on both and captures again then.
"""

from __future__ import annotations

import warnings

import torch

from .. import _checks as C

__all__ = ["capture_steps"]


def _cuda_capture(step, bufs, n, scratch):
    """The CUDA recipe (torch.cuda.graphs): two warm-up calls on a side stream over copies of the
    buffers (lazy initialisation, the compiled step's first call; the run's state is left alone),
    then the capture over the buffers themselves (capturing records the kernels without running
    them)."""
    device = bufs[0].device
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            step(*scratch)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(n):
            step(*bufs)
    return graph


def capture_steps(step, bufs, n: int, scratch, capture=None):
    """The captured graph of ``n`` calls ``step(*bufs)`` (its ``replay()`` runs them), or None with
    one warning if the capture fails (the caller then runs the steps one call at a time).
    ``scratch``: copies of ``bufs`` for the warm-up calls. ``capture(step, bufs, n, scratch) ->
    graph``: the CUDA recipe when None; the tests give a stand-in on the CPU."""
    try:
        graph = (capture or _cuda_capture)(step, bufs, n, scratch)
    except Exception as e:  # noqa: BLE001 (any capture failure: an operator that synchronises, memory)
        warnings.warn(f"cuda graphs: the WLMD step could not be captured ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:200] if str(e) else ''}); running it one call per step", stacklevel=C.user_stacklevel())
        return None
    return graph
