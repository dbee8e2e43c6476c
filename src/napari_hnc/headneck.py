"""Where the head and neck are in a PET/CT study: :func:`find_head_neck` returns a world box.

Whole-body FDG studies run from the head to the thighs; the automatic models are
made for the head and neck. The finder reads the body's outline slice by slice
on a ~4 mm sub-sample (the PET when there is one, it has no couch; else the CT
above -500 HU without plates thinner than 2 cm front to back, largest 3D
region) and looks, from the top of the field down, for

* a **head-sized top**: the top slices of the body are at most 23 cm wide
  (the largest 2D region of each slice, so raised arms beside the head do not count);
* the **shoulders**: the first level below it where the body is wider than
  26 cm and 1.6 times the head and neck, for at least 12 mm;
* the **brain** (PET only): the largest region above 4x the body's typical
  uptake whose top lies within 4 cm of the top of the head (and, when the field
  cuts through the head, that reaches the field's top: a hot tumour in the neck
  is not taken for it), at least 20 ml.

The region runs from 5 cm above the bottom of the brain (the skull base, where
the head-and-neck fields the models were trained on end; from the top of the
field when it cuts through the head, or when no brain is seen) to 6 cm below the shoulders (the
clavicles and the supraclavicular nodes are inside), 15 cm either side of the
neck's midline (the shoulders beyond are left out), over the whole field
front to back. A field of view at most 45 cm tall is already a head-and-neck study
and keeps its whole field; so does a study in which no head-sized top and
shoulders are found (the finder is unsure), with the reason said.

Examples
--------
>>> from napari_hnc.phantom import generate_case
>>> region = find_head_neck(generate_case(7, "small").study)
>>> region.whole, region.reason.split(":")[0]
(True, 'the field of view is 237 mm tall, no taller than a head and neck (45 cm)')
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from .errors import HncError
from .geometry import Volume
from .pet.components import largest_component

log = logging.getLogger(__name__)

#: A field of view at most this tall (mm) is a head-and-neck study already.
HN_FIELD_MAX_MM = 450.0
#: Sub-sampling of the image the finder reads (mm).
STEP_MM = 4.0
#: PET body: above this fraction of the body's typical uptake; brain: above HOT_FACTOR times it.
BODY_FRACTION, HOT_FACTOR = 0.3, 4.0
CT_BODY_HU = -500.0
#: CT structures thinner than this front to back (mm) are the couch, not the body.
COUCH_MAX_MM = 20.0
#: The head and neck are at most this wide (mm); shoulders at least SHOULDER_MIN_MM and SHOULDER_RATIO x the neck.
NECK_MAX_MM, SHOULDER_MIN_MM, SHOULDER_RATIO = 230.0, 260.0, 1.6
SHOULDER_RUN_MM = 12.0
#: A slice belongs to the body's top once its largest region covers this (mm^2).
BODY_MIN_AREA_MM2 = 3000.0
#: From the top of the body to the shoulders (mm): outside this range the finder is unsure.
HEAD_NECK_RANGE_MM = (60.0, 420.0)
BELOW_SHOULDERS_MM, ABOVE_TOP_MM, ABOVE_SKULL_BASE_MM = 60.0, 10.0, 50.0
#: Left and right of the neck's midline the region reaches this far (mm): the supraclavicular nodes lie
#: within about 10 cm of it, the shoulders' muscle and bones beyond it are left out.
HALF_WIDTH_MM = 150.0
BRAIN_MIN_ML = 20.0
#: The brain's top lies at most this far (mm) below the top of the body (or the field cuts through it).
BRAIN_TOP_MM = 40.0

WHOLE, AUTO = "whole", "auto"


class RegionError(HncError, ValueError):
    """A region option that cannot be used (bad text, or a box outside the study)."""


@dataclass(frozen=True)
class HeadNeckRegion:
    """The part of a study the automatic model runs on: a world RAS box (mm) and why.

    Attributes
    ----------
    lo, hi : tuple of 3 float
        Opposite corners of the box, world RAS mm (``lo < hi``).
    whole : bool
        True when the box is the study's whole field.
    confidence : str
        "high" (head, shoulders and brain found), "medium" (no brain seen),
        "unsure" (nothing found: whole field), "field" (already a head-and-neck
        field) or "given" (set by the user).
    reason : str
        One sentence for the user.
    landmarks : dict
        World z (mm) of what was found: ``body_top_z``, ``shoulders_z``, ``brain_top_z``...

    Examples
    --------
    >>> r = HeadNeckRegion((-250.0, -250.0, -300.0), (250.0, 250.0, 100.0), False, "given", "set by hand")
    >>> r.as_text()
    '-250.0,-250.0,-300.0,250.0,250.0,100.0'
    """

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    whole: bool
    confidence: str
    reason: str
    landmarks: dict[str, float] = field(default_factory=dict)

    @property
    def height_mm(self) -> float:
        return float(self.hi[2] - self.lo[2])

    def as_text(self) -> str:
        """``whole``, or the box as ``X0,Y0,Z0,X1,Y1,Z1`` (what ``--region`` takes)."""
        return WHOLE if self.whole else ",".join(f"{v:.1f}" for v in (*self.lo, *self.hi))

    def describe(self) -> str:
        """One line for a status bar or the command line."""
        if self.whole:
            return f"whole field: {self.reason}"
        return (f"head and neck, z {self.lo[2]:.0f} to {self.hi[2]:.0f} mm ({self.height_mm:.0f} mm, "
                f"confidence {self.confidence}): {self.reason}")

    def as_metadata(self) -> dict[str, Any]:
        return {"region": self.as_text(), "region_reason": self.reason, "region_confidence": self.confidence,
                "region_description": self.describe()}

    def voxel_box(self, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        """The box as fractional voxel indices of ``volume`` (lo, hi per axis, clipped to its extent)."""
        corners = np.array(np.meshgrid(*zip(self.lo, self.hi), indexing="ij")).reshape(3, -1).T
        ijk = volume.world_to_voxel(corners)
        top = np.asarray(volume.shape, float) - 1
        return np.clip(ijk.min(axis=0), 0, top), np.clip(ijk.max(axis=0), 0, top)


# --------------------------------------------------------------------------- the study's field


def field_box(study) -> tuple[np.ndarray, np.ndarray]:
    """World RAS box of the label grid, within the PET's extent when there is one."""
    lo, hi = study.grid.world_bounds()
    if study.pet is not None and study.ct is not None:
        plo, phi = study.pet.world_bounds()
        lo, hi = np.maximum(lo, plo), np.minimum(hi, phi)
    return lo, hi


