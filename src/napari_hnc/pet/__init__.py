"""PET delineation and quantification, without napari, Qt or torch.

* :func:`segment_from_seed`: one seed voxel to one lesion mask on any PET array
  (fixed SUV, percent of SUVmax, background-adapted, region growing).
* :func:`delineate`: clicks in world RAS mm to a labels Volume on a study's label grid.
* :func:`quantify`: one row per lesion (volume, SUVmax/mean/peak, TLG, centroid);
  :func:`study_totals`: MTV of the primary, of the nodes, total tumour burden.
* :mod:`napari_hnc.pet.components`: keep / remove / drop small / split / reclassify lesions.
* :class:`PetSampler`: the PET on the label grid, resampled box by box and cached.
"""

from __future__ import annotations

from .delineation import delineate
from .grow import grow_region
from .measure import quantify, study_totals, suv_peak
from .params import METHODS, ParameterError, SeedParams
from .report import write_csv, write_json, write_quantification
from .sampling import PetSampler, pet_sampler
from .seed import SeedResult, seed_region, segment_from_seed

__all__ = [
    "METHODS", "ParameterError", "PetSampler", "SeedParams", "SeedResult", "delineate", "grow_region",
    "pet_sampler", "quantify", "seed_region", "segment_from_seed", "study_totals", "suv_peak", "write_csv",
    "write_json", "write_quantification",
]
