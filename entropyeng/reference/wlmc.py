"""Pure-torch reference of the WLMC chain (docs/design.md contract 6): a full forward per move.

The same chain as the compiled ``WlmcChain`` (same random words, same order of decisions), written
for clarity: with the same seed both make the same decisions step for step, up to the rare step
whose loss lands within rounding of a bin edge.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .philox import philox4x32_10

_ACT = {0: lambda z: z, 1: torch.relu, 2: torch.tanh, 3: F.silu}
_BLOCK = 1024


def wlmc_randoms(seed: int, walker: int, t0: int, n: int):
    """(param words, moves in [-1, 1), acceptance uniforms in (0, 1)) of steps t0 .. t0 + n - 1."""
    t = torch.arange(t0, t0 + n, dtype=torch.int64)
    zero = torch.zeros_like(t)
    w = philox4x32_10(t & 0xFFFFFFFF, t >> 32, zero + walker, zero + 0x574C4D43, seed & 0xFFFFFFFF, seed >> 32)
    move = w[1].to(torch.float64) * (2.0 / 4294967296.0) - 1.0
    accept = (w[2].to(torch.float64) + 0.5) * (1.0 / 4294967296.0)
    return w[0].tolist(), move.tolist(), accept.tolist()


class TorchWlmcChain:
    """Same constructor arguments and methods as ``entropyeng._core.WlmcChain``."""

    def __init__(self, sizes, acts, bias, loss, metric, params, X_train, y_train, X_test, y_test, bounds,
                 x_min, x_max, nx, y_min, y_max, ny, seed, walker, step, refresh_every, y_log, adapt_every=1000):
        self.sizes, self.acts, self.bias = list(sizes), list(acts), list(bias)
        self.loss_code, self.metric_code = loss, metric
        self.theta = torch.tensor(np.asarray(params, dtype=np.float64))
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.sets = [(torch.tensor(np.asarray(X_train).T.copy()), torch.tensor(np.asarray(y_train))),
                     (torch.tensor(np.asarray(X_test).T.copy()), torch.tensor(np.asarray(y_test)))]
        self.grid = (float(x_min), float(x_max), int(nx), float(y_min), float(y_max), int(ny))
        self.seed, self.walker = int(seed), int(walker)
        self.refresh_every, self.y_log, self.adapt_every = int(refresh_every), bool(y_log), int(adapt_every)
        self._lnG = np.zeros((nx, ny))
        self._H = np.zeros((nx, ny))
        self._c = dict(t=0, step=float(step), window_accepted=0, accepted=0, rejected_box=0, rejected_grid=0,
                       rejected_wl=0)
        self._prop = None
        self.refresh()

    # -- the network ------------------------------------------------------------------------
    def _forward(self, theta, X):
        off, a = 0, X
        for l in range(len(self.acts)):
            i, o = self.sizes[l], self.sizes[l + 1]
            W = theta[off:off + i * o].view(o, i)
            off += i * o
            z = a @ W.T
            if self.bias[l]:
                z = z + theta[off:off + o]
                off += o
            a = _ACT[self.acts[l]](z)
        return a

    def _value(self, out, y, metric: bool) -> float:
        n = out.shape[0]
        if self.loss_code == 0:  # bce
            z = out[:, 0]
            if metric and self.metric_code == 0:
                return int(((z > 0) == (y > 0.5)).sum()) / n
            return float(F.binary_cross_entropy_with_logits(z, y))
        if self.loss_code == 1:  # ce
            if metric and self.metric_code == 0:
                return int((out.argmax(dim=1) == y.long()).sum()) / n
            return float(F.cross_entropy(out, y.long()))
        return float(F.mse_loss(out, y.T))

    def _evaluate(self, theta):
        (Xa, ya), (Xb, yb) = self.sets
        return (self._value(self._forward(theta, Xa), ya, False), self._value(self._forward(theta, Xb), yb, True))

    # -- the interface of the compiled chain --------------------------------------------------
    def propose(self, p, value):
        theta = self.theta.clone()
        theta[p] = value
        loss, metric = self._evaluate(theta)
        self._prop = (theta, loss, metric)
        return loss, metric

    def accept(self):
        if self._prop is not None:
            self.theta, self.train_loss, self.test_metric = self._prop
            self._prop = None

    def refresh(self):
        self.train_loss, self.test_metric = self._evaluate(self.theta)
        self._prop = None

    def full_eval(self, test):
        (Xa, ya), (Xb, yb) = self.sets
        X, y = (Xb, yb) if test else (Xa, ya)
        out = self._forward(self.theta, X)
        return self._value(out, y, False), self._value(out, y, True)

    def bin_of(self, loss, metric):
        x_min, x_max, nx, y_min, y_max, ny = self.grid
        if not loss > 0 or (self.y_log and not metric > 0):
            return None
        x = math.log(loss)
        y = math.log(metric) if self.y_log else metric
        fx = math.floor((x - x_min) / ((x_max - x_min) / nx))
        fy = math.floor((y - y_min) / ((y_max - y_min) / ny))
        if 0 <= fx < nx and 0 <= fy < ny:
            return int(fx), int(fy)
        return None

    def current_bin(self):
        return self.bin_of(self.train_loss, self.test_metric)

    def run(self, n_steps, ln_f):
        cur = self.current_bin()
        if cur is None:
            raise ValueError("the current state lies off the grid")
        c = self._c
        P = self.theta.numel()
        done = 0
        while done < n_steps:
            m = min(_BLOCK, n_steps - done)
            words, moves, accepts = wlmc_randoms(self.seed, self.walker, c["t"], m)
            for k in range(m):
                p = (words[k] * P) >> 32
                value = float(self.theta[p]) + moves[k] * c["step"]
                if value > self.bounds[p] or value < -self.bounds[p]:
                    c["rejected_box"] += 1
                else:
                    new = self.bin_of(*self.propose(p, value))
                    if new is None:
                        c["rejected_grid"] += 1
                    else:
                        d = self._lnG[cur] - self._lnG[new]
                        if d >= 0.0 or accepts[k] < math.exp(d):
                            self.accept()
                            cur = new
                            c["accepted"] += 1
                            c["window_accepted"] += 1
                        else:
                            c["rejected_wl"] += 1
                self._lnG[cur] += ln_f
                self._H[cur] += 1.0
                c["t"] += 1
                if self.adapt_every > 0 and c["t"] % self.adapt_every == 0:
                    rate = c["window_accepted"] / self.adapt_every
                    if rate > 0.7:
                        c["step"] *= 1.1
                    elif rate < 0.3:
                        c["step"] *= 0.9
                    c["window_accepted"] = 0
                if self.refresh_every > 0 and c["t"] % self.refresh_every == 0:
                    self.refresh()
                    cur = self.current_bin()
                    if cur is None:
                        raise ValueError("the current state lies off the grid")
            done += m

    @property
    def params(self):
        return self.theta.numpy().copy()

    def set_params(self, params):
        params = np.asarray(params, dtype=np.float64)
        if np.any(np.abs(params) > self.bounds):
            raise ValueError("params: a parameter lies outside its box")
        self.theta = torch.tensor(params)
        self.refresh()

    @property
    def lnG(self):
        return self._lnG.copy()

    @lnG.setter
    def lnG(self, v):
        self._lnG[...] = v

    @property
    def H(self):
        return self._H.copy()

    @H.setter
    def H(self, v):
        self._H[...] = v

    @property
    def counters(self):
        return dict(self._c)

    @counters.setter
    def counters(self, d):
        self._c = {k: (float(d[k]) if k == "step" else int(d[k])) for k in self._c}

    def export_cache(self):
        return np.array([self.train_loss, self.test_metric])

    def import_cache(self, cache):
        self.train_loss, self.test_metric = float(cache[0]), float(cache[1])
