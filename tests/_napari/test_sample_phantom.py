"""The "Synthetic H&N phantom" sample opens as CT, PET and labels that overlay in world space."""

from __future__ import annotations

import numpy as np


def test_phantom_sample_layers_overlay_in_a_viewer():
    import npe2
    from napari.components import ViewerModel

    npe2.PluginManager.instance().discover()
    viewer = ViewerModel()
    layers = viewer.open_sample("napari-hnc", "phantom")
    roles = [layer.metadata["napari_hnc_role"] for layer in layers]
    assert roles == ["ct", "pet", "labels"]
    ct, pet, labels = layers
    assert labels.data.shape == ct.data.shape and pet.data.shape != ct.data.shape
    primary = np.argwhere(np.asarray(labels.data) == 1)
    assert len(primary) > 100
    # the primary's hottest voxel, found in the PET layer through world coordinates, is inside the label
    world = [labels.data_to_world(p) for p in primary[:: max(1, len(primary) // 400)]]
    pet_values = [pet.data[tuple(np.clip(np.rint(pet.world_to_data(w)).astype(int), 0, np.array(pet.data.shape) - 1))]
                  for w in world]
    assert max(pet_values) > 4.0  # primary SUVmax is 5-25
    ct_values = [ct.data[tuple(np.rint(ct.world_to_data(w)).astype(int))] for w in world]
    assert -100 < np.median(ct_values) < 120  # soft tissue in the CT where the label is
