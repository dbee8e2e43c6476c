"""Clicks (seed points) as they cross API and CLI boundaries: world RAS mm plus a class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .conventions import CLASS_NAMES, PRIMARY, class_value
from .errors import ClickError


@dataclass(frozen=True)
class Click:
    """A user click.

    Parameters
    ----------
    world : tuple of 3 floats
        Position in world RAS+ millimetres.
    positive : bool
        True for "this is lesion", False for "this is not".
    label : int
        Class the click asks for: 1 primary tumour, 2 lymph node.

    Examples
    --------
    >>> Click.parse("12.5,-30,4:node")
    Click(world=(12.5, -30.0, 4.0), positive=True, label=2)
    >>> Click.parse("0,0,0:neg").positive
    False
    """

    world: tuple[float, float, float]
    positive: bool = True
    label: int = PRIMARY

    def __post_init__(self) -> None:
        world = tuple(float(v) for v in np.asarray(self.world, dtype=float).ravel())
        if len(world) != 3 or not all(np.isfinite(world)):
            raise ClickError(f"a click needs 3 finite world coordinates (RAS mm), got {self.world!r}")
        object.__setattr__(self, "world", world)
        if self.label not in CLASS_NAMES or self.label == 0:
            raise ClickError(f"a click's class must be 1 (primary) or 2 (node), got {self.label!r}")

    @classmethod
    def parse(cls, text: str) -> "Click":
        """Parse ``X,Y,Z[:primary|node][:pos|neg]`` (world RAS mm)."""
        parts = [p.strip() for p in str(text).split(":")]
        try:
            xyz = tuple(float(v) for v in parts[0].split(","))
        except ValueError:
            raise ClickError(f"cannot read the click {text!r}; write X,Y,Z[:primary|node][:neg] in mm") from None
        if len(xyz) != 3:
            raise ClickError(f"the click {text!r} needs 3 coordinates, X,Y,Z in world RAS mm")
        positive, label = True, PRIMARY
        for part in parts[1:]:
            key = part.lower()
            if key in ("neg", "negative", "-"):
                positive = False
            elif key in ("pos", "positive", "+"):
                positive = True
            else:
                try:
                    label = class_value(key)
                except ValueError as exc:
                    raise ClickError(f"in the click {text!r}: {exc}") from None
        return cls(xyz, positive, label)  # type: ignore[arg-type]


def as_clicks(clicks: Iterable[Click | Sequence[float] | str]) -> list[Click]:
    """Normalise clicks given as :class:`Click`, ``(x, y, z)`` tuples or ``"x,y,z:node"`` strings."""
    out = []
    for c in clicks:
        if isinstance(c, Click):
            out.append(c)
        elif isinstance(c, str):
            out.append(Click.parse(c))
        else:
            out.append(Click(tuple(c)))  # type: ignore[arg-type]
    return out
