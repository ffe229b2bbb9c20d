"""Wang-Landau molecular dynamics (the paper's Methods, Eq. 2-4).

Where things are: the sampler a user calls (:mod:`.sampler`, :class:`WLMD`); its state, one typed
object of tensors (:mod:`.state`); the physics, each piece once (:mod:`.physics`); the model's
forward and vector-Jacobian product (:mod:`.models`); the one step body (:mod:`.step`); how the step
is called, eager, compiled, in blocks, from CUDA graphs (:mod:`.runners`, :mod:`.graph`);
checkpoints (:mod:`.checkpoint`); ranks of a distributed run (:mod:`.ranks`).
"""

from .._lazy import lazy_names

TYPE_CHECKING = False  # (the API docs and type checkers read the names here; at run time they load on use)
if TYPE_CHECKING:
    from .physics import NORM_BOUND, f_schedule, paper_bounds
    from .reads import KineticTemperatureWarning
    from .runners import default_threads, torch_threads
    from .sampler import MAX_WALKERS, WLMD
    from .state import WalkerDropped, WLMDError, WLMDInfo
del TYPE_CHECKING

#: public name -> the module that defines it (loaded on first use: the task catalog reads
#: :mod:`.presets` without importing torch)
_NAMES = {"WLMD": "sampler", "MAX_WALKERS": "sampler", "WLMDError": "state", "WLMDInfo": "state",
          "WalkerDropped": "state", "f_schedule": "physics", "paper_bounds": "physics", "NORM_BOUND": "physics",
          "_NORMS": "physics", "default_threads": "runners", "torch_threads": "runners",
          "KineticTemperatureWarning": "reads"}

__all__ = ["WLMD", "WLMDError", "WLMDInfo", "WalkerDropped", "f_schedule", "paper_bounds", "NORM_BOUND",
           "default_threads", "torch_threads", "MAX_WALKERS", "KineticTemperatureWarning"]


__getattr__, __dir__ = lazy_names(__name__, _NAMES, globals())
