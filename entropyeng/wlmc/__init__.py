"""Wang-Landau Monte Carlo: the chain (:mod:`.chain`, :class:`WLMC`: one walker, or many sharing
ln g on CPU threads or a GPU through :mod:`.walkers`) and replica exchange over energy windows
(:mod:`.rewl`, :class:`REWL`)."""

from .chain import WLMC, StageInfo, paper_schedule
from .rewl import REWL

__all__ = ["WLMC", "StageInfo", "REWL", "paper_schedule"]
