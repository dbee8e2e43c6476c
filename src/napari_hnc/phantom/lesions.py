"""Primary tumours and lymph-node metastases: irregular star-shaped solids with uptake patterns.

Volumes and sites follow the cohort of Nikulin et al. 2023 (``shared/seeds/004``):
primary median 8.2 ml (2-60 ml here), node median 2.7 ml (0.3-15 ml), about 1.5
nodes per patient, primaries mostly oropharyngeal, then laryngeal, hypopharyngeal
and oral. The SUVmax drawn here is a *target*: the PET is calibrated so that the
SUVmax measured in the written image lands on it (see :mod:`.render`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from ..conventions import NODE, PRIMARY
from .anatomy import Anatomy, Frame
from .neck import NODE_LEVELS

#: Primary sites: template centre (|x|, y, z in mm) and frequency.
PRIMARY_SITES: dict[str, tuple[tuple[float, float, float], float]] = {
    "oropharynx (tonsil)": ((15, 13, -22), 0.40),
    "oropharynx (base of tongue)": ((5, 20, -38), 0.28),
    "larynx (supraglottis)": ((5, 22, -64), 0.10),
    "larynx (glottis)": ((6, 22, -79), 0.08),
    "hypopharynx (piriform sinus)": ((13, 9, -74), 0.07),
    "oral cavity (tongue)": ((12, 45, -18), 0.04),
    "oral cavity (floor of mouth)": ((10, 50, -34), 0.03),
}
#: Probability of 0, 1, ... 5 nodal metastases (mean about 1.5 per patient).
NODE_COUNT_P = (0.30, 0.25, 0.20, 0.12, 0.08, 0.05)
GAP_MM = 4.0  # least distance between the bounding spheres of two lesions

_DIRECTIONS_N = 2048


def _fibonacci_sphere(n: int = _DIRECTIONS_N) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi, z = np.pi * (1 + 5**0.5) * i, 1 - 2 * i / n
    r = np.sqrt(1 - z**2)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


_DIRECTIONS = _fibonacci_sphere()


@dataclass(frozen=True)
class Star:
    """A lobulated ellipsoid: points whose normalised radius ``rho / f(u)`` is at most 1.

    ``rho`` is the distance from ``center`` in the rotated frame scaled by ``axes``;
    ``f(u) = 1 + sum(a * exp(k * (u . v - 1)))`` adds lobes in directions ``v``.
    """

    center: tuple[float, float, float]
    axes: tuple[float, float, float]
    rotation: tuple[float, ...]  # 3x3, row-major; columns are the local axes in the anatomical frame
    lobes: tuple[tuple[float, float, float, float, float], ...]  # (vx, vy, vz, amplitude, sharpness)

    def _f(self, u: np.ndarray) -> np.ndarray:
        out = np.ones(u.shape[:-1], np.float32)
        for vx, vy, vz, a, k in self.lobes:
            out += np.float32(a) * np.exp(np.float32(k) * (u[..., 0] * vx + u[..., 1] * vy + u[..., 2] * vz - 1))
        return out

    @property
    def bounding_radius(self) -> float:
        """Radius of a sphere about ``center`` that holds the shape (largest lobe, with a margin)."""
        return float(max(self.axes) * float(self._f(_DIRECTIONS.astype(np.float32)).max()) * 1.05)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(self.center, float)
        return c - self.bounding_radius, c + self.bounding_radius

    def volume_ml(self) -> float:
        """Volume of the continuous shape (quadrature over directions), in ml."""
        f3 = float(np.mean(self._f(_DIRECTIONS.astype(np.float32)) ** 3))
        return float(np.prod(self.axes)) * f3 * 4.0 / 3.0 * np.pi / 1000.0

    def radius_ratio(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``rho / f(u)``: below 1 inside, 0 at the centre."""
        rot = np.asarray(self.rotation, np.float32).reshape(3, 3)
        d = (x - self.center[0], y - self.center[1], z - self.center[2])
        q = np.stack(np.broadcast_arrays(*[sum(rot[j, k] * d[j] for j in range(3)) / self.axes[k] for k in range(3)]), -1)
        rho = np.sqrt((q**2).sum(-1)) + np.float32(1e-6)
        return rho / self._f(q / rho[..., None])

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self.radius_ratio(x, y, z) <= 1.0


