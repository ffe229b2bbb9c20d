"""Pure-torch reference of the batched MLP kernels: K walkers' copies of one MLP on one set of rows
(``mlp_batch``) and the vector-Jacobian product of its output (``mlp_batch_backward``), written out
layer by layer with batched matrix products (docs/design.md, "The batched MLP").

A walker's parameter vector is torch's layout of an ``nn.Sequential`` of ``Linear`` layers: each
layer's weight (out x in, row major) and then its bias when ``bias[l]``. ``acts[l]`` is the
activation after layer l: 0 identity, 1 ReLU, 2 tanh, 3 SiLU.
"""

from __future__ import annotations

import torch

__all__ = ["mlp_batch", "mlp_batch_backward", "unpack"]


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


def mlp_batch(theta: torch.Tensor, X: torch.Tensor, sizes, acts, bias) -> torch.Tensor:
    """(K, N, d_L): the MLP of every walker's parameters (theta, K x P) on the rows X (N x d_0)."""
    return _forward(theta, X, sizes, acts, bias)[1][-1]


def mlp_batch_backward(theta: torch.Tensor, X: torch.Tensor, grad_out: torch.Tensor, sizes, acts, bias):
    """(K, P): d/dtheta of sum(grad_out * mlp_batch(theta, X)), by the chain rule layer by layer."""
    zs, outs = _forward(theta, X, sizes, acts, bias)
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
