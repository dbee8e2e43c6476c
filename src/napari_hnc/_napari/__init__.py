"""The napari layer of napari-hnc: the only package that imports napari, Qt or magicgui."""
