"""The napari layer of napari-hnc: the only package that imports napari, Qt or magicgui."""

import os
import sys

if "torch" not in sys.modules:
    # OpenMP threads that wait for work by sleeping, not spinning: in the GUI process the torch
    # worker shares the cores with the event loop, and spinning threads on busy cores multiply the
    # time of every click. Only takes effect when set before torch loads; the user's setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
