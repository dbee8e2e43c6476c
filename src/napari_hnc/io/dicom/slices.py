"""A DICOM image series as a stack of slices: order, geometry, rescaled pixel values.

Geometry (DICOM PS3.3 C.7.6.2): ImageOrientationPatient holds the row cosine
``r`` (direction of increasing column index) and the column cosine ``c``;
PixelSpacing is ``[spacing between rows, spacing between columns]``. Slices are
ordered by the projection of ImagePositionPatient on the normal ``r x c``. The
array is indexed ``[column, row, slice]`` so that its affine, built in patient
LPS millimetres and then turned into RAS by :func:`napari_hnc.geometry.affine_from_lps`,
is the one dcm2niix / ITK write for the same series.

Pixel values are ``RescaleSlope * stored + RescaleIntercept`` with the slope and
intercept of each slice (GE PET rescales every slice differently).
"""

from __future__ import annotations

import logging
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import HncWarning, ImageFileError, StudyError
from ...geometry import affine_from_lps
from .series import DicomSeries

log = logging.getLogger(__name__)

#: Slice positions further than this fraction of the slice spacing from a regular grid are irregular.
IRREGULAR_SPACING_TOLERANCE = 0.05
#: Direction cosines that differ by more than this between slices make an inconsistent series.
ORIENTATION_TOLERANCE = 1e-4


@dataclass(eq=False)
class Slices:
    """Sorted slices of one series: headers, files, rescaled values ``[col, row, slice]``, positions."""

    headers: list
    files: list[Path]
    values: np.ndarray
    affine_lps: np.ndarray  # voxel -> LPS mm, with the mean slice step
    positions: np.ndarray  # (n, 3) ImagePositionPatient of each slice, LPS mm


def _floats(header, keyword: str, count: int, where: Path) -> np.ndarray:
    value = header.get(keyword)
    try:
        out = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        out = np.empty(0)
    if out.size != count:
        raise ImageFileError(
            where, f"has no usable {keyword} (found {value!r})",
            "The series cannot be placed in space; export it again with its geometry tags",
        )
    return out


