"""The npe2 writers: labels and images saved through napari land on the source grid and header."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_hnc._napari.layers import labels_layer
from napari_hnc.geometry import Volume
from synthetic import affine, rotation, save_nifti

GRIDS = {
    "lps": affine((0.98, 0.98, 3.27), (23.4, 86.9, -881.3), "LPS"),
    "ras": affine((1.0, 1.0, 2.0), (-90.0, -120.0, -60.0), "RAS"),
    "oblique": rotation(12, 0) @ rotation(-5, 2) @ affine((0.9, 1.1, 2.5), (10, 20, 30), "LPS"),
}


@pytest.mark.parametrize("grid", list(GRIDS))
def test_labels_file_round_trip_through_reader_and_writer(viewer_model, tmp_path, rng, grid):
    aff = GRIDS[grid]
    labels = rng.integers(0, 3, (14, 11, 9)).astype(np.uint8)
    src = save_nifti(labels, aff, tmp_path / "in_mask.nii.gz", qcode=1, scode=0 if grid == "lps" else 2)
    layer = viewer_model.open(str(src), plugin="napari-hnc")[0]
    assert layer._type_string == "labels"
    out = tmp_path / "out.nii.gz"
    viewer_model.layers.selection = {layer}
    written = viewer_model.layers.save(str(out), selected=True, plugin="napari-hnc")
    assert written == [str(out)]
    a, b = nib.load(src), nib.load(out)
    assert np.array_equal(np.asanyarray(b.dataobj), labels) and b.get_data_dtype() == np.uint8
    assert np.allclose(b.affine, a.affine, atol=1e-4)
    for code in ("qform_code", "sform_code"):
        assert int(b.header[code]) == int(a.header[code])
    assert nib.aff2axcodes(b.affine) == nib.aff2axcodes(a.affine)


def test_painted_labels_are_saved_on_the_ct_grid(viewer_model, tmp_path):
    ct_aff = GRIDS["lps"]
    ct_path = save_nifti(np.zeros((20, 18, 12), np.int16), ct_aff, tmp_path / "P__CT.nii.gz", scode=0)
    save_nifti(np.ones((10, 9, 12), np.float32), affine((2, 2, 3.27), (23.4, 86.9, -881.3), "LPS"),
               tmp_path / "P__PT.nii.gz")
    layers = viewer_model.open(str(ct_path), plugin="napari-hnc")
    assert len(layers) == 2  # no labels file yet: CT and PET
    ct = layers[0]
    data, kwargs, _ = labels_layer(Volume(np.zeros((20, 18, 12), np.uint8), ct_aff, {"header": ct.metadata["header"]}))
    lab = viewer_model.add_labels(data, **kwargs)
    # paint one voxel at a known world position: CT file voxel (3, 4, 5)
    world = Volume(np.zeros((1, 1, 1)), ct_aff).voxel_to_world([3, 4, 5])
    from napari_hnc.geometry import ras_to_napari

    idx = tuple(np.rint(lab.world_to_data(ras_to_napari(world))).astype(int))
    lab.data[idx] = 2
    viewer_model.layers.selection = {lab}
    out = tmp_path / "P.nii.gz"
    viewer_model.layers.save(str(out), selected=True, plugin="napari-hnc")
    saved = nib.load(out)
    arr = np.asanyarray(saved.dataobj)
    assert arr.shape == (20, 18, 12) and arr[3, 4, 5] == 2 and arr.sum() == 2
    assert (int(saved.header["qform_code"]), int(saved.header["sform_code"])) == (1, 0)


def test_labels_made_in_napari_keep_the_grid_they_are_shown_on(viewer_model, tmp_path):
    lab = viewer_model.add_labels(np.zeros((5, 6, 7), np.uint8), scale=(3.0, 2.0, 1.0), translate=(10.0, 20.0, 30.0))
    lab.data[1, 2, 3] = 1
    viewer_model.layers.selection = {lab}
    out = tmp_path / "new.nii.gz"
    viewer_model.layers.save(str(out), selected=True, plugin="napari-hnc")
    img = nib.load(out)
    voxel = np.argwhere(np.asanyarray(img.dataobj))[0]
    world = nib.affines.apply_affine(img.affine, voxel)
    napari_world = np.array(lab.data_to_world((1, 2, 3)))
    assert np.allclose(world, -napari_world[::-1])


def test_image_writer_keeps_values_and_geometry(viewer_model, tmp_path, rng):
    arr = rng.normal(0, 1, (8, 9, 10)).astype(np.float32)
    src = save_nifti(arr, GRIDS["oblique"], tmp_path / "scan_pet.nii.gz")
    layer = viewer_model.open(str(src), plugin="napari-hnc")[0]
    viewer_model.layers.selection = {layer}
    out = tmp_path / "copy.nii.gz"
    viewer_model.layers.save(str(out), selected=True, plugin="napari-hnc")
    img = nib.load(out)
    assert np.array_equal(np.asanyarray(img.dataobj), arr)
    assert np.allclose(img.affine, GRIDS["oblique"], atol=1e-4)


def test_writer_errors_are_messages_that_say_what_to_do(tmp_path, monkeypatch):
    import errno

    from napari_hnc._napari.writer import write_image, write_labels
    from napari_hnc.errors import OutputError
    from napari_hnc.io import nifti

    data, kwargs, _ = labels_layer(Volume(np.ones((5, 6, 7), np.uint8), GRIDS["ras"]))
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    with pytest.raises(OutputError, match=f"{blocker} is a file, not a folder"):
        write_labels(str(blocker / "labels.nii.gz"), data, kwargs)

    def full_disk(image, filename):
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(nifti.nib, "save", full_disk)
    for writer in (write_labels, write_image):
        with pytest.raises(OutputError, match="is full.*existing file there is unchanged"):
            writer(str(tmp_path / "out.nii.gz"), data, kwargs)
    assert list(tmp_path.iterdir()) == [blocker]
