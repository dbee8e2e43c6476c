"""NIfTI reading and (atomic) writing; returns and takes :class:`~napari_hnc.geometry.Volume`.

The header and affine come from nibabel, whose qform/sform rules are the ones
3D Slicer, ITK-SNAP and FSL users expect; the voxels are decompressed in one
call (ISA-L), which is faster than both nibabel's streaming reads and SimpleITK.
"""

from __future__ import annotations

import gzip
import logging
import warnings
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..errors import GeometryError, HncError, HncWarning, ImageFileError
from ..geometry import Volume, resample_to
from .atomic import atomic_write

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile, nib.filebasedimages.ImageFileError)
_REPAIR = "Check that the file is complete (re-export it or copy it again)"


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    """``"a__CT.nii.gz"`` -> ``"a__CT"``."""
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------- reading


def read_nifti(path: str | Path, *, role: str | None = None) -> Volume:
    """Read a 3D NIfTI file into a Volume, with clear errors for unusable files.

    4D files give their first frame (with a warning); NaN or infinite voxels are
    set to the image's minimum finite value (with a warning).

    Examples
    --------
    >>> from napari_hnc.sample import sample_study_path
    >>> vol = read_nifti(sample_study_path(), role="ct")
    >>> vol.shape, vol.orientation
    ((198, 202, 59), ('L', 'P', 'S'))
    """
    path = Path(path)
    if not path.exists():
        raise ImageFileError(path, "does not exist", "Check the path and the file name")
    if path.is_dir():
        raise ImageFileError(path, "is a folder, not an image file", "Pass a .nii or .nii.gz file")
    _refuse_dicom(path)
    try:
        image = nib.load(str(path))
    except _READ_ERRORS as exc:
        raise ImageFileError(path, f"is not a readable NIfTI image ({_reason(exc)})", _REPAIR) from exc
    shape = tuple(int(s) for s in image.shape)
    frames = _check_dimensions(path, shape)
    affine = _check_affine(path, image)
    array = _read_voxels(path, image, shape)
    if frames:
        array = array[..., 0]
    array = _drop_singletons(array)
    array = _fix_non_finite(path, array)
    header = image.header.copy()
    meta: dict[str, Any] = {"path": str(path), "header": header, "role": role}
    return Volume(array, affine, meta)


def _refuse_dicom(path: Path) -> None:
    """A DICOM file (or a DICOMDIR) handed to the NIfTI reader: say what it is and how to open it."""
    from .dicom.files import has_dicom_magic

    if path.name.lower() == "dicomdir":
        raise ImageFileError(path, "is a DICOMDIR (the index of a DICOM export), not an image",
                             f"Open its folder, {path.parent}, with load_study or napari-hnc convert")
    if not is_nifti(path) and has_dicom_magic(path):
        raise ImageFileError(path, "is a DICOM file, not a NIfTI image",
                             "Open its folder (or the file) with load_study, or convert it with napari-hnc convert")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no detail'}"


