"""Phantom building blocks: grids, analytic shapes, lesion shapes and the lesion statistics."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hnc.phantom.anatomy import Frame
from napari_hnc.phantom.lesions import Star, make_star, sample_lesions, truncated_lognormal
from napari_hnc.phantom.model import build_anatomy
from napari_hnc.phantom.presets import lps_grid
from napari_hnc.phantom.shapes import Capsule, Ellipsoid, Extrusion, Grid, paint, rasterize


def iso_grid(step: float = 0.5, half: float = 30.0) -> Grid:
    n = int(round(2 * half / step)) + 1
    return lps_grid((n, n, n), (step, step, step), (0.0, 0.0), half)


def voxel_volume(grid: Grid, shape) -> float:
    return sum(int(mask.sum()) for _, mask in rasterize(grid, shape)) * abs(float(np.prod(grid.step)))


@pytest.mark.parametrize("shape, exact", [
    (Ellipsoid((1.0, -2.0, 3.0), (12.0, 8.0, 15.0)), 4 / 3 * np.pi * 12 * 8 * 15),
    (Ellipsoid((0.0, 0.0, 0.0), (10.0, 10.0, 10.0), zmin=0.25), np.pi * (100 * 9.75 - (1000 - 0.25**3) / 3)),
    (Capsule((-10.0, 0.0, 0.0), (10.0, 0.0, 0.0), 5.0), np.pi * 25 * 20 + 4 / 3 * np.pi * 125),
    (Extrusion.cylinder((2.0, 3.0), (9.0, 6.0), -12.0, 12.0), np.pi * 9 * 6 * 24),
])
def test_rasterised_volume_matches_the_analytic_one(shape, exact):
    assert voxel_volume(iso_grid(), shape) == pytest.approx(exact, rel=0.02)


def test_extrusion_follows_its_knots_slice_by_slice():
    cone = Extrusion((-20.0, 20.0), (0.0, 0.0), (0.0, 0.0), (4.0, 16.0), (4.0, 16.0))
    grid = iso_grid(step=0.5, half=25.0)
    mask = np.zeros(grid.shape, bool)
    paint(mask, grid, cone, True)
    areas = mask.sum(axis=(0, 1)) * 0.25
    z = grid.coords(2)
    radius = np.interp(z, [-20, 20], [4, 16])
    inside = np.abs(z) < 19
    assert np.allclose(areas[inside], np.pi * radius[inside] ** 2, rtol=0.05)
    assert not mask[..., np.abs(z) > 20.1].any()


def test_grid_box_and_painting_within_a_box():
    grid = lps_grid((10, 10, 10), (1.0, 1.0, 1.0), (0.0, 0.0), 4.5)
    assert grid.box([-100, -100, -100], [-50, -50, -50]) is None
    box = grid.box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    assert [(s.start, s.stop) for s in box] == [(4, 6), (4, 6), (4, 6)]
    local = np.zeros((2, 2, 2), np.uint8)
    paint(local, grid, Ellipsoid((0.0, 0.0, 0.0), (5.0, 5.0, 5.0)), 7, within=box)
    assert (local == 7).all()
    moved = sum(int(m.sum()) for _, m in rasterize(grid, Ellipsoid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), (3.0, 0.0, 0.0)))
    assert moved == sum(int(m.sum()) for _, m in rasterize(grid, Ellipsoid((3.0, 0.0, 0.0), (1.0, 1.0, 1.0))))


def test_star_volume_is_the_rasterised_volume():
    rng = np.random.default_rng(4)
    for target in (0.5, 8.0):
        star = make_star(rng, (0.0, 0.0, 0.0), target, (1.0, 0.8, 1.4), 5, (-0.2, 0.45), 0.5)
        assert star.volume_ml() == pytest.approx(target, rel=1e-6)
        step = 0.4 if target < 1 else 0.8
        grid = iso_grid(step=step, half=star.bounding_radius + 1)
        assert voxel_volume(grid, star) / 1000 == pytest.approx(target, rel=0.03)
        big = iso_grid(step=1.0, half=star.bounding_radius + 10)
        whole = tuple(slice(0, n) for n in big.shape)
        x, y, z = big.open_coords(whole, np.zeros(3))
        inside = star.inside(x, y, z)
        assert inside.any() and np.sqrt(x**2 + y**2 + z**2)[inside].max() <= star.bounding_radius  # bounds hold it


def test_truncated_lognormal_keeps_its_range_and_median():
    rng = np.random.default_rng(0)
    draws = np.array([truncated_lognormal(rng, 8.2, 0.98, 2.0, 60.0) for _ in range(4000)])
    assert draws.min() >= 2.0 and draws.max() <= 60.0
    assert np.median(draws) == pytest.approx(8.2, rel=0.05)


def test_lesion_statistics_follow_the_issue_and_the_seed_004_cohort():
    primaries, nodes, counts = [], [], []
    for seed in range(200):
        streams = np.random.SeedSequence(seed).spawn(5)
        anatomy = build_anatomy(np.random.default_rng(streams[0]))
        lesions = sample_lesions(np.random.default_rng(streams[1]), anatomy)
        primaries.append(lesions[0])
        nodes += lesions[1:]
        counts.append(len(lesions) - 1)
    p_vol = np.array([p.shape.volume_ml() for p in primaries])
    n_vol = np.array([n.shape.volume_ml() for n in nodes])
    assert p_vol.min() >= 2.0 and p_vol.max() <= 60.0 and n_vol.min() >= 0.3 and n_vol.max() <= 15.0
    assert np.median(p_vol) == pytest.approx(8.2, rel=0.15) and np.median(n_vol) == pytest.approx(2.7, rel=0.25)
    assert all(5.0 <= p.target_suvmax <= 25.0 for p in primaries) and all(2.5 < n.target_suvmax <= 15.0 for n in nodes)
    assert max(counts) <= 5 and 1.2 <= np.mean(counts) <= 1.9  # seed 004: 1078 nodes / 698 patients
    oropharynx = np.mean([p.site.startswith("oropharynx") for p in primaries])
    assert 0.55 <= oropharynx <= 0.8
    assert 0.05 < np.mean([n.target_suvmax <= 4.5 and n.target_suvmax >= 2.5 for n in nodes])


def test_star_is_star_shaped_about_its_centre():
    star = Star((0.0, 0.0, 0.0), (10.0, 8.0, 12.0), tuple(np.eye(3).ravel()), ((1.0, 0.0, 0.0, 0.4, 4.0),))
    x = np.linspace(0, 30, 301, dtype=np.float32)
    inside = star.inside(x, np.zeros_like(x), np.zeros_like(x))
    assert inside[0] and not inside[-1] and np.all(np.diff(inside.astype(int)) <= 0)  # one exit along the ray
    assert x[inside].max() == pytest.approx(14.0, abs=0.15)  # 10 mm axis grown by the lobe (1 + 0.4)


def test_frame_scales_the_template():
    f = Frame(1.1, 0.9, 1.05)
    assert f.p(10, 10, 10) == pytest.approx((11.0, 9.0, 10.5))
    e = f.ell((10, 0, 0), (5, 5, 5), zmin=2)
    assert e.center == pytest.approx((11.0, 0.0, 0.0)) and e.zmin == pytest.approx(2.1)
