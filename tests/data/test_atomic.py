"""simreal.atomic: one naming pattern, complete-or-absent files, nothing left behind on failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from simreal.atomic import (
    atomic_open,
    atomic_path,
    is_temporary,
    reserve_temporary,
    sweep_temporaries,
    write_bytes,
    write_json,
    write_text,
)
from simreal.errors import SimrealError


def test_success_renames_into_place_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.bin"
    with atomic_path(target) as tmp:
        assert is_temporary(tmp) and tmp.parent == target.parent and tmp.name.startswith(".a.bin.")
        assert not target.exists()  # nothing under the final name while writing
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert os.listdir(target.parent) == ["a.bin"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half of the new")
            raise RuntimeError("killed halfway")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_write_json_sorted_keys_default_hook_and_same_bytes(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"b": np.float32(1.5), "a": [1, 2]}, default=float)
    write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1.5})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    text = (tmp_path / "a.json").read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"') and json.loads(text)["b"] == 1.5
    with pytest.raises(TypeError):
        write_json(tmp_path / "c.json", {"x": object()})
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json"]  # a failed encode writes nothing


def test_new_files_get_the_usual_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "x", b"1")
    finally:
        os.umask(old)
    assert (tmp_path / "x").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_unwritable_folder_is_a_simreal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")  # a file where the folder should be (works as root too)
    with pytest.raises(SimrealError, match="file: cannot create the folder"):
        write_text(tmp_path / "file" / "x.txt", "y")
    with pytest.raises(SimrealError, match="cannot write the file"):
        reserve_temporary(tmp_path / "file" / "x.txt")


def test_pattern_and_sweep(tmp_path: Path) -> None:
    tmp = reserve_temporary(tmp_path / "000089.png")
    assert tmp.stat().st_size == 0 and is_temporary(tmp)
    legacy = tmp_path / ".000001.png.k2_x9abc.tmp"  # tempfile.mkstemp's alphabet, used before this module
    legacy.write_bytes(b"")
    keep = [".hidden", "a.tmp", ".a.tmp", ".a.b.tmp", ".a.ABCDEFGH.tmp", "000089.png"]
    for name in keep:
        (tmp_path / name).write_bytes(b"")
    assert sorted(p.name for p in sweep_temporaries(tmp_path)) == sorted([tmp.name, legacy.name])
    assert sorted(os.listdir(tmp_path)) == sorted(keep)
    assert sweep_temporaries(tmp_path / "missing") == []
