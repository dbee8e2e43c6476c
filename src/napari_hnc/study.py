"""A PET/CT study (CT, PET in SUV, optional labels): :class:`Study` and :func:`load_study`.

Which files make a study (HECKTOR 2022/2021, autoPET, DICOM, explicit paths) is
decided in :mod:`napari_hnc.layouts`; its names are re-exported here.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np

from .conventions import unknown_classes
from .errors import GeometryError, HncWarning, StudyError
from .geometry import Volume, resample_to
from .io.dicom.files import is_dicom_path
from .io.nifti import as_label_array, read_nifti
from .io.suv_range import check_suv
from .layouts import (  # noqa: F401  (re-exported: the study API users know)
    IMAGE_FOLDERS,
    LABEL_FOLDERS,
    ROLES,
    Role,
    StudyFiles,
    _files_for_file,
    _generic_case_id,
    classify_file,
    discover_studies,
    find_study_files,
    guess_role_from_name,
    guess_role_from_values,
)

log = logging.getLogger(__name__)
# --------------------------------------------------------------------------- Study


@dataclass(eq=False)
class Study:
    """CT, PET (SUV) and labels of one case, each a :class:`Volume` or None.

    Labels live on the CT grid (on the PET grid when there is no CT):
    :attr:`grid` is that Volume.

    Examples
    --------
    >>> from napari_hnc.sample import sample_study_path
    >>> study = load_study(sample_study_path())
    >>> study.case_id, study.ct.shape, study.pet.shape
    ('STS_001', (198, 202, 59), (41, 43, 59))
    >>> study.pet_on_grid().shape == study.ct.shape
    True
    """

    ct: Volume | None
    pet: Volume | None
    labels: Volume | None = None
    case_id: str = "study"
    layout: str = "generic"
    files: StudyFiles | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.ct is None and self.pet is None:
            raise StudyError("a study needs a CT or a PET image; only labels were given")
        if self.labels is not None and not self.labels.same_grid(self.grid):
            raise GeometryError(
                f"labels of shape {self.labels.shape} are not on the study's label grid "
                f"{self.grid.shape}; use load_study(..., resample_labels=True) or resample them first"
            )

    @property
    def grid(self) -> Volume:
        """The Volume whose grid the labels live on: the CT, or the PET when there is no CT."""
        return self.ct if self.ct is not None else self.pet  # type: ignore[return-value]

    def pet_on_grid(self) -> Volume:
        """The PET resampled (linear) onto the label grid, computed once and cached."""
        if self.pet is None:
            raise StudyError(
                f"study {self.case_id} has no PET; PET thresholds and quantification need one "
                "(open its PET too: in napari with File > Open, in Python with load_study(..., pet=...))"
            )
        return self.cached("pet_on_grid", lambda: resample_to(self.pet, self.grid, "linear", fill=0.0))

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """A value derived from this study's images, computed by ``make()`` once per key.

        Copies made by :meth:`with_labels` share the cache (the images are the same).
        """
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def peek_cached(self, key: Any) -> Any:
        """The cached value of ``key``, or None when it was never computed."""
        return self._cache.get(key)

    def empty_labels(self) -> Volume:
        """A zero uint8 labels Volume on the label grid."""
        return self.grid.with_array(np.zeros(self.grid.shape, np.uint8), role="labels", path=None)

    def with_labels(self, labels: Volume | np.ndarray | None) -> "Study":
        """A copy of this study holding other labels (an array must be on the label grid)."""
        if labels is not None and not isinstance(labels, Volume):
            labels = self.grid.with_array(as_label_array(np.asarray(labels)), role="labels", path=None)
        new = replace(self, labels=labels)
        new._cache = self._cache
        return new


def load_study(
    path: str | Path | None = None,
    *,
    ct: str | Path | None = None,
    pet: str | Path | None = None,
    labels: str | Path | None = None,
    case_id: str | None = None,
    resample_labels: bool = False,
    oblique: Literal["keep", "resample"] = "keep",
    suv: Any = None,
    roi_map: dict[str, Any] | None = None,
) -> Study:
    """Open a PET/CT study from a folder, from any one of its files, or from explicit paths.

    Parameters
    ----------
    path : str or Path, optional
        A study folder, or any file of a study in a known layout (HECKTOR 2022,
        HECKTOR 2021, autoPET), or a DICOM folder (CT and PET series, RTSTRUCT
        or SEG masks; PET converted to SUV); its siblings are found.
    ct, pet, labels : str or Path, optional
        Explicit files (or DICOM series folders, RTSTRUCT/SEG files); they
        override what ``path`` found.
    case_id : str, optional
        Overrides the case id taken from the file names.
    resample_labels : bool
        Put labels that lie on neither image's grid onto the label grid
        (nearest neighbour) instead of raising.
    oblique : {"keep", "resample"}
        Keep oblique images as they are (napari shows them with their exact
        affine) or resample them onto the closest axis-aligned grid. Sheared
        images are always resampled, with a warning.
    suv : napari_hnc.io.dicom.SUVParameters, optional
        Weight, dose, times... replacing or completing a DICOM PET's header.
    roi_map : dict, optional
        DICOM mask names (or regular expressions) to classes, e.g.
        ``{"GTV_Edema": None, "GTV 2": "node"}``, tried before the defaults.

    Returns
    -------
    Study

    Examples
    --------
    >>> import napari_hnc
    >>> ct_file = napari_hnc.sample_study_path()   # .../STS_001__CT.nii.gz
    >>> napari_hnc.load_study(ct_file).labels is not None   # PET and labels found beside it
    True
    >>> study = napari_hnc.load_study(ct=ct_file, pet=ct_file.with_name("STS_001__PT.nii.gz"))
    >>> study.layout, study.labels is None
    ('generic', True)
    """
    files = _resolve_files(path, ct=ct, pet=pet, labels=labels, case_id=case_id)
    ct_vol = load_volume(files.ct, "ct", oblique=oblique) if files.ct else None
    pet_vol = load_volume(files.pet, "pet", oblique=oblique, suv=suv) if files.pet else None
    if ct_vol is None and pet_vol is None:
        raise StudyError(
            f"no CT or PET image found for {files.case_id} ({path or files.labels}); "
            "pass ct=... and/or pet=..."
        )
    if ct_vol is not None and pet_vol is not None:
        _check_overlap(ct_vol, pet_vol)
    grid = ct_vol if ct_vol is not None else pet_vol
    label_vol = _read_labels(files.labels, grid, pet_vol, resample_labels, roi_map) if files.labels else None
    return Study(ct_vol, pet_vol, label_vol, files.case_id, files.layout, files)


def _resolve_files(path, *, ct, pet, labels, case_id) -> StudyFiles:
    found = find_study_files(path) if path is not None else None
    explicit = {k: Path(v) for k, v in {"ct": ct, "pet": pet, "labels": labels}.items() if v is not None}
    if found is None and not explicit:
        raise StudyError("load_study needs a path, or ct=/pet=/labels= files")
    if found is None:
        first = explicit.get("ct") or explicit.get("pet") or explicit["labels"]
        found = StudyFiles(_generic_case_id(first), "generic")
    for role, value in explicit.items():
        if not value.is_file() and not (value.is_dir() and is_dicom_path(value)):
            raise StudyError(f"{role} file {value} does not exist; check the path")
    files = replace(found, **explicit)
    return replace(files, case_id=case_id) if case_id else files


def is_study_path(path: str | Path) -> bool:
    """True for a folder, or a file named after a known study layout."""
    path = Path(path)
    return path.is_dir() or _files_for_file(path) is not None


def load_volume(path: str | Path, role: Role | None = None, *, oblique: str = "keep", suv: Any = None) -> Volume:
    """One image file (or DICOM series) as a Volume, checked for its role ("ct", "pet" or "labels").

    The role is guessed from the file's name, then from its values, when not
    given; it is stored in ``metadata["role"]`` beside ``metadata["case_id"]``.
    A DICOM PET is converted to SUV (``suv`` completes its header).
    """
    path = Path(path)
    if is_dicom_path(path):
        return _load_dicom_volume(path, role, oblique, suv)
    role = role or guess_role_from_name(path)
    volume = read_nifti(path, role=role)
    role = role or guess_role_from_values(volume)
    if role == "labels":
        labels = as_label_array(np.asarray(volume.array), source=str(path))
        volume = volume.with_array(labels if labels.flags.writeable else labels.copy())
        _warn_unknown_classes(volume, path)
    else:
        volume = _straighten(volume, path, oblique)
    if role == "pet":
        volume.metadata["units"] = _pet_units(volume, path)
    volume.metadata.update(role=role, case_id=_generic_case_id(path))
    return volume


def _load_dicom_volume(path: Path, role: Role | None, oblique: str, suv: Any) -> Volume:
    from .io.dicom.reader import read_dicom_image

    if role == "labels":
        raise StudyError(f"{path}: DICOM masks (RTSTRUCT, SEG) need an image grid; open them with load_study(labels=...)")
    volume = _straighten(read_dicom_image(path, role, suv=suv), path, oblique)
    volume.metadata.update(case_id=volume.metadata.get("patient_id") or _generic_case_id(path))
    return volume


def _straighten(volume: Volume, path: Path, oblique: str, interpolation: str = "linear") -> Volume:
    if volume.is_sheared:
        warnings.warn(
            f"{path.name} has a sheared voxel grid; it was resampled onto the closest axis-aligned "
            "grid. Labels saved for it are on that new grid",
            HncWarning,
            stacklevel=3,
        )
        return _keep_source(volume.axis_aligned(interpolation), volume)  # type: ignore[arg-type]
    if volume.is_oblique:
        if oblique == "resample":
            warnings.warn(
                f"{path.name} is oblique ({volume.obliquity_deg:.1f} degrees); it was resampled onto "
                "the closest axis-aligned grid",
                HncWarning,
                stacklevel=3,
            )
            return _keep_source(volume.axis_aligned(interpolation), volume)  # type: ignore[arg-type]
        log.warning(
            "%s is oblique (%.1f degrees): kept on its own grid; napari shows it through its exact "
            "affine, measurements and saved labels use that grid", path.name, volume.obliquity_deg,
        )
    return volume


def _keep_source(new: Volume, old: Volume) -> Volume:
    new.metadata.update(role=old.metadata.get("role"), source_path=old.metadata.get("path"))
    return new


def _pet_units(volume: Volume, path: Path) -> str:
    """The PET's units, after warning about values that do not look like SUV (:mod:`.io.suv_range`)."""
    check = check_suv(volume.array)
    if check.problems:
        warnings.warn(
            f"{path.name}: {'; '.join(check.problems)}. napari-hnc needs the PET in SUV (body weight): convert it "
            "first, e.g. from the DICOM series with `napari-hnc convert`; thresholds and SUV figures would be wrong "
            "as it is",
            HncWarning,
            stacklevel=5,
        )
    if check.implausible or check.background_outside:
        return "unknown (probably Bq/ml)" if check.implausible or check.background > 100 else "unknown (not SUV?)"
    return str(volume.metadata.get("units", "SUVbw"))


