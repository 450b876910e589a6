"""`simreal demo` (small and fast here) and the CLI's one-line errors."""

from __future__ import annotations

from pathlib import Path

from simreal.cli import one_line
from simreal_testing import run_simreal as simreal


def test_demo_renders_validates_and_refuses_other_arguments(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    first = simreal("demo", "--out", str(out), "--n", "2", "--size", "32", "--workers", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    assert (out / "contact_sheet.png").is_file() and (out / "frames" / "dataset.json").is_file()
    again = simreal("demo", "--out", str(out), "--n", "2", "--size", "32", "--workers", "1")
    assert again.returncode == 0  # same arguments: the finished demo is reused
    other = simreal("demo", "--out", str(out), "--n", "3", "--size", "32", "--workers", "1")
    assert other.returncode == 2 and "other arguments" in other.stderr


def test_errors_from_dataloader_workers_are_one_line() -> None:
    wrapped = (
        "Caught SimrealError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nsimreal.errors.SimrealError: /data/a.png: cannot decode image\n'
    )
    assert one_line(wrapped) == "/data/a.png: cannot decode image"
    assert one_line("/data/a.png: plain") == "/data/a.png: plain"
