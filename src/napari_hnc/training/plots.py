"""Evaluation figures (PNG): Dice distribution, MTV agreement (scatter and Bland-Altman), Dice against clicks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TARGET_ORDER = ("primary", "node", "union")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def dice_distribution(cases: pd.DataFrame, path: str | Path) -> Path:
    """Box plot and points of the per-case Dice of each target (cases with a reference lesion)."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(5.5, 4.0), dpi=100)
    data = [cases[(cases["target"] == t) & (cases["ref_ml"] > 0)]["dice"].fillna(0).to_numpy() for t in TARGET_ORDER]
    axis.boxplot(data, showfliers=False)
    axis.set_xticks(range(1, len(TARGET_ORDER) + 1), TARGET_ORDER)
    rng = np.random.default_rng(0)
    for k, values in enumerate(data, start=1):
        axis.plot(k + rng.uniform(-0.12, 0.12, len(values)), values, "o", alpha=0.6, markersize=4)
    axis.set_ylim(-0.02, 1.02)
    axis.set_ylabel("Dice per case")
    axis.set_title(f"Dice distribution ({cases['case_id'].nunique()} cases)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def mtv_agreement(cases: pd.DataFrame, path: str | Path, target: str = "union") -> Path:
    """Predicted against reference volume (identity line), and a Bland-Altman plot with the 95 % limits."""
    plt = _pyplot()
    rows = cases[cases["target"] == target]
    ref, pred = rows["ref_ml"].to_numpy(float), rows["pred_ml"].to_numpy(float)
    fig, (scatter, bland) = plt.subplots(1, 2, figsize=(10.0, 4.2), dpi=100)
    top = max(float(np.max(ref, initial=0)), float(np.max(pred, initial=0)), 1e-3) * 1.05
    scatter.plot([0, top], [0, top], "k--", linewidth=1)
    scatter.plot(ref, pred, "o", alpha=0.7)
    scatter.set_xlabel("reference volume (ml)")
    scatter.set_ylabel("predicted volume (ml)")
    scatter.set_title("total tumour burden" if target == "union" else f"MTV {target}")
    mean, diff = (ref + pred) / 2, pred - ref
    bias, spread = float(np.mean(diff)) if len(diff) else 0.0, float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0
    bland.plot(mean, diff, "o", alpha=0.7)
    for value, style in ((bias, "-"), (bias + 1.96 * spread, "--"), (bias - 1.96 * spread, "--")):
        bland.axhline(value, color="k", linestyle=style, linewidth=1)
    bland.set_xlabel("mean of the two volumes (ml)")
    bland.set_ylabel("predicted - reference (ml)")
    bland.set_title(f"Bland-Altman: bias {bias:.2f} ml, limits ±{1.96 * spread:.2f} ml")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def dice_by_clicks(lesions: pd.DataFrame, path: str | Path) -> Path:
    """Mean and median lesion Dice after each number of simulated clicks."""
    plt = _pyplot()
    grouped = lesions.groupby("clicks")["dice"]
    fig, axis = plt.subplots(figsize=(5.5, 4.0), dpi=100)
    axis.plot(grouped.mean().index, grouped.mean().to_numpy(), "o-", label="mean")
    axis.plot(grouped.median().index, grouped.median().to_numpy(), "s--", label="median")
    axis.set_xlabel("simulated clicks")
    axis.set_ylabel("lesion Dice")
    axis.set_ylim(0.0, 1.0)
    axis.set_title(f"Dice after clicks ({lesions['lesion_key'].nunique()} lesions)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
