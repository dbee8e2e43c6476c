"""Sample studies shipped with the package (no download at run time)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLES = {
    "sts001": "STS_001__CT.nii.gz",
    "phantom": None,  # generated on first use into the user cache folder (see napari_hnc.phantom)
}
#: Seed of the synthetic case behind the "phantom" sample.
PHANTOM_SAMPLE_SEED = 15


def sample_study_path(name: str = "sts001") -> Path:
    """Path of a bundled sample study's CT file (its PET and labels lie beside it).

    ``"sts001"`` is a real FDG PET/CT (TCIA Soft-tissue Sarcoma, CC BY 3.0; see
    ``data/sample/README.md`` for the citation). ``"phantom"`` is a synthetic
    head-and-neck case (:mod:`napari_hnc.phantom`), written to the user cache
    folder the first time it is asked for.

    >>> import napari_hnc
    >>> napari_hnc.load_study(napari_hnc.sample_study_path()).case_id
    'STS_001'
    """
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; choose one of {sorted(SAMPLES)}")
    if name == "phantom":
        from .phantom.cohort import sample_path

        return sample_path(PHANTOM_SAMPLE_SEED, "default")
    path = Path(str(resources.files("napari_hnc") / "data" / "sample" / SAMPLES[name]))
    if not path.is_file():
        raise FileNotFoundError(
            f"the sample file {path} is missing from the installation; reinstall napari-hnc"
        )
    return path
