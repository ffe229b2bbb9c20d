"""The WLMD step as one function of tensors, for K >= 1 walkers sharing one landscape.

``make_step(...)`` returns ``step(theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips,
last_end)``, which does in
place, with no host synchronisation (no ``.item()``, no Python branch on a tensor value):

1. the forward pass on the train and test sets and the collective variables x, y of every walker,
   in the model's dtype: for an MLP or a small CNN on the CPU, the K models in one call of the C++
   operator ``entropyeng::mlp_batch`` or ``net_batch`` (and its backward in step 4); for any other
   model ``torch.func.functional_call``, with ``vmap`` over the walkers when K > 1;
2. the check of the state it starts from: a walker whose (x, y) is not finite or off the grid is
   dropped (``active`` false, ``bad`` = this step, ``bad_xy`` = that (x, y), its parameters and
   velocities restored to the last good ones), and deposits nothing from then on;
3. dS/dx, dS/dy at (x, y), then the hills of height f(t) of Eq. 4 (the clock in walker-steps:
   deposit t K + 1) and the histogram counts there, in float64 (one operator,
   ``torch.ops.entropyeng.landscape_step``);
4. dS plus the fixed walls' force as the seeds of one vector-Jacobian product: dV/dtheta for all
   walkers;
5. the Langevin update (``langevin``, the noise counter read from the step tensor ``t``), dropped
   walkers frozen; ``t += 1``.

So ``torch.compile(step, fullgraph=True)`` traces it whole (the custom operators are opaque nodes),
and on a GPU the same function can be captured in a CUDA graph. The host reads ``t``, ``bad`` and
``active`` every ``sync_every`` steps (the sampler around it: :class:`entropyeng.WLMD`).
"""

from __future__ import annotations

import itertools
import types

import torch
from torch.func import functional_call, vjp, vmap

from . import ops

__all__ = ["make_batched_forward_vjp", "make_cvs", "make_step", "mlp_layout", "net_layout", "repeat_step"]

_EPS = 1e-4


def rowwise(model) -> bool:
    """Whether the model treats every row of a batch on its own (no batch statistics), so that the
    train and test sets can go through it as one batch."""
    return not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _heads(loss_fn, y_tr, y_te, cv_y, alpha, logit_y):
    """``heads(out_tr, out_te) -> (x, y)``: the collective variables of one walker from its model's
    outputs on the train and test rows."""

    def heads(out_tr, out_te):
        x = torch.log(loss_fn(out_tr, y_tr))
        if cv_y == "test_loss":
            return x, torch.log(loss_fn(out_te, y_te))
        if out_te.dim() == 1 or out_te.shape[-1] == 1:  # one logit: binary
            z = out_te.reshape(-1)
            delta = torch.where(y_te.reshape(-1) > 0, z, -z)
        else:
            correct = out_te.gather(1, y_te.reshape(-1, 1)).squeeze(1)
            wrong = out_te.scatter(1, y_te.reshape(-1, 1), float("-inf")).amax(dim=1)
            delta = correct - wrong
        A_s = torch.sigmoid(alpha * delta).mean()
        if logit_y:
            p = _EPS + (1 - 2 * _EPS) * A_s
            return x, torch.log(p) - torch.log1p(-p)
        return x, A_s

    return heads


