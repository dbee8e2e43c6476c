"""``napari-hnc segment``: aligned label files per case, resume, errors, and torchrun sharding."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import functools

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from napari_hnc.cli import main
from napari_hnc.errors import StudyError
from napari_hnc.inference.automatic import segment
from napari_hnc.inference.cohort import collect_studies, segment_case
from napari_hnc.inference.distributed import DistInfo
from synthetic_pet_ct import neck_study, save_tiny_model, threshold_model, write_hecktor2022

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    for i in range(4):
        write_hecktor2022(neck_study(seed=i, case_id=f"SYN-{i:03d}"), root / "data" / f"site{i % 2}")
    save_tiny_model(root / "model")
    return root


def _summary(out: Path) -> list[dict]:
    with (out / "segment_summary.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_two_cases_give_labels_aligned_with_their_ct(cohort, tmp_path, capsys):
    inputs = [str(cohort / "data" / "site0" / "SYN-000__CT.nii.gz"), str(cohort / "data" / "site1" / "SYN-001__PT.nii.gz")]
    code = main(["segment", *inputs, "--out", str(tmp_path), "--model", str(cohort / "model" / "tiny.json"),
                 "--device", "cpu", "--threads", "1"])
    assert code == 0
    assert "2 case(s): 2 segmented" in capsys.readouterr().out
    for case, site in (("SYN-000", "site0"), ("SYN-001", "site1")):
        ct = nib.load(str(cohort / "data" / site / f"{case}__CT.nii.gz"))
        labels = nib.load(str(tmp_path / f"{case}_pred.nii.gz"))
        assert labels.shape == ct.shape and np.allclose(labels.affine, ct.affine)
        assert labels.get_data_dtype() == np.uint8
        assert int(labels.header["qform_code"]) == int(ct.header["qform_code"])
        assert set(np.unique(np.asarray(labels.dataobj))) <= {0, 1, 2}
    assert [row["case_id"] for row in _summary(tmp_path)] == ["SYN-000", "SYN-001"]
    table = pd.read_csv(tmp_path / "SYN-000_lesions.csv")
    image = nib.load(str(tmp_path / "SYN-000_pred.nii.gz"))
    voxel_ml = abs(np.linalg.det(image.affine[:3, :3])) / 1000
    assert table["volume_ml"].sum() == pytest.approx(np.count_nonzero(np.asarray(image.dataobj)) * voxel_ml, rel=1e-4)


def test_the_lesion_table_has_one_row_per_lesion_where_the_lesions_are(tmp_path):
    study = neck_study()
    write_hecktor2022(study, tmp_path / "data")
    [files] = collect_studies([tmp_path / "data"])
    run = functools.partial(segment, model=threshold_model(), device="cpu", threads=1)
    result = segment_case(files, tmp_path / "out", run, resume=False, info=DistInfo())
    assert result.status == "done", result.message
    table = pd.read_csv(result.lesions_csv)
    assert len(table) == 2 and set(table["class"]) == {1}
    truth_centres = [(10.0, -5.0, 12.0), (-30.0, 15.0, -6.0)]
    for centre in truth_centres:
        distance = np.linalg.norm(table[["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]].to_numpy() - centre, axis=1)
        assert distance.min() < 1.5


def test_resume_skips_finished_cases(cohort, tmp_path, capsys):
    args = ["segment", str(cohort / "data" / "site0"), "--out", str(tmp_path), "--model",
            str(cohort / "model" / "tiny.json"), "--device", "cpu", "--threads", "1"]
    assert main(args) == 0
    written = (tmp_path / "SYN-000_pred.nii.gz").stat().st_mtime_ns
    assert main(args + ["--resume"]) == 0
    assert (tmp_path / "SYN-000_pred.nii.gz").stat().st_mtime_ns == written
    assert {row["status"] for row in _summary(tmp_path)} == {"skipped"}


def test_missing_model_and_bad_inputs_exit_with_clear_codes(cohort, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NAPARI_HNC_MODELS", str(tmp_path / "no-models"))
    monkeypatch.setattr("napari_hnc.models.registry.bundled_dir", lambda: tmp_path / "no-bundled-models")
    assert main(["segment", str(cohort / "data" / "site0"), "--out", str(tmp_path / "o")]) == 1
    assert "no model named 'default' is installed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_a_failing_case_is_reported_and_the_others_still_run(cohort, tmp_path, capsys):
    data = tmp_path / "data"
    write_hecktor2022(neck_study(case_id="GOOD"), data)
    ct_only = write_hecktor2022(neck_study(case_id="NOPET"), data)
    ct_only.with_name("NOPET__PT.nii.gz").unlink()
    code = main(["segment", str(data), "--out", str(tmp_path / "out"), "--model",
                 str(cohort / "model" / "tiny.json"), "--device", "cpu", "--threads", "1"])
    assert code == 1
    assert "NOPET" in capsys.readouterr().out and (tmp_path / "out" / "GOOD_pred.nii.gz").is_file()
    rows = {row["case_id"]: row for row in _summary(tmp_path / "out")}
    assert rows["GOOD"]["status"] == "done" and rows["NOPET"]["status"] == "failed"
    assert "has no PET" in rows["NOPET"]["message"]


def test_duplicate_case_ids_are_refused(cohort, tmp_path):
    write_hecktor2022(neck_study(case_id="SYN-000"), tmp_path / "copy")
    with pytest.raises(StudyError, match="both called 'SYN-000'"):
        collect_studies([cohort / "data", tmp_path / "copy"])


def test_torchrun_shards_four_cases_over_two_ranks_without_gaps_or_repeats(cohort, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "napari_hnc.cli", "segment", str(cohort / "data"), "--out", str(tmp_path),
        "--model", str(cohort / "model" / "tiny.json"), "--device", "cpu",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _summary(tmp_path)
    cases = sorted(row["case_id"] for row in rows)
    assert cases == ["SYN-000", "SYN-001", "SYN-002", "SYN-003"]  # none missing, none twice
    assert {row["rank"] for row in rows} == {"0", "1"}
    assert all(row["status"] == "done" for row in rows)
    assert sorted(p.name for p in tmp_path.glob("*.nii.gz")) == [f"{c}_pred.nii.gz" for c in cases]
    assert "4 case(s): 4 segmented" in done.stdout