def slice_geometry(headers: Sequence, files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row cosine, column cosine, pixel spacing and the position of each slice (checked consistent)."""
    first = headers[0]
    iop = _floats(first, "ImageOrientationPatient", 6, files[0])
    spacing = _floats(first, "PixelSpacing", 2, files[0])
    if not np.all(spacing > 0):
        raise ImageFileError(files[0], f"has a PixelSpacing of {spacing.tolist()} mm; pixels need a size above 0",
                             "Export the series again with its geometry tags")
    rows, cols = int(first.get("Rows", 0)), int(first.get("Columns", 0))
    positions = np.array([_floats(h, "ImagePositionPatient", 3, f) for h, f in zip(headers, files)])
    for header, file in zip(headers[1:], files[1:]):
        same_iop = np.allclose(_floats(header, "ImageOrientationPatient", 6, file), iop, atol=ORIENTATION_TOLERANCE)
        same_grid = (int(header.get("Rows", 0)), int(header.get("Columns", 0))) == (rows, cols) and np.allclose(
            _floats(header, "PixelSpacing", 2, file), spacing, rtol=1e-4
        )
        if not (same_iop and same_grid):
            raise ImageFileError(
                file, "has another orientation, pixel spacing or size than the first slice of its series",
                "The series mixes several images (a localiser or another reconstruction); "
                "keep only the slices of one volume in the folder",
            )
    return iop[:3], iop[3:], spacing, positions


def sort_slices(series: DicomSeries) -> tuple[list, list[Path], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Headers and files sorted along the slice normal, row and column cosines, pixel spacing, positions."""
    if series.first.get("NumberOfFrames") not in (None, "", 1, "1"):
        raise ImageFileError(
            series.files[0], "is a multi-frame (enhanced) image",
            "napari-hnc reads classic single-frame CT/PET series; export the series as one file per slice",
        )
    if len(series.files) < 2:
        raise StudyError(
            f"the {series.describe()} has a single slice; a CT or PET volume needs the whole series. "
            "Copy all the slices of the series into the folder (or pass the folder, not one file)"
        )
    _refuse_copies(series)
    row, col, spacing, positions = slice_geometry(series.headers, series.files)
    normal = np.cross(row, col)
    order = np.argsort(positions @ normal, kind="stable")
    distance = np.diff((positions @ normal)[order])
    if np.any(np.abs(distance) < 1e-3):
        dup = int(np.sum(np.abs(distance) < 1e-3))
        raise StudyError(
            f"the {series.describe()} has {dup} slice(s) at the same position as another; it probably holds "
            "several time frames, gates or reconstructions. Put one volume's slices in a folder of its own"
        )
    headers = [series.headers[i] for i in order]
    files = [series.files[i] for i in order]
    return headers, files, row, col, spacing, positions[order]


def _refuse_copies(series: DicomSeries) -> None:
    """Files with the same SOPInstanceUID are copies of one slice: the same series copied into two folders."""
    seen: dict[str, Path] = {}
    copies: list[tuple[Path, Path]] = []
    for header, file in zip(series.headers, series.files):
        uid = str(header.get("SOPInstanceUID", "") or "")
        if uid and uid in seen:
            copies.append((seen[uid], file))
        seen.setdefault(uid, file)
    if copies:
        folders = sorted({str(p.parent) for pair in copies for p in pair})
        raise StudyError(
            f"the {series.describe()} is there twice: {len(copies)} file(s) are copies of others (the same "
            f"SOPInstanceUID), in {' and '.join(folders[:4])}{' and more' if len(folders) > 4 else ''}. The same "
            "series was copied into several folders; keep one copy, or open one of the folders"
        )


_NATIVE_LE = {"1.2.840.10008.1.2.1": True, "1.2.840.10008.1.2": False}  # explicit / implicit VR little endian
_PIXEL_TAG = b"\xe0\x7f\x10\x00"


def _scale(ds) -> tuple[float, float]:
    return float(ds.get("RescaleSlope", 1.0) or 1.0), float(ds.get("RescaleIntercept", 0.0) or 0.0)


def _native_pixels(file: Path, header) -> np.ndarray | None:
    """Pixel data of an uncompressed little-endian slice read straight from the end of the file.

    Used only when the bytes before it are exactly the (7FE0,0010) element header of
    the expected length (Pixel Data last in the file, as scanners write it); else None.
    """
    meta = getattr(header, "file_meta", None)
    explicit = _NATIVE_LE.get(str(getattr(meta, "TransferSyntaxUID", "")))
    bits = int(header.get("BitsAllocated", 0) or 0)
    if explicit is None or bits not in (8, 16, 32) or int(header.get("BitsStored", bits) or bits) != bits:
        return None
    if int(header.get("SamplesPerPixel", 1) or 1) != 1:
        return None
    rows, cols = int(header.get("Rows", 0)), int(header.get("Columns", 0))
    nbytes = rows * cols * bits // 8
    lead = 12 if explicit else 8
    try:
        with open(file, "rb") as handle:
            handle.seek(0, 2)
            offset = handle.tell() - nbytes
            if offset < lead:
                return None
            handle.seek(offset - lead)
            block = handle.read(lead + nbytes)
    except OSError:
        return None
    length = struct.pack("<I", nbytes)
    head = block[:lead]
    ok = head == _PIXEL_TAG + length if not explicit else (
        head[:4] == _PIXEL_TAG and head[4:6] in (b"OW", b"OB") and head[6:8] == b"\x00\x00" and head[8:] == length)
    if not ok:
        return None
    kind = "i" if int(header.get("PixelRepresentation", 0) or 0) == 1 else "u"
    return np.frombuffer(block[lead:], dtype=f"<{kind}{bits // 8}").reshape(rows, cols)


def _pixel_array(file: Path, header=None) -> tuple[np.ndarray, float, float]:
    if header is not None:
        fast = _native_pixels(file, header)
        if fast is not None:
            return (fast, *_scale(header))
    import pydicom

    try:
        ds = pydicom.dcmread(str(file))
        array = ds.pixel_array
    except (OSError, ValueError, RuntimeError, NotImplementedError, AttributeError) as exc:
        raise ImageFileError(
            file, f"has pixel data pydicom cannot decode ({type(exc).__name__}: {str(exc).splitlines()[0]})",
            "If it is compressed (JPEG, JPEG 2000, RLE), install pylibjpeg and pylibjpeg-openjpeg "
            "(pip install pylibjpeg pylibjpeg-openjpeg) or decompress it first (e.g. gdcmconv --raw)",
        ) from exc
    if array.ndim != 2:
        raise ImageFileError(file, f"holds pixel data of shape {array.shape}, not one 2D slice", "Pass a CT or PET series")
    return (array, *_scale(ds))


def read_slices(series: DicomSeries, *, integer_ok: bool = False) -> Slices:
    """Read and rescale the pixel data of a series (each file read once).

    With ``integer_ok`` (CT), whole-number slopes and intercepts give an int16
    array when the values fit; otherwise the values are float32.
    """
    headers, files, row, col, spacing, positions = sort_slices(series)
    raw, scale = [], []
    for file, header in zip(files, headers):
        array, slope, intercept = _pixel_array(file, header)
        raw.append(array)
        scale.append((slope, intercept))
    values = _rescale(raw, np.array(scale), integer_ok)
    step = (positions[-1] - positions[0]) / (len(files) - 1)
    affine = np.eye(4)
    affine[:3, 0] = row * spacing[1]
    affine[:3, 1] = col * spacing[0]
    affine[:3, 2] = step
    affine[:3, 3] = positions[0]
    return Slices(headers, files, values, affine, positions)


def _rescale(raw: list[np.ndarray], scale: np.ndarray, integer_ok: bool) -> np.ndarray:
    slopes, intercepts = scale[:, 0], scale[:, 1]
    shape = raw[0].shape[::-1] + (len(raw),)
    whole = np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts))
    if integer_ok and whole:
        lo = min(float(r.min()) * s if s >= 0 else float(r.max()) * s for r, s in zip(raw, slopes)) + intercepts.min()
        hi = max(float(r.max()) * s if s >= 0 else float(r.min()) * s for r, s in zip(raw, slopes)) + intercepts.max()
        if -32768 <= lo and hi <= 32767:
            out = np.empty(shape, np.int16)
            for k, (r, s, b) in enumerate(zip(raw, slopes, intercepts)):
                out[:, :, k] = (r.T.astype(np.int32) * int(s) + int(b)).astype(np.int16)
            return out
    out = np.empty(shape, np.float32)
    for k, (r, s, b) in enumerate(zip(raw, slopes, intercepts)):
        out[:, :, k] = r.T.astype(np.float64) * s + b
    return out


