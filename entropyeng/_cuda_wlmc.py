"""Adapter of the compiled CUDA walkers (``_core.CudaWlmcWalkers``) to the chain interface WLMC uses."""

from __future__ import annotations

import numpy as np

STATE = ("loss", "metric", "step", "window_accepted", "accepted", "i", "j", "t")


class CudaWalkersChain:
    """W walkers on one GPU sharing one ln g; ``params``, ``train_loss`` and ``test_metric`` are
    walker 0's, the counters are summed over walkers (``t`` counts walker-steps)."""

    def __init__(self, core, args: dict, walkers: int, device: int = 0):
        P = np.asarray(args["params"]).shape[-1]
        params = np.ascontiguousarray(np.broadcast_to(np.asarray(args["params"], dtype=np.float64), (walkers, P)))
        kw = {k: args[k] for k in ("sizes", "acts", "bias", "loss", "metric", "X_train", "y_train", "X_test", "y_test",
                                   "bounds", "x_min", "x_max", "nx", "y_min", "y_max", "ny", "seed", "step", "y_log")}
        self._shape = (args["nx"], args["ny"])
        self._w = core.CudaWlmcWalkers(params=params, walkers=walkers, device=device, **kw)
        self._d = self._w.download(*self._shape)

    def run(self, n_steps, ln_f):
        if self.current_bin() is None:
            raise ValueError("the current state lies off the grid")
        self._w.run(n_steps, ln_f)
        self._d = self._w.download(*self._shape)

    def _state(self, walker=0):
        return dict(zip(STATE, self._d["state"][walker].tolist()))

    def current_bin(self):
        s = self._state()
        return None if s["i"] < 0 else (int(s["i"]), int(s["j"]))

    @property
    def train_loss(self):
        return self._state()["loss"]

    @property
    def test_metric(self):
        return self._state()["metric"]

    @property
    def params(self):
        return self._d["params"][0].copy()

    @property
    def walker_params(self):
        return self._d["params"].copy()

    @property
    def lnG(self):
        return self._d["lnG"].copy()

    @property
    def H(self):
        return self._d["H"].copy()

    @property
    def counters(self):
        st = self._d["state"]
        return dict(t=int(st[:, 7].sum()), step=float(st[0, 2]), window_accepted=int(st[:, 3].sum()),
                    accepted=int(st[:, 4].sum()), rejected_box=0, rejected_grid=0, rejected_wl=0,
                    walkers=int(st.shape[0]))

    # checkpoints: parameters and state of every walker, ln g and H; the caches are recomputed on
    # load (and the atomic adds of many walkers make ln g's rounding order-dependent anyway, so a
    # resumed GPU run continues the run but is not bitwise the uninterrupted one)
    def export_walkers(self):
        return self._d["params"].copy(), self._d["state"].copy()

    def import_all(self, lnG, H, params, state):
        self._w.upload(np.ascontiguousarray(lnG, dtype=np.float64), np.ascontiguousarray(H, dtype=np.float64),
                       np.ascontiguousarray(params, dtype=np.float64), np.ascontiguousarray(state, dtype=np.float64),
                       *self._shape)
        self._d = self._w.download(*self._shape)
