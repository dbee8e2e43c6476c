"""PET delineation and quantification, without napari, Qt or torch.

* :func:`segment_from_seed`: one seed voxel to one lesion mask on any PET array
  (fixed SUV, percent of SUVmax, background-adapted, region growing).
* :func:`delineate`: clicks in world RAS mm to a labels Volume on a study's label grid.
* :func:`quantify`: one row per lesion (volume, SUVmax/mean/peak, TLG, centroid).
* :mod:`napari_hnc.pet.components`: keep / remove / split / reclassify lesions.
"""

from __future__ import annotations

from .params import METHODS, ParameterError, SeedParams
from .seed import SeedResult, seed_region, segment_from_seed
from .grow import grow_region

__all__ = ["METHODS", "ParameterError", "SeedParams", "SeedResult", "grow_region", "seed_region",
           "segment_from_seed"]
