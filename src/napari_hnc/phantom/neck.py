"""The neck and shoulders of the phantom: fat spaces, muscles, glands, vessels, larynx, spine and bones.

Template coordinates in mm (see :mod:`.anatomy`): +x the patient's right,
+y anterior, +z superior, origin at the hard palate.
"""

from __future__ import annotations

import numpy as np

from .anatomy import (AIR, BLOOD, CARTILAGE, CORTEX, CSF, FAT, GLAND, LUNG, MARROW, MUSCLE, PAROTID, SOFT,
                      THYROID, Builder)
from .shapes import Extrusion

SIDES = ((-1, "left"), (1, "right"))  # sign of x in RAS: the patient's left is -x

#: Cervical lymph-node levels: |x|, y and z ranges (template mm) and how often metastases go there.
NODE_LEVELS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float], float]] = {
    "Ib": ((24, 34), (28, 40), (-58, -44), 0.10),
    "II": ((30, 40), (-4, 8), (-64, -40), 0.45),
    "III": ((32, 42), (4, 16), (-100, -64), 0.22),
    "IV": ((30, 40), (0, 12), (-138, -102), 0.10),
    "V": ((40, 50), (-30, -16), (-128, -60), 0.13),
}

# vertebral bodies: name, z bottom, z top, centre y, radii (x, y)  (template mm)
VERTEBRAE = (
    ("C2", -30, -12, -12, (9, 8)), ("C3", -48, -34, -12, (9, 8)), ("C4", -66, -52, -12, (9.5, 8)),
    ("C5", -84, -70, -12, (10, 8.5)), ("C6", -102, -88, -12, (10.5, 8.5)), ("C7", -120, -106, -13, (11, 9)),
    ("T1", -139, -124, -15, (12, 10)), ("T2", -158, -143, -19, (12.5, 10.5)), ("T3", -177, -162, -23, (13, 11)),
    ("T4", -196, -181, -27, (13, 11)), ("T5", -215, -200, -31, (13, 11)),
)


def build_soft_neck(b: Builder) -> None:
    """Fat spaces, then the muscles, glands and vessels that lie in them."""
    f, fat, muscle = b.frame, b.suv["fat"], b.suv["muscle"]
    for x, _ in SIDES:
        b.add(f.line([(30 * x, 2, -175), (34 * x, 2, -80), (35 * x, -2, -30), (37 * x, -9, -5)], 13), FAT, fat, "carotid space")
        b.add(f.line([(44 * x, -24, -40), (47 * x, -18, -110), (62 * x, -8, -152)], 10), FAT, fat, "posterior triangle")
        b.add(f.ell((27 * x, 26, -50), (13, 15, 11)), FAT, fat, "submandibular space")
        b.add(f.ell((24 * x, 6, -8), (6, 9, 15)), FAT, fat, "parapharyngeal fat")
        b.add(f.ell((58 * x, 4, -150), (32, 24, 18)), FAT, fat, "supraclavicular fat")
    canal_y = [v[3] - v[4][1] - 8 for v in VERTEBRAE]
    para = Extrusion(tuple(np.array([-215, -140, -60, 10.0]) * f.sz), (0.0,) * 4,
                     tuple(np.array([canal_y[-1] - 22, canal_y[6] - 22, canal_y[2] - 22, -48]) * f.sy),
                     tuple(np.array([70, 50, 38, 42]) * f.sx), tuple(np.array([22, 20, 18, 18]) * f.sy))
    b.add(para, MUSCLE, muscle, "paraspinal muscles")
    scm = muscle * (b.u(2.0, 3.5) / muscle if b.rng.random() < 0.08 else 1.0)
    for x, side in SIDES:
        b.add(f.line([(52 * x, -18, 8), (47 * x, 2, -50), (33 * x, 28, -120), (12 * x, 42, -158)], [8, 9, 8, 6]),
              MUSCLE, scm, "sternocleidomastoid")
        b.add(f.line([(25 * x, -14, -40), (42 * x, -8, -150)], 7), MUSCLE, muscle, "scalene")
        b.add(f.cyl((9 * x, 42), (7, 3), -140, -58), MUSCLE, muscle, "strap muscle")
        if scm != muscle:
            b.hot(f"sternocleidomastoid {side} (muscle uptake)", (47 * x, 2, -50), scm)
    build_glands(b)
    build_vessels(b)


