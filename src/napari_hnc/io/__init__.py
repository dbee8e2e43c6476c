"""File formats: each reader returns :class:`~napari_hnc.geometry.Volume` objects, never layers."""
