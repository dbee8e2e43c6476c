"""Geometry of image volumes: the one module that knows about axis order.

Conventions
-----------
* **World** coordinates are millimetres in the NIfTI RAS+ space of the files'
  affines: +x points to the patient's Right, +y Anterior, +z Superior.
  DICOM's LPS is converted here and nowhere else.
* A :class:`Volume` is an array plus the 4x4 affine that maps its voxel indices
  ``(i, j, k)`` to world millimetres. The array keeps the file's voxel order.
* **napari world** coordinates are the same millimetres, ordered and signed for a
  radiological display: ``napari = -ras[::-1]``, that is axis 0 points Inferior,
  axis 1 Posterior (down the screen, so anterior is up) and axis 2 towards the
  patient's Left (right on the screen, so the patient's right is on screen left).
  This frame is right-handed in napari's sense, so 3D renderings are not mirrored.
  Layer data are the file arrays re-oriented (exactly, by flips and transposes) to
  that order, so an axis-aligned image gets a diagonal, positive napari affine.

Examples
--------
>>> import numpy as np
>>> vol = Volume(np.zeros((4, 5, 6)), np.diag([-2.0, -2.0, 3.0, 1.0]))  # an LPS file
>>> vol.orientation
('L', 'P', 'S')
>>> data, affine, geo = to_napari(vol)
>>> data.shape, np.diag(affine)[:3].tolist()
((6, 5, 4), [3.0, 2.0, 2.0])
>>> bool(np.allclose(geo.to_file(data), vol.array))
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import nibabel.orientations as nio
import numpy as np

from .errors import ClickError, GeometryError

log = logging.getLogger(__name__)

#: Axis codes of layer data in napari: Inferior, Posterior, Left (see module docstring).
DISPLAY_AXCODES: tuple[str, str, str] = ("I", "P", "L")
#: Homogeneous matrix taking a RAS point to a napari world point (and back: it is its own inverse).
RAS_TO_NAPARI = np.array(
    [[0.0, 0.0, -1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
NAPARI_TO_RAS = RAS_TO_NAPARI
#: Flips between RAS and LPS (its own inverse).
_RAS_LPS = np.diag([-1.0, -1.0, 1.0])

#: Angles (degrees) and shear below these are treated as axis-aligned / orthogonal.
OBLIQUE_TOLERANCE_DEG = 0.01
SHEAR_TOLERANCE = 1e-4

Interpolation = Literal["linear", "nearest", "bspline"]


# --------------------------------------------------------------------------- helpers


def _as_points(points: Any) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.shape[-1] != 3:
        raise GeometryError(f"points must have 3 coordinates in their last axis, got shape {arr.shape}")
    return arr


def apply_affine(affine: np.ndarray, points: Any) -> np.ndarray:
    """Apply a 4x4 affine to points of shape ``(..., 3)``."""
    pts = _as_points(points)
    return pts @ affine[:3, :3].T + affine[:3, 3]


def affine_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel size (mm) along each voxel axis: the norms of the affine's columns."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def shear_of(affine: np.ndarray) -> float:
    """Largest deviation of the direction cosines from orthonormality (0 for a rigid grid)."""
    rot = np.asarray(affine)[:3, :3] / affine_spacing(affine)
    return float(np.abs(rot.T @ rot - np.eye(3)).max())


def obliquity_of(affine: np.ndarray) -> float:
    """Largest angle (degrees) between a voxel axis and the world axis closest to it."""
    rot = np.asarray(affine)[:3, :3] / affine_spacing(affine)
    cosines = np.clip(np.abs(rot).max(axis=0), -1.0, 1.0)
    return float(np.degrees(np.arccos(cosines)).max())


def lps_to_ras(points: Any) -> np.ndarray:
    """DICOM patient LPS millimetres ``(..., 3)`` to world RAS millimetres (and back: it is its own inverse).

    >>> lps_to_ras([10.0, -20.0, 5.0]).tolist()
    [-10.0, 20.0, 5.0]
    """
    return _as_points(points) * np.array([-1.0, -1.0, 1.0])


def affine_from_lps(affine_lps: Any) -> np.ndarray:
    """A voxel-to-world affine in DICOM LPS millimetres turned into the RAS one a :class:`Volume` holds.

    >>> affine_from_lps(np.diag([2.0, 2.0, 3.0, 1.0]))[:3, :3].diagonal().tolist()
    [-2.0, -2.0, 3.0]
    """
    out = np.array(affine_lps, dtype=np.float64)
    out[:3, :] = _RAS_LPS @ out[:3, :]
    return out


def ras_to_napari(points: Any) -> np.ndarray:
    """World RAS millimetres ``(..., 3)`` to napari world coordinates."""
    return -_as_points(points)[..., ::-1]


def napari_to_ras(points: Any) -> np.ndarray:
    """napari world coordinates ``(..., 3)`` to world RAS millimetres."""
    return -_as_points(points)[..., ::-1]


def orientation_transform(affine: np.ndarray, axcodes: Sequence[str]) -> np.ndarray:
    """nibabel orientation transform from an affine's voxel axes to ``axcodes``."""
    start = nio.io_orientation(affine)
    return nio.ornt_transform(start, nio.axcodes2ornt(tuple(axcodes)))