def build_glands(b: Builder) -> None:
    """Parotid, submandibular and thyroid glands."""
    f = b.frame
    parotid, submandibular = b.u(1.5, 3.0), b.u(1.5, 3.0)
    for x, side in SIDES:
        b.add(f.ell((50 * x, -8, -5), (12, 14, 22)), PAROTID, parotid, "parotid gland")
        b.hot(f"parotid gland {side}", (50 * x, -8, -5), parotid)
        b.add(f.ell((30 * x, 22, -52), (11, 14, 10)), GLAND, submandibular, "submandibular gland")
        b.hot(f"submandibular gland {side}", (30 * x, 22, -52), submandibular)
    thyroid = b.u(1.2, 2.2)
    for x, _ in SIDES:
        b.add(f.ell((17 * x, 14, -112), (8, 9, 18)), THYROID, thyroid, "thyroid")
    b.add(f.ell((0, 25, -112), (10, 4, 5)), THYROID, thyroid, "thyroid isthmus")


def build_vessels(b: Builder) -> None:
    """Carotid arteries and internal jugular veins (blood pool)."""
    f, blood = b.frame, b.suv["blood"]
    for x, _ in SIDES:
        b.add(f.line([(22 * x, 6, -215), (23 * x, 8, -65)], 4.2), BLOOD, blood, "common carotid")
        b.add(f.line([(23 * x, 8, -65), (27 * x, 0, -20), (30 * x, -6, 12)], 3.0), BLOOD, blood, "internal carotid")
        b.add(f.line([(23 * x, 8, -65), (30 * x, 16, -25)], 2.5), BLOOD, blood, "external carotid")
        b.add(f.line([(30 * x, 2, -215), (33 * x, 1, -80), (35 * x, -4, -30), (38 * x, -12, 10)], [7, 6.5, 6, 5]),
              BLOOD, blood, "internal jugular vein")


def build_larynx(b: Builder) -> None:
    """Thyroid and cricoid cartilage, trachea, oesophagus, laryngeal air column and vocal cords."""
    f, muscle = b.frame, b.suv["muscle"]
    cartilage = CARTILAGE + b.u(-40.0, 200.0)  # partly calcified
    b.add(f.cyl((0, 0), (8, 4.5), -215, -96), MUSCLE, b.u(1.2, 2.0), "oesophagus")
    b.add(f.cyl((0, 24), (20, 15), -95, -56), cartilage, 0.8, "thyroid cartilage")
    b.add(f.cyl((0, 20), (18, 15), -95, -56), SOFT, muscle, "larynx")
    b.add(f.cyl((0, 19), (13, 13), -103, -94), cartilage, 0.8, "cricoid cartilage")
    b.add(f.cyl((0, 19), (10, 10), -103, -94), SOFT, muscle, "larynx")
    trachea = f.extrusion([(-215, 0, 4, 11.5, 11), (-103, 0, 17, 11, 10.5)])
    b.add(trachea, 120, muscle, "tracheal wall")
    air = f.extrusion([(-215, 0, 4, 9.5, 9), (-110, 0, 15, 9, 8.5), (-100, 0, 18, 8, 8), (-84, 0, 20, 6.5, 7),
                       (-80, 0, 21, 2.5, 8), (-76, 0, 21, 2.5, 8), (-72, 0, 22, 8, 7), (-55, 0, 24, 10, 8),
                       (-50, 0, 22, 8, 6)])
    b.add(air, AIR, 0.0, "larynx and trachea")
    hot = b.rng.random() < 0.4
    cords = b.u(2.0, 4.0) if hot else muscle * 1.2
    for x, _ in SIDES:
        b.add(f.ell((6.5 * x, 22, -78), (4.5, 9, 2.5)), MUSCLE, cords, "vocal cord")
    if hot:
        b.hot("vocal cords", (0, 22, -78), cords)
    b.landmarks["vocal_cords_z"] = -78.0 * f.sz


