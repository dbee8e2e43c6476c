"""Segmenting a cohort: finding the studies, one labels file (and lesion table) per case, a summary.

Used by ``napari-hnc segment``; works the same in a notebook. Outputs per case,
in the output folder:

* ``<case_id>_pred.nii.gz`` -- uint8 labels on the CT grid, with the CT's header (named so that no dataset
  layout takes it for a study's reference labels, even when written beside them);
* ``<case_id>_lesions.csv`` -- one row per lesion (:func:`napari_hnc.quantify`: volume, SUVmax/mean/peak,
  TLG, centroid);

and ``segment_summary.csv`` for the whole run (written by rank 0), with the region each case was
segmented in (``whole`` or the world box, and why). Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..conventions import PREDICTION_SUFFIX
from ..errors import HncError, StudyError
from ..io.atomic import atomic_write_text
from ..headneck import RegionError
from ..io.nifti import save_labels
from ..pet import quantify, write_csv
from ..study import Study, StudyFiles, discover_studies, find_study_files, load_study
from .distributed import DistInfo

log = logging.getLogger(__name__)

SUMMARY_NAME = "segment_summary.csv"
#: Start of the message of a case that failed because its region option did not fit it.
BAD_REGION = "bad --region: "


@dataclass(frozen=True)
class CaseResult:
    """How one case went: status "done", "skipped" (already there, --resume) or "failed"."""

    case_id: str
    status: str
    seconds: float = 0.0
    rank: int = 0
    labels: str = ""
    lesions_csv: str = ""
    message: str = ""
    region: str = ""
    region_reason: str = ""

    @property
    def bad_region(self) -> bool:
        return self.status == "failed" and self.message.startswith(BAD_REGION)


def collect_studies(inputs: Iterable[str | Path]) -> list[StudyFiles]:
    """The studies named by files, study folders or dataset roots, sorted by case id, each once.

    Raises
    ------
    StudyError
        An input does not exist or holds no study, or two different studies share a case id.
    """
    found: dict[tuple, StudyFiles] = {}
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise StudyError(f"{path} does not exist; check the path")
        studies = discover_studies(path) if path.is_dir() else [find_study_files(path)]
        if not studies:
            raise StudyError(
                f"no PET/CT study found under {path}; napari-hnc recognises HECKTOR 2022, HECKTOR 2021 and autoPET "
                "file names (see `napari-hnc segment --help`)"
            )
        for study in studies:
            key = (study.case_id, _resolved(study.ct), _resolved(study.pet))
            found.setdefault(key, study)
    studies = sorted(found.values(), key=lambda s: (s.case_id, str(s.ct or s.pet)))
    _check_unique(studies)
    return studies


def _resolved(path: Path | None) -> str:
    return str(path.resolve()) if path is not None else ""


def _check_unique(studies: Sequence[StudyFiles]) -> None:
    seen: dict[str, StudyFiles] = {}
    for study in studies:
        if study.case_id in seen:
            other = seen[study.case_id]
            raise StudyError(
                f"two different studies are both called {study.case_id!r} ({other.ct or other.pet} and "
                f"{study.ct or study.pet}); their outputs would overwrite each other. Segment them into separate "
                "output folders"
            )
        seen[study.case_id] = study


def output_paths(out: Path, case_id: str) -> tuple[Path, Path]:
    """The labels NIfTI and the lesion CSV of a case.

    >>> [p.name for p in output_paths(Path("out"), "CHUM-001")]
    ['CHUM-001_pred.nii.gz', 'CHUM-001_lesions.csv']
    """
    return out / f"{case_id}{PREDICTION_SUFFIX}.nii.gz", out / f"{case_id}_lesions.csv"


def existing_outputs(studies: Sequence[StudyFiles], out: Path) -> list[Path]:
    """The output files of ``studies`` (and the summary) that already exist in ``out``."""
    paths = [p for s in studies for p in output_paths(out, s.case_id)] + [out / SUMMARY_NAME]
    return [p for p in paths if p.exists()]


def segment_case(files: StudyFiles, out: Path, segment_fn: Callable[[Study], object], *, resume: bool,
                 info: DistInfo) -> CaseResult:
    """Segment one case and write its outputs; failures become a "failed" result, never an exception."""
    labels_path, csv_path = output_paths(out, files.case_id)
    if resume and labels_path.is_file() and csv_path.is_file():
        return CaseResult(files.case_id, "skipped", 0.0, info.rank, str(labels_path), str(csv_path))
    started = time.perf_counter()
    try:
        study = load_study(ct=files.ct, pet=files.pet, case_id=files.case_id)
        labels = segment_fn(study)
        save_labels(labels, study.grid, labels_path)
        write_csv(quantify(study, labels), csv_path)
    except RegionError as exc:
        return CaseResult(files.case_id, "failed", time.perf_counter() - started, info.rank,
                          message=BAD_REGION + str(exc))
    except HncError as exc:
        return CaseResult(files.case_id, "failed", time.perf_counter() - started, info.rank, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken case must not stop a cohort
        log.debug("case %s failed:\n%s", files.case_id, traceback.format_exc())
        return CaseResult(files.case_id, "failed", time.perf_counter() - started, info.rank,
                          message=f"{type(exc).__name__}: {exc} (run with -vv for the traceback)")
    meta = getattr(labels, "metadata", {})
    return CaseResult(files.case_id, "done", time.perf_counter() - started, info.rank, str(labels_path), str(csv_path),
                      region=str(meta.get("region", "")), region_reason=str(meta.get("region_reason", "")))


def write_summary(results: Sequence[CaseResult], out: Path) -> Path:
    """Write ``segment_summary.csv`` (one row per case) into ``out``."""
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=list(CaseResult.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    for result in sorted(results, key=lambda r: r.case_id):
        writer.writerow(asdict(result))
    return atomic_write_text(out / SUMMARY_NAME, handle.getvalue())


def describe(results: Sequence[CaseResult], seconds: float) -> str:
    """A one-paragraph summary of a run."""
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    lines = [
        f"{len(results)} case(s): {counts['done']} segmented, {counts['skipped']} skipped (already done), "
        f"{counts['failed']} failed, in {seconds:.1f} s"
    ]
    lines += [f"  {r.case_id}: region {r.region} ({r.region_reason})" for r in results if r.status == "done"]
    lines += [f"  FAILED {r.case_id}: {r.message}" for r in results if r.status == "failed"]
    return "\n".join(lines)
