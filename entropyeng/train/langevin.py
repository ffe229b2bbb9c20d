"""Max-entropy training by Langevin dynamics on the engine's reflecting-boundary kernel.

``shell``: descend to the target train loss, then run Langevin dynamics at kT = 1 in the potential
``wall_c * max(|ln L - ln target| - width, 0)^2``: flat inside the shell |ln L - ln target| <= width,
so that inside it the walker moves freely and the stationary distribution is uniform over the shell
(within the box of the parameters): its typical state is the shell's max-entropy state, the state the
paper finds to generalise best at that train loss. The descent is projected into the paper's box
(2/sqrt(width) per tensor, +-2 for norm layers) and the walk reflects at it, so that the ensemble is
the paper's. ``anneal``: Langevin dynamics on the train loss
itself, kT lowered geometrically from ``kT0`` to ``kT1`` (the paper's Fig. 4 runs kT = 0.005), from
an SGD solution at a higher loss, stopped when the train loss first reaches the target.
Both with ``walkers`` > 1 run independent walkers and average their predictions.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from .. import kernels
from ..analysis.baselines import _loss, _metric
from ..wlmd.physics import INIT_STEP as _INIT_STEP
from ..wlmd.physics import paper_bounds, wall_box, wall_force
from ._common import Ensemble, TrainError, TrainResult, evaluate

__all__ = ["langevin_walk", "langevin_md"]


class _Flat:
    """The model's parameters as views into one flat buffer (and their .grad into another)."""

    def __init__(self, model, bound):
        params = [p for p in model.parameters() if p.requires_grad]
        n = sum(p.numel() for p in params)
        dtype, dev = params[0].dtype, params[0].device
        self.theta = torch.empty(n, dtype=dtype, device=dev)
        self.grad = torch.zeros(n, dtype=dtype, device=dev)
        self.bound = torch.empty(n, dtype=dtype, device=dev)
        off = 0
        with torch.no_grad():
            for p, box in zip(params, paper_bounds(model, params)):
                k = p.numel()
                self.theta[off:off + k] = p.reshape(-1)
                # the paper's box, widened to hold the starting point (a trained network may lie
                # beyond 2/sqrt(width) in places; clamping it would change its loss)
                b = box if bound == "paper" else float(bound)
                self.bound[off:off + k] = max(b, 1.05 * float(p.detach().abs().max()))
                p.data = self.theta[off:off + k].view_as(p)
                p.grad = self.grad[off:off + k].view_as(p)
                off += k
        self.n = n


def langevin_walk(model, data, *, loss, metric, kind, target, steps, dt, gamma, seed, width=0.05, wall_c=3000.0,
                  kT0=5e-3, kT1=5e-5, record_every=100, bound="paper", adapt=0.1, progress=None):
    """One walker from ``model`` (modified in place); returns (records (n, 3): step, ln L, metric;
    steps run; reached; acceptance rate; the time step at the end). ``kind``: "shell", "harmonic", "anneal" (module
    docstring) or "md" (plain Langevin dynamics on the train loss at ``kT0``, never stopped; ``target``
    unused). The shell walker tunes ``dt`` during the first ``adapt`` fraction of its steps toward
    an acceptance of 0.6 (a warm-up; the dynamics is exact for a fixed dt after it)."""
    X, y, Xt, yt = data
    flat = _Flat(model, bound)
    v = (kernels.normal(seed, _INIT_STEP, flat.n, backend="torch", dtype=str(flat.theta.dtype)[6:])
         .to(flat.theta.device))
    x_star = math.log(target)
    shell = wall_box(dict(x_min=x_star - width, x_max=x_star + width))
    if kind in ("anneal", "md"):
        v *= math.sqrt(kT0)
    records, reached, accepted = [], kind != "anneal", 0
    zero = torch.zeros_like(flat.grad)
    theta0, v0 = flat.theta.clone(), v.clone()
    warm = int(adapt * steps) if kind == "shell" else 0

    def record(step, x):
        with torch.no_grad():
            records.append((step, x, float(_metric(model(Xt), yt, loss, metric))))
        if progress is not None:
            progress(step, x)

    with torch.no_grad():
        x = math.log(float(_loss(model(X), y, loss)))
    for step in range(steps):
        if step % record_every == 0:
            record(step, x)
        if kind == "shell":
            # generalised HMC with a hard shell: partial momentum refresh at kT = 1, free flight (no
            # force inside the shell, reflection at the box), accepted if it stays in the shell,
            # else the old position with the momentum reversed
            theta0.copy_(flat.theta)
            kernels.langevin(flat.theta, v, zero, flat.bound, dt, gamma, 1.0, seed, step)
            v0.copy_(v)
            with torch.no_grad():
                x1 = math.log(float(_loss(model(X), y, loss)))
            # accepted when it stays in the shell or, from outside it (a descent that overshot),
            # comes no farther from it: inside the shell this is the exact hard-wall rule
            inside = max(abs(x1 - x_star) - width, 0.0) <= max(abs(x - x_star) - width, 0.0)
            if inside:
                x = x1
                accepted += step >= warm
            else:
                flat.theta.copy_(theta0)
                v.copy_(-v0)
            if step < warm:
                dt *= 1.02 if inside else 1 / 1.02 ** 1.5  # stationary at acceptance 0.6
            continue
        flat.grad.zero_()
        L = _loss(model(X), y, loss)
        Lv = float(L.detach())
        x = math.log(Lv) if Lv > 0 else -math.inf
        if not math.isfinite(x):
            raise TrainError(f"{kind}: the train loss went non-finite at step {step} (dt {dt} too large?)")
        if kind == "md":  # plain Langevin dynamics on the train loss at a fixed kT (the paper's Fig. 4)
            L.backward()
            grad, temp = flat.grad, kT0
        elif kind == "anneal":
            if x <= x_star:
                reached = True
                record(step, x)
                return np.array(records), step, reached, 1.0, dt
            L.backward()  # the potential is the train loss itself
            grad, temp = flat.grad, kT0 * (kT1 / kT0) ** (step / max(steps - 1, 1))
        else:  # harmonic: the walls of Eq. 3, wall_c * max(|x - x*| - width, 0)^2, at kT = 1
            grad, temp = zero, 1.0
            if abs(x - x_star) > width:
                seed_x = float(wall_force(torch.tensor([[x, 0.0]], dtype=torch.float64), shell, wall_c)[0, 0])
                torch.log(L).backward(torch.tensor(seed_x, dtype=L.dtype, device=L.device))
                grad = flat.grad
        kernels.langevin(flat.theta, v, grad, flat.bound, dt, gamma, temp, seed, step)
    with torch.no_grad():
        x = math.log(float(_loss(model(X), y, loss)))
    record(steps, x)
    if kind == "shell":
        reached = abs(x - x_star) <= width
    rate = accepted / max(steps - warm, 1) if kind == "shell" else 1.0
    return np.array(records), steps, reached, rate, dt


