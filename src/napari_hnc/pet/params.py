"""Parameters of the click-seeded PET rules, as one frozen dataclass.

Every rule shares the snapping and the bound; each adds its own parameters:

========== ======================================= =====================================
method     region                                  its parameters (defaults)
========== ======================================= =====================================
fixed      SUV >= ``threshold``                    ``threshold`` = 2.5 SUV
percent    SUV >= ``percent`` % of the lesion's    ``percent`` = 41
           SUVmax
adaptive   SUV >= bg + ``fraction`` (SUVmax - bg), ``fraction`` = 0.5,
           bg the median SUV in a shell around     ``shell_mm`` = (10, 20)
           the lesion
grow       ``lower`` <= SUV <= ``upper``           ``lower`` = 2.5, ``upper`` = inf
========== ======================================= =====================================

Shared: ``snap_mm`` = 7 (move the seed to the hottest voxel within this distance;
0 keeps it), ``max_radius_mm`` = 50 (the region never reaches further from the
click), ``min_suv`` = 2.0 (a seed whose neighbourhood is colder than this has no
uptake to delineate; not used by ``fixed`` and ``grow``, whose own limits decide).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import HncError

#: The rules a click can use.
METHODS: tuple[str, ...] = ("fixed", "percent", "adaptive", "grow")
_SHARED = ("snap_mm", "max_radius_mm", "min_suv")
#: Parameter names of each method (besides the shared ones).
METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "fixed": ("threshold",),
    "percent": ("percent",),
    "adaptive": ("fraction", "shell_mm"),
    "grow": ("lower", "upper"),
}


class ParameterError(HncError, ValueError):
    """A delineation method or parameter that does not exist or has an unusable value."""


@dataclass(frozen=True)
class SeedParams:
    """The rule and the parameters that turn one click into one lesion.

    Examples
    --------
    >>> p = SeedParams.create("percent", percent=50)
    >>> p.method, p.percent, p.max_radius_mm
    ('percent', 50.0, 50.0)
    >>> SeedParams.create("percent", threshold=3)
    Traceback (most recent call last):
    ...
    napari_hnc.pet.params.ParameterError: 'threshold' does not apply to method 'percent'; it takes percent, snap_mm, max_radius_mm, min_suv
    """

    method: str = "percent"
    threshold: float = 2.5
    percent: float = 41.0
    fraction: float = 0.5
    shell_mm: tuple[float, float] = (10.0, 20.0)
    lower: float = 2.5
    upper: float = math.inf
    snap_mm: float = 7.0
    max_radius_mm: float = 50.0
    min_suv: float = 2.0

    @classmethod
    def create(cls, method: str = "percent", **params: Any) -> "SeedParams":
        """Validated parameters for ``method``; unknown or foreign names raise :class:`ParameterError`."""
        method = str(method).strip().lower()
        if method not in METHODS:
            raise ParameterError(f"unknown delineation method {method!r}{_suggest(method, METHODS)}; "
                                 f"use one of {', '.join(METHODS)}")
        allowed = METHOD_PARAMS[method] + _SHARED
        known = {f.name for f in fields(cls)} - {"method"}
        for name in params:
            if name not in known:
                raise ParameterError(f"unknown parameter {name!r}{_suggest(name, known)}; "
                                     f"method {method!r} takes {', '.join(allowed)}")
            if name not in allowed:
                raise ParameterError(f"{name!r} does not apply to method {method!r}; it takes {', '.join(allowed)}")
        values = {k: _number(k, v) for k, v in params.items() if v is not None}
        return replace(cls(method=method), **values)._checked()

    @property
    def margin_mm(self) -> float:
        """How far beyond the lesion the rule reads PET values (the background shell)."""
        return float(self.shell_mm[1]) if self.method == "adaptive" else 0.0

    def _checked(self) -> "SeedParams":
        checks = [
            (0.0 < self.percent < 100.0, "percent must lie between 0 and 100 (41 is the usual choice)"),
            (0.0 < self.fraction < 1.0, "fraction must lie between 0 and 1 (0.5 is the usual choice)"),
            (self.threshold > 0.0, "threshold must be a positive SUV (2.5 is the usual choice)"),
            (self.lower <= self.upper, "lower must not exceed upper"),
            (0.0 <= self.shell_mm[0] < self.shell_mm[1], "shell_mm must be (inner, outer) with 0 <= inner < outer"),
            (self.snap_mm >= 0.0, "snap_mm must be 0 (no snapping) or a positive distance in mm"),
            (self.max_radius_mm > 0.0, "max_radius_mm must be a positive distance in mm"),
        ]
        for ok, message in checks:
            if not ok:
                raise ParameterError(message)
        return self


def _number(name: str, value: Any) -> Any:
    if name == "shell_mm":
        try:
            inner, outer = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ParameterError(f"shell_mm must be two distances (inner, outer) in mm, got {value!r}") from None
        return (inner, outer)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(number):
        raise ParameterError(f"{name} must be a number, got NaN")
    return number


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
