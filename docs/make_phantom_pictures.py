"""Make the phantom pictures of docs/phantom.md (no screen needed).

    python docs/make_phantom_pictures.py [--seed 15] [--out docs/images]

Writes ``phantom_pet_mip.png`` (coronal PET maximum-intensity projection) and
``phantom_fused_axial.png`` (axial CT + PET + label outlines through the primary
tumour) for one case of the ``default`` preset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_hnc.display import fused_slice, pet_mip, save_picture
from napari_hnc.phantom import generate_case

HERE = Path(__file__).resolve().parent


def crop_to_body(rgb: np.ndarray, margin: int = 12) -> np.ndarray:
    """The picture cut to the largest bright region (the body) and a margin."""
    regions, _ = ndimage.label(rgb.max(axis=-1) > 0.1)
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    rows, cols = np.nonzero(regions == np.argmax(sizes))
    return rgb[max(rows.min() - margin, 0):rows.max() + margin, max(cols.min() - margin, 0):cols.max() + margin]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--out", type=Path, default=HERE / "images")
    args = parser.parse_args()
    case = generate_case(args.seed, "default")
    primary = case.lesions[0]
    nodes = ", ".join(f"{n.site} {n.side} {n.volume_ml:.1f} ml SUVmax {n.suvmax:.1f}" for n in case.lesions[1:])
    rgb, pixel = pet_mip(case.study, plane="coronal", pet_max=12.0)
    mip = save_picture(rgb, pixel, args.out / "phantom_pet_mip.png", title=f"{case.case_id}: coronal PET MIP (SUV 0-12)")
    rgb, pixel = fused_slice(case.study, world_point=primary.suvmax_point, plane="axial")
    rgb = crop_to_body(rgb)
    fused = save_picture(rgb, pixel, args.out / "phantom_fused_axial.png",
                         title=f"{case.case_id}: primary ({primary.site}, {primary.volume_ml:.1f} ml, "
                               f"SUVmax {primary.suvmax:.1f}) in green")
    print(f"{case.case_id}: primary {primary.site} {primary.side} {primary.volume_ml:.1f} ml SUVmax "
          f"{primary.suvmax:.1f}; nodes: {nodes or 'none'}")
    print(f"wrote {mip} and {fused}")


if __name__ == "__main__":
    main()
