"""What ``napari-hnc evaluate`` does: get the predictions, score them, write tables, figures and card scores."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..conventions import PREDICTION_SUFFIX
from ..errors import HncError, StudyError
from ..io.atomic import atomic_write_text
from ..geometry import Volume
from ..study import Study, load_study
from .dataset import Case
from .evaluation import case_table, cohort_summary
from .interactive import CLICK_COUNTS, click_summary, evaluate_clicks
from .plots import dice_by_clicks, dice_distribution, mtv_agreement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationReport:
    """The cohort figures (``scores``, as written into a card), a printable summary and the files written."""

    scores: dict[str, Any]
    text: str
    files: list[Path]


def load_case(case: Case) -> Study:
    files = case.files
    return load_study(ct=files.ct, pet=files.pet, labels=files.labels, case_id=case.case_id)


def prediction_path(folder: Path, case_id: str) -> Path:
    """Where a case's prediction goes: ``folder/<case_id>_pred.nii.gz``, the name ``napari-hnc segment`` writes."""
    return Path(folder) / f"{case_id}{PREDICTION_SUFFIX}.nii.gz"


def read_prediction(folder: Path, study: Study) -> Volume:
    """The prediction of a case in ``folder`` as labels on the study's grid.

    ``<case_id>_pred.nii.gz`` (what ``napari-hnc segment`` writes), else ``<case_id>.nii.gz`` or ``.nii``
    (predictions made by other tools); an error when none is there, or it lies on another grid.
    """
    from ..io.nifti import read_nifti

    names = [prediction_path(folder, study.case_id).name] + [f"{study.case_id}{s}" for s in (".nii.gz", ".nii")]
    path = next((Path(folder) / n for n in names if (Path(folder) / n).is_file()), None)
    if path is None:
        raise StudyError(f"no prediction {prediction_path(folder, study.case_id)} for case {study.case_id}; "
                         f"run `napari-hnc segment` into {folder}")
    pred = read_nifti(path)
    if not pred.same_grid(study.grid):
        raise StudyError(f"the prediction {path} is not on the CT grid of {study.case_id}; segment it again")
    return pred


def score_automatic(pairs: Sequence[tuple[str, Volume, Volume]], out: Path, min_volume_ml: float = 0.0) -> EvaluationReport:
    """Score (case_id, prediction, reference) triples on the same grid; write the CSVs and PNGs."""
    cases = pd.concat([case_table(cid, pred, ref, min_volume_ml=min_volume_ml) for cid, pred, ref in pairs],
                      ignore_index=True)
    summary = cohort_summary(cases)
    files = [out / "cases.csv", out / "summary.csv"]
    atomic_write_text(files[0], cases.to_csv(index=False))
    atomic_write_text(files[1], summary.to_csv(index=False))
    files += [dice_distribution(cases, out / "dice_distribution.png"), mtv_agreement(cases, out / "mtv_agreement.png")]
    return EvaluationReport(automatic_scores(summary), _automatic_text(summary), files)


def automatic_scores(summary: pd.DataFrame) -> dict[str, Any]:
    """The figures a card keeps: Dice (mean, median, pooled) per target, HD95, TPR/PPV, MTV agreement, failures."""
    out: dict[str, Any] = {"cases": int(summary["cases"].max())}
    for row in summary.to_dict("records"):
        t = row["target"]
        for key in ("dice_mean", "dice_median", "dice_pooled", "hd95_mean_mm", "tpr", "ppv", "mtv_r2",
                    "mtv_mean_abs_difference_ml", "failures"):
            name = key.replace("dice_", f"dice_{t}_") if key.startswith("dice") else f"{key}_{t}"
            out[name] = _round(row[key])
    out["class_accuracy_primary_vs_node"] = _round(summary["class_accuracy_pooled"].iloc[0])
    return out


def _round(value: Any) -> Any:
    return value if isinstance(value, (int, np.integer)) else round(float(value), 4)