def make_cvs(model, loss_fn, X_tr, y_tr, X_te, y_te, cv_y, alpha, logit_y, joint=None):
    """``cvs(theta_flat) -> (x, y)`` (0-d tensors, the model's dtype) of one walker, from the flat
    parameter vector (in the model's parameter order), through ``functional_call``. ``joint``
    (default: when the model is row-wise, see :func:`rowwise`, and both inputs have one dtype):
    one forward over the train and test rows together, half the matrix-multiply calls."""
    names, shapes, sizes = [], [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            names.append(n)
            shapes.append(tuple(p.shape))
            sizes.append(p.numel())
    buffers = dict(model.named_buffers())
    if joint is None:
        joint = rowwise(model) and X_tr.dtype == X_te.dtype and X_tr.shape[1:] == X_te.shape[1:]
    X_all = torch.cat([X_tr, X_te]) if joint else None
    n_tr = X_tr.shape[0]
    heads = _heads(loss_fn, y_tr, y_te, cv_y, alpha, logit_y)

    def cvs(theta):
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(theta, sizes), shapes)}
        params.update(buffers)
        if joint:
            out = functional_call(model, params, (X_all,))
            return heads(out[:n_tr], out[n_tr:])
        return heads(functional_call(model, params, (X_tr,)), functional_call(model, params, (X_te,)))

    return cvs


#: The widest layer (inputs included) the batched MLP kernel takes: it wins on narrow networks and
#: loses on wide ones, where torch's matrix products are better blocked than its tiles (measured, one
#: thread, float32 compiled steps: spiral regression W = 30 108-123 us against 171 us through
#: functional_call; W = 100 0.89 ms against 0.66; W = 300 7.0 against 3.7 ms; the house network, 290
#: inputs, 2.9 against 0.6 ms; the polymer head, 768 inputs, 6.7 against 1.3 ms).
MLP_BATCH_MAX_WIDTH = 64

#: The most channels of a convolution the batched network kernel takes (the paper's CNNs have 2-4;
#: measured: 8 x 8 digits with 4 channels 1.5 ms a step against 6.6 ms through functional_call).
NET_BATCH_MAX_CHANNELS = 16


def _kernel_dtype(model):
    """The dtype of a model whose parameters the batched operators can take (an ``nn.Sequential``
    on the CPU, every parameter trained and of one dtype, float32 or float64, no buffers, and the C++
    operator library loaded), else None."""
    if not ops.COMPILED_OPERATORS or not isinstance(model, torch.nn.Sequential):
        return None
    params = list(model.parameters())
    if not params or any(not p.requires_grad for p in params) or any(True for _ in model.buffers()):
        return None
    dtype = params[0].dtype
    if dtype not in (torch.float32, torch.float64) or any(p.dtype != dtype or p.device.type != "cpu" for p in params):
        return None
    return dtype


def mlp_layout(model, X_tr, X_te):
    """``(sizes, acts, bias)`` of the batched MLP operators (``ops.mlp_batch``) when they can run
    this model's forward and backward on the CPU: an ``nn.Sequential`` of ``Linear`` layers with
    ReLU, Tanh, SiLU or Identity between them, every parameter trained, no buffers, float32 or
    float64, 2-D inputs of the model's dtype, and the C++ operator library loaded
    (:data:`entropyeng.ops.COMPILED_OPERATORS`; the torch reference kernels of the operators are
    slower than ``vmap``), and no layer wider than :data:`MLP_BATCH_MAX_WIDTH`. None otherwise: the
    step then runs the model through ``functional_call``."""
    from ._mlp import read_mlp

    dtype = _kernel_dtype(model)
    if dtype is None:
        return None
    try:
        spec, _ = read_mlp(model)
    except ValueError:
        return None
    if max(spec.sizes) > MLP_BATCH_MAX_WIDTH:
        return None
    for X in (X_tr, X_te):
        if X.dim() != 2 or X.shape[1] != spec.sizes[0] or X.dtype != dtype or X.device.type != "cpu":
            return None
    return [int(d) for d in spec.sizes], [int(a) for a in spec.acts], [int(b) for b in spec.bias]


