"""The paper's ResNet-10 with LayerNorm and a CIFAR-10 deer / frog loader (data from a local copy of
the "CIFAR-10 python version": the folder ``cifar-10-batches-py`` with data_batch_1..5, test_batch)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from .cifar_batch import read_batch

__all__ = ["resnet10_ln", "load_cifar_pair", "CIFAR_CLASSES"]

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _Block(nn.Module):
    """Two 3x3 convolutions with LayerNorm over (C, H, W) and an identity (or 1x1-conv) shortcut."""

    def __init__(self, c_in, c_out, stride, size, activation):
        super().__init__()
        out = size // stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.norm1 = nn.LayerNorm([c_out, out, out])
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.LayerNorm([c_out, out, out])
        self.act = activation()
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride), nn.LayerNorm([c_out, out, out]))

    def forward(self, x):
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(h)) + self.shortcut(x))


class ResNet10LN(nn.Module):
    """Stem convolution, four residual blocks, global average pool and a linear head: 1 + 8 + 1 = 10
    layers. Batch normalisation is replaced by LayerNorm so that the loss of a parameter vector does
    not depend on the batch (the paper's reason: the energy must be a function of the weights)."""

    def __init__(self, channels=(6, 6, 12, 12, 12), strides=(1, 2, 2, 2), num_classes=2, image_size=32,
                 activation=nn.ReLU):
        super().__init__()
        c0, *cs = channels
        if len(cs) != len(strides):
            raise ValueError(f"channels: expected {len(strides) + 1} numbers (stem and each block), got {channels}")
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, padding=1), nn.LayerNorm([c0, image_size, image_size]),
                                  activation())
        blocks, size, c_in = [], image_size, c0
        for c, s in zip(cs, strides):
            if size % s:
                raise ValueError(f"image_size: {image_size} is not divisible by the strides {strides}")
            blocks.append(_Block(c_in, c, s, size, activation))
            size, c_in = size // s, c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x):
        h = self.blocks(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))


def resnet10_ln(channels=(6, 6, 12, 12, 12), num_classes=2, image_size=32, seed=0, activation=nn.ReLU):
    """The paper's ResNet-10 with LayerNorm: a 6-channel stem and blocks of 6, 12, 12 and 12 channels
    (strides 1, 2, 2, 2), float64. The paper gives 43,604 parameters but not the strides or the
    normalised shape; this reading (torch's ``nn.LayerNorm([C, H, W])`` in place of each BatchNorm,
    with its elementwise affine) has 69,506 on 32 x 32 images, most of them LayerNorm gains and
    biases of the full-resolution layers."""
    torch.manual_seed(seed)
    return ResNet10LN(tuple(channels), num_classes=num_classes, image_size=image_size, activation=activation).double()


def load_cifar_pair(path, classes=("deer", "frog"), n_train=2500, n_test=2500, seed=0):
    """Two CIFAR-10 classes from a local ``cifar-10-batches-py`` folder: all images of the two classes
    (train and test batches pooled), ``n_train + n_test`` drawn at random, labels 0 / 1 in the order
    of ``classes``, pixels scaled to [0, 1] and normalised per channel with the train set's mean and
    std. Returns ((X_train (n, 3, 32, 32) float64, y_train int64), (X_test, y_test))."""
    path = os.fspath(path)
    files = [os.path.join(path, f"data_batch_{k}") for k in range(1, 6)] + [os.path.join(path, "test_batch")]
    present = [f for f in files if os.path.exists(f)]
    if not present:
        raise FileNotFoundError(f"data: '{path}' holds no CIFAR-10 python batches (data_batch_1..5, test_batch)")
    ids = []
    for name in classes:
        if name not in CIFAR_CLASSES:
            raise ValueError(f"classes: {name!r} is not a CIFAR-10 class ({', '.join(CIFAR_CLASSES)})")
        ids.append(CIFAR_CLASSES.index(name))
    parts = [read_batch(f) for f in present]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    keep = np.isin(labels, ids)
    images, labels = images[keep], np.searchsorted(ids, labels[keep]) if ids == sorted(ids) else \
        np.array([ids.index(v) for v in labels[keep]], dtype=np.int64)
    if n_train < 1 or n_test < 1 or n_train + n_test > len(images):
        raise ValueError(f"n_train, n_test: the two classes have {len(images)} images, asked for {n_train} + {n_test}")
    idx = np.random.default_rng(seed).permutation(len(images))[:n_train + n_test]
    X = images[idx].astype(np.float64) / 255.0
    y = np.asarray(labels[idx], dtype=np.int64)
    mean = X[:n_train].mean(axis=(0, 2, 3), keepdims=True)
    std = X[:n_train].std(axis=(0, 2, 3), keepdims=True) + 1e-12
    X = (X - mean) / std
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])
