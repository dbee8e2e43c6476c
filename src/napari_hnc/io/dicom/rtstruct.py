"""RTSTRUCT contours rasterised onto an image grid.

Contour points are patient LPS millimetres (DICOM PS3.3 C.8.8.6). Each
``CLOSED_PLANAR`` contour must lie in one slice of the grid (it is mapped
through the grid's affine, so any grid works: the CT, the PET, a NIfTI); the
voxels whose centres lie inside it are set. Contours of one ROI on the same
slice are combined by XOR (even-odd), so a contour inside another is a hole.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import HncWarning, ImageFileError
from ...geometry import Volume, lps_to_ras
from .names import RoiMap, classify_rois

log = logging.getLogger(__name__)

#: A contour whose points spread over more than this many slices is not in a slice plane.
PLANE_TOLERANCE_VOXELS = 0.5
FILLED_TYPES = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")


@dataclass(frozen=True, eq=False)
class Roi:
    """One structure: number, name and its closed contours (each ``(n, 3)`` LPS mm)."""

    number: int
    name: str
    contours: tuple[np.ndarray, ...]


def _dataset(source):
    if isinstance(source, (str, Path)):
        import pydicom

        try:
            return pydicom.dcmread(str(source))
        except Exception as exc:  # pydicom raises many types for broken files
            raise ImageFileError(source, f"is not a readable DICOM file ({type(exc).__name__})", "Check the file") from exc
    return source


def contour_points(contour) -> np.ndarray:
    """ContourData as an ``(n, 3)`` array, parsed from the raw bytes when possible (much faster)."""
    if (0x3006, 0x0050) not in contour:
        return np.empty((0, 3))
    value = contour.get_item((0x3006, 0x0050)).value
    if isinstance(value, bytes):
        text = value.decode("ascii", "replace").strip(" \x00")
        values = [float(v) for v in text.split("\\") if v.strip()] if text else []
    else:
        values = [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__len__") else [value])]
    return np.asarray(values, dtype=float).reshape(-1, 3)


def read_rtstruct(source) -> list[Roi]:
    """The ROIs of an RTSTRUCT (a path or a pydicom Dataset), with their closed contours.

    Examples
    --------
    With a DICOM export on disk::

        [roi.name for roi in read_rtstruct("STS_001/CT/dicom/mask/RS.dcm")]   # ['GTV_Mass_CT']
    """
    ds = _dataset(source)
    if str(ds.get("Modality", "")).upper() != "RTSTRUCT":
        raise ImageFileError(getattr(ds, "filename", None), "is not an RTSTRUCT", "Pass an RT Structure Set file")
    names = {int(r.ROINumber): str(r.get("ROIName", "") or f"ROI {r.ROINumber}") for r in ds.get("StructureSetROISequence", [])}
    rois = []
    for item in ds.get("ROIContourSequence", []):
        number = int(item.ReferencedROINumber)
        contours, skipped = [], set()
        for contour in item.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            points = contour_points(contour)
            if kind in FILLED_TYPES and len(points) >= 3:
                contours.append(points)
            else:
                skipped.add(kind)
        if skipped:
            log.info("ROI %s: %s contours are not areas and were skipped", names.get(number, number), sorted(skipped))
        rois.append(Roi(number, names.get(number, f"ROI {number}"), tuple(contours)))
    return rois


def rasterise_contours(contours, grid: Volume, *, where: str = "ROI") -> np.ndarray:
    """Boolean mask on ``grid`` of closed LPS contours, XOR-combined per slice."""
    from skimage.draw import polygon

    mask = np.zeros(grid.shape, dtype=bool)
    off_plane = outside = 0
    for points in contours:
        voxels = grid.world_to_voxel(lps_to_ras(points))
        spread = voxels.max(axis=0) - voxels.min(axis=0)
        axis = int(np.argmin(spread))
        if spread[axis] > PLANE_TOLERANCE_VOXELS:
            off_plane += 1
            continue
        k = int(np.rint(voxels[:, axis].mean()))
        if not 0 <= k < grid.shape[axis]:
            outside += 1
            continue
        a, b = [i for i in range(3) if i != axis]
        plane = np.moveaxis(mask, axis, 0)[k]
        rr, cc = polygon(voxels[:, a], voxels[:, b], shape=plane.shape)
        filled = np.zeros(plane.shape, dtype=bool)
        filled[rr, cc] = True
        plane ^= filled
    if off_plane:
        warnings.warn(
            f"{where}: {off_plane} contour(s) are not parallel to the image slices and were skipped; "
            "rasterise the structure on the image it was drawn on",
            HncWarning,
            stacklevel=3,
        )
    if outside:
        log.info("%s: %d contour(s) lie outside the image grid", where, outside)
    return mask


def rasterise_rtstruct(source, grid: Volume, roi_map: RoiMap | None = None) -> Volume:
    """A uint8 labels Volume on ``grid`` from an RTSTRUCT, ROI names mapped to classes.

    Where ROIs of different classes overlap, the higher class value (node) wins.

    Parameters
    ----------
    source : str, Path or pydicom.Dataset
        The RTSTRUCT.
    grid : Volume
        The image to rasterise onto (usually the CT).
    roi_map : dict, optional
        ``{name or regular expression: "primary" | "node" | None}``, tried before
        :data:`~napari_hnc.io.dicom.names.DEFAULT_ROI_CLASSES`.

    Examples
    --------
    A 6 x 6 mm square with a 2 x 2 mm hole on a 1 mm grid (contours in LPS mm):

    >>> from pydicom import Dataset
    >>> def contour(x0, x1):
    ...     c = Dataset(); c.ContourGeometricType = "CLOSED_PLANAR"
    ...     c.ContourData = [x0, x0, 0, x1, x0, 0, x1, x1, 0, x0, x1, 0]
    ...     return c
    >>> ds = Dataset(); ds.Modality = "RTSTRUCT"
    >>> roi = Dataset(); roi.ROINumber = 1; roi.ROIName = "GTVp"; ds.StructureSetROISequence = [roi]
    >>> item = Dataset(); item.ReferencedROINumber = 1
    >>> item.ContourSequence = [contour(0.5, 6.5), contour(2.5, 4.5)]; ds.ROIContourSequence = [item]
    >>> grid = Volume(np.zeros((10, 10, 1)), np.diag([-1.0, -1.0, 1.0, 1.0]))  # LPS voxels
    >>> int(rasterise_rtstruct(ds, grid).array.sum())   # 36 - 4
    32
    """
    ds = _dataset(source)
    where = Path(str(getattr(ds, "filename", "") or "RTSTRUCT")).name
    rois = read_rtstruct(ds)
    classes = classify_rois([r.name for r in rois], roi_map, where=where)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    for roi in sorted((r for r in rois if r.name in classes), key=lambda r: classes[r.name]):
        if not roi.contours:
            log.info("%s: ROI %r has no closed contours", where, roi.name)
            continue
        labels[rasterise_contours(roi.contours, grid, where=f"{where} ROI {roi.name!r}")] = classes[roi.name]
    meta = {"role": "labels", "path": None, "source_path": str(getattr(ds, "filename", "") or ""),
            "rois": {r.name: classes.get(r.name, 0) for r in rois}}
    return Volume(labels, grid.affine.copy(), meta)