def whole_field(study, reason: str, confidence: str = "unsure", landmarks: dict | None = None) -> HeadNeckRegion:
    """The study's whole field as a region."""
    lo, hi = field_box(study)
    return HeadNeckRegion(_t(lo), _t(hi), True, confidence, reason, dict(landmarks or {}))


def _t(values) -> tuple[float, float, float]:
    return tuple(float(v) for v in values)  # type: ignore[return-value]


# --------------------------------------------------------------------------- the body, slice by slice


@dataclass(frozen=True)
class Profile:
    """Per coarse axial slice (bottom to top): world z, width and area of the body's largest region."""

    z: np.ndarray
    width: np.ndarray
    area: np.ndarray
    centre_x: np.ndarray  # world x (mm) of the middle of the largest region's left-right extent
    hot: np.ndarray | None  # bool (x, y, z) on the same sub-sample, PET only
    voxel_ml: float


def body_profile(image: Volume, is_pet: bool) -> Profile:
    """The body outline of ``image`` (re-oriented to RAS, sub-sampled to about 4 mm) slice by slice."""
    ras = image.reoriented(("R", "A", "S"))
    stride = np.maximum(1, np.round(STEP_MM / ras.spacing)).astype(int)
    sub = np.asarray(ras.array[:: stride[0], :: stride[1], :: stride[2]], dtype=np.float32)
    spacing = ras.spacing * stride
    hot = None
    if is_pet:
        above = sub[sub > sub.mean()]
        tissue = float(np.median(above)) if above.size else 0.0
        body = sub > BODY_FRACTION * tissue if tissue > 0 else np.zeros(sub.shape, bool)
        hot = sub > HOT_FACTOR * tissue if tissue > 0 else np.zeros(sub.shape, bool)
    else:  # the couch: a plate under the patient, thinner front to back than any part of the body
        plate = max(1, int(round(COUCH_MAX_MM / spacing[1])))
        body = ndimage.binary_opening(sub > CT_BODY_HU, np.ones((1, plate, 1), bool))
    body = largest_component(body)
    width, area, middle = _slice_extents(body, spacing)
    centre = (np.asarray(sub.shape[:2]) - 1) / 2.0 * stride[:2]
    ks = np.arange(sub.shape[2]) * stride[2]
    z = ras.voxel_to_world(np.column_stack([np.full(len(ks), centre[0]), np.full(len(ks), centre[1]), ks]))[:, 2]
    x = ras.voxel_to_world(np.column_stack([middle * stride[0], np.full(len(ks), centre[1]), ks]))[:, 0]
    return Profile(z, width, area, x, hot, float(np.prod(spacing)) / 1000.0)