def net_layout(model, X_tr, X_te):
    """The flat description of the batched network operators (``ops.net_batch``; layer codes in
    :mod:`entropyeng.reference.net_batch`) when they can run this model on the CPU: an
    ``nn.Sequential`` of ``Conv2d`` (a k x k kernel, stride 1, no dilation or groups, zero padding of
    at most k - 1, at most :data:`NET_BATCH_MAX_CHANNELS` channels), ReLU / Tanh / SiLU / Identity,
    ``MaxPool2d(2)`` (stride 2, no padding, floor), one ``Flatten`` and ``Linear`` layers after it;
    every parameter trained, no buffers, float32 or float64, image inputs (N, C, H, W) of the
    model's dtype, and the C++ operator library loaded. None otherwise."""
    from torch import nn

    from ._mlp import ACTS

    dtype = _kernel_dtype(model)
    if dtype is None:
        return None
    for X in (X_tr, X_te):
        if X.dim() != 4 or X.dtype != dtype or X.device.type != "cpu" or X.shape[1:] != X_tr.shape[1:]:
            return None
    spec, convs = [], 0
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            k = layer.kernel_size
            if (k[0] != k[1] or layer.stride != (1, 1) or layer.dilation != (1, 1) or layer.groups != 1
                    or layer.padding_mode != "zeros" or isinstance(layer.padding, str)
                    or layer.padding[0] != layer.padding[1] or layer.padding[0] > k[0] - 1):
                return None
            if max(layer.in_channels, layer.out_channels) > NET_BATCH_MAX_CHANNELS:
                return None
            spec += [1, layer.in_channels, layer.out_channels, k[0], layer.padding[0], int(layer.bias is not None)]
            convs += 1
        elif type(layer) in ACTS:
            spec += [2, ACTS[type(layer)]]
        elif isinstance(layer, nn.MaxPool2d):
            norm = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
            if (norm(layer.kernel_size) != (2, 2) or norm(layer.stride or layer.kernel_size) != (2, 2)
                    or norm(layer.padding) != (0, 0) or norm(layer.dilation) != (1, 1) or layer.ceil_mode
                    or layer.return_indices):
                return None
            spec += [3]
        elif isinstance(layer, nn.Flatten):
            if layer.start_dim != 1 or layer.end_dim != -1:
                return None
            spec += [4]
        elif isinstance(layer, nn.Linear):
            spec += [5, layer.in_features, layer.out_features, int(layer.bias is not None)]
        else:
            return None
    if convs == 0:
        return None  # an MLP on images: the batched MLP is the faster kernel
    try:  # the C++ side reads the description against the images' shape (a ValueError if it does not fit)
        n_params = sum(p.numel() for p in model.parameters())
        ops.net_batch(X_tr.new_zeros((1, n_params)), X_tr[:1].contiguous(), spec)
    except (ValueError, RuntimeError):
        return None
    return spec


def _batched_ops(kind, layout):
    """``(fwd, bwd, extra)`` of a batched operator pair: ``fwd(theta, X, *extra) -> (out, cache)``,
    ``bwd(theta, X, cache, grad_out, *extra) -> grad`` (the MLP's forward leaves its activations to
    its backward; the CNN's backward recomputes the forward, its cache is None)."""
    if kind == "mlp":
        return ops.mlp_batch, ops.mlp_batch_backward, tuple(layout)

    def fwd(theta, X, spec):
        return ops.net_batch(theta, X, spec), None

    def bwd(theta, X, cache, g_out, spec):
        return ops.net_batch_backward(theta, X, g_out, spec)

    return fwd, bwd, (layout,)


