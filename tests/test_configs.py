"""Config files: YAML / TOML / JSON into frozen dataclass trees, strictly, and back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from simreal.configs import build, merge, read_config_file, to_plain, write_config_file
from simreal.errors import SimrealError


@dataclass(frozen=True)
class Lens:
    fov_deg: tuple[float, float] = (100.0, 140.0)
    model: Literal["pinhole", "fisheye"] = "pinhole"


@dataclass(frozen=True)
class Job:
    n: int
    lens: Lens = field(default_factory=Lens)
    colours: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    seeds: tuple[int, ...] = ()
    anatomy: str | None = None
    mask_map: dict[int, int] | None = None
    flag: bool = False


def test_round_trip_through_every_format(tmp_path: Path) -> None:
    job = Job(n=3, lens=Lens((90.0, 120.0), "fisheye"), seeds=(1, 2), anatomy="a.ply", mask_map={2: 1}, flag=True)
    for suffix in (".yaml", ".json"):
        path = write_config_file(tmp_path / f"job{suffix}", job)
        assert build(Job, read_config_file(path), source=path) == job
    toml = tmp_path / "job.toml"
    toml.write_text('n = 3\nseeds = [1, 2]\nanatomy = "a.ply"\nflag = true\n[lens]\nfov_deg = [90, 120]\nmodel = "fisheye"\n'
                    '[mask_map]\n2 = 1\n')
    assert build(Job, read_config_file(toml), source=toml) == job
    assert to_plain(job)["mask_map"] == {"2": 1}


def test_defaults_fill_missing_fields_and_merge_overrides() -> None:
    base = to_plain(Job(n=1))
    job = build(Job, merge(base, {"lens": {"model": "fisheye"}, "n": 5}))
    assert job == Job(n=5, lens=Lens(model="fisheye"))


@pytest.mark.parametrize("mapping, message", [
    ({"n": 1, "lense": {}}, "unknown field 'lense'; known: n, lens"),
    ({"n": 1, "lens": {"fov": 1}}, "unknown field 'fov' in lens"),
    ({}, "n: required field missing"),
    ({"n": "three"}, "n: expected an integer, got 'three'"),
    ({"n": True}, "n: expected an integer"),
    ({"n": 1, "lens": {"fov_deg": [1, 2, 3]}}, "lens.fov_deg: expected 2 values"),
    ({"n": 1, "lens": {"model": "orthographic"}}, "lens.model: expected one of 'pinhole', 'fisheye'"),
    ({"n": 1, "colours": [[0, 0], [1, 1, 1]]}, "colours[0]: expected 3 values"),
    ({"n": 1, "seeds": [1, "x"]}, "seeds[1]: expected an integer"),
    ({"n": 1, "mask_map": {"a": 1}}, "mask_map: key 'a' is not an integer"),
    ({"n": 1, "flag": "yes"}, "flag: expected true or false"),
])
def test_bad_fields_name_the_path(tmp_path: Path, mapping: dict, message: str) -> None:
    with pytest.raises(SimrealError, match=None) as exc:
        build(Job, mapping, source=tmp_path / "c.yaml")
    assert message in str(exc.value) and "c.yaml" in str(exc.value)


@pytest.mark.parametrize("name, text, message", [
    ("c.yaml", "n: [1,\n", "cannot parse the config file"),
    ("c.toml", "n = \n", "cannot parse the config file"),
    ("c.json", "{", "cannot parse the config file"),
    ("c.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ("c.ini", "n=1", "unknown config file type"),
])
def test_unreadable_files_are_one_clear_error(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SimrealError, match=message):
        read_config_file(path)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SimrealError, match="not UTF-8"):
        read_config_file(tmp_path / "bin.yaml")
    with pytest.raises(SimrealError, match="not found"):
        read_config_file(tmp_path / "missing.yaml")
