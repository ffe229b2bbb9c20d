"""The paper's small image classifier."""

from __future__ import annotations

from torch import nn


def mnist_cnn(image_size: int = 28, activation=nn.ReLU, seed: int = 0) -> nn.Sequential:
    """Five 3x3 convolutions of 2 channels and a linear head to 10 classes: 362 parameters on
    28 x 28 images (1 -> 2 -> pool -> 2 -> pool -> 2 -> pool -> 2 -> 2, then 2 x 3 x 3 features).
    For 8 x 8 images the pools are dropped after the first, leaving 2 x 4 x 4 features."""
    import torch

    torch.manual_seed(seed)
    conv = lambda a, b: nn.Conv2d(a, b, 3, padding=1)  # noqa: E731
    if image_size == 28:
        layers = [conv(1, 2), activation(), nn.MaxPool2d(2), conv(2, 2), activation(), nn.MaxPool2d(2),
                  conv(2, 2), activation(), nn.MaxPool2d(2), conv(2, 2), activation(), conv(2, 2), activation(),
                  nn.Flatten(), nn.Linear(18, 10)]
    elif image_size == 8:
        layers = [conv(1, 2), activation(), nn.MaxPool2d(2), conv(2, 2), activation(), conv(2, 2), activation(),
                  conv(2, 2), activation(), conv(2, 2), activation(), nn.Flatten(), nn.Linear(32, 10)]
    else:
        raise ValueError(f"image_size: expected 28 or 8, got {image_size}")
    return nn.Sequential(*layers).double()
