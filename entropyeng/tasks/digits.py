"""Handwritten digits: the paper's small CNN, scikit-learn's bundled 8 x 8 digits (the default: MNIST
cannot be downloaded here) and a loader for a local MNIST file."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
from torch import nn

__all__ = ["mnist_cnn", "sklearn_digits", "load_mnist", "select_images"]


def mnist_cnn(image_size: int = 28, channels: int = 2, activation=nn.ReLU, seed: int = 0) -> nn.Sequential:
    """Five 3x3 convolutions of ``channels`` channels and a linear head to 10 classes. On 28 x 28
    images (1 -> c -> pool -> c -> pool -> c -> pool -> c -> c, then c x 3 x 3 features) it has the
    paper's 362, 646 and 1,002 parameters for c = 2, 3, 4 (Supplementary Table 2). On 8 x 8 images
    only the first pool is kept, leaving c x 4 x 4 features (502 parameters for c = 2)."""
    import torch

    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels: expected an integer >= 1, got {channels!r}")
    if image_size not in (28, 8):
        raise ValueError(f"image_size: expected 28 or 8, got {image_size}")
    # with few channels PyTorch's default initialisation often kills every channel of a layer (2
    # channels on 8 x 8 digits: 6 seeds of 10): the output is then a constant and no optimiser or
    # sampler moves the network. Such a draw is drawn again (deterministically from the seed) until
    # every layer has a live unit on a probe of random images in [0, 1].
    probe = torch.rand(64, 1, image_size, image_size, generator=torch.Generator().manual_seed(12345),
                       dtype=torch.float64)
    for attempt in range(100):
        model = _draw_cnn(image_size, channels, activation, seed * 100 + attempt if attempt else seed)
        if _every_layer_alive(model, probe):
            return model
    raise ValueError(f"channels: no draw of {channels} channels in 100 has a live unit in every layer")


def _every_layer_alive(model, probe):
    import torch

    h = probe
    with torch.no_grad():
        for layer in model:
            h = layer(h)
            if isinstance(layer, nn.ReLU) and not bool((h > 0).any()):
                return False
    return True


def _draw_cnn(image_size, channels, activation, seed):
    import torch

    torch.manual_seed(seed)
    c = channels
    conv = lambda a, b: nn.Conv2d(a, b, 3, padding=1)  # noqa: E731
    if image_size == 28:
        layers = [conv(1, c), activation(), nn.MaxPool2d(2), conv(c, c), activation(), nn.MaxPool2d(2),
                  conv(c, c), activation(), nn.MaxPool2d(2), conv(c, c), activation(), conv(c, c), activation(),
                  nn.Flatten(), nn.Linear(9 * c, 10)]
    elif image_size == 8:
        layers = [conv(1, c), activation(), nn.MaxPool2d(2), conv(c, c), activation(), conv(c, c), activation(),
                  conv(c, c), activation(), conv(c, c), activation(), nn.Flatten(), nn.Linear(16 * c, 10)]
    return nn.Sequential(*layers).double()


def select_images(images, labels, n_train=250, n_test=250, seed=0):
    """``n_train + n_test`` images drawn at random without replacement, split into train and test:
    ((X_train (n, 1, h, w) float64 in [0, 1], y_train int64), (X_test, y_test))."""
    images = np.asarray(images, dtype=float)
    labels = np.asarray(labels).astype(np.int64)
    if n_train < 1 or n_test < 1 or n_train + n_test > len(images):
        raise ValueError(f"n_train, n_test: need 1 <= n_train, n_test and n_train + n_test <= {len(images)} "
                         f"images, got {n_train} and {n_test}")
    idx = np.random.default_rng(seed).permutation(len(images))[:n_train + n_test]
    X = images[idx][:, None]
    y = labels[idx]
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def sklearn_digits(n_train=250, n_test=250, seed=0):
    """scikit-learn's bundled handwritten digits (1,797 real 8 x 8 images, 16 grey levels), scaled to
    [0, 1]; 250 train and 250 test images by default, as in the paper's selected MNIST."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits task needs scikit-learn: pip install \"entropyeng[paper]\"") from None
    d = load_digits()
    return select_images(d.images / 16.0, d.target, n_train, n_test, seed)


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        zero, dtype, ndim = struct.unpack(">HBB", fh.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path}: not an IDX file of unsigned bytes")
        shape = struct.unpack(">" + "I" * ndim, fh.read(4 * ndim))
        return np.frombuffer(fh.read(), dtype=np.uint8).reshape(shape)


def load_mnist(path, n_train=250, n_test=250, seed=0):
    """MNIST from a local file: either an ``.npz`` with ``x_train, y_train`` (and optionally
    ``x_test, y_test``; the Keras ``mnist.npz`` layout), or a folder with the original IDX files
    (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``). The images of the file's
    train part are pooled and ``n_train + n_test`` drawn from them, as the paper did; pixel values
    are scaled to [0, 1]."""
    path = os.fspath(path)
    if os.path.isdir(path):
        def find(stem):
            for name in (stem, stem + ".gz"):
                if os.path.exists(os.path.join(path, name)):
                    return os.path.join(path, name)
            raise FileNotFoundError(f"data: '{path}' has no {stem}[.gz]")

        images = _read_idx(find("train-images-idx3-ubyte"))
        labels = _read_idx(find("train-labels-idx1-ubyte"))
    elif path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as f:
            if "x_train" not in f.files or "y_train" not in f.files:
                raise ValueError(f"data: '{path}' has no x_train / y_train arrays (found {f.files})")
            images, labels = f["x_train"], f["y_train"]
    else:
        raise ValueError(f"data: expected an MNIST .npz file or a folder of IDX files, got '{path}'")
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
        raise ValueError(f"data: expected 28 x 28 images with one label each, got images {images.shape} "
                         f"and labels {np.shape(labels)}")
    scale = 255.0 if images.max() > 1 else 1.0
    return select_images(images / scale, labels, n_train, n_test, seed)
