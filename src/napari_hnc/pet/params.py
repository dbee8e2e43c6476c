"""Parameters of the click-seeded PET rules, as one frozen dataclass.

Every rule shares the snapping and the bound; each adds its own parameters:

========== ======================================= =====================================
method     region                                  its parameters (defaults)
========== ======================================= =====================================
edge       the boundary where the uptake falls     ``inner`` = 0.4, ``outer`` = 0.1,
           fastest (a watershed of the PET's       ``shell_mm`` = (10, 20)
           gradient between a core at bg + inner
           (S - bg) and a background at bg + outer
           (S - bg); S the peak at the click)
fixed      SUV >= ``threshold``                    ``threshold`` = 2.5 SUV
percent    SUV >= ``percent`` % of the lesion's    ``percent`` = 41
           SUVmax
adaptive   SUV >= bg + ``fraction`` (SUVmax - bg), ``fraction`` = 0.5,
           bg the median SUV in a shell around     ``shell_mm`` = (10, 20)
           the lesion
grow       confidence-connected region growing:    ``multiplier`` = 2.5,
           the SUV interval is the mean of the     ``lower`` = none, ``upper`` = inf
           region grown so far +- ``multiplier``
           standard deviations (5 rounds from the
           seed's neighbourhood), clipped to
           [``lower``, ``upper``]
========== ======================================= =====================================

A lesion's SUVmax (percent, adaptive) is the hottest voxel of its own region that
keeps the click's peak: the search stops before the region would leave the peak
(a hotter neighbour never pulls the region away from the click).

Shared: ``snap_mm`` = 7 (move the seed to the hottest voxel within this distance;
0 keeps it), ``max_radius_mm`` = 200 (a safety bound: the region grows as far as
the lesion goes, and a warning says when it reached this), ``min_suv`` = 2.0 (a
seed whose neighbourhood is colder than this has no uptake to delineate, unless it
lies in the cold centre of a lesion whose hot rim surrounds it; ``fixed`` uses its
threshold instead, ``grow`` its ``lower`` when given; the
confidence interval of ``grow`` never goes below it), ``fill_holes`` = True (a
lesion is solid: a cold cavity it encloses, such as a necrotic core, belongs to it,
as in a GTV; False keeps only the voxels the rule selects).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import HncError

#: The rules a click can use.
METHODS: tuple[str, ...] = ("edge", "fixed", "percent", "adaptive", "grow")
#: The click tool used when none is named (chosen by measurement on real PET/CT, see docs/pet.md).
DEFAULT_METHOD = "edge"
_SHARED = ("snap_mm", "max_radius_mm", "min_suv", "fill_holes")
#: Parameter names of each method (besides the shared ones).
METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "edge": ("inner", "outer", "shell_mm"),
    "fixed": ("threshold",),
    "percent": ("percent",),
    "adaptive": ("fraction", "shell_mm"),
    "grow": ("multiplier", "lower", "upper"),
}
#: How far (mm) around a cold click the hot rim of a lesion is looked for.
COLD_CENTRE_REACH_MM = 60.0


class ParameterError(HncError, ValueError):
    """A delineation method or parameter that does not exist or has an unusable value."""


@dataclass(frozen=True)
class SeedParams:
    """The rule and the parameters that turn one click into one lesion.

    Examples
    --------
    >>> p = SeedParams.create("percent", percent=50)
    >>> p.method, p.percent, p.max_radius_mm
    ('percent', 50.0, 200.0)
    >>> SeedParams.create("percent", threshold=3)
    Traceback (most recent call last):
    ...
    napari_hnc.pet.params.ParameterError: 'threshold' does not apply to method 'percent'; it takes percent, snap_mm, max_radius_mm, min_suv, fill_holes
    """

    method: str = DEFAULT_METHOD
    threshold: float = 2.5
    percent: float = 41.0
    fraction: float = 0.5
    inner: float = 0.4
    outer: float = 0.1
    shell_mm: tuple[float, float] = (10.0, 20.0)
    multiplier: float = 2.5
    lower: float = -math.inf
    upper: float = math.inf
    snap_mm: float = 7.0
    max_radius_mm: float = 200.0
    min_suv: float = 2.0
    fill_holes: bool = True

    @classmethod
    def create(cls, method: str | None = None, **params: Any) -> "SeedParams":
        """Validated parameters for ``method``; unknown or foreign names raise :class:`ParameterError`."""
        method = DEFAULT_METHOD if method is None else str(method).strip().lower()
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
        return float(self.shell_mm[1]) if self.method in ("adaptive", "edge") else 0.0

    @property
    def uptake_limit(self) -> tuple[float, str]:
        """The least SUV near a click that counts as uptake, and its name in messages."""
        if self.method == "fixed":
            return self.threshold, "the threshold"
        if self.method == "grow" and math.isfinite(self.lower):
            return self.lower, "lower"
        return self.min_suv, "min_suv"

    def describe(self) -> dict[str, Any]:
        """The method and the parameters that apply to it (for provenance records and tables)."""
        names = METHOD_PARAMS[self.method] + _SHARED
        return {"method": self.method, **{n: _plain(getattr(self, n)) for n in names}}

    def _checked(self) -> "SeedParams":
        checks = [
            (0.0 < self.percent < 100.0, "percent must lie between 0 and 100 (41 is the usual choice)"),
            (0.0 < self.fraction < 1.0, "fraction must lie between 0 and 1 (0.5 is the usual choice)"),
            (0.0 <= self.outer < self.inner < 1.0, "edge needs 0 <= outer < inner < 1 (0.1 and 0.4 by default)"),
            (self.multiplier > 0.0, "multiplier must be a positive number of standard deviations (2.5 by default)"),
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


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return list(value) if isinstance(value, tuple) else value


def _number(name: str, value: Any) -> Any:
    if name == "fill_holes":
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
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
