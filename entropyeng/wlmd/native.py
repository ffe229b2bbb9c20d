"""The native form of the WLMD step: the whole step in C++ (``torch.ops.entropyeng.wlmd_native``,
``csrc/wlmd_native.cpp``), n steps of K walkers in one call with no Python or torch between steps,
for the models the batched kernels take (:func:`entropyeng.wlmd.models.mlp_layout`,
:func:`~entropyeng.wlmd.models.net_layout`) with a built-in loss.

It does what the torch step (:mod:`entropyeng.wlmd.step`) does, in the same order, on the same
state tensors, with the same kernels (the batched model, ``landscape_step``, the Langevin update and
its Philox noise) and the physics of :mod:`entropyeng.wlmd.physics` written once in C++
(``csrc/wlmd_physics.h``); the two forms agree to rounding. :func:`fit` says whether a sampler's
model and loss can run it, and if not, why, naming the layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..kernels import ops
from . import models, setup

__all__ = ["fit", "make_native"]

_INTEGRATORS = {"paper": 0, "baoab": 1}


def _layer_problem(model) -> str:
    """Why the batched kernels do not take this model: the first layer that does not fit, or the
    model-wide reason."""
    from ..kernels.mlp_spec import ACTS

    if not isinstance(model, nn.Sequential):
        return f"the model is a {type(model).__name__}, not an nn.Sequential of the layers the C++ kernels take"
    cnn = any(isinstance(m, nn.Conv2d) for m in model)  # (a CNN's Linear head is not the MLP kernel's)
    first = next((i for i, m in enumerate(model) if isinstance(m, nn.Linear)), None)
    wide, native_wide = models.MLP_BATCH_MAX_WIDTH, models.NATIVE_MLP_MAX_WIDTH
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Linear):
            if cnn:
                continue
            if layer.out_features > native_wide or (i != first and layer.in_features > native_wide):
                return (f"layer {i} ({layer}) is wider than the native step's {native_wide} (a wider network gets "
                        "torch's threads, which one walker's native step cannot use)")
            if layer.in_features > wide:
                return (f"layer {i} ({layer}) has more than {wide} inputs, which the native step takes only where "
                        f"the data's rows are sparse (at most {models.MLP_SPARSE_MAX_DENSITY:.0%} of their values "
                        "nonzero; torch's products are faster on dense ones)")
        elif isinstance(layer, nn.Conv2d):
            if max(layer.in_channels, layer.out_channels) > models.NET_BATCH_MAX_CHANNELS:
                return f"layer {i} ({layer}) has more than {models.NET_BATCH_MAX_CHANNELS} channels"
        elif not (type(layer) in ACTS or isinstance(layer, (nn.MaxPool2d, nn.Flatten))):
            return (f"layer {i} ({type(layer).__name__}) is not a Linear, Conv2d, ReLU, Tanh, SiLU, Identity, "
                    "MaxPool2d(2) or Flatten")
    params = list(model.parameters())
    if any(not p.requires_grad for p in params):
        return "a parameter is frozen (requires_grad False)"
    if any(True for _ in model.buffers()):
        return "the model has buffers"
    if params and params[0].dtype not in (torch.float32, torch.float64):
        return f"its parameters are {params[0].dtype}, not float32 or float64"
    return "its layers, strides, paddings or inputs do not fit the batched kernels"


def fit(w):
    """``(codes, None)``: the model's description for the native operator, or ``(None, reason)``."""
    if not ops.COMPILED_OPERATORS:
        return None, "the C++ torch operator library is not loaded (built without torch, or another torch)"
    if w.device.type != "cpu":
        return None, f"the model is on {w.device}, the native step runs on the CPU (CUDA graphs do on a GPU)"
    if w.loss_name not in models.LOSS_CODES:
        return None, "loss: a callable loss has no native form (the built-in 'mse', 'ce' and 'bce' have)"
    model = nn.Sequential(w.model) if isinstance(w.model, nn.Linear) else w.model  # (a bare Linear: one layer)
    layout = models.mlp_layout(model, w.X_tr, w.X_te, sparse_input=True, max_width=models.NATIVE_MLP_MAX_WIDTH)
    if layout is not None:
        sizes, acts, bias = layout
        sparse = sizes[0] > models.MLP_BATCH_MAX_WIDTH  # (wide inputs only where the rows are sparse)
        codes = [2 if sparse else 0, len(acts), *sizes, *acts, *bias]
        d = sizes[-1]
    else:
        spec = models.net_layout(w.model, w.X_tr, w.X_te)
        if spec is None:
            return None, _layer_problem(w.model)
        codes = [1, *spec]
        d = int(w.model(w.X_tr[:1]).shape[-1])
    if w.loss_name != "ce":
        n = w.y_tr.shape[0]
        if w.y_tr.numel() != n * d or w.y_te.numel() != w.y_te.shape[0] * d:
            return None, f"the targets do not have the model's {d} outputs per row"
    if w.cv_y == "smoothed_accuracy" and d == 1 and w.loss_name == "ce":
        return None, "cross-entropy over one output"
    return codes, None


def make_native(w, codes):
    """``native(n)``: n steps of the native form on ``w.state`` (a :class:`entropyeng.WLMD`)."""
    X = torch.cat([w.X_tr, w.X_te]).contiguous()
    targets, labels, cv_ints = models.cv_args(w.loss_name, w.cv_y, w.logit_y, w.y_tr, w.y_te, X.dtype)
    bound = setup.bound_vector(w).reshape(-1).to(X.dtype).contiguous()
    lo, hi = setup.round_trip_ends(w.walls, w.grid)
    g, walls, sched = w.grid, w.walls, w.schedule
    inf = math.inf
    ints = [*cv_ints, _INTEGRATORS[w.integrator], int(w.deposits_per_step), ops.seed_arg(int(w._noise_seed))]
    reals = [float(w.alpha), *ops.grid_list(g), float(w.sigma), float(w.cutoff),
             float(walls.get("x_min", -inf)), float(walls.get("y_min", -inf)),
             float(walls.get("x_max", inf)), float(walls.get("y_max", inf)), float(w.wall_c),
             float(sched["f_max"]), float(sched["t1"]), float(sched["t2"]), float(sched["t3"]),
             float(w.dt), float(w.gamma), float(w.kT),
             float(lo), float(hi)]
    state = w.state
    op = torch.ops.entropyeng.wlmd_native

    def native(n):
        op(*state, X, targets, labels, bound, codes, ints, reals, int(n))

    return native
