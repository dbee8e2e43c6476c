"""DICOM SEG (BINARY, or FRACTIONAL thresholded at one half) to labels on an image grid.

Each frame is placed by its ``PerFrameFunctionalGroupsSequence`` item:
``PlanePositionSequence`` (its ImagePositionPatient) and
``SegmentIdentificationSequence`` (its segment); orientation and pixel spacing
come from the per-frame or shared functional groups (DICOM PS3.3 C.8.20,
A.51). The frames build a labels Volume on the SEG's own grid, which is then
put onto the image grid by nearest neighbour (exact when the SEG was made on
that grid, the usual case).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ImageFileError
from ...geometry import Volume, affine_from_lps, resample_to
from .names import RoiMap, classify_rois
from .rtstruct import _dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FrameGeometry:
    row: np.ndarray
    col: np.ndarray
    spacing: np.ndarray  # [between rows, between columns]
    positions: np.ndarray  # (frames, 3) LPS
    slice_spacing: float | None


def _group(ds, index: int, name: str):
    """The functional group ``name`` of frame ``index`` (per-frame first, then shared)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and index < len(per_frame) and name in per_frame[index]:
        return per_frame[index].get(name)[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and name in shared[0]:
        return shared[0].get(name)[0]
    return None


def _geometry(ds, frames: int, where) -> _FrameGeometry:
    orientation = _group(ds, 0, "PlaneOrientationSequence")
    measures = _group(ds, 0, "PixelMeasuresSequence")
    if orientation is None or measures is None:
        raise ImageFileError(where, "has no plane orientation or pixel spacing", "The SEG cannot be placed in space")
    iop = np.array([float(v) for v in orientation.ImageOrientationPatient])
    positions = []
    for i in range(frames):
        plane = _group(ds, i, "PlanePositionSequence")
        if plane is None:
            raise ImageFileError(where, f"frame {i + 1} has no PlanePositionSequence", "The SEG cannot be placed in space")
        positions.append([float(v) for v in plane.ImagePositionPatient])
    between = measures.get("SpacingBetweenSlices") or measures.get("SliceThickness")
    return _FrameGeometry(iop[:3], iop[3:], np.array([float(v) for v in measures.PixelSpacing]),
                          np.array(positions), float(between) if between else None)


def _segment_numbers(ds, frames: int) -> np.ndarray:
    numbers = []
    for i in range(frames):
        ident = _group(ds, i, "SegmentIdentificationSequence")
        numbers.append(int(ident.ReferencedSegmentNumber) if ident is not None else 1)
    return np.array(numbers)


def _frames(ds, where) -> np.ndarray:
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for undecodable data
        raise ImageFileError(where, f"has pixel data pydicom cannot decode ({type(exc).__name__})", "Check the file") from exc
    pixels = pixels[None] if pixels.ndim == 2 else pixels
    if str(ds.get("SegmentationType", "BINARY")).upper() == "FRACTIONAL":
        top = float(ds.get("MaximumFractionalValue", 255) or 255)
        return pixels >= top / 2.0
    return pixels > 0


def _seg_grid(geo: _FrameGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Slice index of each frame, and the LPS affine of the SEG's own grid."""
    normal = np.cross(geo.row, geo.col)
    depth = geo.positions @ normal
    levels = np.unique(np.round(depth, 3))
    gaps = np.diff(levels)
    step = geo.slice_spacing or (float(gaps.min()) if gaps.size else 1.0)
    if gaps.size:
        step = min(step, float(gaps.min()))
    index = np.rint((depth - depth.min()) / step).astype(int)
    first = geo.positions[int(np.argmin(depth))]
    affine = np.eye(4)
    affine[:3, 0] = geo.row * geo.spacing[1]
    affine[:3, 1] = geo.col * geo.spacing[0]
    affine[:3, 2] = normal * step
    affine[:3, 3] = first
    return index, affine


def seg_labels(source, grid: Volume, roi_map: RoiMap | None = None) -> Volume:
    """A uint8 labels Volume on ``grid`` from a DICOM SEG, segment labels mapped to classes.

    Where segments of different classes overlap, the higher class value (node) wins.

    Examples
    --------
    With a SEG file and a study on disk::

        labels = seg_labels("seg.dcm", study.ct, {"Lesion 1": "primary"})
    """
    ds = _dataset(source)
    where = Path(str(getattr(ds, "filename", "") or "SEG"))
    if str(ds.get("Modality", "")).upper() != "SEG":
        raise ImageFileError(where, "is not a DICOM SEG", "Pass a segmentation (SEG) file")
    masks = _frames(ds, where)
    geo = _geometry(ds, len(masks), where)
    names = {int(s.SegmentNumber): str(s.get("SegmentLabel", "") or f"segment {s.SegmentNumber}")
             for s in ds.get("SegmentSequence", [])}
    classes = classify_rois(list(names.values()), roi_map, where=where.name)
    numbers = _segment_numbers(ds, len(masks))
    index, affine = _seg_grid(geo)
    labels = np.zeros((masks.shape[2], masks.shape[1], int(index.max()) + 1), dtype=np.uint8)
    for frame in np.argsort([classes.get(names.get(n, ""), 0) for n in numbers], kind="stable"):
        value = classes.get(names.get(int(numbers[frame]), ""), 0)
        if value:
            plane = labels[:, :, index[frame]]
            plane[masks[frame].T] = value
    own = Volume(labels, affine_from_lps(affine), {"role": "labels"})
    out = resample_to(own, grid, "nearest")
    out.metadata.update(role="labels", path=None, source_path=str(where), rois={n: classes.get(n, 0) for n in names.values()})
    return Volume(np.asarray(out.array, dtype=np.uint8), grid.affine.copy(), out.metadata)
