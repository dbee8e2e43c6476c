"""The npe2 reader: layers, display settings, world alignment on real data, bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

import napari_hnc
from napari_hnc._napari.layers import META_ROLE
from napari_hnc.errors import ImageFileError
from napari_hnc.geometry import napari_to_ras, ras_to_napari
from synthetic import write_hecktor2022

CASES = ["STS_001", "STS_002", "STS_003"]


def _centroid_world(layer) -> np.ndarray:
    return np.asarray(layer.data_to_world(np.argwhere(np.asarray(layer.data) > 0).mean(axis=0)))


@pytest.mark.parametrize("case", CASES)
def test_pet_and_ct_masks_line_up_in_world_mm(viewer_model, sts_root, case):
    ct_mask = viewer_model.open(str(sts_root / case / "CT/nifti/mask/mask.nii.gz"), plugin="napari-hnc")[0]
    pet_mask = viewer_model.open(str(sts_root / case / "PET/nifti/mask/mask.nii.gz"), plugin="napari-hnc")[0]
    assert ct_mask.metadata[META_ROLE] == pet_mask.metadata[META_ROLE] == "labels"
    assert ct_mask.data.shape != pet_mask.data.shape  # different grids
    gap = np.linalg.norm(_centroid_world(ct_mask) - _centroid_world(pet_mask))
    # the files' own centroids (through nibabel) agree to 0.25 mm; the layers must keep that
    files = [nib.load(sts_root / case / f"{m}/nifti/mask/mask.nii.gz") for m in ("CT", "PET")]
    file_gap = np.linalg.norm(np.subtract(*[
        nib.affines.apply_affine(f.affine, np.argwhere(np.asanyarray(f.dataobj)).mean(axis=0)) for f in files
    ]))
    assert gap < 1.0 and abs(gap - file_gap) < 1e-6
    # and the napari world point is the RAS centroid in napari's axis order
    ras = nib.affines.apply_affine(files[0].affine, np.argwhere(np.asanyarray(files[0].dataobj)).mean(axis=0))
    assert np.allclose(napari_to_ras(_centroid_world(ct_mask)), ras, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_world_point_to_ct_voxel_matches_nibabel(viewer_model, sts_root, case, rng):
    path = sts_root / case / "CT/nifti/image/image.nii.gz"
    layer = viewer_model.open(str(path), plugin="napari-hnc")[0]
    img = nib.load(path)
    geo = napari_hnc.geometry.LayerGeometry.from_metadata(layer.metadata["napari_hnc_geometry"])
    corners = nib.affines.apply_affine(img.affine, [[0, 0, 0], np.array(img.shape) - 1])
    for point in rng.uniform(corners.min(axis=0), corners.max(axis=0), size=(20, 3)):
        display_index = np.rint(layer.world_to_data(ras_to_napari(point))).astype(int)
        onehot = np.zeros(layer.data.shape, bool)
        onehot[tuple(display_index)] = True
        file_index = np.argwhere(geo.to_file(onehot))[0]
        expected = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), point)).astype(int)
        assert np.array_equal(file_index, expected)


def test_study_layers_have_the_display_settings(viewer_model):
    layers = viewer_model.open(str(napari_hnc.sample_study_path()), plugin="napari-hnc")
    ct, pet, labels = layers
    assert [l.metadata[META_ROLE] for l in layers] == ["ct", "pet", "labels"]
    assert ct.colormap.name == "gray" and tuple(ct.contrast_limits) == (-160.0, 240.0)
    assert pet.blending == "additive" and pet.colormap.name == "PET hot iron"
    assert pet.contrast_limits[0] == 0.0
    suv = np.asarray(pet.data)
    assert pet.contrast_limits[1] == pytest.approx(max(10.0, np.percentile(suv, 99.9)), rel=0.02)
    assert labels.features.set_index("index").loc[1, "class"] == "primary tumour"
    assert labels.features.set_index("index").loc[2, "class"] == "lymph node"
    for layer in layers:
        meta = layer.metadata
        assert meta["source_path"].endswith(".nii.gz")
        assert meta["affine"].shape == (4, 4) and meta["header"] is not None


def test_pet_range_uses_the_percentile_when_above_10(viewer_model, tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    img = nib.load(paths["pet"])
    hot = np.asanyarray(img.dataobj) * 4.0
    nib.save(nib.Nifti1Image(hot, img.affine), paths["pet"])
    pet = viewer_model.open(str(paths["pet"]), plugin="napari-hnc")[1]
    assert pet.contrast_limits[1] == pytest.approx(np.percentile(hot, 99.9), rel=0.01)


def test_folder_opens_the_study(viewer_model, tmp_path):
    write_hecktor2022(tmp_path, "HGJ-9", split_folders=True)
    layers = viewer_model.open(str(tmp_path / "imagesTr"), plugin="napari-hnc")
    assert [l.name for l in layers] == ["HGJ-9 CT", "HGJ-9 PET", "HGJ-9 labels"]


def test_bad_files_raise_clear_errors_and_leave_the_viewer_usable(viewer_model, tmp_path):
    bad = tmp_path / "broken__CT.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    with pytest.raises(ImageFileError, match=r"broken__CT\.nii\.gz.*not a readable NIfTI.*re-export"):
        viewer_model.open(str(bad), plugin="napari-hnc")
    assert len(viewer_model.layers) == 0
    good = viewer_model.open(str(napari_hnc.sample_study_path()), plugin="napari-hnc")
    assert len(good) == 3


def test_file_open_of_a_study_file_uses_napari_hnc_without_asking(make_napari_viewer, tmp_path, _reader_preferences):
    from synthetic import write_hecktor2022

    from napari_hnc._napari.controller import controller_for
    from napari_hnc._napari.preferences import STUDY_PATTERNS

    from napari.errors import MultipleReaderError

    _reader_preferences.extension2reader = {"*.nii": "napari"}  # a choice the user made: kept
    paths = write_hecktor2022(tmp_path / "s", "CASEP", with_labels=False)
    viewer = make_napari_viewer()
    with pytest.raises(MultipleReaderError):  # napari would ask which plugin reads it
        viewer.open(paths["ct"], plugin=None)
    controller_for(viewer)  # napari-hnc in use in this window (a dock, the sample, open_study)
    readers = dict(_reader_preferences.extension2reader)
    assert readers == {"*.nii": "napari", **{p: "napari-hnc" for p in STUDY_PATTERNS if p != "*.nii"}}
    layers = viewer.open(paths["ct"], plugin=None)  # what File > Open does
    assert {layer.metadata.get("napari_hnc_role") for layer in layers} >= {"ct", "pet"}  # napari-hnc read the study
