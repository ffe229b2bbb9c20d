"""Pure-torch reference of the batched MLP kernels: K walkers' copies of one MLP on one set of rows
with their activations (``mlp_batch``) and the vector-Jacobian product of its output from those
activations (``mlp_batch_backward``), written out layer by layer with batched matrix products
(docs/design.md, "The batched MLP").

A walker's parameter vector is torch's layout of an ``nn.Sequential`` of ``Linear`` layers: each
layer's weight (out x in, row major) and then its bias when ``bias[l]``. ``acts[l]`` is the
activation after layer l: 0 identity, 1 ReLU, 2 tanh, 3 SiLU.

The activation cache is (K, C, H, 128): the rows in C = ceil(N / 128) chunks of 128, and per chunk
H feature-major rows of 128 values: layer by layer the pre-activation Z_l (SiLU layers only) and the
activation A_l. The rows past N are zeros.
"""

from __future__ import annotations

import torch

__all__ = ["mlp_batch", "mlp_batch_backward", "unpack", "cache_shape", "CACHE_CHUNK"]

#: Rows per chunk of the activation cache (csrc/mlp_batch.h MLP_CACHE_CHUNK).
CACHE_CHUNK = 128


def _cached(acts):
    """Per layer: whether its pre-activation is cached besides its activation (SiLU's derivative needs it)."""
    return [int(a) == 3 for a in acts]


def cache_shape(K: int, N: int, sizes, acts):
    """The activation cache's shape: (K, ceil(N / 128), H, 128)."""
    H = sum(int(d) * (2 if z else 1) for d, z in zip(sizes[1:], _cached(acts)))
    return (K, -(-N // CACHE_CHUNK), H, CACHE_CHUNK)


def unpack(theta: torch.Tensor, sizes, bias):
    """[(W (K, out, in), b (K, out) or None)] per layer: views of theta (K, P)."""
    K, layers, off = theta.shape[0], [], 0
    for l in range(len(sizes) - 1):
        i, o = int(sizes[l]), int(sizes[l + 1])
        W = theta[:, off:off + o * i].reshape(K, o, i)
        off += o * i
        b = None
        if bias[l]:
            b = theta[:, off:off + o]
            off += o
        layers.append((W, b))
    if off != theta.shape[1]:
        raise ValueError(f"theta: expected {off} parameters per walker, got {theta.shape[1]}")
    return layers


def _act(code: int, z: torch.Tensor) -> torch.Tensor:
    if code == 1:
        return torch.relu(z)
    if code == 2:
        return torch.tanh(z)
    if code == 3:
        return torch.nn.functional.silu(z)
    return z


def _act_grad(code: int, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    if code == 1:
        return (z > 0).to(z.dtype)
    if code == 2:
        return 1 - a * a
    if code == 3:
        s = torch.sigmoid(z)
        return s * (1 + z * (1 - s))
    return torch.ones_like(z)


def _forward(theta, X, sizes, acts, bias):
    K = theta.shape[0]
    a = X.unsqueeze(0).expand(K, *X.shape)
    zs, outs = [], [a]
    for (W, b), code in zip(unpack(theta, sizes, bias), acts):
        z = torch.bmm(a, W.transpose(1, 2))
        if b is not None:
            z = z + b.unsqueeze(1)
        a = _act(int(code), z)
        zs.append(z)
        outs.append(a)
    return zs, outs


def mlp_batch(theta: torch.Tensor, X: torch.Tensor, sizes, acts, bias):
    """``(out, cache)``: out (K, N, d_L) the MLP of every walker's parameters (theta, K x P) on the rows
    X (N x d_0); cache its activations (the layout above)."""
    zs, outs = _forward(theta, X, sizes, acts, bias)
    K, N = theta.shape[0], X.shape[0]
    feats = []
    for z, a, keep_z in zip(zs, outs[1:], _cached(acts)):
        feats += [z, a] if keep_z else [a]
    shape = cache_shape(K, N, sizes, acts)
    rows = torch.zeros((K, shape[1] * CACHE_CHUNK, shape[2]), dtype=theta.dtype, device=theta.device)
    rows[:, :N] = torch.cat(feats, dim=2)
    cache = rows.reshape(K, shape[1], CACHE_CHUNK, shape[2]).transpose(2, 3).contiguous()
    return outs[-1], cache


def _uncache(cache: torch.Tensor, N: int, sizes, acts):
    """(zs, outs[1:]) from the cache: each (K, N, d_l) (zs[l] is the activation unless SiLU)."""
    K, C, H, B = cache.shape
    rows = cache.transpose(2, 3).reshape(K, C * B, H)[:, :N]
    zs, outs, h = [], [], 0
    for d, keep_z in zip(sizes[1:], _cached(acts)):
        d = int(d)
        z = rows[:, :, h:h + d]
        h += d
        if keep_z:
            a = rows[:, :, h:h + d]
            h += d
        else:
            a = z
        zs.append(z)
        outs.append(a)
    return zs, outs


def mlp_batch_backward(theta: torch.Tensor, X: torch.Tensor, cache: torch.Tensor, grad_out: torch.Tensor, sizes,
                       acts, bias):
    """(K, P): d/dtheta of sum(grad_out * out), out and cache from mlp_batch(theta, X), by the chain rule
    layer by layer over the cached activations."""
    zs, outs = _uncache(cache, X.shape[0], sizes, acts)
    outs = [X.unsqueeze(0).expand(theta.shape[0], *X.shape)] + outs
    layers = unpack(theta, sizes, bias)
    g, pieces = grad_out, []
    for l in range(len(layers) - 1, -1, -1):
        W, b = layers[l]
        g = g * _act_grad(int(acts[l]), zs[l], outs[l + 1])
        part = [torch.bmm(g.transpose(1, 2), outs[l]).reshape(theta.shape[0], -1)]
        if b is not None:
            part.append(g.sum(1))
        pieces = part + pieces
        if l > 0:
            g = torch.bmm(g, W)
    return torch.cat(pieces, dim=1)
