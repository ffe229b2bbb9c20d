"""Pure-torch reference implementation of every entropyeng kernel.

Written for clarity, not speed: it is the oracle of the tests and the baseline of the benchmarks.
Each function takes torch tensors that :mod:`entropyeng.kernels` has already validated.
"""

from .landscape import (
           deposit,
           gaussian_weights,
           gradient,
           histogram,
           landscape_step,
           smooth,
)
from .langevin import fold_into_box, langevin
from .mlp_batch import mlp_batch, mlp_batch_backward
from .net_batch import net_batch, net_batch_backward
from .philox import normal, philox4x32_10

__all__ = ["deposit", "gradient", "smooth", "gaussian_weights", "histogram", "landscape_step", "langevin", "fold_into_box", "normal",
           "philox4x32_10", "mlp_batch", "mlp_batch_backward",
           "net_batch", "net_batch_backward"]