def make_batched_forward_vjp(kind, layout, loss_fn, X_tr, y_tr, X_te, y_te, cv_y, alpha, logit_y, K):
    """``forward_vjp(theta) -> (xy, pullback)`` for K walkers of a model the C++ batched operators
    run (``kind`` "mlp": ``ops.mlp_batch`` with ``layout`` from :func:`mlp_layout`; "net":
    ``ops.net_batch`` with the description from :func:`net_layout`): the K models' outputs on the
    train and test rows in one call (C++, the walkers over the intra-op threads), the collective
    variables from them through ``vjp``, and ``pullback(seeds)`` = the chain rule through the
    operator's backward. The same function as ``vjp`` of :func:`make_cvs`'s ``cvs`` over the
    walkers, to rounding."""
    fwd, bwd, extra = _batched_ops(kind, layout)
    X_all = torch.cat([X_tr, X_te]).contiguous()
    n_tr = X_tr.shape[0]
    heads = _heads(loss_fn, y_tr, y_te, cv_y, alpha, logit_y)

    def one(out):  # (N, d_out) -> (2,)
        return torch.stack(heads(out[:n_tr], out[n_tr:]))

    cv_of_out = vmap(one) if K > 1 else (lambda out: one(out[0]).reshape(1, 2))

    def forward_vjp(theta):
        out, cache = fwd(theta, X_all, *extra)
        xy, pull_out = vjp(cv_of_out, out)

        def pullback(seeds):
            (g_out,) = pull_out(seeds)
            return (bwd(theta, X_all, cache, g_out.contiguous(), *extra),)

        return xy, pullback

    return forward_vjp


def make_batched_outputs(kind, layout, X_tr, X_te):
    """``outputs(theta_kp) -> (out_tr, out_te)``: the first walker's model outputs on the train and
    test rows through the batched operator (``kind`` and ``layout`` as for
    :func:`make_batched_forward_vjp`), for the host's reads of (x, y) between blocks of steps."""
    fwd, _, extra = _batched_ops(kind, layout)
    X_all = torch.cat([X_tr, X_te]).contiguous()
    n_tr = X_tr.shape[0]

    def outputs(theta_kp):
        out = fwd(theta_kp[:1].contiguous(), X_all, *extra)[0]
        return out[0, :n_tr], out[0, n_tr:]

    return outputs


def _schedule_f(t, K, f_max, t1, t2, t3):
    """Eq. 4's f at deposit t K + 1 (t a 0-d int64 tensor), as f_schedule computes it."""
    td = (t * K + 1).to(torch.float64)
    rise = td / t1 * f_max
    tail = (t2 - t3) / (td - t3) * f_max
    return torch.where(td <= t1, rise, torch.where(td <= t2, torch.full_like(td, f_max), tail))


def _walls(x, y, walls, c):
    gx, gy = torch.zeros_like(x), torch.zeros_like(y)
    if "x_max" in walls:
        gx = gx + torch.where(x > walls["x_max"], 2 * c * (x - walls["x_max"]), torch.zeros_like(x))
    if "x_min" in walls:
        gx = gx + torch.where(x < walls["x_min"], 2 * c * (x - walls["x_min"]), torch.zeros_like(x))
    if "y_max" in walls:
        gy = gy + torch.where(y > walls["y_max"], 2 * c * (y - walls["y_max"]), torch.zeros_like(y))
    if "y_min" in walls:
        gy = gy + torch.where(y < walls["y_min"], 2 * c * (y - walls["y_min"]), torch.zeros_like(y))
    return gx, gy