def build_spine(b: Builder) -> None:
    """Vertebral bodies (cortex, marrow), discs, arches and processes, canal and spinal cord, C1 and dens."""
    f, marrow = b.frame, b.suv["marrow"]
    knots = []
    for i, (_, z0, z1, y, (rx, ry)) in enumerate(VERTEBRAE):
        b.add(f.cyl((0, y), (rx, ry), z0, z1), CORTEX, 0.7, "vertebral body")
        b.add(f.cyl((0, y), (rx - 1.6, ry - 1.6), z0 + 1.2, z1 - 1.2), MARROW, marrow, "vertebral marrow")
        if i + 1 < len(VERTEBRAE):
            below = VERTEBRAE[i + 1]
            b.add(f.cyl((0, (y + below[3]) / 2), (rx, ry), below[2], z0), 85, b.suv["muscle"], "disc")
        canal, zc = y - ry - 8, (z0 + z1) / 2
        b.add(f.cyl((0, canal), (12.5, 11), z0 + 2, z1 + 1), CORTEX, 0.7, "vertebral arch")
        tip = canal - (26 if i in (5, 6) else 20)
        b.add(f.line([(0, canal - 8, zc), (0, tip, zc - 10)], [4, 3]), CORTEX, 0.7, "spinous process")
        for x, _ in SIDES:
            b.add(f.line([(x * (rx - 2), y - 3, zc), (x * (rx + 15), y - 5, zc)], 3.5), CORTEX, 0.7, "transverse process")
        knots.append((zc, 0.0, canal))
    for x, _ in SIDES:
        b.add(f.ell((15 * x, -12, -3), (8, 9, 7)), CORTEX, 0.7, "atlas")
        b.add(f.line([(15 * x, -20, -3), (6 * x, -42, -3), (0, -44, -3)], 3.5), CORTEX, 0.7, "atlas arch")
    b.add(f.line([(-10, 1, -3), (10, 1, -3)], 3.5), CORTEX, 0.7, "atlas arch")
    b.add(f.cyl((0, -7), (5, 5), -14, 6), CORTEX, 0.7, "dens")
    knots = sorted(knots) + [(10.0, 0.0, -28.0)]
    zs = [k[0] for k in knots]
    canal = f.extrusion([(z, 0, yc, 8, 6.5) for z, _, yc in knots])
    b.add(canal, CSF, 0.5, "spinal canal")
    cord = f.extrusion([(z, 0, yc, 5, 3.8) for z, _, yc in knots])
    b.add(cord, 35, b.u(1.4, 2.0), "spinal cord")
    b.landmarks["spine_bottom_z"] = float(min(zs)) * f.sz


def build_shoulders(b: Builder) -> None:
    """Lung apices, first ribs, clavicles, manubrium and humeral heads."""
    f, marrow = b.frame, b.suv["marrow"]
    for x, _ in SIDES:
        b.add(f.ell((52 * x, -2, -228), (45, 58, 70)), LUNG, 0.35, "lung")
    for x, _ in SIDES:
        for dz, wide in ((0, 0), (-20, 10)):
            rib = [(16 * x, -22, -130 + dz), ((50 + wide) * x, -26, -146 + dz), ((70 + wide) * x, 6, -166 + dz),
                   ((36 + wide / 2) * x, 44, -182 + dz)]
            b.add(f.line(rib, 4.5), CORTEX, 0.7, "rib")
        clavicle = [(12 * x, 42, -160), (45 * x, 46, -156), (100 * x, 26, -148), (140 * x, 0, -146)]
        b.add(f.line(clavicle, 7.0), CORTEX, 0.7, "clavicle")
        b.add(f.line(clavicle, 4.0), MARROW, marrow, "clavicle marrow")
        b.add(f.ell((172 * x, -8, -178), (24, 24, 24)), CORTEX, 0.7, "humeral head")
        b.add(f.ell((172 * x, -8, -178), (20, 20, 20)), MARROW, marrow, "humeral marrow")
    b.add(f.ell((0, 45, -200), (25, 8, 38), zmax=-163), CORTEX, 0.7, "manubrium")
    b.add(f.ell((0, 45, -200), (22, 5, 36), zmax=-165), MARROW, marrow, "manubrium marrow")
    b.landmarks["sternal_notch_z"] = -163.0 * f.sz


def build_couch(b: Builder) -> None:
    """The scanner couch under the patient (CT only; outside the body, no uptake)."""
    f = b.frame
    b.add(Extrusion.cylinder((0.0, -128.0 * f.sy), (250.0, 4.0), -1000.0, 1000.0), 200, None, "couch")
    b.add(Extrusion.cylinder((0.0, -128.0 * f.sy), (240.0, 2.0), -1000.0, 1000.0), -300, None, "couch core")
