"""PET that is not SUV is flagged: the rule measured on the real SUV PETs (``benchmarks/suv_background.py``)
never fires on them and fires on their Bq/ml and (typical-dose) kBq/ml versions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_hnc.errors import HncWarning
from napari_hnc.io.nifti import read_nifti
from napari_hnc.io.suv_range import BACKGROUND_RANGE, check_suv
from napari_hnc.study import load_study, load_volume
from synthetic import save_nifti, write_hecktor2022

#: kBq/ml per SUV of the real whole-body GE PET raw/STS_001 (71 kg, 388.8 MBq, 2711 s of decay): 1 / 2.429e-4 / 1000
STS_001_KBQ_PER_SUV = 4.117


def _real_suv_pets(ibsi_sts_root, sts_root):
    paths = sorted(ibsi_sts_root.glob("*/PET_image.nii.gz")) + sorted(sts_root.glob("STS_00*/PET/nifti/image/image.nii.gz"))
    assert len(paths) >= 44
    return paths


def test_real_suv_pets_pass_and_their_bq_per_ml_versions_are_flagged(ibsi_sts_root, sts_root):
    backgrounds = []
    for path in _real_suv_pets(ibsi_sts_root, sts_root):
        array = read_nifti(path).array
        check = check_suv(array)
        assert check.problems == [], (path, check)
        backgrounds.append(check.background)
        bq = check_suv(array * np.float32(1000.0))  # the lowest FDG activity per gram: 1 kBq/g
        assert any("Bq/ml" in p for p in bq.problems), path
        kbq = check_suv(array * np.float32(8.0))  # kBq/ml at a high (8 kBq/g) dose
        assert kbq.problems, path
    assert BACKGROUND_RANGE[0] < min(backgrounds) and max(backgrounds) < BACKGROUND_RANGE[1]
    # measured: 0.356-1.102 over these 44 (and 47 with the DICOM series)
    assert min(backgrounds) == pytest.approx(0.356, abs=0.01) and max(backgrounds) == pytest.approx(1.102, abs=0.01)


def test_a_kbq_per_ml_nifti_warns_when_opened(sts_root, tmp_path):
    # The real STS_001 PET in kBq/ml at the patient's own activity per gram: max 105, body background 2.5.
    suv = read_nifti(sts_root / "STS_001" / "PET" / "nifti" / "image" / "image.nii.gz")
    path = save_nifti(suv.array * np.float32(STS_001_KBQ_PER_SUV), suv.affine, tmp_path / "pet_kbq.nii.gz")
    with pytest.warns(HncWarning, match=r"median uptake inside the body is 2\.\d+.*probably in kBq/ml"):
        volume = load_volume(path, "pet")
    assert volume.metadata["units"].startswith("unknown")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_volume(sts_root / "STS_001" / "PET" / "nifti" / "image" / "image.nii.gz", "pet").metadata["units"] == "SUVbw"


def test_a_study_whose_pet_is_in_kbq_per_ml_warns(tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    pet = read_nifti(paths["pet"])
    save_nifti(pet.array * np.float32(3.0), pet.affine, paths["pet"])  # background 1.0 -> 3.0, max 24
    with pytest.warns(HncWarning, match="far outside the 0.1-2 of SUV images"):
        study = load_study(paths["ct"])
    assert study.pet.metadata["units"] == "unknown (not SUV?)"
