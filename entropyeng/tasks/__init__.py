"""The paper's tasks: data sets and model factories (see :mod:`entropyeng.tasks.catalog` for the
configurations the ``entropyeng`` command runs)."""

from .box import into_box
from .cifar import load_cifar_pair, resnet10_ln
from .digits import load_mnist, mnist_cnn, sklearn_digits
from .house import ames_housing, house_mlp, prepare_tabular
from .polymer import load_embeddings, regressor_head
from .spiral import regression_mlp, spiral_classification, spiral_mlp, spiral_regression

__all__ = ["spiral_classification", "spiral_mlp", "spiral_regression", "regression_mlp", "mnist_cnn",
           "sklearn_digits", "load_mnist", "ames_housing", "prepare_tabular", "house_mlp", "resnet10_ln",
           "load_cifar_pair", "load_embeddings", "regressor_head", "into_box"]