def make_step(cvs, *, K, deposits_per_step, grid, sigma, cutoff, walls, wall_c, schedule, dt, gamma, kT, seed,
              integrator, bound, ends=None, forward_vjp=None):
    """The step function (see the module docstring). ``bound``: (K, P) tensor of the parameters'
    dtype and device; ``seed``: the Philox key of the noise; ``forward_vjp``: ``theta -> (xy,
    pullback)`` in place of ``vjp`` over ``cvs`` (the batched MLP or CNN: :func:`make_batched_forward_vjp`)."""
    g = ops.grid_list(grid)
    seed_i = ops.seed_arg(int(seed))
    sched = dict(schedule)
    walls = dict(walls)
    flat_bound = bound.reshape(-1)

    if K == 1:
        def batched(theta):
            x, y = cvs(theta[0])
            return torch.stack([x, y]).reshape(1, 2)
    else:
        one = vmap(lambda th: torch.stack(cvs(th)))

        def batched(theta):
            return one(theta)

    if forward_vjp is None:
        def forward_vjp(theta):
            return vjp(batched, theta)

    lo, hi = ends if ends is not None else (grid.x_min, grid.x_max)
    span = hi - lo

    def step(theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end):
        xy, pullback = forward_vjp(theta)
        x64, y64 = xy[:, 0].to(torch.float64), xy[:, 1].to(torch.float64)
        on = (torch.isfinite(x64) & torch.isfinite(y64) & (x64 >= grid.x_min) & (x64 <= grid.x_max)
              & (y64 >= grid.y_min) & (y64 <= grid.y_max))
        dropped = active & ~on
        first = dropped & (bad < 0)
        bad.copy_(torch.where(first, t.expand_as(bad), bad))
        bad_xy.copy_(torch.where(first.unsqueeze(1), xy.to(torch.float64), bad_xy))
        live = active & on
        active.copy_(live)
        keep = live.unsqueeze(1)
        # round trips in x between the lowest and the highest tenth of [lo, hi] (a diagnostic)
        end = torch.where(x64 < lo + 0.1 * span, 0, torch.where(x64 > hi - 0.1 * span, 1, -1)).to(torch.int64)
        end = torch.where(live, end, torch.full_like(end, -1))
        trips.add_(((end == 0) & (last_end == 1)).to(torch.int64))
        last_end.copy_(torch.where(end >= 0, end, last_end))
        # dropped walkers go back to their last good state (the one this step's check passed last)
        theta.copy_(torch.where(dropped.unsqueeze(1), good_theta, theta))
        v.copy_(torch.where(dropped.unsqueeze(1), good_v, v))
        good_theta.copy_(torch.where(keep, theta, good_theta))
        good_v.copy_(torch.where(keep, v, good_v))

        f = _schedule_f(t, deposits_per_step, **sched)
        weight = live.to(torch.float64)
        # dS at (x, y) before this step's hills, the hills of height f(t), the histogram counts
        dS = ops.landscape_step(S, H, g, x64, y64, f * weight, weight, sigma, cutoff)
        wx, wy = _walls(x64, y64, walls, wall_c)
        seeds = torch.stack([dS[0] + wx, dS[1] + wy], dim=1)
        if integrator == "baoab":  # the closing half kick of the last step and the opening one of this
            seeds = seeds * torch.where(t == 0, 1.0, 2.0).to(torch.float64)
        seeds = torch.where(keep, seeds, torch.zeros_like(seeds)).to(theta.dtype)
        (grad,) = pullback(seeds)


        flat_t, flat_v = theta.view(-1), v.view(-1)
        if integrator == "baoab":
            ops.langevin(flat_t, flat_v, grad.reshape(-1), flat_bound, 0.5 * dt, 0.0, kT, seed_i, t, 0)
            ops.langevin(flat_t, flat_v, torch.zeros_like(flat_t), flat_bound, 0.5 * dt, gamma, kT, seed_i, t, 0)
        else:
            ops.langevin(flat_t, flat_v, grad.reshape(-1), flat_bound, dt, gamma, kT, seed_i, t, 0)
        theta.copy_(torch.where(keep, theta, good_theta))
        v.copy_(torch.where(keep, v, torch.zeros_like(v)))
        t.add_(1)

    return _own_code(step)


def repeat_step(step, n):
    """``n`` calls of ``step`` as one function (with a code object of its own, see ``_own_code``):
    compiled, the n steps are one graph and share one call's overhead."""
    def block(theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end):
        for _ in range(n):
            step(theta, v, good_theta, good_v, S, H, t, bad, bad_xy, active, trips, last_end)

    return _own_code(block)


_steps_made = itertools.count()


def _own_code(fn):
    """``fn`` with a code object of its own. torch.compile caches compiled graphs on the code object
    and tells them apart by guards; the sampler compiles with tensor guards only (the others cost
    ~50 us a call), so two samplers' steps, which share this function's code but not its constants
    (schedule, grid, walls, model), must not share a code object."""
    n = next(_steps_made)
    code = fn.__code__.replace(co_name=f"wlmd_step_{n}", co_qualname=f"wlmd_step_{n}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
