"""Image grids of the phantoms: realistic (``default``), fast for tests (``small``), and whole-body
(``wholebody``, ``wholebody-small``: head to mid-thigh, with the torso of :mod:`.torso`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HncError
from .shapes import Grid


@dataclass(frozen=True)
class PhantomPreset:
    """Matrix sizes and voxel spacings (mm) of the CT and PET of a phantom.

    ``pet_supersample`` splits each PET voxel in-plane when the uptake is drawn,
    so small structures are averaged into PET voxels (tissue-fraction effect).
    """

    name: str
    ct_spacing: tuple[float, float, float]
    ct_shape: tuple[int, int, int]
    pet_spacing: tuple[float, float, float]
    pet_shape: tuple[int, int, int]
    pet_supersample: int
    #: "neck": the lowest CT slice lies 5-15 mm below the sternal notch (head and neck);
    #: "vertex": the top slice lies 5-15 mm above the top of the head, with the torso below (whole body).
    placement: str = "neck"

    @property
    def whole_body(self) -> bool:
        return self.placement == "vertex"


PRESETS: dict[str, PhantomPreset] = {
    # 512 x 512 CT of 0.98 mm (50 cm field of view) and 128 x 128 PET of 4 mm, 3 mm slices
    "default": PhantomPreset("default", (0.9765625, 0.9765625, 3.0), (512, 512, 80), (4.0, 4.0, 3.0), (128, 128, 84), 2),
    # quarter-size CT of 2 mm (32 cm field of view), PET of 4 mm, for tests
    "small": PhantomPreset("small", (2.0, 2.0, 3.0), (160, 160, 80), (4.0, 4.0, 3.0), (84, 84, 84), 1),
    # whole body, head to mid-thigh (1.2 m): CT 512 x 512 x 600 of 0.98 x 0.98 x 2 mm, PET 200 x 200 x 600 of 2.5 mm
    "wholebody": PhantomPreset("wholebody", (0.9765625, 0.9765625, 2.0), (512, 512, 600), (2.5, 2.5, 2.0),
                               (200, 200, 600), 1, "vertex"),
    # the same body on 4 mm voxels (CT 128 x 128 x 300, PET of 6 x 6 x 4 mm), for tests
    "wholebody-small": PhantomPreset("wholebody-small", (4.0, 4.0, 4.0), (128, 128, 300), (6.0, 6.0, 4.0),
                                     (86, 86, 300), 1, "vertex"),
}


def get_preset(preset: str | PhantomPreset) -> PhantomPreset:
    """A preset by name (``"default"``, ``"small"``, ``"wholebody"``, ``"wholebody-small"``), or the preset itself."""
    if isinstance(preset, PhantomPreset):
        return preset
    if preset not in PRESETS:
        raise HncError(f"unknown phantom preset {preset!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[preset]


def lps_grid(shape: tuple[int, int, int], spacing: tuple[float, float, float], center_xy: tuple[float, float],
             z_top: float) -> Grid:
    """An LPS-ordered grid (as scanners write them) centred in-plane on ``center_xy``, top slice at ``z_top``.

    >>> g = lps_grid((4, 4, 3), (2.0, 2.0, 3.0), (0.0, 0.0), 10.0)
    >>> g.coords(0).tolist(), g.coords(2).tolist()
    ([3.0, 1.0, -1.0, -3.0], [4.0, 7.0, 10.0])
    """
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = (center_xy[0] + (shape[0] - 1) / 2 * spacing[0], center_xy[1] + (shape[1] - 1) / 2 * spacing[1],
                     z_top - (shape[2] - 1) * spacing[2])
    return Grid(tuple(shape), affine)  # type: ignore[arg-type]
