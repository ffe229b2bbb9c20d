"""Reading a torch MLP and its data into the flat form the WLMC engine takes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

ACTS = {nn.Identity: 0, nn.ReLU: 1, nn.Tanh: 2, nn.SiLU: 3}
ACT_NAMES = ("identity", "relu", "tanh", "silu")
LOSSES = ("bce", "ce", "mse")
METRICS = ("accuracy", "loss")


@dataclass
class MlpSpec:
    sizes: list          # d_0, ..., d_L
    acts: list           # activation code after each layer
    bias: list           # bias flag of each layer
    tensors: list        # (name, shape) of each parameter tensor, in torch order

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(s)) for _, s in self.tensors)


def read_mlp(model) -> tuple[MlpSpec, np.ndarray]:
    """(spec, flat float64 parameters) of an nn.Sequential of Linear layers with ReLU, Tanh, SiLU or
    Identity between them."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model: expected a torch.nn.Sequential of Linear layers, got {type(model).__name__}")
    sizes, acts, bias, tensors, flat = [], [], [], [], []
    last_was_act = True
    for k, layer in enumerate(model):
        if isinstance(layer, nn.Linear):
            if sizes and layer.in_features != sizes[-1]:
                raise ValueError(f"model[{k}]: Linear takes {layer.in_features} inputs, the previous layer gives "
                                 f"{sizes[-1]}")
            if not sizes:
                sizes.append(layer.in_features)
            sizes.append(layer.out_features)
            acts.append(0)
            bias.append(layer.bias is not None)
            tensors.append((f"{k}.weight", tuple(layer.weight.shape)))
            flat.append(layer.weight.detach().double().reshape(-1))
            if layer.bias is not None:
                tensors.append((f"{k}.bias", tuple(layer.bias.shape)))
                flat.append(layer.bias.detach().double().reshape(-1))
            last_was_act = False
        elif type(layer) in ACTS:
            if not acts:
                raise ValueError(f"model[{k}]: {type(layer).__name__} before the first Linear layer; WLMC takes "
                                 f"Linear layers with ReLU, Tanh, SiLU or Identity between them")
            if type(layer) is nn.Identity:
                continue
            if last_was_act:
                raise ValueError(f"model[{k}]: two activations in a row ({type(layer).__name__}); WLMC takes one "
                                 f"activation between Linear layers")
            acts[-1] = ACTS[type(layer)]
            last_was_act = True
        else:
            raise ValueError(f"model[{k}]: {type(layer).__name__} is not supported; WLMC takes Linear layers with "
                             f"ReLU, Tanh, SiLU or Identity between them")
    if not sizes:
        raise ValueError("model: expected at least one Linear layer")
    params = torch.cat(flat).numpy().astype(np.float64)
    return MlpSpec(sizes, acts, bias, tensors), params


def paper_bounds(spec: MlpSpec) -> np.ndarray:
    """The paper's box, per parameter: 2/sqrt(width) with width = numel/in_features of the tensor,
    i.e. the output width (fan-out) of a Linear weight, and the output width for its bias
    (the authors' published scripts; docs/design.md "Box")."""
    out = []
    for name, shape in spec.tensors:
        width = shape[0]  # (out, in): numel / in = out; bias (out,)
        out.append(np.full(int(np.prod(shape)), 2.0 / math.sqrt(width)))
    return np.concatenate(out)


def describe_box(bound) -> str:
    """The box a sampler's ``bound`` gives, in words (for the warning when a start is clamped)."""
    if isinstance(bound, str):
        return "the paper's box, +-2/sqrt(width) per tensor (2/sqrt(out) for a Linear weight or a bias)"
    if isinstance(bound, (int, float)):
        return f"the box +-{bound:g}"
    return "the box of each parameter tensor given by bound"


def outside_box(names, sizes, outside, limits, bound) -> str:
    """The warning for a start with ``outside`` (a flat boolean per parameter) beyond ``limits``:
    how many, which box, and where (the first four tensors)."""
    where, off = [], 0
    for name, k in zip(names, sizes):
        n_out = int(outside[off:off + k].sum())
        if n_out:
            where.append(f"{name}: {n_out} beyond +-{float(limits[off]):.3g}")
        off += k
    return (f"{int(outside.sum())} initial parameters lie outside {describe_box(bound)}; clamped into it "
            f"({'; '.join(where[:4])}{'; ...' if len(where) > 4 else ''}); "
            "entropyeng.tasks.into_box(model) starts a model there without this warning")


def bounds_for(spec: MlpSpec, bound) -> np.ndarray:
    """Per-parameter bounds from "paper", a number, or one number per parameter tensor."""
    if isinstance(bound, str):
        if bound != "paper":
            raise ValueError(f"bound: expected 'paper', a number or one number per tensor, got {bound!r}")
        return paper_bounds(spec)
    if isinstance(bound, (int, float)) and not isinstance(bound, bool):
        if not (bound > 0 and math.isfinite(bound)):
            raise ValueError(f"bound: expected a finite number > 0, got {bound}")
        return np.full(spec.n_params, float(bound))
    values = list(bound)
    if len(values) != len(spec.tensors):
        raise ValueError(f"bound: expected one number per parameter tensor ({len(spec.tensors)}), got {len(values)}")
    out = []
    for (name, shape), b in zip(spec.tensors, values):
        b = float(b)
        if not (b > 0 and math.isfinite(b)):
            raise ValueError(f"bound: the bound of {name} must be a finite number > 0, got {b}")
        out.append(np.full(int(np.prod(shape)), b))
    return np.concatenate(out)


def as_f64(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a numeric array") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def read_data(data, name: str, spec: MlpSpec, loss: str):
    """(X feature-major (d_0, n), targets) of a (X, y) pair: targets (n,) for bce / ce, (K, n) for mse."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name}: expected a pair (X, y)")
    X = as_f64(data[0], f"{name}[0] (X)")
    y = as_f64(data[1], f"{name}[1] (y)")
    if X.ndim != 2 or X.shape[1] != spec.sizes[0]:
        raise ValueError(f"{name}[0] (X): expected shape (n, {spec.sizes[0]}), got {X.shape}")
    n = X.shape[0]
    if n == 0:
        raise ValueError(f"{name}: the data set is empty")
    K = spec.sizes[-1]
    if loss in ("bce", "ce"):
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.shape != (n,):
            raise ValueError(f"{name}[1] (y): expected {n} labels, got shape {y.shape}")
        if loss == "bce" and not np.all((y == 0) | (y == 1)):
            raise ValueError(f"{name}[1] (y): 'bce' takes labels 0 or 1, got values {np.unique(y)[:5]}")
        if loss == "ce" and not np.all((y >= 0) & (y < K) & (y == np.floor(y))):
            raise ValueError(f"{name}[1] (y): 'ce' takes class indices in [0, {K}), got values {np.unique(y)[:5]}")
        t = np.ascontiguousarray(y)
    else:
        y = y.reshape(n, -1) if y.ndim == 1 and y.size % n == 0 else y
        if y.shape != (n, K):
            raise ValueError(f"{name}[1] (y): expected targets of shape ({n}, {K}), got {y.shape}")
        t = np.ascontiguousarray(y.T)
    return np.ascontiguousarray(X.T), t
