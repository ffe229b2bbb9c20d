"""The sampler protocol: what :class:`~entropyeng.WLMC`, :class:`~entropyeng.REWL` and
:class:`~entropyeng.WLMD` all offer, and all that the run loop (:mod:`entropyeng.runs.loop`), the
harvest and the trainer use of a sampler. A new sampler that implements it runs under
``entropyeng run`` and is harvested like the built-in ones.

    from entropyeng import Sampler, WLMD
    s = WLMD(model, train, test, loss="mse", steps=100_000)
    assert isinstance(s, Sampler)
    s.advance(10_000, callback=print)      # walker-steps, over all walkers
    s.landscape.save("landscape.npz")

The clock of every sampler is its walker-steps in all (every walker, every rank): the budget of a
run (``--steps``), ``walker_steps`` and ``advance`` count them. ``advance`` runs whole chunks of the
sampler's own: a WLMC stage (``steps_per_stage`` walker-steps), a WLMD step of every walker.

``isinstance(obj, Sampler)`` checks that the members exist (``typing.runtime_checkable``), on
every Python without reading them (a property such as ``landscape`` may cost a join or a collective).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Protocol, runtime_checkable

__all__ = ["Sampler"]

_MEMBERS = ("backend", "walker_steps", "advance", "landscape", "info", "cvs", "positions", "set_bias", "save", "load")
_MISSING = object()


class _StaticCheck(type(Protocol)):
    """``isinstance`` looks the members up statically (as Python 3.12's runtime protocols do): below
    3.12 ``runtime_checkable`` calls ``hasattr``, which runs a property."""

    def __instancecheck__(cls, obj):
        if cls.__dict__.get("_is_protocol_root", False):
            return all(inspect.getattr_static(obj, name, _MISSING) is not _MISSING for name in _MEMBERS)
        return super().__instancecheck__(obj)


@runtime_checkable
class Sampler(Protocol, metaclass=_StaticCheck):
    """A Wang-Landau sampler of an entropy landscape S(x, y) over a :class:`~entropyeng.Grid`."""

    _is_protocol_root = True

    #: the kernels it runs on: "cpp", "torch" or "cuda"
    backend: str

    @property
    def walker_steps(self) -> int:
        """Walker-steps done over the sampler's life, every walker and rank counted."""

    def advance(self, steps: int, callback: Optional[Callable[[Any], None]] = None) -> int:
        """At least ``steps`` more walker-steps, in the sampler's whole chunks; ``callback(info)``
        after each chunk (a WLMC stage; a WLMD call: the chunk is the call). Returns the
        walker-steps done by the call. With a frozen bias (:meth:`set_bias`) nothing is learned."""

    @property
    def landscape(self):
        """The learned entropy and histogram as an :class:`~entropyeng.Landscape` (a copy)."""

    def info(self) -> dict:
        """The state's diagnostics as a JSON-ready dict (the last chunk's where a chunk made them)."""

    def cvs(self):
        """``(K, 2)`` numpy array: each walker's current (x, y) (ln train loss, and the y axis)."""

    @property
    def positions(self):
        """The walkers' parameters, ``(K, P)`` (a copy); setting it moves every walker there
        (``(P,)`` moves them all to one point)."""

    def set_bias(self, bias, *, frozen: bool = True, columns=None) -> None:
        """Replace the learned landscape by ``bias`` (an array of the grid's shape, in the
        landscape's units); ``frozen``: learn nothing more (the walkers sample the fixed bias,
        as a harvest does). ``columns``: a slice of x columns to replace, the rest kept."""

    def save(self, path) -> None:
        """The whole state in one .npz checkpoint, written atomically."""

    @classmethod
    def load(cls, path, problem=None, **options) -> "Sampler":
        """A sampler continued from :meth:`save`'s file. ``problem`` supplies what the file does not
        hold (an object with ``make_model(seed)``, ``train``, ``test``, ``loss``, ``metric``, as
        :class:`entropyeng.tasks.catalog.Problem`); ``options``, the constructor's running options."""
