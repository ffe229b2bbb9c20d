"""The paper's tasks: data sets and model factories."""

from .spiral import spiral_classification, spiral_mlp

__all__ = ["spiral_classification", "spiral_mlp"]
