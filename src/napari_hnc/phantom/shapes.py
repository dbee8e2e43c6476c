"""Analytic shapes and their rasterisation on axis-aligned grids, one bounding box at a time.

Shapes live in the phantom's *anatomical* frame: millimetres, RAS+ axes (+x the
patient's right, +y anterior, +z superior), origin at the hard palate on the
midline. A :class:`Grid` maps its voxel indices into that frame with a diagonal
(possibly flipped) affine, so the world coordinates of a box are three 1D
vectors and every shape is evaluated on an open (broadcast) grid, inside its own
bounding box only.

Examples
--------
>>> import numpy as np
>>> affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS voxel order, 1 mm
>>> affine[:3, 3] = (20.0, 20.0, -20.0)
>>> grid = Grid((40, 40, 40), affine)
>>> ball = Ellipsoid((0, 0, 0), (10, 10, 10))
>>> volume = sum(int(mask.sum()) for _, mask in rasterize(grid, ball))
>>> abs(volume / (4 / 3 * np.pi * 1000) - 1) < 0.02
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

Box = tuple[slice, slice, slice]
INF = float("inf")


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid whose affine (index -> anatomical mm) is diagonal."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    step: np.ndarray = field(init=False, repr=False)
    origin: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        off_diagonal = self.affine[:3, :3] - np.diag(np.diag(self.affine[:3, :3]))
        if np.abs(off_diagonal).max() > 1e-9:
            raise ValueError("phantom grids must be axis-aligned (diagonal affine)")
        object.__setattr__(self, "step", np.diag(self.affine)[:3].copy())
        object.__setattr__(self, "origin", self.affine[:3, 3].copy())
        object.__setattr__(self, "_axes", tuple(zip(self.origin.tolist(), self.step.tolist(), self.shape)))

    def coords(self, axis: int, sl: slice | None = None) -> np.ndarray:
        """Coordinates (mm) of the voxel centres along one axis (float32)."""
        origin, step, n = self._axes[axis]  # type: ignore[attr-defined]
        start, stop, _ = (sl or slice(None)).indices(n)
        return (origin + step * np.arange(start, stop)).astype(np.float32)

    def box(self, lo: Sequence[float], hi: Sequence[float], within: Box | None = None) -> Box | None:
        """Index slices of the voxels whose centres lie in ``[lo, hi]``; None when empty."""
        out = []
        for axis, (origin, step, n) in enumerate(self._axes):  # type: ignore[attr-defined]
            a, b = (float(lo[axis]) - origin) / step, (float(hi[axis]) - origin) / step
            start, stop = math.ceil(min(a, b) - 1e-9), math.floor(max(a, b) + 1e-9) + 1
            if within is not None:
                start, stop = max(start, within[axis].start), min(stop, within[axis].stop)
            else:
                start, stop = max(start, 0), min(stop, n)
            if stop <= start:
                return None
            out.append(slice(start, stop))
        return tuple(out)  # type: ignore[return-value]

    def open_coords(self, box: Box, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable x, y, z of a box, moved by ``-shift`` (to evaluate shapes moved by ``+shift``)."""
        x = self.coords(0, box[0]) - np.float32(shift[0])
        y = self.coords(1, box[1]) - np.float32(shift[1])
        z = self.coords(2, box[2]) - np.float32(shift[2])
        return x[:, None, None], y[None, :, None], z[None, None, :]


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid, optionally cut by horizontal planes ``zmin``/``zmax``."""

    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    zmin: float = -INF
    zmax: float = INF

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c, r = np.asarray(self.center, float), np.asarray(self.radii, float)
        lo, hi = c - r, c + r
        lo[2], hi[2] = max(lo[2], self.zmin), min(hi[2], self.zmax)
        return lo, hi

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (rx, ry, rz) = self.center, self.radii
        zz = ((z - cz) / rz) ** 2 + (((z < self.zmin) | (z > self.zmax)) * 4.0)
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + zz <= 1.0


@dataclass(frozen=True)
class Capsule:
    """A segment from ``p0`` to ``p1`` swept by a sphere whose radius goes from ``r0`` to ``r1``."""

    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    r0: float
    r1: float | None = None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.r0, self.r1 or self.r0)
        p = np.array([self.p0, self.p1], float)
        return p.min(axis=0) - r, p.max(axis=0) + r

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        p0, d = np.asarray(self.p0, np.float32), np.asarray(self.p1, np.float32) - np.asarray(self.p0, np.float32)
        rx, ry, rz = x - p0[0], y - p0[1], z - p0[2]
        t = np.clip((rx * d[0] + ry * d[1] + rz * d[2]) / max(float(d @ d), 1e-9), 0.0, 1.0)
        dist2 = (rx - t * d[0]) ** 2 + (ry - t * d[1]) ** 2 + (rz - t * d[2]) ** 2
        r1 = self.r0 if self.r1 is None else self.r1
        return dist2 <= (self.r0 + t * (r1 - self.r0)) ** 2


def polyline(points: Sequence[Sequence[float]], radius: float | Sequence[float]) -> list[Capsule]:
    """Capsules along a polyline; ``radius`` per point (tapering) or one for all."""
    radii = np.broadcast_to(np.asarray(radius, float), (len(points),))
    return [
        Capsule(tuple(points[i]), tuple(points[i + 1]), float(radii[i]), float(radii[i + 1]))  # type: ignore[arg-type]
        for i in range(len(points) - 1)
    ]


@dataclass(frozen=True)
class Extrusion:
    """A stack of horizontal ellipses whose centre and semi-axes vary (linearly) with z.

    ``z`` holds increasing knots; ``cx``, ``cy``, ``ax``, ``ay`` their values.
    """

    z: tuple[float, ...]
    cx: tuple[float, ...]
    cy: tuple[float, ...]
    ax: tuple[float, ...]
    ay: tuple[float, ...]

    @classmethod
    def cylinder(cls, center: Sequence[float], radii: Sequence[float], z0: float, z1: float) -> "Extrusion":
        return cls((z0, z1), (center[0],) * 2, (center[1],) * 2, (radii[0],) * 2, (radii[1],) * 2)

    def shrunk(self, by: float | Sequence[float]) -> "Extrusion":
        """The same extrusion with both semi-axes reduced by ``by`` mm (per knot or one value)."""
        d = np.broadcast_to(np.asarray(by, float), (len(self.z),))
        ax = tuple(float(v) for v in np.maximum(np.asarray(self.ax) - d, 0.5))
        ay = tuple(float(v) for v in np.maximum(np.asarray(self.ay) - d, 0.5))
        return Extrusion(self.z, self.cx, self.cy, ax, ay)

    def params(self, z: np.ndarray) -> tuple[np.ndarray, ...]:
        flat = np.ravel(z)
        return tuple(np.interp(flat, self.z, v).astype(np.float32).reshape(np.shape(z)) for v in (self.cx, self.cy, self.ax, self.ay))

    def bounds(self, zlo: float = -INF, zhi: float = INF) -> tuple[np.ndarray, np.ndarray]:
        zlo, zhi = max(zlo, self.z[0]), min(zhi, self.z[-1])
        knots = np.array([zlo, zhi] + [k for k in self.z if zlo < k < zhi])
        cx, cy, ax, ay = self.params(knots)
        lo = np.array([(cx - ax).min(), (cy - ay).min(), zlo])
        hi = np.array([(cx + ax).max(), (cy + ay).max(), zhi])
        return lo, hi

    def inside(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        cx, cy, ax, ay = self.params(z)
        valid = (z >= self.z[0]) & (z <= self.z[-1])
        return (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0) & valid


# --------------------------------------------------------------------------- rasterisation


@dataclass
class Pieces:
    """Where a shape lies on a grid: ``(box, mask)`` pairs (several for tall extrusions)."""

    parts: list[tuple[Box, np.ndarray]] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[Box, np.ndarray]]:
        return iter(self.parts)


SLAB = 8  # slices per piece when rasterising extrusions (their width changes with z)


def rasterize(grid: Grid, shape, shift: Sequence[float] = (0.0, 0.0, 0.0), within: Box | None = None,
              bounds: tuple[np.ndarray, np.ndarray] | None = None) -> Pieces:
    """The voxels of ``grid`` whose centres lie inside ``shape`` moved by ``shift`` mm.

    ``bounds`` may pass the shape's bounds when they are known already.
    """
    shift = np.asarray(shift, float)
    lo, hi = bounds if bounds is not None else shape.bounds()
    box = grid.box(lo + shift, hi + shift, within)
    pieces = Pieces()
    if box is None:
        return pieces
    if not isinstance(shape, Extrusion):
        pieces.parts.append((box, shape.inside(*grid.open_coords(box, shift))))
        return pieces
    for start in range(box[2].start, box[2].stop, SLAB):
        zs = slice(start, min(start + SLAB, box[2].stop))
        z = grid.coords(2, zs) - shift[2]
        half = abs(float(grid.step[2])) / 2.0  # float32 centres: keep the end slices inside the slab box
        slo, shi = shape.bounds(float(z.min()) - half, float(z.max()) + half)
        sub = grid.box(slo + shift, shi + shift, (box[0], box[1], zs))
        if sub is not None:
            pieces.parts.append((sub, shape.inside(*grid.open_coords(sub, shift))))
    return pieces


def paint(array: np.ndarray, grid: Grid, shape, value, shift: Sequence[float] = (0.0, 0.0, 0.0),
          within: Box | None = None, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Set the voxels of ``array`` inside ``shape`` to ``value`` (in place).

    ``array`` covers the whole grid, or only the box ``within`` when one is given.
    """
    for box, mask in rasterize(grid, shape, shift, within, bounds):
        if within is not None:
            box = tuple(slice(b.start - w.start, b.stop - w.start) for b, w in zip(box, within))  # type: ignore[assignment]
        array[box][mask] = value
