"""Small DICOM files written with pydicom for tests: CT/PET series, RTSTRUCT, SEG, PET headers.

Geometry follows DICOM PS3.3 C.7.6.2.1.1: the centre of pixel (column i, row j)
of a slice is ``IPP + i * PixelSpacing[1] * row_cosine + j * PixelSpacing[0] * col_cosine``
(patient LPS mm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as Seq
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
STUDY_UID = generate_uid()
FRAME_UID = generate_uid()


def save(ds: Dataset, path: Path, sop_class: str) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def base(modality: str, *, series_uid: str | None = None, patient: str = "CASE-1") -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientID = patient
    ds.PatientName = patient
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = FRAME_UID
    return ds


def pet_header(**tags) -> Dataset:
    """A PET header (no pixels) with the SUV tags; ``tags`` override or delete (value None) them.

    Radiopharmaceutical tags go in ``RadiopharmaceuticalInformationSequence``.
    """
    ds = base("PT")
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.PatientWeight = "70"
    ds.SeriesDate = ds.AcquisitionDate = "20240101"
    ds.SeriesTime = ds.AcquisitionTime = "100000"
    info = Dataset()
    info.RadiopharmaceuticalStartTime = "090000"
    info.RadionuclideTotalDose = "370000000"
    info.RadionuclideHalfLife = "6586.2"
    ds.RadiopharmaceuticalInformationSequence = Seq([info])
    radio = {"RadiopharmaceuticalStartTime", "RadiopharmaceuticalStartDateTime", "RadionuclideTotalDose", "RadionuclideHalfLife"}
    for key, value in tags.items():
        target = info if key in radio else ds
        if value is None:
            if key in target:
                delattr(target, key)
        else:
            setattr(target, key, value)
    return ds


def write_series(
    folder: Path,
    stored: np.ndarray,
    *,
    modality: str = "CT",
    origin: Sequence[float] = (-10.0, -20.0, 30.0),
    spacing: Sequence[float] = (2.0, 1.5),  # PixelSpacing: between rows, between columns
    slice_step: float = 3.0,
    orientation: Sequence[float] = AXIAL,
    slopes: Sequence[float] | None = None,
    intercept: float = 0.0,
    positions: Sequence[float] | None = None,
    tags: dict | None = None,
    shuffle: bool = True,
    series_uid: str | None = None,
) -> list[Path]:
    """Write ``stored[col, row, slice]`` (int16) as one file per slice (file order shuffled).

    Slice k lies at ``origin + positions[k] * normal`` (``positions`` default ``k * slice_step``).
    ``tags`` are set on every slice (PET SUV tags: use :func:`pet_header` values).
    """
    row_cos, col_cos = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row_cos, col_cos)
    n = stored.shape[2]
    positions = list(positions) if positions is not None else [k * slice_step for k in range(n)]
    series_uid = series_uid or generate_uid()
    order = np.random.default_rng(0).permutation(n) if shuffle else np.arange(n)
    paths = []
    for k in order:
        ds = pet_header(**(tags or {})) if modality == "PT" else base(modality)
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in np.asarray(origin) + positions[k] * normal]
        ds.PixelSpacing = [str(spacing[0]), str(spacing[1])]
        ds.SliceThickness = str(slice_step)
        ds.InstanceNumber = int(k) + 1
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope = str(slopes[k] if slopes is not None else 1)
        ds.RescaleIntercept = str(intercept)
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T.astype("<i2")).tobytes()
        storage = PET_STORAGE if modality == "PT" else CT_STORAGE
        paths.append(save(ds, folder / f"{modality}_{k:03d}.dcm", storage))
    return paths


def write_rtstruct(path: Path, rois: dict[str, list[np.ndarray]], *, referenced_series: str = "") -> Path:
    """An RTSTRUCT whose ROI ``name`` has the closed contours given as ``(n, 3)`` LPS arrays."""
    ds = base("RTSTRUCT")
    ds.StructureSetLabel = "test"
    ds.StructureSetROISequence = Seq()
    ds.ROIContourSequence = Seq()
    for number, (name, contours) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber = number
        item.ROIName = name
        item.ReferencedFrameOfReferenceUID = FRAME_UID
        ds.StructureSetROISequence.append(item)
        roi = Dataset()
        roi.ReferencedROINumber = number
        roi.ContourSequence = Seq()
        for points in contours:
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [f"{v:.3f}" for v in np.asarray(points).ravel()]
            roi.ContourSequence.append(contour)
        ds.ROIContourSequence.append(roi)
    if referenced_series:
        series = Dataset()
        series.SeriesInstanceUID = referenced_series
        study = Dataset()
        study.RTReferencedSeriesSequence = Seq([series])
        frame = Dataset()
        frame.FrameOfReferenceUID = FRAME_UID
        frame.RTReferencedStudySequence = Seq([study])
        ds.ReferencedFrameOfReferenceSequence = Seq([frame])
    return save(ds, path, RTSTRUCT_STORAGE)


def write_seg(
    path: Path,
    segments: dict[str, np.ndarray],
    *,
    origin: Sequence[float],
    spacing: Sequence[float],
    slice_step: float,
    fractional: bool = False,
    shuffle: bool = True,
) -> Path:
    """A DICOM SEG of axial masks ``[col, row, slice]`` (one frame per non-empty slice and segment).

    ``fractional`` stores 0..255 (mask voxels 200, others 100: only the mask passes one half).
    """
    from pydicom.pixels import pack_bits

    ds = base("SEG")
    ds.SegmentationType = "FRACTIONAL" if fractional else "BINARY"
    if fractional:
        ds.SegmentationFractionalType = "PROBABILITY"
        ds.MaximumFractionalValue = 255
    ds.SegmentSequence = Seq()
    frames, groups = [], []
    for number, (label, mask) in enumerate(segments.items(), start=1):
        seg = Dataset()
        seg.SegmentNumber = number
        seg.SegmentLabel = label
        ds.SegmentSequence.append(seg)
        for k in range(mask.shape[2]):
            if not mask[:, :, k].any():
                continue
            plane = mask[:, :, k].T
            frames.append(np.where(plane, 200, 100).astype(np.uint8) if fractional else plane.astype(np.uint8))
            group = Dataset()
            position = Dataset()
            position.ImagePositionPatient = [f"{v:.4f}" for v in np.asarray(origin) + np.array([0, 0, k * slice_step])]
            group.PlanePositionSequence = Seq([position])
            ident = Dataset()
            ident.ReferencedSegmentNumber = number
            group.SegmentIdentificationSequence = Seq([ident])
            groups.append(group)
    order = np.random.default_rng(1).permutation(len(frames)) if shuffle else np.arange(len(frames))
    frames = [frames[i] for i in order]
    ds.PerFrameFunctionalGroupsSequence = Seq([groups[i] for i in order])
    shared = Dataset()
    orient = Dataset()
    orient.ImageOrientationPatient = list(AXIAL)
    measures = Dataset()
    measures.PixelSpacing = [str(spacing[0]), str(spacing[1])]
    measures.SliceThickness = str(slice_step)
    measures.SpacingBetweenSlices = str(slice_step)
    shared.PlaneOrientationSequence = Seq([orient])
    shared.PixelMeasuresSequence = Seq([measures])
    ds.SharedFunctionalGroupsSequence = Seq([shared])
    stack = np.stack(frames)
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = stack.shape[1], stack.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 0
    if fractional:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = stack.tobytes()
    else:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
        ds.PixelData = pack_bits(stack.ravel())
    return save(ds, path, SEG_STORAGE)
