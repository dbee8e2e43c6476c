"""Sub-commands of the ``napari-hnc`` command line (see :mod:`napari_hnc.cli`)."""
