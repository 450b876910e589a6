"""Nothing left behind by a crash: the writer sweeps its temporaries on resume, finish() ships only the
files records name, validate_dataset flags any other file, and a SIGKILLed render resumes to the same
bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simreal_testing import run_cli
from simreal.atomic import reserve_temporary
from simreal.data.format import DatasetInfo, SampleRecord
from simreal.data.images import write_png
from simreal.data.reader import DatasetReader, unnamed_files, validate_dataset
from simreal.data.writer import DatasetWriter, partial_dir
from simreal.errors import SimrealError

INFO = DatasetInfo(modality="image", domain="real", image_size=(4, 4), files=("image",), generator={"k": 1})


def _image(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.uint8)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_sweeps_only_the_writers_temporaries(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    w = DatasetWriter(out, INFO)
    w.write(SampleRecord(id="a", files={}), {"image": _image(1)})
    w.close()  # killed: leaves temporaries in the root, a kind folder and records/
    root = partial_dir(out)
    (root / "depth").mkdir()
    strays = [reserve_temporary(root / "image" / "b.png"), reserve_temporary(root / "records" / "b.json"),
              reserve_temporary(root / "samples.jsonl"), reserve_temporary(root / "depth" / "b.tiff")]
    (root / "image" / "notes.txt").write_text("not a temporary")
    again = DatasetWriter(out, INFO)
    assert not any(p.exists() for p in strays)
    assert (root / "image" / "notes.txt").is_file()  # the sweep touches the temporary pattern only
    assert again.done_ids == {"a"}
    again.finish()
    assert sorted(_tree(out)) == ["dataset.json", "image/a.png", "samples.jsonl"]


def test_finish_drops_files_of_samples_whose_record_was_never_written(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    w = DatasetWriter(out, INFO)
    for sid in ("a", "b", "c"):
        w.write(SampleRecord(id=sid, files={}), {"image": _image(ord(sid))})
    write_png(partial_dir(out) / "image" / "d.png", _image(9))  # its record never came: killed in between
    w.close()
    again = DatasetWriter(out, INFO)
    again.write(SampleRecord(id="a", files={}), {"image": _image(ord("a"))})  # re-rendered: overwritten
    again.finish(expected_ids=["a", "b"])  # "c" is complete but not asked for: left out, like "d"
    assert sorted(_tree(out)) == ["dataset.json", "image/a.png", "image/b.png", "samples.jsonl"]
    assert DatasetReader(out).ids == ["a", "b"]
    validate_dataset(out)


def test_finish_refuses_what_the_writer_never_made(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    w = DatasetWriter(out, INFO)
    w.write(SampleRecord(id="a", files={}), {"image": _image(1)})
    (partial_dir(out) / "notes.txt").write_text("mine")
    with pytest.raises(SimrealError, match=r"notes.txt: unexpected file in an unfinished dataset"):
        w.finish()
    assert (partial_dir(out) / "notes.txt").is_file() and (partial_dir(out) / "records" / "a.json").is_file()


def test_validate_names_a_file_no_record_names(tiny_dataset: Path) -> None:
    stray = tiny_dataset / "image" / ".000001.png.1a2b3c4d.tmp"
    stray.write_bytes(b"")
    with pytest.raises(SimrealError, match=r"image/\.000001\.png\.1a2b3c4d\.tmp: no record in samples.jsonl names"):
        validate_dataset(tiny_dataset)
    stray.unlink()
    (tiny_dataset / "README").write_text("about")
    (tiny_dataset / "depth" / "old").mkdir()
    (tiny_dataset / "depth" / "old" / "x.tiff").write_bytes(b"")
    assert unnamed_files(DatasetReader(tiny_dataset)) == ["README", "depth/old/x.tiff"]
    with pytest.raises(SimrealError, match=r"README: no record in samples.jsonl names this file \(1 more"):
        validate_dataset(tiny_dataset)


def test_cli_validate_reports_the_stray_in_one_line(tiny_dataset: Path, monkeypatch, capsys) -> None:
    (tiny_dataset / "mask" / "000009.png").write_bytes(b"")
    code, out, err = run_cli(monkeypatch, capsys, "dataset", "validate", "--no-progress", str(tiny_dataset))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "mask/000009.png: no record" in err


def _render(out: Path) -> list[str]:
    return [sys.executable, "-c", "from simreal.cli import main; main()", "render", "colon", "--n", "40",
            "--size", "32", "--workers", "2", "--no-progress", "--out", str(out)]


def test_killed_render_resumes_to_the_same_bytes(tmp_path: Path, monkeypatch, capsys) -> None:
    """SIGKILL a 2-worker render once frames exist, plant debris, rerun: same bytes as one clean run."""
    reference = tmp_path / "reference"
    code, _, err = run_cli(monkeypatch, capsys, "render", "colon", "--n", "40", "--size", "32", "--workers", "1",
                           "--no-progress", "--out", str(reference))
    assert code == 0, err
    out = tmp_path / "killed"
    records = partial_dir(out) / "records"
    # A session of its own, so the kill reaches the workers too (an orphaned worker would go on writing).
    proc = subprocess.Popen(_render(out), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (records.is_dir() and sum(1 for p in records.iterdir() if p.suffix == ".json") >= 2):
            assert proc.poll() is None, f"render ended before it could be killed: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no frame was rendered within 120 s"
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert not out.exists(), "the render finished before the kill: nothing was tested"
    done = {p.stem for p in records.glob("*.json")}
    assert 2 <= len(done) < 40
    todo = sorted({f"{i:06d}" for i in range(40)} - done)
    # What a kill can leave: temporaries (0 bytes, as the kill found them) and a frame's image without
    # its record; and a temporary beside the records.
    reserve_temporary(partial_dir(out) / "image" / f"{todo[-1]}.png")
    reserve_temporary(records / f"{todo[-1]}.json")
    (partial_dir(out) / "image" / f"{todo[-2]}.png").write_bytes(b"half a PNG")

    rerun = subprocess.run(_render(out), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not partial_dir(out).exists()
    assert _tree(out) == _tree(reference)
    validate_dataset(out)