def _slice_extents(body: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-right width (mm), area (mm^2) and middle (x index) of the largest 2D region of each axial slice."""
    width, area, middle = np.zeros(body.shape[2]), np.zeros(body.shape[2]), np.zeros(body.shape[2])
    for k in range(body.shape[2]):
        part = largest_component(body[:, :, k])
        if part.any():
            xs = np.flatnonzero(part.any(axis=1))
            width[k] = (xs[-1] - xs[0] + 1) * spacing[0]
            area[k] = part.sum() * spacing[0] * spacing[1]
            middle[k] = (xs[0] + xs[-1]) / 2.0
    return width, area, middle


# --------------------------------------------------------------------------- landmarks


def find_landmarks(profile: Profile) -> tuple[dict[str, float], str]:
    """``body_top_z``, ``shoulders_z`` (and ``brain_*``) from a profile, or ({}, why not)."""
    top = _top_slice(profile)
    if top is None:
        return {}, "no body found in the image"
    if profile.width[top] > NECK_MAX_MM:
        return {}, (f"the top of the body is {profile.width[top]:.0f} mm wide, wider than a head: "
                    "the head does not seem to be in the field of view")
    shoulders = _shoulder_slice(profile, top)
    if shoulders is None:
        return {}, "no shoulders found below the head-sized top of the body"
    found = {"body_top_z": float(profile.z[top]), "shoulders_z": float(profile.z[shoulders]),
             "midline_x": _midline(profile, shoulders, top)}
    length = found["body_top_z"] - found["shoulders_z"]
    if not HEAD_NECK_RANGE_MM[0] <= length <= HEAD_NECK_RANGE_MM[1]:
        return {}, (f"the shoulders lie {length:.0f} mm below the top of the body, outside the "
                    f"{HEAD_NECK_RANGE_MM[0]:.0f}-{HEAD_NECK_RANGE_MM[1]:.0f} mm of a head and neck")
    found.update(_brain(profile, shoulders, top))
    return found, ""


def _midline(profile: Profile, shoulders: int, top: int) -> float:
    """World x of the middle of the neck: the narrowest slice between the shoulders and the top."""
    widths = profile.width[shoulders + 1: top + 1]
    if not widths.size:
        return float(profile.centre_x[top])
    return float(profile.centre_x[shoulders + 1 + int(np.argmin(np.where(widths > 0, widths, np.inf)))])


def _top_slice(profile: Profile) -> int | None:
    body = np.flatnonzero(profile.area >= BODY_MIN_AREA_MM2)
    return int(body[-1]) if body.size else None


def _shoulder_slice(profile: Profile, top: int) -> int | None:
    """The highest slice below ``top`` that starts a run (>= 12 mm) of shoulder-wide slices."""
    step = abs(float(profile.z[1] - profile.z[0])) if len(profile.z) > 1 else STEP_MM
    run = max(1, int(np.ceil(SHOULDER_RUN_MM / step)))
    neck = profile.width[top]
    for k in range(top - 1, run - 2, -1):
        neck = min(neck, profile.width[k]) if profile.width[k] > 0 else neck
        limit = max(SHOULDER_MIN_MM, SHOULDER_RATIO * neck)
        window = profile.width[max(k - run + 1, 0): k + 1]
        if len(window) == run and np.all(window > limit):
            return k
    return None


def _brain(profile: Profile, shoulders: int, top: int) -> dict[str, float]:
    """The largest hot region above the shoulders that reaches the top of the head, when it is brain-sized.

    A hot tumour in the neck is never taken for the brain, even when the field cuts the head
    so that less of the brain than of the tumour is seen.
    """
    if profile.hot is None:
        return {}
    hot = profile.hot.copy()
    hot[:, :, : shoulders + 1] = False
    labelled, count = ndimage.label(hot)
    if count == 0:
        return {}
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    tops = np.array([box[2].stop - 1 if box is not None else -1 for box in ndimage.find_objects(labelled)])
    far = profile.z[np.maximum(tops, 0)] < profile.z[top] - BRAIN_TOP_MM
    field_top = len(profile.z) - 1
    if np.any(tops >= field_top):  # the field cuts the head: the brain is what reaches its top
        far |= tops < field_top
    sizes[1:][far] = 0
    biggest = int(np.argmax(sizes))
    if sizes[biggest] * profile.voxel_ml < BRAIN_MIN_ML:
        return {}
    ks = np.flatnonzero((labelled == biggest).any(axis=(0, 1)))
    return {"brain_top_z": float(profile.z[ks[-1]]), "brain_bottom_z": float(profile.z[ks[0]]),
            "brain_ml": float(sizes[biggest] * profile.voxel_ml), "brain_cut": float(ks[-1] >= field_top)}


# --------------------------------------------------------------------------- the finder


def find_head_neck(study) -> HeadNeckRegion:
    """The head-and-neck region of a study (from above the skull base to below the clavicles).

    Parameters
    ----------
    study : Study
        With a PET (preferred: it shows the body without the couch, and the brain) or a CT.

    Returns
    -------
    HeadNeckRegion
        The box, whether it is the whole field, and why. The whole field is kept
        when the field of view is at most 45 cm tall (already a head-and-neck
        study) or when no head-sized top and shoulders are found (unsure).

    Examples
    --------
    >>> from napari_hnc.phantom import generate_case
    >>> case = generate_case(3, "wholebody-small")
    >>> region = find_head_neck(case.study)
    >>> region.whole, region.confidence
    (False, 'high')
    >>> region.lo[2] < case.landmarks["sternal_notch_z"] < region.hi[2]
    True
    """
    image = study.pet if study.pet is not None else study.ct
    lo, hi = field_box(study)
    height = float(hi[2] - lo[2])
    found, why = find_landmarks(body_profile(image, study.pet is not None))
    if height <= HN_FIELD_MAX_MM:
        return whole_field(study, f"the field of view is {height:.0f} mm tall, no taller than a head and neck "
                                  f"({HN_FIELD_MAX_MM / 10:.0f} cm): its whole field is used", "field", found)
    if not found:
        log.warning("%s: head and neck not found (%s); the whole field is used", study.case_id, why)
        return whole_field(study, f"head and neck not found ({why}); the whole field is used", "unsure")
    bottom = max(found["shoulders_z"] - BELOW_SHOULDERS_MM, lo[2])
    brain = "brain_top_z" in found
    if brain and not found["brain_cut"]:
        top = min(found["brain_bottom_z"] + ABOVE_SKULL_BASE_MM, hi[2])
    else:  # no brain seen, or the field cuts through the head: keep all of the head there is
        top = min(found["body_top_z"] + ABOVE_TOP_MM, hi[2])
    start = (f"{ABOVE_SKULL_BASE_MM:.0f} mm above the bottom of the brain" if brain and not found["brain_cut"]
             else "the top of the body in the field")
    reason = ("head, brain and shoulders found" if brain else "head and shoulders found (no brain uptake seen)") + \
        f"; from {start} to {BELOW_SHOULDERS_MM:.0f} mm below the shoulders, {HALF_WIDTH_MM / 10:.0f} cm either " \
        "side of the neck's midline"
    left = max(found["midline_x"] - HALF_WIDTH_MM, lo[0])
    right = min(found["midline_x"] + HALF_WIDTH_MM, hi[0])
    region = HeadNeckRegion((float(left), float(lo[1]), float(bottom)), (float(right), float(hi[1]), float(top)),
                            False, "high" if brain else "medium", reason, found)
    log.info("%s: %s", study.case_id, region.describe())
    return region


# --------------------------------------------------------------------------- what users pass


def parse_region(text: str) -> str | tuple[float, ...]:
    """``"auto"``, ``"whole"`` or a box ``"X0,Y0,Z0,X1,Y1,Z1"`` (world RAS mm) as 6 floats.

    >>> parse_region("whole"), parse_region("-200,-200,-350,200,200,60")
    ('whole', (-200.0, -200.0, -350.0, 200.0, 200.0, 60.0))
    """
    value = str(text).strip().lower()
    if value in (AUTO, WHOLE):
        return value
    parts = [p for p in re.split(r"[,\s]+", value) if p]
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != 6 or not all(np.isfinite(numbers)):
        raise RegionError(
            f"--region {text!r} is not 'auto', 'whole' or a box X0,Y0,Z0,X1,Y1,Z1 (six numbers, world RAS mm, "
            "e.g. --region=-250,-250,-400,250,250,100)"
        )
    return numbers


def box_region(study, box: Sequence[float]) -> HeadNeckRegion:
    """A user's box (6 numbers, world RAS mm) checked against the study's field and clipped to it."""
    values = np.asarray(box, float).reshape(2, 3)
    lo, hi = values.min(axis=0), values.max(axis=0)
    if np.any(hi - lo <= 0):
        raise RegionError(f"the region box {_fmt(values.ravel())} is flat (a side of 0 mm); give two opposite corners")
    flo, fhi = field_box(study)
    clo, chi = np.maximum(lo, flo), np.minimum(hi, fhi)
    if np.any(chi <= clo):
        raise RegionError(
            f"the region box {_fmt(values.ravel())} mm does not overlap study {study.case_id}, whose field spans "
            f"{_fmt(flo)} to {_fmt(fhi)} mm (world RAS); give a box inside it, or --region whole"
        )
    return HeadNeckRegion(_t(clo), _t(chi), False, "given", "set by the user")


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in np.asarray(values, float)) + ")"


def resolve_region(study, region: Any = AUTO) -> HeadNeckRegion:
    """The region to use for ``study``: ``"auto"`` (or None), ``"whole"``, a box text or 6 numbers, or a region.

    >>> from napari_hnc.phantom import generate_case
    >>> resolve_region(generate_case(7, "small").study, "whole").as_text()
    'whole'
    """
    if isinstance(region, HeadNeckRegion):
        return region
    value = parse_region(region) if isinstance(region, str) else AUTO if region is None else tuple(region)
    if value == AUTO:
        return find_head_neck(study)
    if value == WHOLE:
        return whole_field(study, "the whole field was asked for", "given")
    return box_region(study, value)  # type: ignore[arg-type]
