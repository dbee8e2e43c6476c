"""``napari-hnc delineate`` and ``napari-hnc quantify`` on a small HECKTOR 2022 study."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_hnc.cli import main
from napari_hnc.io.nifti import read_nifti, save_labels
from synthetic import write_hecktor2022


@pytest.fixture
def case(tmp_path):
    paths = write_hecktor2022(tmp_path / "data")
    ct = read_nifti(paths["ct"])
    centre = ct.voxel_to_world(np.array(ct.shape) / 2)
    return paths, ",".join(f"{v:.2f}" for v in centre)


def test_delineate_writes_labels_on_the_ct_grid(case, tmp_path, capsys):
    paths, click = case
    out = tmp_path / "out" / "labels.nii.gz"
    code = main(["delineate", str(paths["ct"]), "--click", f"{click}:node", "--method", "fixed",
                 "--threshold", "3", "--out", str(out), "--table", str(tmp_path / "t.json")])
    assert code == 0
    labels, ct = read_nifti(out), read_nifti(paths["ct"])
    assert labels.same_grid(ct) and set(np.unique(labels.array)) == {0, 2}
    assert "1 lesion(s)" in capsys.readouterr().out
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["method"] == "fixed" and doc["totals"]["n_nodes"] == 1


def test_negative_coordinates_need_no_equals_sign(case, tmp_path):
    paths, click = case
    assert click == "0.00,0.00,0.00"  # the lesion of the synthetic study sits at the world origin
    out = tmp_path / "l.nii.gz"
    assert main(["delineate", str(paths["ct"]), "--click", "-1.5,-1,-0.5:node", "--out", str(out)]) == 0
    assert (read_nifti(out).array == 2).sum() > 100
    assert main(["delineate", str(paths["ct"]), "--click=-1.5,-1,-0.5", "--out", str(out), "--overwrite"]) == 0
    assert (read_nifti(out).array == 1).sum() > 100


def test_delineate_bad_usage_and_bad_clicks(case, tmp_path, capsys):
    paths, click = case
    out = str(tmp_path / "l.nii.gz")
    with pytest.raises(SystemExit) as exit_info:
        main(["delineate", str(paths["ct"]), "--click", click, "--percent", "50", "--method", "fixed", "--out", out])
    assert exit_info.value.code == 2 and "'percent' does not apply to method 'fixed'" in capsys.readouterr().err
    assert main(["delineate", str(paths["ct"]), "--click", "900,0,0", "--out", out]) == 1
    assert "lies outside the volume" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["delineate", "--click", click, "--out", out])
    assert exit_info.value.code == 2 and "name a study" in capsys.readouterr().err


def test_quantify_writes_csv_and_json(case, tmp_path, capsys):
    paths, _ = case
    assert main(["quantify", str(paths["ct"]), "--out", str(tmp_path / "q.csv")]) == 0
    table = pd.read_csv(tmp_path / "q.csv")
    assert len(table) == 1 and table.loc[0, "class_name"] == "primary tumour"
    assert "MTV primary" in capsys.readouterr().out
    other = tmp_path / "other.nii.gz"
    ct = read_nifti(paths["ct"])
    node = np.zeros(ct.shape, np.uint8)
    node[2:5, 2:5, 2:5] = 2
    save_labels(node, ct, other)
    assert main(["quantify", str(paths["ct"]), "--labels", str(other), "--out", str(tmp_path / "q.json")]) == 0
    doc = json.loads((tmp_path / "q.json").read_text())
    assert doc["totals"]["n_nodes"] == 1 and doc["lesions"][0]["n_voxels"] == 27


def test_quantify_refuses_other_formats_and_missing_labels(case, tmp_path, capsys):
    paths, _ = case
    with pytest.raises(SystemExit) as exit_info:
        main(["quantify", "--ct", str(paths["ct"]), "--pet", str(paths["pet"]), "--out", str(tmp_path / "q.csv")])
    assert exit_info.value.code == 2 and "pass --labels FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["quantify", str(paths["ct"]), "--out", str(tmp_path / "q.xlsx")])
    assert exit_info.value.code == 2 and ".csv or .json" in capsys.readouterr().err


def test_help_is_fast_and_names_the_rules(capsys):
    with pytest.raises(SystemExit):
        main(["delineate", "--help"])
    text = capsys.readouterr().out
    assert all(word in text for word in ("--click", "--method", "adaptive", "--max-radius-mm"))


def test_delineate_keeps_instances_names_a_failing_click_and_changes_classes(tmp_path, capsys):
    from pet_helpers import blurred_study
    from synthetic_pet_ct import write_hecktor2022 as write_study

    study, truth = blurred_study([((40, 50, 25), 8.0, 7.0, 2), ((56, 50, 25), 8.0, 6.0, 2)])
    study.case_id = "TWO"
    ct_path = write_study(study, tmp_path / "data")
    clicks = [",".join(f"{v:.1f}" for v in study.grid.voxel_to_world(c)) for c in ((40, 50, 25), (56, 50, 25))]
    out = tmp_path / "TWO.nii.gz"
    code = main(["delineate", str(ct_path), "--click", f"{clicks[0]}:node", "--click", f"{clicks[1]}:node",
                 "--set-class", f"{clicks[1]}:primary", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 lesion(s)" in printed and "primary tumour" in printed and "lymph node" in printed
    instances = read_nifti(tmp_path / "TWO_instances.nii.gz")
    assert instances.array.max() == 2 and set(np.unique(read_nifti(out).array)) == {0, 1, 2}
    assert main(["delineate", str(ct_path), "--click", f"{clicks[0]}:node", "--click", "2,2,2:node",
                 "--out", str(tmp_path / "x.nii.gz")]) == 1  # click 2 lies in the cold corner
    assert "click 2 of 2 (2.0,2.0,2.0:node): no uptake at the click" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # the instance map beside --out is not replaced silently
        main(["delineate", str(ct_path), "--click", clicks[0], "--out", str(out)])
    assert exit_info.value.code == 2