@dataclass(frozen=True)
class LesionSpec:
    """One lesion to draw: its shape, class, site and the look it gets in CT and PET."""

    label: int
    site: str
    side: str
    shape: Star
    target_suvmax: float
    core: float  # necrotic core: normalised radius below which tissue is necrotic (0: none)
    hu: float
    necrosis_hu: float
    necrosis_suv: float
    edge_drop: float  # viable uptake falls by this fraction from the centre to the edge
    texture: tuple[tuple[float, float, float, float, float], ...]  # (wx, wy, wz, phase, amplitude)

    @property
    def kind(self) -> str:
        return "primary" if self.label == PRIMARY else "node"

    def pattern(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inside, viable relative uptake, necrotic) on a box."""
        r = self.shape.radius_ratio(x, y, z)
        inside, necrotic = r <= 1.0, r <= self.core
        dx, dy, dz = x - self.shape.center[0], y - self.shape.center[1], z - self.shape.center[2]
        uptake = 1.0 - np.float32(self.edge_drop) * r**2
        for wx, wy, wz, phase, amp in self.texture:
            uptake = uptake + np.float32(amp) * np.cos(wx * dx + wy * dy + wz * dz + np.float32(phase))
        return inside, np.where(inside & ~necrotic, uptake, 0).astype(np.float32), necrotic & inside


def truncated_lognormal(rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float) -> float:
    """A log-normal draw truncated to [lo, hi] whose *truncated* median is ``median``."""
    mu = np.log(median)
    for _ in range(20):  # shift mu until the median of the truncated law is on target
        a, b = ndtr((np.log(lo) - mu) / sigma), ndtr((np.log(hi) - mu) / sigma)
        mu += np.log(median) - (mu + sigma * ndtri((a + b) / 2))
    a, b = ndtr((np.log(lo) - mu) / sigma), ndtr((np.log(hi) - mu) / sigma)
    return float(np.exp(mu + sigma * ndtri(rng.uniform(a, b))))


def _rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    out = np.eye(3)
    for axis, angle in enumerate(rng.uniform(-max_angle, max_angle, 3)):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        rot = np.eye(3)
        rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
        out = out @ rot
    return out


def make_star(rng: np.random.Generator, center: Sequence[float], volume_ml: float, elongation: Sequence[float],
              n_lobes: int, amplitude: tuple[float, float], max_angle: float) -> Star:
    """A star shape of the requested volume (ml)."""
    dirs = rng.normal(size=(n_lobes, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    lobes = tuple((*map(float, d), float(rng.uniform(*amplitude)), float(rng.uniform(2.0, 7.0))) for d in dirs)
    rotation = tuple(float(v) for v in _rotation(rng, max_angle).ravel())
    unit = Star(tuple(map(float, center)), tuple(float(e) for e in elongation), rotation, lobes)  # type: ignore[arg-type]
    scale = (volume_ml / unit.volume_ml()) ** (1.0 / 3.0)
    return Star(unit.center, tuple(float(e * scale) for e in elongation), rotation, lobes)  # type: ignore[arg-type]


def _texture(rng: np.random.Generator, amplitude: float) -> tuple[tuple[float, float, float, float, float], ...]:
    waves = []
    for _ in range(3):
        w = rng.normal(size=3)
        w *= 2 * np.pi / rng.uniform(8.0, 20.0) / np.linalg.norm(w)
        waves.append((*map(float, w), float(rng.uniform(0, 2 * np.pi)), float(amplitude * rng.uniform(0.5, 1.0))))
    return tuple(waves)  # type: ignore[return-value]


def sample_primary(rng: np.random.Generator, frame: Frame) -> LesionSpec:
    names = list(PRIMARY_SITES)
    site = names[int(rng.choice(len(names), p=[PRIMARY_SITES[n][1] for n in names]))]
    sign = 1 if rng.random() < 0.5 else -1
    (x, y, z), _ = PRIMARY_SITES[site]
    center = frame.p(sign * x + rng.uniform(-3, 3), y + rng.uniform(-3, 3), z + rng.uniform(-3, 3))
    volume = truncated_lognormal(rng, 8.2, 0.98, 2.0, 60.0)
    shape = make_star(rng, center, volume, (1.0, rng.uniform(0.75, 1.25), rng.uniform(0.8, 1.5)),
                      int(rng.integers(3, 7)), (-0.2, 0.45), 0.5)
    necrotic = rng.random() < 0.1 + 0.5 * np.clip((volume - 5.0) / 35.0, 0.0, 1.0)
    return LesionSpec(PRIMARY, site, "right" if sign > 0 else "left", shape,
                      truncated_lognormal(rng, 11.0, 0.4, 5.0, 25.0), float(rng.uniform(0.35, 0.6)) if necrotic else 0.0,
                      float(rng.uniform(42, 58)), float(rng.uniform(10, 25)), float(rng.uniform(0.6, 1.5)),
                      float(rng.uniform(0.2, 0.45)), _texture(rng, 0.1))


def sample_node(rng: np.random.Generator, frame: Frame, primary_side: str, level: str | None = None) -> LesionSpec:
    names = list(NODE_LEVELS)
    if level is None:
        level = names[int(rng.choice(len(names), p=[NODE_LEVELS[n][3] for n in names]))]
    xr, yr, zr, _ = NODE_LEVELS[level]
    same = rng.random() < 0.8
    side = primary_side if same else ("left" if primary_side == "right" else "right")
    sign = 1 if side == "right" else -1
    center = frame.p(sign * rng.uniform(*xr), rng.uniform(*yr), rng.uniform(*zr))
    # drawn around 3.9 ml: large nodes fit the neck less often, so the nodes placed keep a median near 2.7 ml
    volume = truncated_lognormal(rng, 3.9, 1.17, 0.3, 15.0)
    shape = make_star(rng, center, volume, (1.0, rng.uniform(0.8, 1.1), rng.uniform(1.2, 1.7)), 2, (-0.05, 0.15), 0.3)
    target = truncated_lognormal(rng, 4.3, 0.45, 2.6, 15.0)
    necrotic = volume > 2.0 and rng.random() < 0.25
    return LesionSpec(NODE, f"level {level}", side, shape, target, float(rng.uniform(0.3, 0.55)) if necrotic else 0.0,
                      float(rng.uniform(35, 48)), float(rng.uniform(10, 25)), float(rng.uniform(0.6, 1.2)),
                      float(rng.uniform(0.1, 0.3)), _texture(rng, 0.05))


def sample_lesions(rng: np.random.Generator, anatomy: Anatomy) -> list[LesionSpec]:
    """One primary and 0-5 nodes that keep clear of each other and of the benign nodes."""
    primary = sample_primary(rng, anatomy.frame)
    lesions = [primary]
    benign = [np.asarray(h["center"]) for h in anatomy.physiology if h["name"] == "benign lymph node"]
    for _ in range(int(rng.choice(len(NODE_COUNT_P), p=NODE_COUNT_P))):
        for _attempt in range(40):
            node = _inside_neck(sample_node(rng, anatomy.frame, primary.side), anatomy)
            if node is not None and _clear(node.shape, lesions, benign) and not _touches_bone(node.shape, anatomy):
                lesions.append(node)
                break
    return lesions


def _inside_neck(node: LesionSpec, anatomy: Anatomy, depth_factor: float = 0.8) -> LesionSpec | None:
    """The node moved towards the midline until it lies under the skin (None when it cannot)."""
    star = node.shape
    depth = float(np.cbrt(star.volume_ml() * 3000.0 / (4 * np.pi)))  # equivalent radius
    c = np.asarray(star.center, float)
    for _ in range(12):
        if bool(anatomy.core.shrunk(depth_factor * depth).inside(*(np.float32(v) for v in c))):
            return replace(node, shape=replace(star, center=tuple(float(v) for v in c)))
        c[0] *= 0.93
    return None


def _surface(star: Star, grow_mm: float) -> np.ndarray:
    """Points on the surface of ``star`` pushed ``grow_mm`` outwards (anatomical mm)."""
    u = _DIRECTIONS[::4].astype(np.float32)
    local = u * star._f(u)[:, None] * np.asarray(star.axes, np.float32)
    local += grow_mm * u
    return local @ np.asarray(star.rotation, np.float32).reshape(3, 3).T + np.asarray(star.center, np.float32)


def _touches_bone(star: Star, anatomy: Anatomy) -> bool:
    """True when the shape (grown 1 mm) reaches into bone or cartilage."""
    p = _surface(star, 1.0)
    lo, hi = p.min(axis=0), p.max(axis=0)
    return any(np.any(paint.shape.inside(p[:, 0], p[:, 1], p[:, 2]))
               for paint in anatomy.paints_touching(lo, hi) if paint.hard)


def _clear(star: Star, lesions: list[LesionSpec], benign: list[np.ndarray]) -> bool:
    """True when ``star`` keeps GAP_MM from every lesion (both ways) and from the benign nodes."""
    for other in lesions:
        o = other.shape
        if np.linalg.norm(np.subtract(star.center, o.center)) > star.bounding_radius + o.bounding_radius + GAP_MM:
            continue
        for a, b in ((star, o), (o, star)):
            p = _surface(a, GAP_MM)
            if np.any(b.radius_ratio(p[:, 0], p[:, 1], p[:, 2]) <= 1.0):
                return False
    return all(np.linalg.norm(np.asarray(star.center) - c) > star.bounding_radius + 8.0 for c in benign)


# --------------------------------------------------------------------------- hard cases

#: The hard configurations a case may be drawn as, and how often each.
HARD_KINDS: dict[str, float] = {"node chain": 0.45, "node on the primary": 0.3, "necrotic nodal mass": 0.25}
#: Touching lesions overlap by this much (mm) where they meet, so their labels touch on the CT grid.
TOUCH_OVERLAP_MM = 3.0


def sample_hard_lesions(rng: np.random.Generator, anatomy: Anatomy, lesions: list[LesionSpec],
                        kind: str | None = None) -> tuple[list[LesionSpec], str]:
    """The case redrawn as a hard one: touching nodes along a chain, a node on the primary, or a large necrotic mass.

    The primary is kept; the new nodes replace the case's nodes, and those of
    its nodes that keep clear of them are added back. Returns the lesions and the
    kind drawn (``kind`` forces one of :data:`HARD_KINDS`).
    """
    names = list(HARD_KINDS)
    kind = kind or names[int(rng.choice(len(names), p=list(HARD_KINDS.values())))]
    primary = lesions[0]
    benign = [np.asarray(h["center"]) for h in anatomy.physiology if h["name"] == "benign lymph node"]
    if kind == "necrotic nodal mass":
        hard = _nodal_mass(rng, anatomy, primary, benign)
    elif kind == "node on the primary":
        hard = _chain(rng, anatomy, primary, benign, count=1, on_primary=True)
    else:
        hard = _chain(rng, anatomy, primary, benign, count=int(rng.integers(2, 5)), on_primary=rng.random() < 0.5)
    if not hard:
        return lesions, "none"
    out = [primary] + hard
    for node in lesions[1:]:
        if _clear(node.shape, out, benign):
            out.append(node)
    return out, kind


def _chain(rng, anatomy: Anatomy, primary: LesionSpec, benign, count: int, on_primary: bool) -> list[LesionSpec]:
    """``count`` nodes down the jugular chain on the primary's side, each touching the one above (and the first the primary)."""
    nodes: list[LesionSpec] = []
    for number in range(count):
        level = ("II", "III", "III", "IV")[min(number, 3)]
        for _ in range(40):
            node = sample_node(rng, anatomy.frame, primary.side, level)
            node = replace(node, side=primary.side)
            if number == 0 and not on_primary:
                placed = _inside_neck(node, anatomy)
                neighbours: list[LesionSpec] = []
            else:
                anchor = primary if number == 0 else nodes[-1]
                direction = _downwards(rng) if number else rng.normal(size=3)
                placed = _touching(node, anchor, direction, anatomy)
                neighbours = [anchor]
            others = [primary] + nodes
            if placed is not None and _clear(placed.shape, [o for o in others if o not in neighbours], benign) \
                    and not _touches_bone(placed.shape, anatomy):
                nodes.append(placed)
                break
        else:
            break
    return nodes if len(nodes) >= (1 if on_primary else 2) else []  # something touches something