# --------------------------------------------------------------------------- Volume


@dataclass(eq=False)
class Volume:
    """A 3D array and the affine mapping its voxel indices to world RAS millimetres.

    Parameters
    ----------
    array : numpy.ndarray
        Voxel values, indexed ``array[i, j, k]`` in the voxel order of ``affine``.
    affine : array-like, shape (4, 4)
        Voxel index to world (RAS+, mm) transform.
    metadata : dict
        Free-form provenance: ``path``, ``header``, ``role`` ("ct", "pet", "labels"),
        ``units``...

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((10, 10, 10)), np.diag([2.0, 2.0, 2.0, 1.0]))
    >>> v.voxel_to_world([1, 2, 3]).tolist()
    [2.0, 4.0, 6.0]
    >>> v.world_to_index([2.1, 3.9, 6.0])
    (1, 2, 3)
    """

    array: np.ndarray
    affine: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.array(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise GeometryError(f"a Volume affine must be 4x4, got shape {self.affine.shape}")
        if not np.all(np.isfinite(self.affine)) or abs(np.linalg.det(self.affine[:3, :3])) < 1e-12:
            source = self.metadata.get("path") if isinstance(self.metadata, dict) else None
            raise GeometryError(
                f"{source + ': ' if source else ''}the affine is singular or not finite (a voxel size of zero?); "
                "the file's header has no usable voxel-to-world transform (check qform/sform)"
            )
        if np.ndim(self.array) != 3:
            raise GeometryError(f"a Volume holds a 3D array, got shape {np.shape(self.array)}")

    # ----------------------------------------------------------------- properties
    def __repr__(self) -> str:
        role = self.metadata.get("role", "")
        return (
            f"Volume({role + ', ' if role else ''}shape={self.shape}, dtype={self.array.dtype}, "
            f"spacing={tuple(np.round(self.spacing, 3))}, orientation={''.join(self.orientation)})"
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along each array axis."""
        return affine_spacing(self.affine)

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (cm³)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    @property
    def orientation(self) -> tuple[str, ...]:
        """Closest anatomical axis codes, e.g. ``('L', 'P', 'S')``."""
        return tuple(nio.aff2axcodes(self.affine))

    @property
    def obliquity_deg(self) -> float:
        return obliquity_of(self.affine)

    @property
    def is_oblique(self) -> bool:
        return self.obliquity_deg > OBLIQUE_TOLERANCE_DEG

    @property
    def is_sheared(self) -> bool:
        return shear_of(self.affine) > SHEAR_TOLERANCE

    # ----------------------------------------------------------------- coordinates
    def voxel_to_world(self, ijk: Any) -> np.ndarray:
        """Voxel indices ``(..., 3)`` (may be fractional) to world RAS mm."""
        return apply_affine(self.affine, ijk)

    def world_to_voxel(self, xyz: Any) -> np.ndarray:
        """World RAS mm ``(..., 3)`` to fractional voxel indices."""
        return apply_affine(np.linalg.inv(self.affine), xyz)

    def contains_index(self, ijk: Any) -> bool:
        idx = np.asarray(ijk)
        return bool(np.all(idx >= 0) and np.all(idx < np.asarray(self.shape)))

    def world_to_index(self, xyz: Any, *, what: str = "point") -> tuple[int, int, int]:
        """Nearest voxel index of one world point; :class:`ClickError` if it lies outside."""
        ijk = np.rint(self.world_to_voxel(xyz)).astype(int)
        if ijk.shape != (3,):
            raise GeometryError("world_to_index takes one point of 3 coordinates")
        if not self.contains_index(ijk):
            lo, hi = self.world_bounds()
            raise ClickError(
                f"the {what} at world RAS {np.round(_as_points(xyz), 1).tolist()} mm lies outside the "
                f"volume (voxel {ijk.tolist()} of shape {list(self.shape)}; the volume spans "
                f"{np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm). "
                "Click inside the image, or check that the coordinates are RAS millimetres"
            )
        return tuple(int(v) for v in ijk)  # type: ignore[return-value]

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned world bounding box (min corner, max corner) of the voxel centres."""
        corners = np.array(np.meshgrid(*[[0, s - 1] for s in self.shape], indexing="ij")).reshape(3, -1).T
        world = self.voxel_to_world(corners)
        return world.min(axis=0), world.max(axis=0)

    def center_world(self) -> np.ndarray:
        return self.voxel_to_world((np.asarray(self.shape) - 1) / 2.0)

    # ----------------------------------------------------------------- derived volumes
    def with_array(self, array: np.ndarray, **metadata: Any) -> "Volume":
        """A Volume on the same grid holding ``array``; ``metadata`` updates a copy of ours."""
        if tuple(np.shape(array)) != self.shape:
            raise GeometryError(f"array of shape {np.shape(array)} does not fit a grid of shape {self.shape}")
        return Volume(array, self.affine.copy(), {**self.metadata, **metadata})

    def same_grid(self, other: "Volume", atol: float = 1e-3) -> bool:
        """True when both Volumes have the same shape and (within ``atol`` mm) the same affine."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol))

    def crop(self, slices: Sequence[slice]) -> "Volume":
        """The sub-volume ``array[slices]`` (a view) with its affine moved to match."""
        norm = tuple(slice(*s.indices(n)) for s, n in zip(slices, self.shape))
        if any(s.step != 1 for s in norm):
            raise GeometryError("crop takes slices with step 1")
        start = np.array([s.start for s in norm], dtype=float)
        affine = self.affine.copy()
        affine[:3, 3] = self.voxel_to_world(start)
        return Volume(self.array[norm], affine, dict(self.metadata))

    def reoriented(self, axcodes: Sequence[str] = ("R", "A", "S")) -> "Volume":
        """The same voxels re-ordered (flips and transposes only, a view) to ``axcodes``."""
        transform = orientation_transform(self.affine, axcodes)
        array = nio.apply_orientation(self.array, transform)
        affine = self.affine @ nio.inv_ornt_aff(transform, self.shape)
        return Volume(array, affine, dict(self.metadata))

    # ----------------------------------------------------------------- SimpleITK
    def to_sitk(self):
        """This Volume as a SimpleITK image (LPS physical space)."""
        import SimpleITK as sitk

        if self.is_sheared:
            raise GeometryError(
                "a sheared grid cannot be expressed as a SimpleITK image; "
                "resample it first with Volume.axis_aligned()"
            )
        array = self.array
        if array.dtype == bool:
            array = array.astype(np.uint8)
        image = sitk.GetImageFromArray(np.ascontiguousarray(array.T))
        spacing = self.spacing
        direction = _RAS_LPS @ (self.affine[:3, :3] / spacing)
        image.SetSpacing([float(s) for s in spacing])
        image.SetDirection([float(v) for v in direction.ravel()])
        image.SetOrigin([float(v) for v in _RAS_LPS @ self.affine[:3, 3]])
        return image

    @classmethod
    def from_sitk(cls, image, metadata: dict[str, Any] | None = None) -> "Volume":
        """A Volume from a 3D SimpleITK image (its array copied)."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise GeometryError(f"expected a 3D SimpleITK image, got {image.GetDimension()}D")
        array = sitk.GetArrayFromImage(image).T
        return cls(array, sitk_affine(image), dict(metadata or {}))

    def axis_aligned(self, interpolation: Interpolation = "linear") -> "Volume":
        """Resample onto the closest axis-aligned grid that covers this one (for oblique or sheared files)."""
        transform = orientation_transform(self.affine, ("R", "A", "S"))
        perm = transform[:, 0].astype(int)
        lo, hi = self.world_bounds()
        spacing = np.empty(3)
        spacing[perm] = self.spacing
        shape = np.maximum(np.rint((hi - lo) / spacing).astype(int) + 1, 1)
        affine = np.eye(4)
        affine[:3, :3] = np.diag(spacing)
        affine[:3, 3] = lo
        reference = Volume(np.zeros((1, 1, 1), np.uint8), affine)
        return resample_to(self, reference, interpolation, shape=tuple(shape))


def sitk_affine(image) -> np.ndarray:
    """The RAS voxel-to-world affine of a 3D SimpleITK image."""
    affine = np.eye(4)
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    affine[:3, :3] = _RAS_LPS @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = _RAS_LPS @ np.array(image.GetOrigin(), dtype=float)
    return affine


# --------------------------------------------------------------------------- resampling

_SITK_INTERPOLATORS = {"linear": "sitkLinear", "nearest": "sitkNearestNeighbor", "bspline": "sitkBSpline"}


def resample_to(
    volume: Volume,
    reference: Volume,
    interpolation: Interpolation = "linear",
    *,
    fill: float = 0.0,
    shape: tuple[int, int, int] | None = None,
) -> Volume:
    """Resample ``volume`` onto the grid of ``reference`` (world positions are kept).

    Parameters
    ----------
    volume : Volume
        Image or labels to resample.
    reference : Volume
        Grid to resample onto; only its affine (and shape, unless ``shape`` is given) is used.
    interpolation : {"linear", "nearest", "bspline"}
        "linear" for images, "nearest" for labels.
    fill : float
        Value outside ``volume``.

    Returns
    -------
    Volume
        On the reference grid; the dtype is kept for "nearest", float32 otherwise.
    """
    shape = tuple(shape or reference.shape)
    if shape == volume.shape and np.allclose(volume.affine, reference.affine, atol=1e-6):
        return Volume(volume.array, reference.affine.copy(), dict(volume.metadata))
    meta = {k: v for k, v in volume.metadata.items() if k not in ("header", "path", "instances")}  # grid-bound
    meta["resampled_from"] = volume.metadata.get("path")
    if volume.is_sheared or shear_of(reference.affine) > SHEAR_TOLERANCE:
        array = _resample_scipy(volume, reference.affine, shape, interpolation, fill)
        return Volume(array, reference.affine.copy(), meta)
    import SimpleITK as sitk

    src = volume.to_sitk()
    direction = _RAS_LPS @ (reference.affine[:3, :3] / affine_spacing(reference.affine))
    flt = sitk.ResampleImageFilter()
    flt.SetSize([int(s) for s in shape])
    flt.SetOutputSpacing([float(s) for s in affine_spacing(reference.affine)])
    flt.SetOutputDirection([float(v) for v in direction.ravel()])
    flt.SetOutputOrigin([float(v) for v in _RAS_LPS @ reference.affine[:3, 3]])
    flt.SetInterpolator(getattr(sitk, _SITK_INTERPOLATORS[interpolation]))
    flt.SetDefaultPixelValue(float(fill))
    if interpolation != "nearest" and src.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        src = sitk.Cast(src, sitk.sitkFloat32)
    out = flt.Execute(src)
    array = sitk.GetArrayFromImage(out).T
    return Volume(array, reference.affine.copy(), meta)


def _resample_scipy(volume: Volume, affine: np.ndarray, shape, interpolation: str, fill: float) -> np.ndarray:
    """Resampling for grids SimpleITK cannot express (sheared)."""
    from scipy import ndimage

    order = {"nearest": 0, "linear": 1, "bspline": 3}[interpolation]
    mapping = np.linalg.inv(volume.affine) @ affine
    src = volume.array if order == 0 else np.asarray(volume.array, dtype=np.float32)
    return ndimage.affine_transform(
        src, mapping[:3, :3], offset=mapping[:3, 3], output_shape=tuple(shape),
        order=order, mode="constant", cval=fill,
    )


# --------------------------------------------------------------------------- napari


@dataclass(frozen=True)
class LayerGeometry:
    """How a file's voxel array maps onto a napari layer (and back).

    The layer's data is the file array re-oriented to :data:`DISPLAY_AXCODES`
    with exact flips and transposes, so the mapping back is lossless.
    """

    file_shape: tuple[int, int, int]
    file_affine: np.ndarray
    transform: np.ndarray  # nibabel orientation transform, file axes -> display axes

    @classmethod
    def for_volume(cls, volume: Volume) -> "LayerGeometry":
        return cls(volume.shape, volume.affine.copy(), orientation_transform(volume.affine, DISPLAY_AXCODES))

    @property
    def display_shape(self) -> tuple[int, ...]:
        perm = self.transform[:, 0].astype(int)
        shape = [0, 0, 0]
        for axis, target in enumerate(perm):
            shape[target] = self.file_shape[axis]
        return tuple(shape)

    @property
    def display_affine(self) -> np.ndarray:
        """RAS affine of the display-ordered array."""
        return self.file_affine @ nio.inv_ornt_aff(self.transform, self.file_shape)

    @property
    def napari_affine(self) -> np.ndarray:
        """Data-to-world affine of the napari layer."""
        return RAS_TO_NAPARI @ self.display_affine

    def to_display(self, array: np.ndarray) -> np.ndarray:
        return nio.apply_orientation(array, self.transform)

    def to_file(self, display_array: np.ndarray) -> np.ndarray:
        inverse = nio.ornt_transform(nio.axcodes2ornt(DISPLAY_AXCODES), nio.io_orientation(self.file_affine))
        return nio.apply_orientation(display_array, inverse)

    def display_box_to_file(self, box: Sequence[slice]) -> tuple[slice, slice, slice]:
        """The file-order slices covering the same voxels as display-order ``box`` (step 1)."""
        out = []
        for axis, (target, flip) in enumerate(self.transform.astype(int)):
            start, stop, _ = box[target].indices(self.display_shape[target])
            n = self.file_shape[axis]
            out.append(slice(n - stop, n - start) if flip < 0 else slice(start, stop))
        return tuple(out)  # type: ignore[return-value]

    def file_box_to_display(self, box: Sequence[slice]) -> tuple[slice, slice, slice]:
        """The display-order slices covering the same voxels as file-order ``box`` (step 1)."""
        out: list[slice] = [slice(None)] * 3
        for axis, (target, flip) in enumerate(self.transform.astype(int)):
            start, stop, _ = box[axis].indices(self.file_shape[axis])
            n = self.file_shape[axis]
            out[target] = slice(n - stop, n - start) if flip < 0 else slice(start, stop)
        return tuple(out)  # type: ignore[return-value]

    def matches(self, data_shape: Sequence[int], napari_affine: np.ndarray, atol: float = 1e-4) -> bool:
        """True when a layer of this shape and data-to-world affine still sits on this grid."""
        return tuple(data_shape) == self.display_shape and bool(
            np.allclose(napari_affine, self.napari_affine, atol=atol)
        )

    def as_metadata(self) -> dict[str, Any]:
        return {"file_shape": list(self.file_shape), "file_affine": self.file_affine.tolist()}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> "LayerGeometry":
        affine = np.asarray(meta["file_affine"], dtype=float)
        return cls(tuple(int(s) for s in meta["file_shape"]), affine, orientation_transform(affine, DISPLAY_AXCODES))


def to_napari(volume: Volume) -> tuple[np.ndarray, np.ndarray, LayerGeometry]:
    """Layer data (a view), napari data-to-world affine and the geometry to map back."""
    geometry = LayerGeometry.for_volume(volume)
    return geometry.to_display(volume.array), geometry.napari_affine, geometry


def from_napari(
    data: np.ndarray,
    data_to_world: np.ndarray,
    geometry: LayerGeometry | None = None,
    metadata: dict[str, Any] | None = None,
) -> Volume:
    """A Volume from napari layer data and its full data-to-world affine.

    When ``geometry`` (from :func:`to_napari`) still describes the layer, the
    result has the original file's voxel order and affine exactly; otherwise
    (a layer made in napari, or moved) it has the display order and the affine
    the layer is shown with.
    """
    data_to_world = np.asarray(data_to_world, dtype=float)
    if geometry is not None and geometry.matches(np.shape(data), data_to_world):
        return Volume(geometry.to_file(data), geometry.file_affine.copy(), dict(metadata or {}))
    return Volume(data, NAPARI_TO_RAS @ data_to_world, dict(metadata or {}))
