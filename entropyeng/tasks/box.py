"""Models that start inside the samplers' box."""

from __future__ import annotations

import math

__all__ = ["into_box", "box_projection"]


def into_box(model, bound="paper"):
    """Clamp ``model``'s parameters into the box the samplers keep them in, in place; returns the model.

    WLMC and WLMD start from a model's parameters and clamp those outside their box with a warning.
    PyTorch's default initialisation draws a layer of few inputs wider than the paper's box (the
    2-input first layer of :func:`~entropyeng.tasks.regression_mlp`: up to 0.707 against 0.365), so
    the task factories take ``box=`` ("paper" or a number) and give the samplers that same start,
    already clamped, without a warning. Their default, ``box=None``, keeps PyTorch's initialisation:
    it is where the SGD baselines start, as the paper's do.

    Parameters
    ----------
    model : torch.nn.Module
    bound : "paper" or float
        As the samplers' ``bound``: ``"paper"`` is +-2/sqrt(width) per tensor (width = numel / in,
        the output width of a Linear weight; 2 for the gains and biases of normalisation layers); a
        number is one box for every parameter.
    """
    box_projection(model, bound)()
    return model


def box_projection(model, bound="paper"):
    """The clamp of :func:`into_box` as a function of no arguments, its bounds worked out once: the
    projection of a projected descent (:func:`entropyeng.analysis.descent.descend`), called after
    every step. ``bound`` as for :func:`into_box` (checked here)."""
    import torch

    from ..wlmd.physics import paper_bounds

    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(bound, str):
        if bound != "paper":
            raise ValueError(f"bound: expected 'paper' or a number > 0, got {bound!r}")
        boxes = paper_bounds(model, params)
    else:
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not (bound > 0 and math.isfinite(bound)):
            raise ValueError(f"bound: expected 'paper' or a finite number > 0, got {bound!r}")
        boxes = [float(bound)] * len(params)

    def project():
        with torch.no_grad():
            for p, b in zip(params, boxes):
                p.clamp_(-b, b)

    return project


def boxed(model, box):
    """``model`` as a factory returns it: clamped into ``box`` (see :func:`into_box`), or as drawn
    when ``box`` is None."""
    return model if box is None else into_box(model, box)
