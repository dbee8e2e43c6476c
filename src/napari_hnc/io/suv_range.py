"""Is a PET in SUV? Two checks on its values, for NIfTI files and for DICOM converted here.

* **SUVmax.** FDG SUVmax above :data:`SUV_WARN_MAX` (100) is very unusual and warns; above
  :data:`SUV_PLAUSIBLE_MAX` (1000) the image is not in SUV (Bq/ml, or a wrong decay time, dose
  or weight): a DICOM conversion refuses it unless forced, a NIfTI file is flagged.
* **Body background.** The median uptake inside the body -- the voxels above
  :data:`BODY_FRACTION` of the 99.9th percentile, a scale-free body mask -- is 0.36-1.10 on
  all 47 real SUV PETs measured (41 IBSI sarcoma crops, the 3 ``sts`` PETs, the whole-body
  ``raw/STS_001`` and the 2 ``dicom-hn`` head-and-neck series; ``docs/pet.md``). Outside
  :data:`BACKGROUND_RANGE` (0.1-2.0) the image is very probably not SUV: Bq/ml gives hundreds
  or thousands, MBq/ml below 0.01. kBq/ml gives the SUV background times the activity per
  body mass (kBq/g, decayed), typically 2-5, so it is flagged from about 2 kBq/g (74 % of
  the measured PETs at 3.6 kBq/g, all at 5); a low-dose kBq/ml PET cannot be told from SUV
  by its values alone.

Examples
--------
>>> suv = np.zeros((40, 40, 40), np.float32)
>>> suv[8:32, 8:32, 8:32] = 0.8          # body
>>> suv[18:22, 18:22, 18:22] = 12.0      # lesion
>>> check = check_suv(suv)
>>> round(check.background, 2), check.suv_max, check.problems
(0.8, 12.0, [])
>>> [p.split(",")[0] for p in check_suv(suv * 4117.0).problems]   # the same PET in Bq/ml
['the maximum is 4.94e+04', 'the median uptake inside the body is 3294']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..conventions import SUV_PLAUSIBLE_MAX

#: SUVmax above this warns (FDG rarely exceeds 50; bladder and brain stay well below 100).
SUV_WARN_MAX = 100.0
#: Body mask: voxels above this fraction of the 99.9th percentile (scale-free: no units assumed).
BODY_FRACTION = 0.02
BODY_PERCENTILE = 99.9
#: Median SUV inside the body expected for an SUV image (measured range 0.36-1.10, margins ~3x and ~1.8x).
BACKGROUND_RANGE = (0.1, 2.0)
#: The background is computed on at most this many voxels (a regular subsample), so big PETs stay fast.
SAMPLE_VOXELS = 1_000_000


@dataclass(frozen=True)
class SUVCheck:
    """What the values of a PET say about its units."""

    suv_max: float
    background: float
    problems: list[str] = field(default_factory=list)

    @property
    def implausible(self) -> bool:
        """SUVmax above :data:`SUV_PLAUSIBLE_MAX`: not an SUV image."""
        return self.suv_max > SUV_PLAUSIBLE_MAX

    @property
    def background_outside(self) -> bool:
        """The body background lies outside :data:`BACKGROUND_RANGE`."""
        low, high = BACKGROUND_RANGE
        return bool(np.isfinite(self.background) and not low <= self.background <= high)


def body_background(values: np.ndarray) -> float:
    """Median of the voxels above :data:`BODY_FRACTION` of the 99.9th percentile (NaN for an empty image)."""
    flat = np.asarray(values).reshape(-1)
    step = max(1, flat.size // SAMPLE_VOXELS)
    sample = flat[::step].astype(np.float64)
    sample = sample[np.isfinite(sample)]
    if not sample.size:
        return float("nan")
    top = float(np.percentile(sample, BODY_PERCENTILE))
    body = sample[sample > BODY_FRACTION * top] if top > 0 else sample[:0]
    return float(np.median(body)) if body.size else float("nan")


def check_suv(values: np.ndarray, *, converted: bool = False) -> SUVCheck:
    """SUVmax, body background and the problems they show (empty list: looks like SUV).

    ``converted``: the values were just converted to SUV from the DICOM header, so a wrong
    scale means wrong header values, not other units.
    """
    array = np.asarray(values)
    suv_max = float(np.nanmax(array)) if array.size else float("nan")
    background = body_background(array)
    problems = []
    if suv_max > SUV_PLAUSIBLE_MAX:
        problems.append(f"the maximum is {suv_max:.4g}, which looks like Bq/ml, not SUV (FDG SUVmax stays below "
                        f"{SUV_WARN_MAX:.0f}), or a wrong decay time, dose or weight")
    elif suv_max > SUV_WARN_MAX:
        problems.append(f"SUVmax is {suv_max:.4g}, above {SUV_WARN_MAX:.0f}: unusual for FDG; check the units, "
                        "the injected dose, the weight and the times")
    low, high = BACKGROUND_RANGE
    if SUVCheck(suv_max, background).background_outside:
        problems.append(f"the median uptake inside the body is {background:.4g}, far outside the "
                        f"{low:g}-{high:g} of SUV images; "
                        + ("the weight, dose or times used are probably wrong" if converted
                           else f"it is probably in {_likely_units(background)}"))
    return SUVCheck(suv_max, background, problems)


def _likely_units(background: float) -> str:
    if background > 100:
        return "Bq/ml"
    if background > BACKGROUND_RANGE[1]:
        return "kBq/ml"
    return "MBq/ml, or SUV with a wrong weight or dose"