def maxent(model, data, *, loss, metric, target, kind="shell", steps, dt, gamma, walkers=1, seed=0, descent,
           width=0.05, wall_c=3000.0, kT0=5e-3, kT1=5e-5, record_every=100, progress=None) -> TrainResult:
    """The max-entropy trainer (module docstring): descent (``descent``: keyword arguments of
    :func:`entropyeng.train.peers.descend`) to the target (shell) or to ``e`` times the target
    (anneal), then ``walkers`` independent Langevin walkers; one walker's final network, or the
    average of the walkers' predictions."""
    from .peers import descend

    if kind not in ("shell", "harmonic", "anneal"):
        raise TrainError(f"kind: expected 'shell', 'harmonic' or 'anneal', got {kind!r}")
    if walkers < 1 or steps < 1:
        raise TrainError(f"walkers and steps must be >= 1, got {walkers} and {steps}")
    t0 = time.perf_counter()
    start = target if kind == "shell" else math.e * target
    first = descend(model, data, loss=loss, metric=metric, target=start, seed=seed, boxed=True, **descent)
    if not first.reached:
        lowest = math.exp(first.trajectory[:, 0].min())
        raise TrainError(f"target_loss {target:g}: the descent ({descent.get('optimizer', 'sgd')}, "
                         f"{first.details['epochs']} epochs, in the paper's box) reached {lowest:.4g} at best; choose a "
                         "target above that or give the descent more epochs")
    members, all_records, reached, total, rates, dts = [], [], True, first.steps, [], []
    for k in range(walkers):
        member = copy.deepcopy(first.model)
        records, n, ok, rate, dt_end = langevin_walk(member, data, loss=loss, metric=metric, kind=kind, target=target, steps=steps,
                                       dt=dt, gamma=gamma, seed=seed * 1000 + k, width=width, wall_c=wall_c,
                                       kT0=kT0, kT1=kT1, record_every=record_every,
                                       progress=(lambda s, x, k=k: progress(k * steps + s, x)) if progress else None)
        for p in member.parameters():  # detach the views from the walker's flat buffers
            p.grad = None
        members.append(member)
        all_records.append(records)
        reached &= ok
        total += n
        rates.append(rate)
        dts.append(dt_end)
    out = members[0] if walkers == 1 else Ensemble(members)
    L, m = evaluate(out, data, loss, metric)
    member_metrics = [evaluate(mm, data, loss, metric) for mm in members]
    return TrainResult(method={"shell": "maxent"}.get(kind, kind), model=out, target_loss=target, train_loss=L,
                       test_metric=m, reached=reached, seconds=time.perf_counter() - t0, steps=total,
                       trajectory=np.concatenate([r[:, 1:] for r in all_records]),
                       details=dict(kind=kind, walkers=walkers, dt=float(np.mean(dts)), gamma=gamma, width=width,
                                    descent_epochs=first.details["epochs"], descent_seconds=first.seconds,
                                    start_metric=first.test_metric, acceptance=float(np.mean(rates)),
                                    members=[dict(train_loss=a, test_metric=b) for a, b in member_metrics]))


def langevin_md(make_model, data, *, loss, metric, kT, steps, dt, gamma=0.1, runs=4, seed=0, record_every=100,
                progress=None):
    """The paper's Fig. 4: ``runs`` independent Langevin trajectories on V = train loss at ``kT``
    from the models ``make_model(seed + r)``; returns records (runs, n, 3): step, ln(train loss),
    test metric."""
    out = []
    for r in range(runs):
        model = make_model(seed + r)
        records, _, _, _, _ = langevin_walk(model, data, loss=loss, metric=metric, kind="md", target=1.0, steps=steps,
                                         dt=dt, gamma=gamma, seed=seed + r, kT0=kT, kT1=kT, record_every=record_every,
                                         progress=(lambda s, x, r=r: progress(r * steps + s, x)) if progress else None)
        out.append(records)
    n = min(len(a) for a in out)
    return np.stack([a[:n] for a in out])
