"""A PET/CT study (CT, PET in SUV, optional labels) and the dataset layouts it is found in.

Recognised layouts (``DESIGN.md``):

==============  =======================  =======================  ========================
layout          CT                       PET                      labels
==============  =======================  =======================  ========================
hecktor2022     ``<id>__CT.nii.gz``      ``<id>__PT.nii.gz``      ``<id>.nii.gz`` (beside,
                                                                  or in ``labelsTr``)
hecktor2021     ``<id>_ct.nii.gz``       ``<id>_pt.nii.gz``       ``<id>_gtvt.nii.gz``
autopet         ``CTres.nii.gz``         ``SUV.nii.gz``           ``SEG.nii.gz``
generic         ``ct=``                  ``pet=``                 ``labels=``
==============  =======================  =======================  ========================
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np

from .conventions import CLASS_NAMES, SUV_PLAUSIBLE_MAX
from .errors import GeometryError, HncWarning, StudyError
from .geometry import Volume, resample_to
from .io.dicom.files import is_dicom_file, is_dicom_path
from .io.nifti import as_label_array, is_nifti, read_nifti, strip_nifti_suffix

log = logging.getLogger(__name__)

Role = Literal["ct", "pet", "labels"]
ROLES: tuple[Role, ...] = ("ct", "pet", "labels")
LABEL_FOLDERS = ("labelsTr", "labelsTs", "labels")
IMAGE_FOLDERS = ("imagesTr", "imagesTs", "images")

_H22 = re.compile(r"^(?P<id>.+)__(?P<mod>CT|PT)$")
_H21 = re.compile(r"^(?P<id>.+?)_(?P<mod>ct|pt|gtvt|ct_gtvt)$")
_AUTOPET = {"CTres": "ct", "SUV": "pet", "SEG": "labels"}
_H21_ROLES = {"ct": "ct", "pt": "pet", "gtvt": "labels", "ct_gtvt": "labels"}


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class StudyFiles:
    """Where the files of one study are."""

    case_id: str
    layout: str
    ct: Path | None = None
    pet: Path | None = None
    labels: Path | None = None

    def paths(self) -> dict[str, Path | None]:
        return {"ct": self.ct, "pet": self.pet, "labels": self.labels}


def classify_file(path: str | Path) -> tuple[str, str, Role] | None:
    """``(layout, case_id, role)`` of a file named after a known layout, else None.

    >>> classify_file("imagesTr/CHUM-001__PT.nii.gz")
    ('hecktor2022', 'CHUM-001', 'pet')
    >>> classify_file("CHGJ007_gtvt.nii.gz")
    ('hecktor2021', 'CHGJ007', 'labels')
    """
    path = Path(path)
    if not is_nifti(path):
        return None
    stem = strip_nifti_suffix(path.name)
    if stem in _AUTOPET:
        parent = path.resolve().parent
        return "autopet", f"{parent.parent.name}_{parent.name}", _AUTOPET[stem]  # type: ignore[return-value]
    if m := _H22.match(stem):
        return "hecktor2022", m["id"], ("ct" if m["mod"] == "CT" else "pet")
    if m := _H21.match(stem):
        return "hecktor2021", m["id"], _H21_ROLES[m["mod"]]  # type: ignore[return-value]
    return None


def _hecktor2022_labels(image_dir: Path, case_id: str) -> Path | None:
    name = f"{case_id}.nii.gz"
    candidates = [image_dir / name] + [image_dir.parent / d / name for d in LABEL_FOLDERS]
    return next((c for c in candidates if c.is_file()), None)


def _siblings(layout: str, case_id: str, folder: Path) -> StudyFiles:
    def existing(name: str) -> Path | None:
        return (folder / name) if (folder / name).is_file() else None

    if layout == "hecktor2022":
        return StudyFiles(
            case_id, layout, existing(f"{case_id}__CT.nii.gz"), existing(f"{case_id}__PT.nii.gz"),
            _hecktor2022_labels(folder, case_id),
        )
    if layout == "hecktor2021":
        labels = existing(f"{case_id}_gtvt.nii.gz") or existing(f"{case_id}_ct_gtvt.nii.gz")
        return StudyFiles(case_id, layout, existing(f"{case_id}_ct.nii.gz"), existing(f"{case_id}_pt.nii.gz"), labels)
    return StudyFiles(case_id, layout, existing("CTres.nii.gz"), existing("SUV.nii.gz"), existing("SEG.nii.gz"))


def _files_for_file(path: Path) -> StudyFiles | None:
    found = classify_file(path)
    if found is None:
        return _hecktor2022_label_file(path)
    layout, case_id, _ = found
    return _siblings(layout, case_id, path.parent)


def _hecktor2022_label_file(path: Path) -> StudyFiles | None:
    """A HECKTOR 2022 label file ``labelsTr/<id>.nii.gz``: find its images."""
    case_id = strip_nifti_suffix(path.name)
    folders = [path.parent] + [path.parent.parent / d for d in IMAGE_FOLDERS]
    for folder in folders:
        if (folder / f"{case_id}__CT.nii.gz").is_file() or (folder / f"{case_id}__PT.nii.gz").is_file():
            return _siblings("hecktor2022", case_id, folder)
    return None


def discover_studies(root: str | Path, *, recursive: bool = True) -> list[StudyFiles]:
    """All studies of the known layouts under ``root`` (a folder), sorted by case id.

    >>> from napari_hnc.sample import sample_study_path
    >>> [s.case_id for s in discover_studies(sample_study_path().parent)]
    ['STS_001']
    """
    root = Path(root)
    if root.is_file():
        found = _files_for_file(root)
        return [found] if found else []
    pattern = "**/*.nii*" if recursive else "*.nii*"
    files = sorted(root.glob(pattern))
    if not recursive:
        for sub in IMAGE_FOLDERS:
            files += sorted((root / sub).glob("*.nii*"))
    studies: dict[tuple[str, str, Path], StudyFiles] = {}
    for file in files:
        found = classify_file(file)
        if found is None or found[2] == "labels":
            continue
        layout, case_id, _ = found
        key = (layout, case_id, file.parent.resolve())
        if key not in studies:
            studies[key] = _siblings(layout, case_id, file.parent)
    return sorted(studies.values(), key=lambda s: (s.case_id, str(s.ct or s.pet)))


def find_study_files(path: str | Path) -> StudyFiles:
    """The study that a folder holds, or that a file belongs to.

    A file that follows no known layout is returned as a one-file generic
    study, its role guessed from its name (see :func:`guess_role_from_name`).
    """
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path} does not exist; check the path")
    if path.is_file():
        found = _files_for_file(path)
        if found is not None:
            return found
        if is_dicom_file(path):
            return _dicom_study_files(path.parent)
        role = guess_role_from_name(path) or "ct"
        return StudyFiles(_generic_case_id(path), "generic", **{role: path})
    studies = discover_studies(path, recursive=False)
    if not studies and is_dicom_path(path):
        return _dicom_study_files(path)
    if not studies:
        raise StudyError(
            f"no PET/CT study found in {path}. napari-hnc recognises HECKTOR 2022 "
            "(<id>__CT.nii.gz, <id>__PT.nii.gz, <id>.nii.gz), HECKTOR 2021 (<id>_ct.nii.gz, "
            "<id>_pt.nii.gz, <id>_gtvt.nii.gz) and autoPET (CTres.nii.gz, SUV.nii.gz, SEG.nii.gz); "
            "or DICOM folders; for other names pass the files explicitly: load_study(ct=..., pet=..., labels=...)"
        )
    if len(studies) > 1:
        names = ", ".join(s.case_id for s in studies[:5]) + (", ..." if len(studies) > 5 else "")
        raise StudyError(
            f"{path} holds {len(studies)} studies ({names}); open one file of the study you want, "
            "or process them all with `napari-hnc segment`"
        )
    return studies[0]


def _dicom_study_files(path: Path) -> StudyFiles:
    from .io.dicom.reader import dicom_study_files

    return dicom_study_files(path)


_NAME_HINTS: tuple[tuple[Role, re.Pattern[str]], ...] = (
    ("labels", re.compile(r"(seg|label|mask|gtv|roi|annot)", re.I)),
    ("pet", re.compile(r"(^|[^a-z])(pet|pt|suv|fdg)([^a-z]|$)", re.I)),
    ("ct", re.compile(r"(^|[^a-z])(ct|ctres|hu)([^a-z]|$)", re.I)),
)


def guess_role_from_name(path: str | Path) -> Role | None:
    """Guess "ct", "pet" or "labels" from a file's name, then from its folders' names.

    >>> guess_role_from_name("STS_001/PET/nifti/image/image.nii.gz")
    'pet'
    >>> guess_role_from_name("STS_001/PET/nifti/mask/mask.nii.gz")
    'labels'
    """
    path = Path(path)
    for part in [strip_nifti_suffix(path.name)] + [p for p in reversed(path.parent.parts)]:
        for role, pattern in _NAME_HINTS:
            if pattern.search(part):
                return role
    return None


def guess_role_from_values(volume: Volume) -> Role:
    """Guess the role of an image from its values (integers 0..255 with few values: labels)."""
    array = volume.array
    lo, hi = float(np.min(array)), float(np.max(array))
    whole = np.issubdtype(array.dtype, np.integer) or np.array_equal(array[::4, ::4, ::4], np.round(array[::4, ::4, ::4]))
    if whole and lo >= 0 and hi <= 255 and np.unique(array[::2, ::2, ::2]).size <= 16:
        return "labels"
    return "ct" if lo < -200 else "pet"


def _generic_case_id(path: Path) -> str:
    stem = strip_nifti_suffix(path.name)
    generic = {"image", "images", "mask", "ct", "pet", "pt", "suv", "seg", "labels", "label", "nifti", "dicom"}
    for part in [stem] + list(reversed(path.parent.parts)):
        if part.lower() not in generic:
            return part
    return stem


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
                "(pass pet=... to load_study)"
            )
        if "pet_on_grid" not in self._cache:
            self._cache["pet_on_grid"] = resample_to(self.pet, self.grid, "linear", fill=0.0)
        return self._cache["pet_on_grid"]

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
    peak = float(np.max(volume.array))
    if peak > SUV_PLAUSIBLE_MAX:
        warnings.warn(
            f"{path.name}: PET maximum is {peak:.4g}, which looks like Bq/ml, not SUV. "
            "Convert it to SUV (body weight) first, e.g. from the DICOM series with "
            "`napari-hnc convert`; thresholds and SUV figures would be wrong as it is",
            HncWarning,
            stacklevel=5,
        )
        return "unknown (probably Bq/ml)"
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
    volume = load_volume(path, "labels")
    if volume.same_grid(grid):
        return volume
    if resample or (pet is not None and volume.same_grid(pet)):
        log.info("%s is on another grid than the %s; resampled onto it (nearest)", path.name, grid.metadata.get("role"))
        out = resample_to(volume, grid, "nearest")
        out.metadata.update(role="labels", source_path=str(path))
        return out
    raise GeometryError(
        f"{path}: the labels' grid (shape {volume.shape}, spacing {np.round(volume.spacing, 3).tolist()} mm) "
        f"matches neither the CT nor the PET (shape {grid.shape}); they were probably drawn on another "
        "image. Pass resample_labels=True (CLI: --resample-labels) to resample them onto the CT anyway"
    )


def _warn_unknown_classes(volume: Volume, path: Path) -> None:
    top = int(volume.array.max()) if volume.array.size else 0
    if top > max(CLASS_NAMES):
        values = np.flatnonzero(np.bincount(np.asarray(volume.array).ravel(), minlength=256))
        extra = [int(v) for v in values if v not in CLASS_NAMES]
        warnings.warn(
            f"{path.name} holds label values {extra} besides 1 (primary tumour) and 2 (lymph node); "
            "they were kept as they are",
            HncWarning,
            stacklevel=4,
        )


def iter_volumes(study: Study) -> Iterable[tuple[Role, Volume]]:
    """``(role, volume)`` for each image the study has, CT first."""
    for role in ROLES:
        vol = getattr(study, role)
        if vol is not None:
            yield role, vol