def _check_overlap(ct: Volume, pet: Volume) -> None:
    ct_lo, ct_hi = ct.world_bounds()
    pet_lo, pet_hi = pet.world_bounds()
    if np.any(ct_hi < pet_lo - 1.0) or np.any(pet_hi < ct_lo - 1.0):
        raise GeometryError(
            "the CT and the PET do not overlap in world space "
            f"(CT spans {np.round(ct_lo).tolist()}..{np.round(ct_hi).tolist()} mm, PET "
            f"{np.round(pet_lo).tolist()}..{np.round(pet_hi).tolist()} mm). They are probably "
            "from different studies, or one header lost its origin"
        )


def _read_labels(path: Path, grid: Volume, pet: Volume | None, resample: bool, roi_map: Any = None) -> Volume:
    if is_dicom_path(path):
        from .io.dicom.reader import read_dicom_labels

        return read_dicom_labels(path, grid, roi_map)
    from .io.sidecars import read_sidecars

    volume = load_volume(path, "labels")
    volume.metadata.update(read_sidecars(path, volume))
    if volume.same_grid(grid):
        return volume
    if resample or (pet is not None and volume.same_grid(pet)):
        log.info("%s is on another grid than the %s; resampled onto it (nearest)", path.name, grid.metadata.get("role"))
        out = resample_to(volume, grid, "nearest")
        out.metadata.update(role="labels", source_path=str(path), provenance=volume.metadata.get("provenance"))
        if volume.metadata.get("instances") is not None:
            ids = resample_to(volume.with_array(volume.metadata["instances"]), grid, "nearest").array
            out.metadata["instances"] = np.asarray(ids).astype(np.uint16)
        return out
    raise GeometryError(
        f"{path}: the labels' grid (shape {volume.shape}, spacing {np.round(volume.spacing, 3).tolist()} mm) "
        f"matches neither the CT nor the PET (shape {grid.shape}); they were probably drawn on another "
        "image. Pass resample_labels=True (CLI: --resample-labels) to resample them onto the CT anyway"
    )


def _warn_unknown_classes(volume: Volume, path: Path) -> None:
    extra = unknown_classes(volume.array)
    if extra:
        warnings.warn(
            f"{path.name} holds label values {extra} besides 1 (primary tumour) and 2 (lymph node); "
            "they were kept as they are, and quantification refuses them until they are relabelled "
            "to 1, 2 or 0",
            HncWarning,
            stacklevel=4,
        )


def iter_volumes(study: Study) -> Iterable[tuple[Role, Volume]]:
    """``(role, volume)`` for each image the study has, CT first."""
    for role in ROLES:
        vol = getattr(study, role)
        if vol is not None:
            yield role, vol