def regular_volume(slices: Slices, values: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, RAS affine)`` on a regular slice grid, resampled (linear, with a warning) if need be.

    Slices whose positions lie off the regular grid spanning the first and last
    slice by more than :data:`IRREGULAR_SPACING_TOLERANCE` of the spacing (an
    irregular series, or missing slices) are interpolated onto a grid with the
    median slice spacing.
    """
    positions = slices.positions
    n = len(positions)
    step = slices.affine_lps[:3, 2]
    spacing = float(np.linalg.norm(step))
    along = (positions - positions[0]) @ (step / spacing)
    residual = np.abs(along - spacing * np.arange(n))
    if residual.max() <= max(IRREGULAR_SPACING_TOLERANCE * spacing, 1e-3):
        return values, affine_from_lps(slices.affine_lps)
    gaps = np.diff(along)
    target_spacing = float(np.median(gaps))
    count = int(np.floor(along[-1] / target_spacing + 1e-6)) + 1
    targets = np.arange(count) * target_spacing
    warnings.warn(
        f"{where}: slice spacing is irregular ({gaps.min():.3g} to {gaps.max():.3g} mm; missing slices?); "
        f"the {n} slices were resampled (linear) onto {count} slices {target_spacing:.4g} mm apart. "
        "Check the series is complete",
        HncWarning,
        stacklevel=4,
    )
    out = _interpolate_slices(values, along, targets)
    affine = slices.affine_lps.copy()
    affine[:3, 2] = step / spacing * target_spacing
    return out, affine_from_lps(affine)


def _interpolate_slices(values: np.ndarray, along: np.ndarray, targets: np.ndarray) -> np.ndarray:
    upper = np.clip(np.searchsorted(along, targets, side="right"), 1, len(along) - 1)
    lower = upper - 1
    weight = np.clip((targets - along[lower]) / (along[upper] - along[lower]), 0.0, 1.0).astype(np.float32)
    src = values.astype(np.float32, copy=False)
    return src[:, :, lower] * (1.0 - weight) + src[:, :, upper] * weight
