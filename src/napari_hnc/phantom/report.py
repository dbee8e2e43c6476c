"""Lesion statistics of a phantom cohort, beside the clinical cohort of seed 004 (Nikulin et al. 2023).

The reference: 698 FDG PET/CT studies of head-and-neck squamous cell carcinoma
with 643 primary tumours (mean 13.21 ml, median 8.16 ml) and 1078 lymph-node
metastases (mean 5.45 ml, median 2.74 ml); primaries in the oropharynx 63%,
larynx 17%, oral cavity 6%, hypopharynx 6%, nasopharynx 6%. Many nodes take up
FDG only modestly (SUV about 3-4), like the physiological uptake around them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..io.atomic import atomic_write, atomic_write_text, ensure_folder

#: Figures of the seed-004 cohort (main data set) used for comparison.
REFERENCE: dict[str, Any] = {
    "primary_volume_median_ml": 8.16, "primary_volume_mean_ml": 13.21, "primary_n": 643,
    "node_volume_median_ml": 2.74, "node_volume_mean_ml": 5.45, "node_n": 1078, "patients": 698,
    "sites": {"oropharynx": 0.63, "larynx": 0.17, "oral cavity": 0.06, "hypopharynx": 0.06, "nasopharynx": 0.06},
}
_REFERENCE_TEXT = {
    ("primary", "volume_ml"): "median 8.16, mean 13.21 (643 primaries)",
    ("node", "volume_ml"): "median 2.74, mean 5.45 (1078 nodes)",
    ("primary", "suvmax"): "not tabulated (an example primary: 22.0)",
    ("node", "suvmax"): "many about 3-4 (examples: 4.0, 7.4)",
}


def lesion_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per lesion of the cohort's JSON records."""
    rows = []
    for rec in records:
        for lesion in rec["lesions"]:
            rows.append({"case_id": rec["case_id"], "seed": rec["seed"], "class": lesion["class"], "site": lesion["site"],
                         "side": lesion["side"], "volume_ml": lesion["volume_ml"], "suvmax": lesion["suvmax"],
                         "necrotic": lesion["necrotic"]})
    return pd.DataFrame(rows, columns=["case_id", "seed", "class", "site", "side", "volume_ml", "suvmax", "necrotic"])


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """n, mean, median, quartiles and range of volume and SUVmax per class, with the reference figures.

    >>> t = pd.DataFrame({"class": ["node"] * 4, "volume_ml": [1.0, 2.0, 3.0, 4.0], "suvmax": [3.0] * 4})
    >>> s = summary(t)
    >>> s[(s["class"] == "node") & (s["quantity"] == "volume_ml")][["n", "median", "q1", "q3"]].values.tolist()
    [[4.0, 2.5, 1.75, 3.25]]
    """
    rows = []
    for kind in ("primary", "node"):
        part = table[table["class"] == kind]
        for quantity in ("volume_ml", "suvmax"):
            values = part[quantity].to_numpy(float)
            stats = (np.percentile(values, [25, 50, 75]).tolist() + [values.min(), values.max(), values.mean()]
                     if len(values) else [np.nan] * 6)
            rows.append({"class": kind, "quantity": quantity, "n": int(len(values)), "median": stats[1],
                         "q1": stats[0], "q3": stats[2], "min": stats[3], "max": stats[4], "mean": stats[5],
                         "seed004": _REFERENCE_TEXT[(kind, quantity)]})
    return pd.DataFrame(rows)


def _site_group(site: str) -> str:
    return site.split(" (")[0]


def format_report(table: pd.DataFrame, n_cases: int) -> str:
    """A plain-text report: distributions per class and the cohort-level figures, beside seed 004."""
    lines = [f"Synthetic cohort: {n_cases} cases, {len(table)} lesions", "",
             f"{'':22s}{'n':>5s}{'median':>9s}{'IQR':>17s}{'range':>17s}{'mean':>8s}   seed-004 cohort"]
    for row in summary(table).to_dict("records"):
        label = f"{row['class']} {'volume (ml)' if row['quantity'] == 'volume_ml' else 'SUVmax'}"
        iqr, rng = f"{row['q1']:.2f}-{row['q3']:.2f}", f"{row['min']:.2f}-{row['max']:.2f}"
        lines.append(f"{label:22s}{row['n']:5d}{row['median']:9.2f}{iqr:>17s}{rng:>17s}{row['mean']:8.2f}   {row['seed004']}")
    nodes = table[table["class"] == "node"]
    primaries = table[table["class"] == "primary"]
    ref = REFERENCE
    lines += ["", f"nodes per patient: {len(nodes) / max(n_cases, 1):.2f} "
                  f"(seed 004: {ref['node_n'] / ref['patients']:.2f})"]
    if len(primaries):
        shares = primaries["site"].map(_site_group).value_counts(normalize=True)
        ours = ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items())
        theirs = ", ".join(f"{k} {100 * v:.0f}%" for k, v in ref["sites"].items())
        lines += [f"primary sites: {ours}", f"  seed 004: {theirs}"]
        lines.append(f"necrotic cores: {100 * primaries['necrotic'].mean():.0f}% of primaries, "
                     f"{100 * nodes['necrotic'].mean() if len(nodes) else 0:.0f}% of nodes")
    if len(nodes):
        modest = ((nodes["suvmax"] >= 2.5) & (nodes["suvmax"] <= 4.5)).mean()
        lines.append(f"nodes with SUVmax 2.5-4.5 (as bright as tonsils and glands): {100 * modest:.0f}%")
    return "\n".join(lines)


def save_report(table: pd.DataFrame, n_cases: int, folder: str | Path) -> dict[str, Path]:
    """Write ``lesions.csv``, ``summary.csv``, ``report.txt`` and ``distributions.png`` into ``folder``."""
    folder = ensure_folder(folder)
    paths = {"lesions": folder / "lesions.csv", "summary": folder / "summary.csv",
             "text": folder / "report.txt", "figure": folder / "distributions.png"}
    atomic_write_text(paths["lesions"], table.to_csv(index=False))
    atomic_write_text(paths["summary"], summary(table).to_csv(index=False, float_format="%.4f"))
    atomic_write_text(paths["text"], format_report(table, n_cases) + "\n")
    _figure(table, paths["figure"])
    return paths


def _figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6))
    axes = fig.subplots(2, 2)
    for row, kind in enumerate(("primary", "node")):
        part = table[table["class"] == kind]
        ref = REFERENCE[f"{kind}_volume_median_ml"]
        axes[row, 0].hist(part["volume_ml"], bins=np.geomspace(0.2, 80, 25), color="0.5")
        axes[row, 0].set_xscale("log")
        axes[row, 0].axvline(ref, color="r", label=f"seed-004 median {ref} ml")
        axes[row, 0].axvline(part["volume_ml"].median() if len(part) else np.nan, color="k", ls="--", label="phantom median")
        axes[row, 0].set_xlabel(f"{kind} volume (ml)")
        axes[row, 0].legend(fontsize=8)
        axes[row, 1].hist(part["suvmax"], bins=np.linspace(0, 26, 27), color="0.5")
        axes[row, 1].axvline(2.5, color="b", ls=":", label="SUV 2.5")
        axes[row, 1].set_xlabel(f"{kind} SUVmax")
        axes[row, 1].legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"), suffix=".png")
