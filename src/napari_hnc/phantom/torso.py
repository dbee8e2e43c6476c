"""The torso, pelvis and thighs of the whole-body phantoms (presets ``wholebody`` and ``wholebody-small``).

The head and neck stay exactly as in the other presets; the torso is drawn
with a random stream of its own, so adding it changes none of their images.
Below the neck's outline it paints the trunk (skin, fat, muscle), then, after
the head-and-neck shapes, the organs with their physiological FDG uptake
(values as usually reported): lungs (SUV 0.3-0.5), heart (myocardium 1.5-8,
blood pool 1.5-2), aorta, liver (2-2.6), spleen (1.7-2.2), kidneys (cortex
2.5-4, renal pelvis with urine 8-25), bladder (urine 10-40), the spine, the
pelvic bones and the femurs (marrow). Template coordinates as in
:mod:`.anatomy` (mm, RAS+, origin at the hard palate).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .anatomy import BLOOD, CORTEX, FAT, LUNG, MARROW, MUSCLE, SKIN, Anatomy, Builder
from .neck import SIDES

# trunk outline rows: z, cx, cy, ax, ay (mm, unscaled template), joining the neck's outline at -215
TRUNK = (
    (-1080, 0, -8, 175, 92), (-900, 0, -8, 185, 108), (-780, 0, -6, 180, 115), (-620, 0, 0, 165, 118),
    (-480, 0, 2, 168, 118), (-340, 0, -6, 182, 116), (-215, 0, -14, 195, 108),
)
#: Top of the calvarium (template mm): where the head ends.
VERTEX_Z = 155.0


def _tissue(anatomy: Anatomy, name: str, default: float) -> float:
    """The SUV the head-and-neck anatomy gave a tissue ("muscle", "subcutaneous fat"), so the trunk matches."""
    return next((float(p.suv) for p in anatomy.paints if p.name == name and p.suv is not None), default)


def add_torso(anatomy: Anatomy, rng: np.random.Generator) -> Anatomy:
    """``anatomy`` with the trunk painted before it and the thoracic, abdominal and pelvic organs after it."""
    fat, muscle = _tissue(anatomy, "subcutaneous fat", 0.4), _tissue(anatomy, "muscle", 0.8)
    before, after = Builder(anatomy.frame, rng), Builder(anatomy.frame, rng)
    before.suv.update(fat=fat, muscle=muscle, blood=after.u(1.5, 2.0), marrow=after.u(1.3, 2.2))
    after.suv.update(before.suv)
    build_trunk(before)
    build_thorax(after)
    build_abdomen(after)
    build_pelvis(after)
    f = anatomy.frame
    after.landmarks["vertex_z"] = VERTEX_Z * f.sz
    return replace(anatomy, paints=tuple(before.paints) + anatomy.paints + tuple(after.paints),
                   physiology=anatomy.physiology + tuple(after.physiology),
                   landmarks={**anatomy.landmarks, **after.landmarks})


def build_trunk(b: Builder) -> None:
    """Skin, subcutaneous fat and the muscular core of the trunk and thighs."""
    trunk = b.frame.extrusion(TRUNK)
    b.add(trunk, SKIN, 0.8, "skin")
    b.add(trunk.shrunk(2.0), FAT, b.suv["fat"], "subcutaneous fat")
    b.add(trunk.shrunk(2.0 + b.u(8.0, 25.0)), MUSCLE, b.suv["muscle"], "muscle")


def build_thorax(b: Builder) -> None:
    """Lungs, heart (myocardium around the blood pool), aorta and the thoracic spine."""
    f, blood = b.frame, b.suv["blood"]
    for x, _ in SIDES:
        b.add(f.ell((78 * x, -8, -330), (66, 82, 150), zmin=-470), LUNG, b.u(0.3, 0.5), "lung")
    myocardium = b.u(1.5, 8.0)
    heart = (-28, 34, -400)
    b.add(f.ell(heart, (52, 44, 54)), MUSCLE, myocardium, "myocardium")
    b.add(f.ell(heart, (38, 30, 40)), BLOOD, blood, "heart blood pool")
    b.hot("heart (myocardium)", heart, myocardium)
    b.add(f.line([(-12, 10, -330), (-22, -22, -380), (-18, -35, -800)], 12), BLOOD, blood, "aorta")
    b.add(f.cyl((0, -48), (17, 15), -1000, -215), CORTEX, 0.7, "vertebral column")
    b.add(f.cyl((0, -48), (14, 12), -1000, -215), MARROW, b.suv["marrow"], "vertebral marrow")
    b.landmarks.update(heart_z=heart[2] * f.sz, lung_base_z=-470.0 * f.sz)


def build_abdomen(b: Builder) -> None:
    """Liver, spleen and the kidneys with urine in their pelvis."""
    f = b.frame
    liver, spleen = b.u(2.0, 2.6), b.u(1.7, 2.2)
    b.add(f.ell((72, 12, -540), (92, 80, 78)), 60, liver, "liver")
    b.hot("liver", (72, 12, -540), liver)
    b.add(f.ell((-92, -28, -520), (34, 44, 55)), 48, spleen, "spleen")
    b.hot("spleen", (-92, -28, -520), spleen)
    for x, side in SIDES:
        cortex, urine = b.u(2.5, 4.0), b.u(8.0, 25.0)
        centre = (68 * x, -50, -640)
        b.add(f.ell(centre, (28, 24, 55)), 35, cortex, "kidney")
        b.add(f.ell((60 * x, -46, -640), (10, 8, 18)), 10, urine, "renal pelvis")
        b.hot(f"kidney {side}", centre, urine)
    b.landmarks["kidneys_z"] = -640.0 * f.sz


def build_pelvis(b: Builder) -> None:
    """Iliac bones, bladder with urine, femoral heads and shafts."""
    f, marrow = b.frame, b.suv["marrow"]
    for x, _ in SIDES:
        b.add(f.ell((100 * x, -35, -790), (42, 22, 62)), CORTEX, 0.7, "iliac bone")
        b.add(f.ell((100 * x, -35, -790), (36, 16, 56)), MARROW, marrow, "iliac marrow")
        shaft = [(95 * x, -5, -880), (92 * x, -8, -1080)]
        b.add(f.line(shaft, 15.0), CORTEX, 0.7, "femur")
        b.add(f.line(shaft, 9.0), MARROW, marrow, "femoral marrow")
    urine = b.u(10.0, 40.0)
    bladder = (0, 30, -850)
    b.add(f.ell(bladder, (45, 38, 38)), 10, urine, "bladder")
    b.hot("bladder", bladder, urine)
    b.landmarks["bladder_z"] = bladder[2] * f.sz


__all__ = ["TRUNK", "VERTEX_Z", "add_torso"]
