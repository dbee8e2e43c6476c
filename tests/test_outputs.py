"""Writing outputs: no overwrite without --overwrite, clear messages (never tracebacks) when a file cannot
be written, atomic summaries, and temporaries of killed writes cleaned up."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import napari_hnc
from napari_hnc.cli import main
from napari_hnc.errors import OutputError
from napari_hnc.geometry import Volume
from napari_hnc.inference.cohort import CaseResult, write_summary
from napari_hnc.io import atomic, nifti
from napari_hnc.io.nifti import read_nifti
from synthetic import write_hecktor2022


@pytest.fixture
def case(tmp_path):
    paths = write_hecktor2022(tmp_path / "data")
    ct = read_nifti(paths["ct"])
    click = ",".join(f"{v:.2f}" for v in ct.voxel_to_world(np.array(ct.shape) / 2))
    return paths, click


def _quantify(paths, out, *extra):
    return main(["quantify", str(paths["ct"]), "--out", str(out), *extra])


def _delineate(paths, click, out, *extra):
    return main(["delineate", str(paths["ct"]), "--click", click, "--out", str(out), *extra])


def _no_model(monkeypatch):
    from napari_hnc.errors import ModelError
    from napari_hnc.models import registry

    def no_model(*args, **kwargs):
        raise ModelError("no model installed")

    monkeypatch.setattr(registry, "find_model", no_model)


def _failing_writes(monkeypatch, code: int) -> None:
    """Every file write fails with ``code`` after writing a few bytes (as on a full disk or a read-only folder)."""
    message = os.strerror(code)

    def broken_text(self, *args, **kwargs):
        with open(self, "wb") as handle:
            handle.write(b"par")
        raise OSError(code, message, str(self))

    def broken_nib_save(image, filename):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise OSError(code, message, filename)

    monkeypatch.setattr(Path, "write_text", broken_text)
    monkeypatch.setattr(nifti.nib, "save", broken_nib_save)


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*") if ".tmp" in p.name]


# --------------------------------------------------------------------------- --overwrite everywhere


def test_quantify_and_delineate_never_replace_a_file_without_overwrite(case, tmp_path, capsys):
    paths, click = case
    table, labels = tmp_path / "q.csv", tmp_path / "l.nii.gz"
    for run, out in ((lambda *e: _quantify(paths, table, *e), table), (lambda *e: _delineate(paths, click, labels, *e), labels)):
        out.write_bytes(b"my own file")
        with pytest.raises(SystemExit) as exit_info:
            run()
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"{out} already exists; nothing was written. Pass --overwrite" in err
        assert out.read_bytes() == b"my own file"
        assert run("--overwrite") == 0 and out.read_bytes() != b"my own file"


def test_delineate_checks_its_table_too(case, tmp_path, capsys):
    paths, click = case
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(SystemExit):
        _delineate(paths, click, tmp_path / "new.nii.gz", "--table", str(tmp_path / "t.json"))
    assert "t.json already exists" in capsys.readouterr().err and not (tmp_path / "new.nii.gz").exists()


def test_demo_and_phantom_need_overwrite_to_replace(tmp_path, capsys, monkeypatch):
    _no_model(monkeypatch)
    out = tmp_path / "demo"
    assert main(["demo", "--headless", "--out", str(out)]) == 0
    before = (out / "STS_001_labels.nii.gz").stat().st_mtime_ns
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--headless", "--out", str(out)])
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "STS_001_labels.nii.gz").stat().st_mtime_ns == before
    assert main(["demo", "--headless", "--out", str(out), "--overwrite"]) == 0

    argv = ["phantom", "--n", "1", "--seed", "5", "--preset", "small", "--out", str(tmp_path / "ph")]
    assert main(argv) == 0
    labels = tmp_path / "ph" / "labelsTr" / "PHANTOM-0005.nii.gz"
    labels.write_bytes(b"edited by hand")
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "PHANTOM-0005" in capsys.readouterr().err
    assert labels.read_bytes() == b"edited by hand"
    assert main(argv + ["--overwrite"]) == 0 and nib.load(str(labels)).shape


# --------------------------------------------------------------------------- output errors are messages


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "is full"), (errno.EACCES, "is not writable by you"),
                                         (errno.EROFS, "read-only file system")])
def test_quantify_and_delineate_report_write_failures_without_a_traceback(case, tmp_path, capsys, monkeypatch,
                                                                          code, words):
    paths, click = case
    table, labels = tmp_path / "out" / "q.csv", tmp_path / "out" / "l.nii.gz"
    assert _quantify(paths, table) == 0 and _delineate(paths, click, labels) == 0
    before = table.read_bytes(), labels.read_bytes()
    _failing_writes(monkeypatch, code)
    assert _quantify(paths, table, "--overwrite") == 1
    assert _delineate(paths, click, labels, "--overwrite") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count(words) == 2 and "existing file there is unchanged" in err
    assert (table.read_bytes(), labels.read_bytes()) == before
    assert _no_temporaries(tmp_path / "out")


def test_a_file_where_a_folder_should_be_is_named(case, tmp_path, capsys, monkeypatch):
    paths, click = case
    blocker = tmp_path / "results"
    blocker.write_text("a file, not a folder")
    assert _quantify(paths, blocker / "q.csv") == 1
    assert _delineate(paths, click, blocker / "sub" / "l.nii.gz") == 1
    _no_model(monkeypatch)
    assert main(["demo", "--headless", "--out", str(blocker / "demo")]) == 1
    err = capsys.readouterr().err
    assert err.count(f"{blocker} is a file, not a folder") == 3 and "Traceback" not in err
    ct = read_nifti(paths["ct"])
    with pytest.raises(OutputError, match="is a file, not a folder"):
        napari_hnc.save_labels(np.zeros(ct.shape, np.uint8), ct, blocker / "labels.nii.gz")


def test_segment_reports_an_unusable_output_folder_before_any_work(case, tmp_path, capsys, monkeypatch):
    paths, _ = case
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    assert main(["segment", str(paths["ct"]), "--out", str(blocker / "seg"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"{blocker} is a file, not a folder" in err and "Traceback" not in err

    real_write_bytes = Path.write_bytes

    def read_only(self, data):
        if self.parent == tmp_path / "ro":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_write_bytes(self, data)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(Path, "write_bytes", read_only)
    assert main(["segment", str(paths["ct"]), "--out", str(tmp_path / "ro"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'ro'} is not writable by you" in err and "Traceback" not in err


def test_a_failing_cleanup_does_not_hide_the_reason(tmp_path, monkeypatch):
    ct = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4))
    _failing_writes(monkeypatch, errno.ENOSPC)

    def unlink_fails(self, missing_ok=False):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "unlink", unlink_fails)
    with pytest.raises(OutputError, match="is full"):
        napari_hnc.save_labels(np.ones((4, 4, 4), np.uint8), ct, tmp_path / "l.nii.gz")
    with pytest.raises(OutputError, match="is full"):
        atomic.atomic_write_text(tmp_path / "t.txt", "text")


def test_the_segment_summary_is_written_atomically(tmp_path, monkeypatch):
    results = [CaseResult("A", "done", 1.0), CaseResult("B", "failed", 0.5, message="no PET")]
    path = write_summary(results, tmp_path)
    before = path.read_bytes()
    assert before.count(b"\n") == 3
    _failing_writes(monkeypatch, errno.ENOSPC)
    with pytest.raises(OutputError, match="segment_summary.csv.*is full"):
        write_summary(results[:1], tmp_path)
    assert path.read_bytes() == before and _no_temporaries(tmp_path)


def test_temporaries_of_a_killed_write_are_removed_at_the_next_write(tmp_path):
    ct = Volume(np.zeros((4, 4, 4), np.int16), np.eye(4))
    target = tmp_path / "labels.nii.gz"
    stale = tmp_path / ".labels.nii.gz.0badf00d.tmp.nii.gz"  # what a killed save leaves behind
    fresh = tmp_path / ".labels.nii.gz.12345678.tmp.nii.gz"  # another process writing right now
    other = tmp_path / ".other.nii.gz.0badf00d.tmp.nii.gz"   # the temporary of another file
    for tmp in (stale, fresh, other):
        tmp.write_bytes(b"half a file")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    napari_hnc.save_labels(np.ones((4, 4, 4), np.uint8), ct, target)
    assert not stale.exists() and fresh.exists() and other.exists()
    assert read_nifti(target).array.sum() == 64
