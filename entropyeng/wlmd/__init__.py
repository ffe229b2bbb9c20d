"""Wang-Landau molecular dynamics (the paper's Methods, Eq. 2-4).

Where things are: the sampler a user calls (:mod:`.sampler`, :class:`WLMD`); its state, one typed
object of tensors (:mod:`.state`); the physics, each piece once (:mod:`.physics`); the model's
forward and vector-Jacobian product (:mod:`.models`); the one step body (:mod:`.step`); how the step
is called, eager, compiled, in blocks, from CUDA graphs (:mod:`.runners`, :mod:`.graph`);
checkpoints (:mod:`.checkpoint`); ranks of a distributed run (:mod:`.ranks`).
"""

from .physics import _NORMS, NORM_BOUND, f_schedule, paper_bounds  # noqa: F401
from .reads import KineticTemperatureWarning
from .runners import default_threads, torch_threads
from .sampler import MAX_WALKERS, WLMD
from .state import WalkerDropped, WLMDError, WLMDInfo

__all__ = ["WLMD", "WLMDError", "WLMDInfo", "WalkerDropped", "f_schedule", "paper_bounds", "NORM_BOUND",
           "default_threads", "torch_threads", "MAX_WALKERS", "KineticTemperatureWarning"]
