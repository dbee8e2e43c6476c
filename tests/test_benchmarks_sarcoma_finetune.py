"""The real-PET/CT fine-tuning benchmark holds out whole patients and builds layouts the loaders read."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "sarcoma_finetune.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("sarcoma_finetune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases(root: Path, names, with_ct=True):
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        for file in ("PET_image.nii.gz", "CT_mask.nii.gz") + (("CT_image.nii.gz",) if with_ct else ()):
            (folder / file).write_bytes(name.encode())


def test_every_patient_is_held_out_in_exactly_one_fold_and_cases_without_a_ct_are_left_out(script, tmp_path):
    _cases(tmp_path, [f"STS_{i:03d}" for i in range(1, 11)])
    _cases(tmp_path, ["STS_050"], with_ct=False)
    held_out = []
    for fold in range(3):
        train, held = script.split(tmp_path, 3, fold)
        assert not {c.name for c in train} & {c.name for c in held}
        assert len(train) + len(held) == 10
        held_out += [c.name for c in held]
    assert sorted(held_out) == [f"STS_{i:03d}" for i in range(1, 11)]
    with pytest.raises(SystemExit, match="no STS_"):
        script.split(tmp_path / "STS_050", 3, 0)


def test_the_layout_links_ct_pet_and_the_ct_mask_under_hecktor_names(script, tmp_path):
    from napari_hnc.layouts import discover_studies

    root = tmp_path / "data"
    _cases(root, ["STS_001", "STS_002"])
    train, held = script.split(root, 2, 1)
    folder = script.layout(train, tmp_path / "train")
    assert (folder / "imagesTr" / "STS_001__CT.nii.gz").read_bytes() == b"STS_001"
    assert (folder / "imagesTr" / "STS_001__PT.nii.gz").resolve() == (root / "STS_001" / "PET_image.nii.gz").resolve()
    assert (folder / "labelsTr" / "STS_001.nii.gz").resolve() == (root / "STS_001" / "CT_mask.nii.gz").resolve()
    assert not (folder / "imagesTr" / "STS_002__CT.nii.gz").exists()
    script.layout(train, folder)  # again: links already there are kept
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == ["STS_001__CT.nii.gz", "STS_001__PT.nii.gz"]
    (study,) = discover_studies(folder)
    assert (study.case_id, study.layout) == ("STS_001", "hecktor2022")
    assert study.ct.name == "STS_001__CT.nii.gz" and study.pet.name == "STS_001__PT.nii.gz"
    assert study.labels is not None and study.labels.name == "STS_001.nii.gz"


def test_phantoms_mixed_in_are_the_first_cases_and_never_their_instance_maps(script, tmp_path):
    from napari_hnc.layouts import discover_studies

    phantoms = tmp_path / "phantoms"
    for sub in ("imagesTr", "labelsTr"):
        (phantoms / sub).mkdir(parents=True)
    for name in ("PHANTOM-1000", "PHANTOM-1001", "PHANTOM-1002"):
        for file in (f"imagesTr/{name}__CT.nii.gz", f"imagesTr/{name}__PT.nii.gz", f"labelsTr/{name}.nii.gz",
                     f"labelsTr/{name}_instances.nii.gz"):
            (phantoms / file).write_bytes(name.encode())
    root = tmp_path / "data"
    _cases(root, ["STS_001"])
    folder = script.layout(script.split(root, 1, 1)[0], tmp_path / "train")
    assert script.link_phantoms(phantoms, 2, folder) == ["PHANTOM-1000", "PHANTOM-1001"]
    assert sorted(s.case_id for s in discover_studies(folder)) == ["PHANTOM-1000", "PHANTOM-1001", "STS_001"]
    assert not list(folder.rglob("*_instances*"))
    with pytest.raises(SystemExit, match="fewer than --phantom-cases 4"):
        script.link_phantoms(phantoms, 4, folder)


def test_large_lesions_clicks_each_sarcoma_with_the_fold_model_that_held_it_out(script, tmp_path):
    spec = importlib.util.spec_from_file_location("large_lesions", SCRIPT.with_name("large_lesions.py"))
    large = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(large)
    names = [f"STS_{i:03d}" for i in range(1, 8)]
    _cases(tmp_path, names)
    chosen = large.held_out_by(tmp_path, ["a.json", "b.json", "c.json"])
    assert sorted(chosen) == names
    for fold, card in enumerate(["a.json", "b.json", "c.json"]):
        train, held = script.split(tmp_path, 3, fold)
        assert {c.name for c in held} == {n for n, c in chosen.items() if c == card}
        assert not {c.name for c in train} & {n for n, c in chosen.items() if c == card}
