"""The phantom's anatomy: analytic shapes painted in order (painter's algorithm), each with HU and SUV.

Coordinates are the anatomical frame of :mod:`.shapes` (mm, RAS+, origin at the
hard palate on the midline), scaled per case by :class:`Frame`. Values follow
the issue: fat SUV 0.3-0.5, muscle 0.6-1.0, blood pool 1.5-2, brain cortex
6-12, tonsils 2-5, parotid and submandibular glands 1.5-3, vocal cords
sometimes 2-4, occasional brown fat or inflammation.

The head (skull, brain, face, oral cavity) is built here; the neck, spine,
larynx and shoulders in :mod:`.neck`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from .shapes import Capsule, Ellipsoid, Extrusion, polyline

#: Painted HU at or above this is hard tissue (bone, teeth, cartilage): lesions never replace it.
HARD_HU = 180
#: Lesions stay at least this far under the skin.
LESION_DEPTH_MM = 5.0

# Hounsfield units of the tissues (noise is added later)
AIR, LUNG, FAT, CSF, SOFT, MUSCLE, SKIN = -1000, -840, -95, 8, 38, 50, 30
BLOOD, GLAND, PAROTID, THYROID, TONSIL, GREY, WHITE = 40, 42, -5, 95, 42, 40, 30
CARTILAGE, MARROW, CORTEX, SKULL, TEETH = 230, 260, 900, 1250, 2300


@dataclass(frozen=True)
class Paint:
    """One step of the painter's algorithm: ``shape`` gets ``hu`` in the CT and ``suv`` in the PET."""

    shape: Any
    hu: float
    suv: float | None  # None: drawn in the CT only (the scanner couch)
    name: str = ""

    @property
    def hard(self) -> bool:
        return self.hu >= HARD_HU

    @cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.shape.bounds()


@dataclass(frozen=True)
class Frame:
    """Per-case scaling of the anatomical template (left-right, antero-posterior, cranio-caudal)."""

    sx: float = 1.0
    sy: float = 1.0
    sz: float = 1.0

    def p(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        return (x * self.sx, y * self.sy, z * self.sz)

    def r(self, rx: float, ry: float, rz: float) -> tuple[float, float, float]:
        return (rx * self.sx, ry * self.sy, rz * self.sz)

    def ell(self, c: Sequence[float], r: Sequence[float], zmin: float = -np.inf, zmax: float = np.inf) -> Ellipsoid:
        return Ellipsoid(self.p(*c), self.r(*r), zmin * self.sz, zmax * self.sz)

    def line(self, points: Sequence[Sequence[float]], radius: float | Sequence[float]) -> list[Capsule]:
        return polyline([self.p(*q) for q in points], radius)

    def cyl(self, c: Sequence[float], r: Sequence[float], z0: float, z1: float) -> Extrusion:
        return Extrusion.cylinder((c[0] * self.sx, c[1] * self.sy), (r[0] * self.sx, r[1] * self.sy), z0 * self.sz, z1 * self.sz)

    def extrusion(self, table: Sequence[Sequence[float]]) -> Extrusion:
        """From rows ``(z, cx, cy, ax, ay)``."""
        t = np.asarray(table, float)
        return Extrusion(tuple(t[:, 0] * self.sz), tuple(t[:, 1] * self.sx), tuple(t[:, 2] * self.sy),
                         tuple(t[:, 3] * self.sx), tuple(t[:, 4] * self.sy))


@dataclass
class Builder:
    """Collects paints, hot structures and landmarks while the anatomy is drawn."""

    frame: Frame
    rng: np.random.Generator
    paints: list[Paint] = field(default_factory=list)
    physiology: list[dict[str, Any]] = field(default_factory=list)
    landmarks: dict[str, float] = field(default_factory=dict)
    suv: dict[str, float] = field(default_factory=dict)  # shared tissue uptake of this case

    def add(self, shapes: Any, hu: float, suv: float | None, name: str = "") -> None:
        for shape in shapes if isinstance(shapes, list) else [shapes]:
            self.paints.append(Paint(shape, hu, suv, name))

    def hot(self, name: str, center: Sequence[float], suv: float) -> None:
        """Record a structure with physiological uptake (for the JSON and the tests)."""
        self.physiology.append({"name": name, "center": self.frame.p(*center), "suv": float(suv)})

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))


@dataclass(frozen=True)
class Anatomy:
    """Everything drawn for one case, in the anatomical frame."""

    frame: Frame
    paints: tuple[Paint, ...]
    body: Extrusion
    core: Extrusion  # the body less its outer LESION_DEPTH_MM: where lesions may lie
    physiology: tuple[dict[str, Any], ...]
    landmarks: dict[str, float]

    @cached_property
    def _bounds(self) -> np.ndarray:
        return np.array([np.concatenate(p.bounds) for p in self.paints])

    def paints_touching(self, lo: np.ndarray, hi: np.ndarray) -> list[Paint]:
        """The paints (in order) whose bounds meet the box ``[lo, hi]`` (anatomical mm)."""
        b = self._bounds
        hit = np.all(b[:, :3] <= np.asarray(hi), axis=1) & np.all(b[:, 3:] >= np.asarray(lo), axis=1)
        return [self.paints[i] for i in np.flatnonzero(hit)]


