"""One case's anatomy: the template scaled per case, drawn in order, plus the occasional extras.

Extras that make the phantoms hard for thresholds but fair to a network that
reads the CT too: brown fat (hot, but fat on the CT), dental inflammation, and
small benign lymph nodes (soft tissue on the CT, no uptake).
"""

from __future__ import annotations

import numpy as np

from .anatomy import FAT, Anatomy, Builder, Frame, build_body, build_face, build_pharynx, build_skull_and_brain
from .neck import (NODE_LEVELS, SIDES, build_couch, build_larynx, build_shoulders, build_soft_neck, build_spine)

BROWN_FAT_PROBABILITY = 0.12
INFLAMMATION_PROBABILITY = 0.15


def build_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one case's anatomy (shapes in painting order, hot structures, landmarks)."""
    frame = Frame(float(rng.uniform(0.92, 1.08)), float(rng.uniform(0.93, 1.07)), float(rng.uniform(0.93, 1.07)))
    b = Builder(frame, rng)
    body, core = build_body(b)
    build_skull_and_brain(b)
    build_soft_neck(b)
    build_brown_fat(b)
    build_benign_nodes(b)
    build_shoulders(b)
    build_pharynx(b)
    build_larynx(b)
    build_face(b)
    build_inflammation(b)
    build_spine(b)
    build_couch(b)
    b.landmarks.update(midline_x=0.0, hard_palate_z=0.0)
    return Anatomy(frame, tuple(b.paints), body, core, tuple(b.physiology), dict(b.landmarks))


def build_brown_fat(b: Builder) -> None:
    """Occasional activated brown fat: symmetric supraclavicular and paravertebral hot spots in fat."""
    if b.rng.random() >= BROWN_FAT_PROBABILITY:
        return
    f, suv = b.frame, b.u(3.0, 8.0)
    for x, side in SIDES:
        for _ in range(int(b.rng.integers(2, 4))):
            c = (x * b.u(45, 70), b.u(-6, 14), b.u(-150, -132))
            b.add(f.ell(c, (b.u(6, 12), b.u(5, 9), b.u(5, 8))), FAT + 15, suv, "brown fat")
        c = (x * b.u(36, 44), b.u(-26, -18), b.u(-110, -75))
        b.add(f.ell(c, (5, 5, 8)), FAT + 15, suv, "brown fat")
        b.hot(f"brown fat {side}", c, suv)


def build_inflammation(b: Builder) -> None:
    """Occasional dental (periodontal) inflammation: a small hot spot by the lower teeth."""
    if b.rng.random() >= INFLAMMATION_PROBABILITY:
        return
    t = b.u(0.15, 0.85)
    arch = np.array([(-40, 35), (-24, 62), (0, 70), (24, 62), (40, 35)], float)
    pos = np.array([np.interp(t * 4, np.arange(5), arch[:, k]) for k in range(2)])
    c = (float(pos[0]) * 0.9, float(pos[1]) * 0.9, -24.0)
    suv = b.u(3.0, 6.0)
    b.add(b.frame.ell(c, (5, 5, 5)), 55, suv, "inflammation")
    b.hot("inflammation (dental)", c, suv)


def build_benign_nodes(b: Builder) -> None:
    """Two to six small benign nodes along the jugular chains (soft tissue, background uptake)."""
    f = b.frame
    levels = [k for k in NODE_LEVELS if k != "Ib"]
    for _ in range(int(b.rng.integers(2, 7))):
        (xr, yr, zr, _) = NODE_LEVELS[levels[int(b.rng.integers(len(levels)))]]
        sign = SIDES[int(b.rng.integers(2))][0]
        c = (sign * b.u(*xr), b.u(*yr), b.u(*zr))
        suv = b.u(0.8, 1.6)
        b.add(f.ell(c, (b.u(2.5, 4.0), b.u(2.5, 4.0), b.u(4.0, 7.0))), 38, suv, "benign node")
        b.hot("benign lymph node", c, suv)