def _automatic_text(summary: pd.DataFrame) -> str:
    cols = ["target", "dice_mean", "dice_median", "dice_pooled", "hd95_mean_mm", "tpr", "ppv", "mtv_r2", "failures"]
    accuracy = summary["class_accuracy_pooled"].iloc[0]
    return summary[cols].round(3).to_string(index=False) + f"\nprimary-vs-node voxel accuracy: {accuracy:.3f}"


def score_clicks(lesions: pd.DataFrame, out: Path) -> EvaluationReport:
    """Write the per-lesion and summary click tables and the Dice-by-clicks figure."""
    counts = [c for c in CLICK_COUNTS if c <= int(lesions["clicks"].max())]
    summary = click_summary(lesions, counts)
    files = [out / "click_lesions.csv", out / "click_summary.csv"]
    atomic_write_text(files[0], lesions.to_csv(index=False))
    atomic_write_text(files[1], summary.to_csv(index=False))
    files.append(dice_by_clicks(lesions[lesions["clicks"].isin(counts)], out / "dice_by_clicks.png"))
    scores: dict[str, Any] = {"lesions": int(lesions["lesion_key"].nunique()),
                              "cases": int(lesions["case_id"].nunique())}
    for row in summary.to_dict("records"):
        scores[f"dice_{row['clicks']}_clicks_mean"] = _round(row["dice_mean"])
        scores[f"dice_{row['clicks']}_clicks_median"] = _round(row["dice_median"])
    return EvaluationReport(scores, summary.round(3).to_string(index=False), files)


def evaluate_dataset(cases: Sequence[Case], args: argparse.Namespace) -> EvaluationReport:
    """Run ``napari-hnc evaluate`` (see the command's help) and return its report."""
    from ..models.registry import load_model
    from ..progress import tqdm_progress

    progress = tqdm_progress(unit="case")
    if args.predictions:
        pairs = []
        for k, case in enumerate(cases):
            progress(k, len(cases), case.case_id)
            study = load_case(case)
            pairs.append((case.case_id, read_prediction(args.predictions, study), study.labels))
        return score_automatic(pairs, args.out, args.min_volume_ml)
    model = load_model(args.model)
    if model.card.task == "click":
        report = _evaluate_click_model(cases, model, args, progress)
    else:
        report = _evaluate_automatic_model(cases, model, args, progress)
    if args.update_card:
        from ..commands.evaluate import command_line

        update_card(model.path, report.scores, command_line(args), args.data_note or f"{len(cases)} studies under {args.data}")
    return report


def _evaluate_automatic_model(cases, model, args, progress) -> EvaluationReport:
    from ..inference.automatic import segment
    from ..io.nifti import save_labels

    pairs = []
    for k, case in enumerate(cases):
        progress(k, len(cases), case.case_id)
        study = load_case(case)
        pred = segment(study, model, args.device, threads=args.threads)
        if args.save_predictions:
            save_labels(pred, study.grid, prediction_path(args.out / "predictions", case.case_id))
        pairs.append((case.case_id, pred, study.labels))
    return score_automatic(pairs, args.out, args.min_volume_ml)


def _evaluate_click_model(cases, model, args, progress) -> EvaluationReport:
    from ..inference.automatic import segment
    from ..inference.session import RefinementSession

    session = RefinementSession(model, args.device, threads=args.threads)
    studies = [load_case(case) for case in cases]
    initial = None
    if args.initial:
        initial = [segment(s, args.initial, args.device, threads=args.threads) for s in studies]
    lesions = evaluate_clicks(session, studies, initial=initial, clicks=args.clicks, progress=progress)
    if lesions.empty:
        raise HncError("the studies hold no reference lesions to click on")
    return score_clicks(lesions, args.out)


def update_card(card_path: Path | None, scores: dict[str, Any], command: str, data: str) -> Path:
    """Write ``scores`` (with the command and data) into the card's ``scores["evaluation"]``."""
    from ..models.card import ModelCard

    if card_path is None:
        raise HncError("this model was not loaded from a card file; there is no card to update")
    card = ModelCard.read(card_path)
    evaluation = {"data": data, "command": command, **scores}
    card.with_changes(scores={**card.scores, "evaluation": evaluation}).write(card_path)
    log.info("wrote the evaluation into %s", card_path)
    return Path(card_path)
