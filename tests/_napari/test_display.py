"""Radiological display: patient's left on screen right, anterior up (drawn, then read off the screen)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hnc import open_study
from synthetic import affine, save_nifti

# marker positions in world RAS mm: +x is the patient's right, +y anterior
MARKERS = {"left": (-40.0, 0.0, 0.0), "anterior": (0.0, 40.0, 0.0)}


def _ct_with_marker(tmp_path, axcodes: str, marker) -> tuple:
    aff = affine((2.0, 2.0, 2.0), (0, 0, 0), axcodes)
    vol = np.full((61, 61, 21), -1000, np.int16)
    # centre the grid on world (0, 0, 0)
    aff[:3, 3] = -aff[:3, :3] @ (np.array(vol.shape) - 1) / 2
    inv = np.linalg.inv(aff)
    vol[tuple(slice(int(c) - 3, int(c) + 4) for c in np.rint(inv[:3, :3] @ marker + inv[:3, 3]))] = 500
    return save_nifti(vol, aff, tmp_path / "M__CT.nii.gz")


def _bright_centroid(viewer) -> np.ndarray:
    shot = np.asarray(viewer.screenshot(canvas_only=True, flash=False))[..., :3].astype(float).mean(axis=-1)
    return np.argwhere(shot > 200).mean(axis=0) / np.array(shot.shape)  # (row, column) as fractions


@pytest.mark.parametrize("axcodes", ["LPS", "RAS", "LAI"])
@pytest.mark.parametrize("where", list(MARKERS))
def test_axial_view_is_radiological(make_napari_viewer, tmp_path, axcodes, where):
    viewer = make_napari_viewer(show=True)
    open_study(viewer, _ct_with_marker(tmp_path, axcodes, MARKERS[where]))
    viewer.layers["M labels"].visible = False
    viewer.reset_view()
    row, col = _bright_centroid(viewer)
    expected = {"left": (0.5, ">"), "anterior": ("<", 0.5)}[where]
    for value, target in zip((row, col), expected):
        if target == ">":
            assert value > 0.6
        elif target == "<":
            assert value < 0.4
        else:
            assert abs(value - target) < 0.1


def test_lesion_colours_stand_out_from_the_pet_and_ct_colours():
    from napari_hnc._napari.layers import PET_COLORMAP
    from napari_hnc.conventions import CLASS_COLORS, NODE, PRIMARY
    from napari_hnc.display import _hot

    pet_gui = PET_COLORMAP.map(np.linspace(0, 1, 256))[:, :3]
    pet_png = _hot(np.linspace(0, 1, 256))
    greys = np.repeat(np.linspace(0, 1, 256)[:, None], 3, axis=1)
    for label in (PRIMARY, NODE):
        colour = np.array(CLASS_COLORS[label][:3])
        for others, floor in ((pet_gui, 0.5), (pet_png, 0.5), (greys, 0.4)):
            assert np.min(np.linalg.norm(others - colour, axis=1)) >= floor, (label, colour)
    assert np.linalg.norm(np.subtract(CLASS_COLORS[PRIMARY][:3], CLASS_COLORS[NODE][:3])) >= 0.5
