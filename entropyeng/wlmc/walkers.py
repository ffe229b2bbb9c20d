"""Adapter of the compiled many-walker WLMC objects (``_core.WlmcWalkers`` on CPU threads,
``_core.CudaWlmcWalkers`` on a GPU; one per-walker code, ``csrc/wlmc_walker.h``) to the chain
interface :class:`entropyeng.WLMC` uses.

Nothing is copied back from the compiled side after a run: ``stats()`` (visited cells, flatness,
summed counters) is computed there, and ln g, H and the walkers' parameters are fetched only when a
landscape, a parameter vector or a checkpoint is asked for.
"""

from __future__ import annotations

import numpy as np

# The per-walker state (csrc/wlmc_walker.h, enum State).
STATE = ("loss", "metric", "step", "window_accepted", "accepted", "i", "j", "t", "rejected_box", "rejected_grid",
         "rejected_wl")
COL = {k: n for n, k in enumerate(STATE)}


class WalkersChain:
    """W walkers sharing one ln g; ``params``, ``train_loss`` and ``test_metric`` are walker 0's, the
    counters are summed over walkers (``t`` counts walker-steps)."""

    def __init__(self, core, args: dict, starts: np.ndarray, *, backend: str, threads: int = 1, device: int = 0):
        kw = {k: args[k] for k in ("sizes", "acts", "bias", "loss", "metric", "X_train", "y_train", "X_test", "y_test",
                                   "bounds", "x_min", "x_max", "nx", "y_min", "y_max", "ny", "seed", "step", "y_log",
                                   "refresh_every")}
        params = np.ascontiguousarray(starts, dtype=np.float64)
        self.backend = backend
        self.threads = int(threads)
        self._shape = (args["nx"], args["ny"])
        if backend == "cuda":
            self._w = core.CudaWlmcWalkers(params=params, walkers=params.shape[0], device=device, **kw)
        else:
            self._w = core.WlmcWalkers(params=params, walkers=params.shape[0], **kw)
        self.walkers = int(params.shape[0])
        self._cache = {}

    # -- running ------------------------------------------------------------------------------
    def run(self, n_steps, ln_f):
        """``n_steps`` walker-steps in all (``n_steps // W`` per walker, one more for the first
        ``n_steps % W``)."""
        if self.stats()["off_grid"] == self.walkers:
            raise ValueError("the current state lies off the grid (every walker)")
        self._w.run(int(n_steps), float(ln_f), self.threads)
        self._cache.clear()

    def stats(self) -> dict:
        if "stats" not in self._cache:
            self._cache["stats"] = self._w.stats()
        return self._cache["stats"]

    # -- walker state -------------------------------------------------------------------------
    def _walkers(self):
        if "walkers" not in self._cache:
            self._cache["walkers"] = self._w.walkers()
        return self._cache["walkers"]

    def _landscape(self):
        if "landscape" not in self._cache:
            self._cache["landscape"] = self._w.landscape(*self._shape)
        return self._cache["landscape"]

    @property
    def states(self) -> np.ndarray:
        """(W, len(STATE)) per-walker state (see ``STATE``)."""
        return self._walkers()[1].copy()

    def current_bin(self):
        s = self._walkers()[1][0]
        return None if s[COL["i"]] < 0 else (int(s[COL["i"]]), int(s[COL["j"]]))

    @property
    def train_loss(self):
        return float(self._walkers()[1][0, COL["loss"]])

    @property
    def test_metric(self):
        return float(self._walkers()[1][0, COL["metric"]])

    @property
    def params(self):
        return self._walkers()[0][0].copy()

    @property
    def walker_params(self):
        return self._walkers()[0].copy()

    @property
    def lnG(self):
        return self._landscape()[0].copy()

    @property
    def H(self):
        return self._landscape()[1].copy()

    @property
    def counters(self):
        s = self.stats()
        return dict(t=s["t"], step=float(self._walkers()[1][0, COL["step"]]),
                    window_accepted=int(self._walkers()[1][:, COL["window_accepted"]].sum()), accepted=s["accepted"],
                    rejected_box=s["rejected_box"], rejected_grid=s["rejected_grid"], rejected_wl=s["rejected_wl"],
                    walkers=self.walkers)

    # -- checkpoints --------------------------------------------------------------------------
    def export_walkers(self):
        """(params W x P, state W x len(STATE), workspace): the workspace (every walker's cached
        activations) is exported on the CPU only, where a resumed one-thread run then continues bit
        for bit; on a GPU the caches are recomputed on load (and the atomic adds of many blocks make
        ln g's rounding order-dependent anyway)."""
        params, state = self._walkers()
        work = self._w.workspace() if self.backend != "cuda" else np.zeros(0)
        return params.copy(), state.copy(), work

    def import_all(self, lnG, H, params, state, workspace=None):
        f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
        self._w.upload(f64(lnG), f64(H), f64(params), f64(state), *self._shape)
        if workspace is not None and np.asarray(workspace).size and self.backend != "cuda":
            self._w.import_workspace(f64(workspace))
        self._cache.clear()

    def restart_walkers(self, params, state):
        """Put walkers at new parameters on the current landscape (their caches are recomputed)."""
        lnG, H = self._landscape()
        self.import_all(lnG, H, params, state)