# body outline rows: z, cx, cy, ax, ay (mm, unscaled template)
BODY = (
    (-215, 0, -14, 195, 108), (-170, 0, -12, 188, 100), (-155, 0, -9, 168, 90), (-140, 0, -7, 118, 75),
    (-125, 0, -6, 70, 62), (-110, 0, -6, 60, 58), (-75, 0, -4, 58, 60), (-55, 0, 8, 60, 70), (-40, 0, 16, 65, 80),
    (-20, 0, 14, 70, 87), (0, 0, 10, 71, 92), (20, 0, 7, 73, 94), (50, 0, 5, 75, 95), (80, 0, 4, 75, 94),
    (110, 0, 3, 72, 90), (140, 0, 3, 60, 76),
)


def build_body(b: Builder) -> tuple[Extrusion, Extrusion]:
    """Skin, subcutaneous fat and the muscular core; returns the outline and where lesions may lie."""
    f = b.frame
    body = f.extrusion(BODY)
    neck_fat = b.u(3.0, 12.0)
    fat = np.interp(body.z, [-215 * f.sz, -150 * f.sz, -60 * f.sz, 10 * f.sz, 140 * f.sz],
                    [neck_fat + 12, neck_fat + 4, neck_fat, 3.0, 3.0])
    subcut, core = body.shrunk(2.0), body.shrunk(2.0 + fat)
    b.suv.update(fat=b.u(0.3, 0.5), muscle=b.u(0.6, 1.0), blood=b.u(1.5, 2.0), marrow=b.u(1.3, 2.2))
    b.add(body, SKIN, 0.8, "skin")
    b.add(subcut, FAT, b.suv["fat"], "subcutaneous fat")
    b.add(core, MUSCLE, b.suv["muscle"], "muscle")
    return body, body.shrunk(LESION_DEPTH_MM)


def build_skull_and_brain(b: Builder) -> None:
    """Calvarium, occipital bone and skull base; brain with a grey-matter rim, cerebellum, deep nuclei, brainstem."""
    f, grey = b.frame, b.u(6.0, 12.0)
    white = grey / b.u(2.4, 3.2)
    b.add(f.ell((0, 4, 60), (70, 89, 95), zmin=26), SKULL, 0.6, "calvarium")
    b.add(f.ell((0, -25, 45), (62, 60, 40), zmin=12), SKULL, 0.6, "occipital bone")
    for x in (-1, 1):
        b.add(f.ell((48 * x, -22, 16), (10, 12, 10)), 700, 0.6, "mastoid")
    spaces = [((0, 4, 60), (63.5, 82.5, 88.5), 56.0), ((0, -12, 52), (62, 64, 38), -np.inf)]
    for c, r, zmin in spaces:
        b.add(f.ell(c, r, zmin=zmin), GREY, grey, "cortex")
    for c, r, zmin in spaces:
        b.add(f.ell(c, tuple(v - 6.0 for v in r), zmin=zmin + 6.0), WHITE, white, "white matter")
    for x in (-1, 1):
        b.add(f.ell((22 * x, -50, 34), (26, 22, 18)), GREY, grey * 0.85, "cerebellum")
        b.add(f.ell((22 * x, -46, 36), (11, 9, 8)), WHITE, white, "cerebellar white matter")
        b.add(f.ell((17 * x, 6, 78), (8, 13, 10)), GREY, grey, "basal ganglia")
        b.add(f.ell((22 * x, 10, 44), (6, 30, 4)), CSF, 0.5, "sylvian fissure")
    b.add(f.line([(0, -22, 80), (0, -27, 20)], [13, 11]), WHITE, grey * 0.45, "brainstem")
    b.add(f.ell((0, -34, 38), (4, 6, 8)), CSF, 0.4, "fourth ventricle")
    b.hot("brain cortex", (0, 2, 60), grey)
    b.landmarks["skull_base_z"] = 16.0 * f.sz


