"""How WLMD runs the model: the K walkers' collective variables (x, y) from the (K, P) parameter
buffer, and the vector-Jacobian product that turns the bias's derivatives dV/dx, dV/dy into
dV/dtheta.

Two ways, chosen once per sampler (:func:`build`):

- an MLP or a small CNN on the CPU: the K models in one call of the C++ batched operators
  (``entropyeng::mlp_batch`` / ``net_batch``, :mod:`entropyeng.kernels.ops`) and their backward;
- any other model: ``torch.func.functional_call``, with ``vmap`` over the walkers when K > 1 (one
  walker calls the model directly: vmap's wrapping costs more than it saves).

Both differentiate the CVs (:func:`entropyeng.wlmd.physics.make_heads`) with :func:`differentiate`:
``torch.func.vjp`` under ``torch.compile`` (traceable), plain autograd when the step runs eagerly
(half of vjp's overhead on a small graph: 155 against 280 us measured for the spiral's heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.func import functional_call, vjp, vmap

from ..kernels import ops
from .physics import make_heads

__all__ = ["ModelFns", "build", "make_cvs", "mlp_layout", "net_layout", "differentiate", "rowwise",
           "MLP_BATCH_MAX_WIDTH", "NATIVE_MLP_MAX_WIDTH", "MLP_SPARSE_MAX_DENSITY", "NET_BATCH_MAX_CHANNELS", "sparse_rows"]

#: The widest layer (inputs included) the batched MLP kernel takes: it wins on narrow networks and
#: loses on wide ones, where torch's matrix products are better blocked than its tiles (measured, one
#: thread, float32 compiled steps: spiral regression W = 30 108-123 us against 171 us through
#: functional_call; W = 100 0.89 ms against 0.66; W = 300 7.0 against 3.7 ms; the house network, 290
#: inputs, 2.9 against 0.6 ms; the polymer head, 768 inputs, 6.7 against 1.3 ms).
MLP_BATCH_MAX_WIDTH = 64

#: The widest layer after the input the native step (the whole WLMD step in C++) takes where the input
#: is at most :data:`MLP_BATCH_MAX_WIDTH` wide. Its loops are those of the batched kernel, but a native
#: step has no torch glue around them, which decides it: measured 2026-12-06, one thread, float32,
#: spiral regression, native against the compiled torch step (thread CPU time, interleaved): W = 100
#: 502-564 against 592-679 us; W = 150 1.11 against 1.37-1.43 ms, W = 200 1.75-1.88 against 2.36-2.54,
#: W = 300 4.1 against 4.5-4.8, W = 1000 55-60 against 58-62 ms. Up to 128, the default run keeps one
#: thread (:func:`entropyeng.wlmd.runners.default_threads`); a wider network gets torch's threads,
#: which a single walker's native step cannot use.
NATIVE_MLP_MAX_WIDTH = 128

#: The most nonzeros, as a fraction of its values, the rows of an input wider than
#: :data:`MLP_BATCH_MAX_WIDTH` may hold for the native step to take the model: its first layer then
#: visits the nonzeros only (``csrc/mlp_batch.h``, ``sparse_rows``; the house data's one-hot
#: features are a quarter nonzero).
MLP_SPARSE_MAX_DENSITY = 0.5

#: The most channels of a convolution the batched network kernel takes (the paper's CNNs have 2-4;
#: measured: 8 x 8 digits with 4 channels 1.5 ms a step against 6.6 ms through functional_call).
NET_BATCH_MAX_CHANNELS = 16


def differentiate(f, x):
    """``(f(x), pullback)`` with ``pullback(seeds) -> (df/dx^T seeds,)``: ``torch.func.vjp`` while
    ``torch.compile`` traces (it traces whole), else torch's autograd, which costs less in eager mode.
    The two apply the same derivative formulas."""
    if torch.compiler.is_compiling():
        return vjp(f, x)
    xg = x.detach().requires_grad_()
    with torch.enable_grad():
        out = f(xg)

    def pullback(seeds):
        return torch.autograd.grad(out, xg, seeds)

    return out.detach(), pullback


def rowwise(model) -> bool:
    """Whether the model treats every row of a batch on its own (no batch statistics), so that the
    train and test sets can go through it as one batch."""
    return not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def make_cvs(model, loss_fn, X_tr, y_tr, X_te, y_te, cv_y, alpha, logit_y, joint=None, error=False):
    """``cvs(theta_flat) -> (x, y)`` (0-d tensors, the model's dtype; with ``error`` also hard minus
    smoothed accuracy) of one walker, from the flat parameter vector (in the model's parameter
    order), through ``functional_call``. ``joint`` (default: when the model is row-wise, see
    :func:`rowwise`, and both inputs have one dtype): one forward over the train and test rows
    together, half the matrix-multiply calls."""
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
    heads = make_heads(loss_fn, y_tr, y_te, cv_y, alpha, logit_y)

    def cvs(theta):
        params = {n: t.view(s) for n, t, s in zip(names, torch.split(theta, sizes), shapes)}
        params.update(buffers)
        if joint:
            out = functional_call(model, params, (X_all,))
            return heads(out[:n_tr], out[n_tr:], error)
        return heads(functional_call(model, params, (X_tr,)), functional_call(model, params, (X_te,)), error)

    return cvs


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


def sparse_rows(X_tr, X_te) -> bool:
    """Whether the rows are sparse enough for a first layer that visits their nonzeros only (at most
    :data:`MLP_SPARSE_MAX_DENSITY` of their values nonzero)."""
    n = X_tr.numel() + X_te.numel()
    return n > 0 and int(torch.count_nonzero(X_tr)) + int(torch.count_nonzero(X_te)) <= MLP_SPARSE_MAX_DENSITY * n


def mlp_layout(model, X_tr, X_te, sparse_input=False, max_width=MLP_BATCH_MAX_WIDTH):
    """``(sizes, acts, bias)`` of the batched MLP operators (``ops.mlp_batch``) when they can run
    this model's forward and backward on the CPU: an ``nn.Sequential`` of ``Linear`` layers with
    ReLU, Tanh, SiLU or Identity between them, every parameter trained, no buffers, float32 or
    float64, 2-D inputs of the model's dtype, and the C++ operator library loaded
    (:data:`entropyeng.kernels.ops.COMPILED_OPERATORS`; the torch reference kernels of the operators are
    slower than ``vmap``), no input wider than :data:`MLP_BATCH_MAX_WIDTH` and no other layer wider
    than ``max_width``. The native step's reading (``sparse_input``, ``max_width``
    :data:`NATIVE_MLP_MAX_WIDTH`): the input may be wider where the rows are sparse
    (:func:`sparse_rows`). None otherwise: the torch step then runs the model through
    ``functional_call``."""
    from ..kernels.mlp_spec import read_mlp

    dtype = _kernel_dtype(model)
    if dtype is None:
        return None
    try:
        spec, _ = read_mlp(model)
    except ValueError:
        return None
    if max(spec.sizes[1:]) > max_width:
        return None
    for X in (X_tr, X_te):
        if X.dim() != 2 or X.shape[1] != spec.sizes[0] or X.dtype != dtype or X.device.type != "cpu":
            return None
    if spec.sizes[0] > MLP_BATCH_MAX_WIDTH and not (sparse_input and sparse_rows(X_tr, X_te)):
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

    from ..kernels.mlp_spec import ACTS

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


@dataclass
class ModelFns:
    """What the step and the host need of the model: ``forward_vjp(theta) -> (xy, pullback)`` for
    the (K, P) buffer (xy: (K, 2) in the model's dtype; ``pullback(seeds (K, 2)) -> (grad (K, P),)``),
    ``evaluate(theta) -> (x, y, error)`` (K,) each, without a graph, for the host's reads, and
    ``path``: "mlp_batch", "net_batch" or "functional_call"; ``autograd``: whether ``forward_vjp``
    differentiates with torch's autograd when run eagerly (else it may run in inference mode)."""

    forward_vjp: Callable
    evaluate: Callable
    path: str
    autograd: bool = True


#: the codes of the built-in losses in the C++ CVs (csrc/wlmd_physics.h)
LOSS_CODES = {"mse": 0, "ce": 1, "bce": 2}


def cv_args(loss_name, cv_y, logit_y, y_tr, y_te, dtype):
    """``(targets, labels, ints)`` of the C++ CVs (``entropyeng::wlmd_cvs``, and the native step):
    the targets as (N, d) values of the model's dtype (MSE, BCE; empty for CE), the labels as (N,)
    int64 (CE, and the test rows' classes of the smoothed accuracy; else empty), and
    [n_train, n_test, loss, cv_y, logit_y]."""
    n_tr, n_te = int(y_tr.shape[0]), int(y_te.shape[0])
    if loss_name == "ce":
        targets = torch.empty(0, dtype=dtype)
        labels = torch.cat([y_tr.reshape(-1), y_te.reshape(-1)]).to(torch.int64).contiguous()
    else:
        targets = torch.cat([y_tr.reshape(n_tr, -1), y_te.reshape(n_te, -1)]).to(dtype).contiguous()
        labels = (torch.cat([y_tr.reshape(n_tr, -1)[:, 0], y_te.reshape(-1)]).to(torch.int64).contiguous()
                  if cv_y == "smoothed_accuracy" else torch.empty(0, dtype=torch.int64))
    ints = [n_tr, n_te, LOSS_CODES[loss_name], int(cv_y == "smoothed_accuracy"), int(bool(logit_y))]
    return targets, labels, ints


def _batched_fns(kind, layout, heads, X_tr, X_te, K, cv=None):
    fwd, bwd, extra = _batched_ops(kind, layout)
    X_all = torch.cat([X_tr, X_te]).contiguous()
    n_tr = X_tr.shape[0]

    def heads_of_outputs(error):  # (K, N, d_out) -> (K, 2), or (K, 3) with the smoothing error
        def one(out):
            return torch.stack(heads(out[:n_tr], out[n_tr:], error))

        # (K walkers in one batched call: a loop over them cost ~60 us a walker)
        return vmap(one) if K > 1 else (lambda out: one(out[0]).reshape(1, -1))

    cv_of_out = heads_of_outputs(False)
    if cv is not None:  # a built-in loss: the C++ CVs and their closed-form product (the native step's)
        targets, labels, ints, alpha = cv

        def step_values(out):  # (K, 5): each walker's x, y, L_tr, L_te, A_s
            return torch.ops.entropyeng.wlmd_cvs(out, targets, labels, ints, alpha)

    def forward_vjp(theta):
        out, cache = fwd(theta, X_all, *extra)
        if cv is not None:
            values = step_values(out)

            def pullback(seeds):
                g_out = torch.ops.entropyeng.wlmd_cv_pullback(out, targets, labels, values, seeds, ints, alpha)
                return (bwd(theta, X_all, cache, g_out, *extra),)

            return values[:, :2], pullback
        xy, pull_out = differentiate(cv_of_out, out)

        def pullback(seeds):
            (g_out,) = pull_out(seeds)
            return (bwd(theta, X_all, cache, g_out.contiguous(), *extra),)

        return xy, pullback

    heads_of_out = heads_of_outputs(True)
    # a built-in loss with y = ln test loss (cv_args' ints[3] = 0): the host reads the step's own C++
    # CVs (float64, the (x, y) the step deposits at and checks; the smoothing error is 0), two operators
    # where the heads took a dozen (the run's last read 340 -> 170 us in place after native steps)
    step_cvs = cv is not None and ints[3] == 0

    def evaluate(theta):
        out = fwd(theta.contiguous(), X_all, *extra)[0]
        if step_cvs:
            values = step_values(out)
            return values[:, 0], values[:, 1], torch.zeros_like(values[:, 0])
        return tuple(heads_of_out(out).unbind(1))

    return ModelFns(forward_vjp, evaluate, f"{kind}_batch", autograd=cv is None)


def _functional_fns(cvs, cvs_error, K):
    if K == 1:
        def batched(theta):
            return torch.stack(cvs(theta[0])).reshape(1, 2)
    else:
        one = vmap(lambda th: torch.stack(cvs(th)))

        def batched(theta):
            return one(theta)

    def forward_vjp(theta):
        return differentiate(batched, theta)

    every = vmap(lambda th: torch.stack(cvs_error(th)))

    def evaluate(theta):
        if K == 1:
            return tuple(t.reshape(1) for t in cvs_error(theta[0]))
        return tuple(every(theta).unbind(1))

    return ModelFns(forward_vjp, evaluate, "functional_call")


def build(model, loss_fn, X_tr, y_tr, X_te, y_te, cv_y, alpha, logit_y, K, model_kernel="auto",
          loss_name=None) -> ModelFns:
    """The :class:`ModelFns` of this model for K walkers: the batched C++ operators where they apply
    (``model_kernel`` "auto": :func:`mlp_layout`, :func:`net_layout`), else ``functional_call``
    (always, for ``model_kernel`` "torch"). With the batched operators and a built-in ``loss_name``
    ("mse", "ce", "bce"), the CVs and their product are the C++ functions the native step runs
    (``entropyeng::wlmd_cvs`` / ``wlmd_cv_pullback``, ``csrc/wlmd_physics.h``); else autograd's."""
    if model_kernel not in ("auto", "torch"):
        raise ValueError(f"model_kernel: expected 'auto' or 'torch', got {model_kernel!r}")
    if model_kernel == "auto":
        heads = make_heads(loss_fn, y_tr, y_te, cv_y, alpha, logit_y)
        seq = torch.nn.Sequential(model) if isinstance(model, torch.nn.Linear) else model  # a bare Linear: one layer
        for kind, find in (("mlp", mlp_layout), ("net", net_layout)):
            layout = find(seq, X_tr, X_te)
            if layout is not None:
                cv = ((*cv_args(loss_name, cv_y, logit_y, y_tr, y_te, X_tr.dtype), float(alpha))
                      if loss_name in LOSS_CODES else None)
                return _batched_fns(kind, layout, heads, X_tr, X_te, K, cv)
    args = (model, loss_fn, X_tr, y_tr, X_te, y_te, cv_y, alpha, logit_y)
    return _functional_fns(make_cvs(*args), make_cvs(*args, error=True), K)
