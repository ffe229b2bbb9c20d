"""Networks from the landscape itself: a walker under the landscape's frozen marginal bias over the
train loss (a WLMC walker, or a WLMD one for CNNs and WLMD landscapes) visits the networks of every
train loss with their microcanonical weight; the ones in a chosen window are kept, decorrelated,
with the window's mean test metric and its error, beside the landscape's own readout there (they
must agree). ``entropyeng harvest RUN --train-loss X``."""

from .bias import frozen_bias, marginal
from .core import Harvest, harvest_wlmc, load_params
from .md import harvest_wlmd
from .run import HarvestError, harvest_run, load_model

__all__ = ["Harvest", "harvest_wlmc", "harvest_wlmd", "harvest_run", "load_model", "load_params", "HarvestError",
           "marginal", "frozen_bias"]