def _nodal_mass(rng, anatomy: Anatomy, primary: LesionSpec, benign) -> list[LesionSpec]:
    """One large nodal conglomerate (30-120 ml) with a necrotic core, at level II or III."""
    for _ in range(60):
        node = sample_node(rng, anatomy.frame, primary.side, ("II", "III")[int(rng.integers(0, 2))])
        volume = truncated_lognormal(rng, 55.0, 0.45, 30.0, 120.0)
        shape = make_star(rng, node.shape.center, volume, (1.0, rng.uniform(0.85, 1.1), rng.uniform(1.1, 1.4)), 3,
                          (-0.1, 0.2), 0.3)
        mass = replace(node, side=primary.side, shape=shape, core=float(rng.uniform(0.55, 0.75)),
                       target_suvmax=truncated_lognormal(rng, 9.0, 0.35, 5.0, 18.0),
                       necrosis_suv=float(rng.uniform(0.4, 1.0)), necrosis_hu=float(rng.uniform(10, 25)))
        mass = _inside_neck(mass, anatomy, 0.5)  # bone and skin trim its edge when it is drawn
        if mass is not None and _clear(mass.shape, [primary], benign):
            return [mass]
    return []


def _downwards(rng) -> np.ndarray:
    return np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), -1.0])


def _touching(node: LesionSpec, anchor: LesionSpec, direction, anatomy: Anatomy) -> LesionSpec | None:
    """``node`` moved along ``direction`` from ``anchor``'s centre until it just touches it (None outside the neck)."""
    a, b = anchor.shape, node.shape
    d = np.asarray(direction, float)
    d = d / (np.linalg.norm(d) or 1.0)
    start = np.asarray(a.center, float)
    lo, hi = 0.0, a.bounding_radius + b.bounding_radius + 5.0
    for _ in range(30):  # the nearest position at which the node, shrunk by the overlap, is clear of the anchor
        t = 0.5 * (lo + hi)
        p = _surface(replace(b, center=tuple(start + t * d)), -TOUCH_OVERLAP_MM)
        if np.any(a.radius_ratio(p[:, 0], p[:, 1], p[:, 2]) <= 1.0):
            lo = t
        else:
            hi = t
    placed = replace(node, shape=replace(b, center=tuple(float(v) for v in start + hi * d)))
    depth = float(np.cbrt(b.volume_ml() * 3000.0 / (4 * np.pi)))
    centre = np.asarray(placed.shape.center, np.float32)
    return placed if bool(anatomy.core.shrunk(0.8 * depth).inside(*centre)) else None
