"""The paper's tasks: data sets and model factories."""

from .digits import mnist_cnn
from .spiral import regression_mlp, spiral_classification, spiral_mlp, spiral_regression

__all__ = ["spiral_classification", "spiral_mlp", "spiral_regression", "regression_mlp", "mnist_cnn"]
