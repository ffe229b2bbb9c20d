"""The paper's tasks: data sets and model factories (see :mod:`entropyeng.tasks.catalog` for the
configurations the ``entropyeng`` command runs). The names load on first use, so that the command
reads the catalog without importing torch."""

from .._lazy import lazy_names

TYPE_CHECKING = False  # (the API docs and type checkers read the names here; at run time they load on use)
if TYPE_CHECKING:
    from .box import into_box
    from .cifar import load_cifar_pair, resnet10_ln
    from .digits import load_mnist, mnist_cnn, sklearn_digits
    from .house import ames_housing, house_mlp, prepare_tabular
    from .polymer import load_embeddings, regressor_head
    from .spiral import regression_mlp, spiral_classification, spiral_mlp, spiral_regression
del TYPE_CHECKING

#: public name -> the module that defines it
_NAMES = {"into_box": "box", "load_cifar_pair": "cifar", "resnet10_ln": "cifar", "load_mnist": "digits",
          "mnist_cnn": "digits", "sklearn_digits": "digits", "ames_housing": "house", "house_mlp": "house",
          "prepare_tabular": "house", "load_embeddings": "polymer", "regressor_head": "polymer",
          "regression_mlp": "spiral", "spiral_classification": "spiral", "spiral_mlp": "spiral",
          "spiral_regression": "spiral"}

__all__ = ["spiral_classification", "spiral_mlp", "spiral_regression", "regression_mlp", "mnist_cnn",
           "sklearn_digits", "load_mnist", "ames_housing", "prepare_tabular", "house_mlp", "resnet10_ln",
           "load_cifar_pair", "load_embeddings", "regressor_head", "into_box"]


__getattr__, __dir__ = lazy_names(__name__, _NAMES, globals())
