"""Saving: exact grid, header codes, dtype, and atomic writes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

import napari_hnc
from napari_hnc.errors import GeometryError, HncError, HncWarning
from napari_hnc.geometry import Volume
from napari_hnc.io import nifti
from synthetic import affine, rotation, save_nifti

GRIDS = {
    "lps": affine((0.98, 0.98, 3.27), (23.4, 86.9, -881.3), "LPS"),
    "ras": affine((1.0, 1.0, 2.0), (-90.0, -120.0, -60.0), "RAS"),
    "oblique": rotation(12, 0) @ rotation(-5, 2) @ affine((0.9, 1.1, 2.5), (10, 20, 30), "LPS"),
}


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("codes", [(1, 0), (1, 2), (0, 4)])
def test_save_labels_round_trip(tmp_path, rng, grid, codes):
    aff = GRIDS[grid]
    ct_path = save_nifti(rng.normal(0, 100, (12, 10, 8)).astype(np.int16), aff, tmp_path / "ct.nii.gz",
                         qcode=codes[0], scode=codes[1])
    ct = napari_hnc.read_nifti(ct_path)
    labels = rng.integers(0, 3, ct.shape).astype(np.uint8)
    out = napari_hnc.save_labels(labels, ct, tmp_path / "labels.nii.gz")
    img = nib.load(out)
    assert img.get_data_dtype() == np.uint8
    assert np.array_equal(np.asanyarray(img.dataobj), labels)
    assert np.allclose(img.affine, nib.load(ct_path).affine, atol=1e-4)
    assert (int(img.header["qform_code"]), int(img.header["sform_code"])) == codes
    assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(aff)


def test_labels_are_never_rescaled(tmp_path):
    # a CT stored as uint16 with an intercept must not pass its scaling on to the labels
    aff = affine((1, 1, 1), (0, 0, 0), "LPS")
    img = nib.Nifti1Image(np.full((6, 6, 6), 1000, np.uint16), aff)
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, tmp_path / "ct.nii.gz")
    ct = napari_hnc.read_nifti(tmp_path / "ct.nii.gz")
    assert np.allclose(ct.array, -24.0)
    napari_hnc.save_labels(np.ones(ct.shape, np.uint8), ct, tmp_path / "lab.nii.gz")
    assert np.all(np.asanyarray(nib.load(tmp_path / "lab.nii.gz").dataobj) == 1)


def test_labels_volume_on_another_grid_is_resampled_with_a_warning(tmp_path):
    ct = Volume(np.zeros((20, 20, 20), np.int16), affine((1, 1, 1), (0, 0, 0), "RAS"))
    coarse = Volume(np.ones((10, 10, 10), np.uint8), affine((2, 2, 2), (0.5, 0.5, 0.5), "RAS"))
    with pytest.warns(HncWarning, match="resampled onto the image grid"):
        out = napari_hnc.save_labels(coarse, ct, tmp_path / "l.nii.gz")
    assert nib.load(out).shape == (20, 20, 20)


def test_bad_labels_are_refused(tmp_path):
    ct = Volume(np.zeros((4, 4, 4)), np.eye(4))
    with pytest.raises(GeometryError, match="do not fit"):
        napari_hnc.save_labels(np.zeros((3, 3, 3)), ct, tmp_path / "l.nii.gz")
    with pytest.raises(HncError, match="whole numbers"):
        napari_hnc.save_labels(np.full((4, 4, 4), 0.5), ct, tmp_path / "l.nii.gz")
    with pytest.raises(HncError, match="0..255"):
        napari_hnc.save_labels(np.full((4, 4, 4), 300), ct, tmp_path / "l.nii.gz")
    with pytest.raises(HncError, match=".nii.gz or .nii"):
        napari_hnc.save_labels(np.zeros((4, 4, 4), np.uint8), ct, tmp_path / "l.png")


def test_a_failed_write_leaves_the_existing_file_intact(tmp_path, monkeypatch):
    ct = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4))
    target = tmp_path / "labels.nii.gz"
    napari_hnc.save_labels(np.ones((4, 4, 4), np.uint8), ct, target)
    before = target.read_bytes()

    def broken_save(image, filename):
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nifti.nib, "save", broken_save)
    with pytest.raises(HncError, match="existing file there is unchanged"):
        napari_hnc.save_labels(np.full((4, 4, 4), 2, np.uint8), ct, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]


def test_write_image_keeps_dtype_and_values(tmp_path, rng):
    aff = GRIDS["oblique"]
    vol = Volume(rng.normal(size=(5, 6, 7)).astype(np.float32), aff)
    out = nifti.write_nifti(vol, tmp_path / "img.nii")
    img = nib.load(out)
    assert img.get_data_dtype() == np.float32
    assert np.array_equal(np.asanyarray(img.dataobj), vol.array)
    assert np.allclose(img.affine, aff, atol=1e-4)


def test_read_keeps_header_and_path(tmp_path):
    path = save_nifti(np.zeros((3, 4, 5), np.int16), GRIDS["lps"], tmp_path / "x.nii.gz", qcode=1, scode=0)
    vol = napari_hnc.read_nifti(path)
    assert vol.metadata["path"] == str(path)
    assert int(vol.metadata["header"]["qform_code"]) == 1
    assert vol.orientation == ("L", "P", "S")


def _gzip_bomb(path, shape=(64, 64, 64), payload_mb=200):
    """A .nii.gz whose header says ``shape`` float32 (1 MiB) but whose stream holds ``payload_mb`` MB of zeros
    (about 0.2 MB compressed): what took 6 GB of RAM before an error."""
    import gzip
    import io

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    header.set_qform(np.eye(4), code=1)
    header["vox_offset"] = 352
    head = io.BytesIO()
    header.write_to(head)
    chunk = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(head.getvalue() + bytes(352 - len(head.getvalue())))
        for _ in range(payload_mb):
            handle.write(chunk)
    return path


def test_a_small_gzip_holding_gigabytes_is_read_only_as_far_as_its_header_says(tmp_path):
    import tracemalloc

    path = _gzip_bomb(tmp_path / "bomb__CT.nii.gz")
    assert path.stat().st_size < 2_000_000
    tracemalloc.start()
    try:
        with pytest.warns(HncWarning, match="holds more data than its header describes"):
            vol = nifti.read_nifti(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert vol.shape == (64, 64, 64) and not vol.array.any()
    needed = 352 + 64**3 * 4
    assert peak < 4 * needed + path.stat().st_size + 2_000_000  # decoded: the header's 1 MiB, not 200 MB


def test_gzip_prefix_decodes_no_more_than_asked(monkeypatch):
    import gzip

    decoded = []
    real = nifti._decompressor

    class Counting:
        def __init__(self):
            self._d = real()

        def decompress(self, data, max_length):
            out = self._d.decompress(data, max_length)
            decoded.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._d, name)

    monkeypatch.setattr(nifti, "_decompressor", Counting)
    data, more = nifti.gunzip_prefix(gzip.compress(bytes(10_000_000)), 1000)
    assert len(data) == 1000 and more and sum(decoded) == 1001  # 1000 asked, 1 to see that more follows
    decoded.clear()
    data, more = nifti.gunzip_prefix(gzip.compress(bytes(1000)), 1000)
    assert len(data) == 1000 and not more and sum(decoded) == 1000


def test_an_uncompressed_file_longer_than_its_header_is_read_up_to_the_header(tmp_path):
    path = nifti.write_nifti(Volume(np.ones((4, 5, 6), np.int16), np.eye(4)), tmp_path / "x.nii")
    with open(path, "ab") as handle:
        handle.write(bytes(1000))
    with pytest.warns(HncWarning, match="holds more data"):
        vol = nifti.read_nifti(path)
    assert vol.shape == (4, 5, 6) and np.all(vol.array == 1)