def build_face(b: Builder) -> None:
    """Orbits, nose, paranasal sinuses, palate, teeth, mandible, tongue and the chewing muscles."""
    f = b.frame
    b.add(f.ell((0, 56, 18), (40, 26, 18), zmin=0), 700, 0.6, "maxilla")
    b.add(f.ell((0, 50, 46), (11, 18, 12)), -600, 0.0, "ethmoid cells")
    for x in (-32, 32):
        b.add(f.line([(x * 1.75, 42, 22), (x * 1.9, 0, 16)], 4.0), 900, 0.6, "zygomatic arch")
        b.add(f.ell((x, 60, 45), (17, 22, 16)), FAT, b.suv["fat"], "orbital fat")
        b.add(f.ell((x, 68, 45), (12, 12, 12)), 12, 0.4, "eye")
        b.add(f.ell((x, 79, 45), (4, 1.8, 4)), 90, 0.4, "lens")
        b.add(f.ell((x, 55, 22), (13, 17, 15)), AIR, 0.0, "maxillary sinus")
        b.add(f.ell((x * 1.3, 40, -6), (11, 14, 17)), FAT, b.suv["fat"], "buccal fat")
        b.add(f.ell((x * 1.25, 18, 16), (12, 15, 12)), MUSCLE, b.suv["muscle"], "lateral pterygoid")
    b.add(f.ell((0, 98, 28), (12, 15, 22)), SKIN, 0.8, "nose")
    b.add(f.ell((0, 58, 24), (10, 30, 22)), AIR, 0.0, "nasal cavity")
    b.add(f.ell((0, 64, 27), (1.3, 24, 22)), 400, 0.6, "septum")
    b.add(f.ell((0, 30, 45), (14, 12, 11)), AIR, 0.0, "sphenoid sinus")
    b.add(f.line([(0, 38, 50), (0, 6, 8)], [7, 6]), SKULL, 0.6, "clivus")
    b.add(f.ell((0, 48, 1), (24, 30, 3.5)), 650, 0.6, "hard palate")
    arch = [(-30, 25), (-28, 50), (-15, 68), (0, 72), (15, 68), (28, 50), (30, 25)]
    b.add(f.line([(x, y, -3) for x, y in arch], 5.0), TEETH, 0.6, "upper teeth")
    b.add(f.ell((0, 42, -22), (25, 31, 17)), MUSCLE + 5, b.u(0.9, 1.6), "tongue")
    for x in (-1, 1):
        b.add(f.ell((54 * x, 16, -18), (7, 14, 22)), MUSCLE, b.suv["muscle"], "masseter")
        b.add(f.ell((36 * x, 8, -15), (6, 10, 18)), MUSCLE, b.suv["muscle"], "medial pterygoid")
    build_mandible(b)


def build_mandible(b: Builder) -> None:
    """U-shaped mandibular body (cortex and marrow), rami, condyles, lower teeth and the hyoid."""
    f = b.frame
    arch = [(-46, 0), (-40, 35), (-24, 62), (0, 70), (24, 62), (40, 35), (46, 0)]
    for radius, hu, suv in ((6.0, 1150, 0.6), (3.2, 420, b.suv["marrow"] * 0.6)):
        for z in (-42, -31):
            b.add(f.line([(x, y, z) for x, y in arch], radius), hu, suv, "mandible")
        for x in (-1, 1):
            b.add(f.line([(46 * x, 0, -40), (48 * x, -3, 4)], radius), hu, suv, "ramus")
    for x in (-1, 1):
        b.add(f.ell((48 * x, -5, 8), (7, 7, 6)), 900, 0.6, "condyle")
    b.add(f.line([(x, y, -20) for x, y in arch[1:-1]], 4.5), TEETH, 0.6, "lower teeth")
    hyoid = [(-20, 28), (-12, 40), (0, 43), (12, 40), (20, 28)]
    b.add(f.line([(x, y, -52) for x, y in hyoid], 2.8), 700, 0.6, "hyoid")
    b.landmarks["mandible_z"] = -36.0 * f.sz


def build_pharynx(b: Builder) -> None:
    """Pharyngeal mucosa with Waldeyer's ring (palatine and lingual tonsils, adenoid) and the air column."""
    f = b.frame
    mucosa = f.extrusion([(-100, 0, 6, 12, 6), (-70, 0, 7, 20, 8), (-45, 0, 12, 17, 10), (-10, 0, 13, 16, 10),
                          (5, 0, 18, 16, 11), (28, 0, 22, 16, 12)])
    b.add(mucosa, SOFT, b.u(1.2, 2.0), "pharyngeal mucosa")
    tonsil = b.u(3.0, 5.0)
    for x, side in ((-1, "left"), (1, "right")):
        suv = tonsil * b.u(0.85, 1.15)
        b.add(f.ell((15 * x, 13, -22), (7, 9, 13)), TONSIL, suv, "palatine tonsil")
        b.hot(f"palatine tonsil {side}", (17 * x, 13, -22), suv)
    lingual = b.u(1.5, 3.5)
    b.add(f.ell((0, 21, -37), (14, 6, 8)), TONSIL, lingual, "lingual tonsil")
    b.hot("lingual tonsil", (0, 21, -37), lingual)
    adenoid = b.u(1.2, 3.0)
    b.add(f.ell((0, 11, 16), (12, 5, 9)), TONSIL, adenoid, "adenoid")
    b.hot("adenoid", (0, 11, 16), adenoid)
    air = f.extrusion([(-98, 0, 6, 4, 1.5), (-90, 0, 6, 10, 2.5), (-70, 0, 7, 16, 4), (-55, 0, 10, 15, 6),
                       (-45, 0, 12, 12, 6.5), (-10, 0, 14, 11, 5.5), (5, 0, 19, 12, 7), (26, 0, 23, 12, 8)])
    b.add(air, AIR, 0.0, "pharynx")