def _check_affine(path: Path, image) -> np.ndarray:
    """The voxel-to-world affine, or an error naming the file when it has a zero voxel size or is unusable."""
    affine = np.asarray(image.affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        raise ImageFileError(path, "has a voxel-to-world transform (qform/sform) with NaN or infinite values",
                             "Fix or re-export its header")
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    flat = [axis for axis, size in zip("ijk", sizes) if size < 1e-6]
    if flat:
        which = "sform" if int(image.header["sform_code"]) > 0 else "qform" if int(image.header["qform_code"]) > 0 else "pixdim"
        raise ImageFileError(
            path, f"has a voxel size of 0 mm along axis {', '.join(flat)} (its {which}); its voxels have no extent",
            "Fix the voxel spacing in its header (e.g. with nibabel or 3D Slicer) or re-export it",
        )
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ImageFileError(path, "has a singular voxel-to-world transform (two axes point the same way)",
                             "Fix its qform/sform or re-export it")
    return affine


def _check_dimensions(path: Path, shape: tuple[int, ...]) -> bool:
    """Validate the image dimensionality; return True when a 4th axis must be cut to its first frame."""
    core = list(shape)
    while len(core) > 3 and core[-1] == 1:
        core.pop()
    spatial = sum(s > 1 for s in core[:3])
    if len(core) < 3 or spatial < 3:
        raise ImageFileError(
            path,
            f"is a {sum(s > 1 for s in shape)}D image of shape {shape}, not a 3D volume",
            "napari-hnc needs 3D CT/PET volumes; export the whole series, not a single slice",
        )
    if len(core) == 4:
        warnings.warn(
            f"{path.name} is 4D (shape {shape}); using its first frame only. "
            "Split the series and open the frame you want if this is not it",
            HncWarning,
            stacklevel=3,
        )
        return True
    if len(core) > 4:
        raise ImageFileError(path, f"has {len(core)} dimensions (shape {shape})", "Pass a 3D volume")
    return False


def _read_voxels(path: Path, image, shape: tuple[int, ...]) -> np.ndarray:
    """Voxel array in nibabel's (i, j, k[, t]) order, scaled like nibabel does.

    The bytes are decompressed in one call (ISA-L when installed, else zlib),
    which is about twice as fast as SimpleITK and keeps NaN/Inf visible
    (the NIfTI C library behind SimpleITK silently zeroes them). A truncated
    or corrupt file fails the gzip integrity checks and raises.
    """
    header = image.header
    if not isinstance(header, (nib.Nifti1Header, nib.Nifti2Header)):
        return np.asanyarray(image.dataobj)
    dtype = header.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise ImageFileError(path, f"stores voxels as {dtype}, not a single number per voxel",
                             "Convert it to a scalar (grey-level) image")
    proxy = image.dataobj
    offset = int(proxy.offset)
    count = int(np.prod(shape, dtype=np.int64))
    needed = offset + count * dtype.itemsize
    raw = _file_bytes(path, needed)
    if len(raw) < needed:
        raise ImageFileError(
            path, f"is truncated: {len(raw)} bytes of voxel data where {needed} are needed", _REPAIR
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape, order="F")
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    slope, inter = float(proxy.slope), float(proxy.inter)
    if slope != 1.0 or inter != 0.0:
        out_type = np.promote_types(array.dtype, np.float32)
        array = array.astype(out_type) * out_type.type(slope) + out_type.type(inter)
    return array


def _file_bytes(path: Path, needed: int) -> bytes:
    """The first ``needed`` bytes of the (decompressed) file: never more, whatever the file holds.

    A file whose header describes less data than it holds (a crafted or mislabelled file: a
    few MB of gzip can expand to GBs) is read only up to the header's byte count, with a warning.
    """
    if not str(path).lower().endswith(".gz"):
        with open(path, "rb") as handle:
            data = handle.read(needed)
        extra = path.stat().st_size > needed
    else:
        try:
            data, extra = gunzip_prefix(path.read_bytes(), needed)
        except _READ_ERRORS + _GZIP_ERRORS as exc:
            raise ImageFileError(path, f"cannot be decompressed: it is truncated or corrupt ({_reason(exc)})",
                                 _REPAIR) from exc
    if extra:
        warnings.warn(
            f"{path.name} holds more data than its header describes ({needed} bytes); only those were read. "
            "If it should be larger (more slices, a 4D series), its header is wrong: re-export it",
            HncWarning,
            stacklevel=4,
        )
    return data


def gunzip_prefix(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Decompress at most ``limit`` bytes of the gzip stream ``data``; also say whether more would follow.

    Decompression stops at ``limit``, so memory stays bounded by the header's byte count. A stream
    that ends exactly there is checked to its end (CRC included); concatenated gzip members are
    followed. Raises on a corrupt stream; a truncated one gives fewer than ``limit`` bytes.

    >>> import gzip
    >>> gunzip_prefix(gzip.compress(b"abcdef"), 4)
    (b'abcd', True)
    >>> gunzip_prefix(gzip.compress(b"ab") + gzip.compress(b"cd"), 4)
    (b'abcd', False)
    """
    pieces, total, rest = [], 0, data
    while rest and total < limit:
        decompressor = _decompressor()
        piece = decompressor.decompress(rest, limit - total)
        while piece:
            pieces.append(piece)
            total += len(piece)
            if decompressor.eof or total >= limit:
                break
            piece = decompressor.decompress(b"", limit - total)
        if not decompressor.eof:
            if total < limit:  # the stream stopped before its end: truncated
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            return b"".join(pieces), _more(decompressor, b"")
        rest = decompressor.unused_data.lstrip(b"\0")
    if total < limit:
        return b"".join(pieces), False
    return (pieces[0] if len(pieces) == 1 else b"".join(pieces)), _more(None, rest)


def _more(decompressor, rest: bytes) -> bool:
    """Whether the stream goes on after the bytes read (one more byte is decompressed to know)."""
    if decompressor is not None:
        if decompressor.decompress(b"", 1):
            return True
        if not decompressor.eof:
            return False
        rest = decompressor.unused_data.lstrip(b"\0")
    while rest:
        decompressor = _decompressor()
        if decompressor.decompress(rest, 1):
            return True
        if not decompressor.eof:
            return False
        rest = decompressor.unused_data.lstrip(b"\0")
    return False


try:  # ISA-L's gzip is about 2x faster than zlib's
    from isal import igzip_lib as _igzip_lib
    from isal.isal_zlib import error as _isal_error

    def _decompressor():
        return _igzip_lib.IgzipDecompressor(flag=_igzip_lib.DECOMP_GZIP)

    _GZIP_ERRORS: tuple[type[BaseException], ...] = (_isal_error, _igzip_lib.IsalError)
except ImportError:  # pragma: no cover - isal is a declared dependency

    class _ZlibDecompressor:
        """zlib's gzip decompressor with the ``decompress(data, max_length)`` interface of igzip."""

        def __init__(self) -> None:
            self._z = zlib.decompressobj(wbits=31)

        def decompress(self, data: bytes, max_length: int) -> bytes:
            return self._z.decompress(self._z.unconsumed_tail + data, max_length)

        @property
        def eof(self) -> bool:
            return self._z.eof

        @property
        def unused_data(self) -> bytes:
            return self._z.unused_data

    def _decompressor():
        return _ZlibDecompressor()

    _GZIP_ERRORS = ()


def _drop_singletons(array: np.ndarray) -> np.ndarray:
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def _fix_non_finite(path: Path, array: np.ndarray) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating):
        return array
    if np.isfinite(np.add.reduce(array, axis=None, dtype=np.float64)):
        return array
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    finite = array[~bad]
    fill = float(finite.min()) if finite.size else 0.0
    array = np.array(array, copy=True)
    array[bad] = fill
    warnings.warn(
        f"{path.name} has {count} NaN or infinite voxel(s) ({100.0 * count / array.size:.2g}%); "
        f"they were set to {fill:g}. Check how the file was converted",
        HncWarning,
        stacklevel=3,
    )
    return array


# --------------------------------------------------------------------------- writing


def write_nifti(volume: Volume, path: str | Path, *, dtype: Any = None, descrip: str | None = None) -> Path:
    """Write a Volume atomically (temporary file, then rename), keeping its header's codes.

    The header in ``volume.metadata["header"]`` (if any) is reused, with the
    data type, scaling and affine brought up to date; its qform/sform codes are
    kept, so the file opens the same way in 3D Slicer and ITK-SNAP.
    """
    path = Path(path)
    if not is_nifti(path):
        raise HncError(f"{path}: write NIfTI files ending in .nii.gz or .nii")
    array = np.asarray(volume.array)
    dtype = np.dtype(dtype or array.dtype)
    image = nib.Nifti1Image(array.astype(dtype, copy=False), volume.affine, header=_header_for(volume, dtype))
    qcode, scode = _codes(volume.metadata.get("header"))
    image.set_qform(volume.affine, code=qcode)
    image.set_sform(volume.affine, code=scode)
    image.header.set_slope_inter(1.0, 0.0)
    if descrip is not None:
        image.header["descrip"] = descrip.encode("ascii", "replace")[:79]
    return _atomic_save(image, path)


def _header_for(volume: Volume, dtype: np.dtype) -> nib.Nifti1Header:
    source = volume.metadata.get("header")
    header = nib.Nifti1Header()
    if isinstance(source, nib.Nifti1Header) and not isinstance(source, nib.Nifti2Header):
        header = source.copy()
        header["cal_min"], header["cal_max"] = 0.0, 0.0
        header["glmin"], header["glmax"] = 0, 0
    header.set_data_dtype(dtype)
    return header


def _codes(header: Any) -> tuple[int, int]:
    if header is None:
        return 1, 1
    qcode, scode = int(header["qform_code"]), int(header["sform_code"])
    if qcode == 0 and scode == 0:
        return 1, 1
    return qcode, scode


def _atomic_save(image, path: Path) -> Path:
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else ".nii"

    def save(tmp: Path) -> None:
        try:
            nib.save(image, str(tmp))
        except ValueError as exc:  # nibabel: data it cannot store
            raise HncError(f"could not write {path} ({_reason(exc)}); any existing file there is unchanged") from exc

    atomic_write(path, save, suffix=suffix)
    log.info("wrote %s", path)
    return path


LABELS_DESCRIP = "napari-hnc labels: 1 primary tumour, 2 lymph node"


def save_labels(labels: Volume | np.ndarray, like: Volume, path: str | Path) -> Path:
    """Save labels as uint8 NIfTI on the exact grid and header of the image they were drawn on.

    Parameters
    ----------
    labels : Volume or numpy.ndarray
        Label values 0-255 (0 background, 1 primary tumour, 2 lymph node). An
        array must have ``like``'s shape; a Volume on another grid is resampled
        onto ``like``'s grid (nearest neighbour, with a warning).
    like : Volume
        The image the labels belong to (usually the CT); its affine, voxel order
        and header (qform/sform codes) are written.
    path : str or Path
        ``.nii.gz`` or ``.nii`` file; written atomically.

    A labels Volume that carries lesion instances (``metadata["instances"]``, as
    :func:`napari_hnc.delineate` and :class:`napari_hnc.RefinementSession` give)
    also gets its instance map and provenance record beside it
    (:mod:`napari_hnc.io.sidecars`: ``X_instances.nii.gz``, ``X_provenance.json``).
    Labels without instances replace stale sidecars from an earlier save with
    their connected components, so the files never disagree.

    Examples
    --------
    >>> import tempfile, napari_hnc
    >>> study = napari_hnc.load_study(napari_hnc.sample_study_path())
    >>> out = napari_hnc.save_labels(study.labels, study.ct, tempfile.mkdtemp() + "/STS_001.nii.gz")
    >>> napari_hnc.read_nifti(out).same_grid(study.ct)
    True
    """
    from .sidecars import has_sidecars, write_sidecars

    instances = provenance = None
    if isinstance(labels, Volume):
        instances, provenance = labels.metadata.get("instances"), labels.metadata.get("provenance")
        if not labels.same_grid(like, atol=1e-4):
            warnings.warn(
                f"the labels' grid {labels.shape} differs from the image's {like.shape}; "
                "they were resampled onto the image grid (nearest neighbour) before saving",
                HncWarning,
                stacklevel=2,
            )
            if instances is not None:
                instances = resample_to(labels.with_array(np.asarray(instances)), like, "nearest").array
            labels = resample_to(labels, like, "nearest")
        array = np.asarray(labels.array)
    else:
        array = np.asarray(labels)
    if array.shape != like.shape:
        raise GeometryError(
            f"labels of shape {array.shape} do not fit the image of shape {like.shape}; "
            "pass the image the labels were drawn on as `like`"
        )
    array = as_label_array(array, source=str(path))
    written = write_nifti(like.with_array(array), path, dtype=np.uint8, descrip=LABELS_DESCRIP)
    if instances is not None or has_sidecars(written):
        from ..annotation import Annotation

        annotation = Annotation(np.array(array, copy=True), instances, (provenance or {}).get("lesions"))
        write_sidecars(written, like, annotation.instances, {**(provenance or {}), **annotation.provenance()})
    return written


def as_label_array(array: np.ndarray, *, source: str = "labels") -> np.ndarray:
    """Check that values are whole numbers in 0..255 and return them as uint8."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise HncError(
            f"{source}: label values must lie in 0..255 (0 background, 1 primary, 2 node); "
            f"found {array.min()}..{array.max()}"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        raise HncError(
            f"{source}: label values must be whole numbers; this looks like an image or a "
            "probability map, not labels"
        )
    return array.astype(np.uint8)
