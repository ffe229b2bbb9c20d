"""Pure-torch reference of the batched network kernels (``net_batch`` / ``net_batch_backward``): K
walkers' copies of one small convolutional network on one set of images, and the vector-Jacobian
product of its output, layer by layer with torch's own convolution, pooling and their gradients
(docs/design.md, "batched network").

The network is a flat list of integers, one group per layer (the order of an ``nn.Sequential``):
``1, c_in, c_out, k, pad, bias`` a k x k convolution (stride 1, zero padding), ``2, code`` an
activation (0 identity, 1 ReLU, 2 tanh, 3 SiLU), ``3`` a 2 x 2 max pooling (stride 2), ``4``
flatten, ``5, in, out, bias`` a linear layer. A walker's parameters are torch's: each layer's
weight, then its bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .mlp_batch import _act, _act_grad

__all__ = ["net_batch", "net_batch_backward", "parse", "out_features"]

_WIDTH = {1: 5, 2: 1, 3: 0, 4: 0, 5: 3}


def parse(spec) -> list:
    """[(kind, args)] of the flat description."""
    layers, at = [], 0
    spec = [int(v) for v in spec]
    while at < len(spec):
        kind = spec[at]
        if kind not in _WIDTH:
            raise ValueError(f"spec: unknown layer code {kind}")
        layers.append((kind, spec[at + 1:at + 1 + _WIDTH[kind]]))
        at += 1 + _WIDTH[kind]
    return layers


def out_features(spec, image_shape) -> int:
    """The features per image at the end of the network, for images of ``image_shape`` (C, H, W)."""
    c, h, w = image_shape
    for kind, a in parse(spec):
        if kind == 1:
            c, h, w = a[1], h + 2 * a[3] - a[2] + 1, w + 2 * a[3] - a[2] + 1
        elif kind == 3:
            h, w = h // 2, w // 2
        elif kind == 4:
            c, h, w = c * h * w, 1, 1
        elif kind == 5:
            c = a[1]
    return c


def _params(theta_k, layers):
    """Per layer: (weight, bias) views of one walker's parameter vector (None for layers without)."""
    out, off = [], 0
    for kind, a in layers:
        if kind == 1:
            shape, n_b, bias = (a[1], a[0], a[2], a[2]), a[1], a[4]
        elif kind == 5:
            shape, n_b, bias = (a[1], a[0]), a[1], a[2]
        else:
            out.append((None, None))
            continue
        n = 1
        for s in shape:
            n *= s
        W = theta_k[off:off + n].reshape(shape)
        off += n
        b = None
        if bias:
            b = theta_k[off:off + n_b]
            off += n_b
        out.append((W, b))
    if off != theta_k.shape[0]:
        raise ValueError(f"theta: expected {off} parameters per walker, got {theta_k.shape[0]}")
    return out


def _forward(theta_k, X, layers):
    """The inputs of every layer and the output (pool indices kept for the backward pass)."""
    h, inputs, extra = X, [], []
    for (kind, a), (W, b) in zip(layers, _params(theta_k, layers)):
        inputs.append(h)
        extra.append(None)
        if kind == 1:
            h = F.conv2d(h, W, b, padding=a[3])
        elif kind == 2:
            h = _act(a[0], h)
        elif kind == 3:
            h, extra[-1] = F.max_pool2d(h, 2, 2, return_indices=True)
        elif kind == 4:
            h = h.flatten(1)
        else:
            h = F.linear(h, W, b)
    return inputs, extra, h


def net_batch(theta: torch.Tensor, X: torch.Tensor, spec) -> torch.Tensor:
    """(K, N, features): every walker's network (theta, K x P) on the images X (N, C, H, W)."""
    layers = parse(spec)
    return torch.stack([_forward(theta[k], X, layers)[2] for k in range(theta.shape[0])])


def net_batch_backward(theta: torch.Tensor, X: torch.Tensor, grad_out: torch.Tensor, spec) -> torch.Tensor:
    """(K, P): d/dtheta of sum(grad_out * net_batch(theta, X)), by the chain rule layer by layer."""
    layers = parse(spec)
    grads = []
    for k in range(theta.shape[0]):
        inputs, extra, out = _forward(theta[k], X, layers)
        params = _params(theta[k], layers)
        g, pieces = grad_out[k], []
        for i in range(len(layers) - 1, -1, -1):
            (kind, a), (W, b), h = layers[i], params[i], inputs[i]
            if kind == 1:
                part = [torch.nn.grad.conv2d_weight(h, W.shape, g, padding=a[3]).reshape(-1)]
                if b is not None:
                    part.append(g.sum((0, 2, 3)))
                pieces = part + pieces
                g = torch.nn.grad.conv2d_input(h.shape, W, g, padding=a[3]) if i > 0 else None
            elif kind == 2:
                z = h
                g = g * _act_grad(a[0], z, _act(a[0], z))
            elif kind == 3:
                g = torch.ops.aten.max_pool2d_with_indices_backward(g, h, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                                    extra[i])
            elif kind == 4:
                g = g.reshape(h.shape)
            else:
                part = [(g.transpose(0, 1) @ h).reshape(-1)]
                if b is not None:
                    part.append(g.sum(0))
                pieces = part + pieces
                g = g @ W
        grads.append(torch.cat(pieces))
    return torch.stack(grads)
