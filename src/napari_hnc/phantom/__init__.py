"""Synthetic head-and-neck FDG PET/CT phantoms with known lesions (tests, demos, training).

Each case has a CT (HU, 0.98 x 0.98 x 3 mm from above the skull base to the
clavicles), a PET (SUV, 4 x 4 x 3 mm, blurred, noisy, sometimes slightly
misregistered), labels on the CT grid drawn from the lesion geometry (1 primary
tumour, 2 lymph node) and a JSON record of its lesions.

>>> from napari_hnc import phantom
>>> case = phantom.generate_case(7, "small")
>>> [lesion.kind for lesion in case.lesions][:1]
['primary']
"""

from .case import GENERATOR_VERSION, Lesion, PhantomCase, case_id, generate_case
from .cohort import case_paths, read_lesion_files, write_case, write_cohort
from .presets import PRESETS, PhantomPreset, get_preset
from .report import format_report, lesion_table, save_report, summary

#: Names under which the notebook API (``napari_hnc.<name>``) exports these.
generate_phantom = generate_case
write_phantom_cohort = write_cohort

__all__ = [
    "GENERATOR_VERSION", "Lesion", "PRESETS", "PhantomCase", "PhantomPreset", "case_id", "case_paths",
    "format_report", "generate_case", "generate_phantom", "get_preset", "lesion_table", "read_lesion_files",
    "save_report", "summary", "write_case", "write_cohort", "write_phantom_cohort",
]
