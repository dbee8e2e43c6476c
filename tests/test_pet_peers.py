"""quantify gives the numbers scikit-image's regionprops gives, where their definitions agree."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import regionprops

from napari_hnc.geometry import Volume
from napari_hnc.pet import quantify
from napari_hnc.pet.components import STRUCTURE_26, iter_lesions
from napari_hnc.study import Study


def _thirty_lesions(seed: int = 4):
    """PET (SUV) and labels on one grid: 30 separate balls of classes 1 and 2, two of them touching."""
    rng = np.random.default_rng(seed)
    shape = (72, 64, 48)
    pet = rng.gamma(4.0, 0.25, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    grid = np.indices(shape, dtype=np.float32)
    while len(np.unique(ndimage.label(labels > 0, STRUCTURE_26)[0])) - 1 < 29:
        centre, radius = rng.uniform(6, np.array(shape) - 6), rng.uniform(1.5, 3.5)
        distance = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(axis=0))
        if labels[distance <= radius + 2].any():
            continue
        labels[distance <= radius] = int(rng.integers(1, 3))
        pet[distance <= radius] += np.float32(rng.uniform(2.0, 12.0))
    labels[30:34, 30:34, 2:6] = 1  # a primary and a node that touch: two lesions, one component
    labels[34:38, 30:34, 2:6] = 2
    pet[30:38, 30:34, 2:6] += 5.0
    affine = np.diag([4.0, 4.0, 3.0, 1.0])
    return Volume(pet, affine, {"role": "pet"}), Volume(labels, affine, {"role": "labels"})


def test_quantify_agrees_with_regionprops_on_volume_suvmax_suvmean_and_tlg():
    pet, labels = _thirty_lesions()
    table = quantify(Study(None, pet, labels, "THIRTY"))
    instances = np.zeros(labels.shape, np.int32)
    for number, lesion in enumerate(iter_lesions(labels.array), start=1):
        instances[lesion.box][lesion.mask] = number
    reference = np.zeros(labels.shape, np.int32)  # lesions per class, as regionprops users label them
    for value in (1, 2):
        parts, count = ndimage.label(labels.array == value, STRUCTURE_26)
        reference[parts > 0] = parts[parts > 0] + reference.max()
    props = regionprops(reference, intensity_image=pet.array)
    assert len(table) == len(props) == 31
    ml = labels.voxel_volume_ml
    ours = sorted(np.round(table[["volume_ml", "suv_max", "suv_mean", "tlg"]].to_numpy(float), 6).tolist())
    theirs = sorted(np.round([[p.area * ml, p.intensity_max, p.intensity_mean, p.intensity_mean * p.area * ml]
                              for p in props], 6).tolist())
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert np.array_equal(np.sort(np.unique(instances)), np.arange(32))  # every lesion voxel found once


def test_lesions_come_class_by_class_in_scan_order_like_a_labelling_per_class():
    _, labels = _thirty_lesions(seed=9)
    found = [(lesion.label, lesion.box) for lesion in iter_lesions(labels.array)]
    expected = []
    for value in (1, 2):
        parts, _ = ndimage.label(labels.array == value, STRUCTURE_26)
        expected += [(value, box) for box in ndimage.find_objects(parts) if box is not None]
    assert found == expected
