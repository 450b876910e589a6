"""`simreal render colon --config FILE` / `--write-config FILE`: files and flags make one job; a rendered
set's dataset.json makes the same set again, byte for byte; bad files are one line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simreal.anatomy.mesh import save_mesh
from simreal.data.writer import partial_dir
from simreal.render.job import read_render_job
from simreal.render.tube import tube_mesh
from simreal_testing import run_cli


@pytest.fixture(scope="module")
def anatomy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("anatomy") / "tube.ply"
    return save_mesh(tube_mesh(radius=12.0, length=150.0, segments=48, rings=20, polyps=((75.0, 0.0, 5.0),)), path)


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _job(tmp_path: Path, monkeypatch, capsys, *args: str) -> dict:
    path = tmp_path / "written.yaml"
    code, _, err = run_cli(monkeypatch, capsys, "render", "colon", *args, "--write-config", str(path))
    assert code == 0, err
    return read_render_job(path).to_dict()


def test_dataset_json_renders_the_same_set_again(monkeypatch, capsys, tmp_path, anatomy):
    old, new = tmp_path / "old", tmp_path / "new"
    code, _, err = run_cli(
        monkeypatch, capsys, "render", "colon", "--out", str(old), "--n", "3", "--size", "16", "--seed", "3",
        "--anatomy", str(anatomy), "--fisheye", "--no-normals", "--field-stop", "octagon", "--fov-min", "110",
        "--polyp-view-prob", "0.9", "--no-progress",
    )
    assert code == 0, err
    # From another folder, with another worker count: the bytes depend on the job alone.
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "render", "colon", "--config", str(old / "dataset.json"),
                           "--out", str(new), "--workers", "2", "--no-progress")
    assert code == 0, err
    assert _bytes(new) == _bytes(old)
    # A flag still overrides the file: same job but the seed.
    other = tmp_path / "other"
    code, _, _ = run_cli(monkeypatch, capsys, "render", "colon", "--config", str(old / "dataset.json"), "--seed", "4",
                         "--out", str(other), "--no-progress")
    assert code == 0
    job = json.loads((other / "dataset.json").read_text())["generator"]["job"]
    assert job["seed"] == 4 and job["config"]["lens"] == {"fov_deg": [110.0, 140.0], "fisheye": True, "fisheye_k1": [-0.05, 0.05]}
    assert _bytes(other)["image/000000.png"] != _bytes(old)["image/000000.png"]


def test_visibility_flag_is_recorded_and_renders_the_same_labels(monkeypatch, capsys, tmp_path, anatomy):
    """--visibility: the job records it (raster by default); masks and instances of raster equal Embree's on this
    tube, depth to float32 rounding."""
    import numpy as np
    import tifffile
    from PIL import Image

    assert _job(tmp_path, monkeypatch, capsys)["visibility"] == "raster"
    assert _job(tmp_path, monkeypatch, capsys, "--visibility", "embree")["visibility"] == "embree"
    sets = {}
    for vis in ("embree", "raster"):
        out = tmp_path / vis
        code, _, err = run_cli(monkeypatch, capsys, "render", "colon", "--out", str(out), "--n", "3", "--size", "24",
                               "--anatomy", str(anatomy), "--polyp-view-prob", "0.9", "--visibility", vis,
                               "--no-progress")
        assert code == 0, err
        sets[vis] = out
    for i in range(3):
        for kind in ("mask", "instance"):
            a, b = (np.asarray(Image.open(sets[v] / kind / f"{i:06d}.png")) for v in ("embree", "raster"))
            assert np.array_equal(a, b), (i, kind)
        da, db = (tifffile.imread(sets[v] / "depth" / f"{i:06d}.tiff") for v in ("embree", "raster"))
        assert np.array_equal(da > 0, db > 0) and np.allclose(da, db, rtol=1e-4, atol=0)
    code, _, err = run_cli(monkeypatch, capsys, "render", "colon", "--visibility", "zbuffer",
                           "--write-config", str(tmp_path / "bad.yaml"))
    assert code == 2 and "visibility: expected one of 'embree', 'raster'" in err


def test_flags_override_the_file_and_defaults_do_not(monkeypatch, capsys, tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("n: 7\nsize: 32\ncolons: [4, 5]\nconfig:\n  lens: {fov_deg: [90, 100], fisheye: true}\n"
                   "  normals: false\n  appearance: {gamma: [2.2, 2.2]}\n")
    # No flags: the file as it is (flag defaults must not creep in).
    job = _job(tmp_path, monkeypatch, capsys, "--config", str(cfg))
    assert (job["n"], job["size"], job["seed"], job["colons"]) == (7, 32, 0, [4, 5])
    assert job["config"]["lens"]["fov_deg"] == [90.0, 100.0] and job["config"]["lens"]["fisheye"] is True
    assert job["config"]["normals"] is False and job["config"]["appearance"]["gamma"] == [2.2, 2.2]
    # Flags given: exactly those fields change.
    job = _job(tmp_path, monkeypatch, capsys, "--config", str(cfg), "--size", "16", "--fov-max", "120", "--pinhole",
               "--normals", "--look-deg", "10")
    assert (job["n"], job["size"], job["colons"]) == (7, 16, [4, 5])
    assert job["config"]["lens"]["fov_deg"] == [90.0, 120.0] and job["config"]["lens"]["fisheye"] is False
    assert job["config"]["normals"] is True and job["config"]["pose"]["look_deg"] == 10.0
    assert job["config"]["appearance"]["gamma"] == [2.2, 2.2]
    # --colons K replaces the file's anatomies with K colons derived from the seed.
    from simreal.render.run import colon_seeds

    job = _job(tmp_path, monkeypatch, capsys, "--config", str(cfg), "--colons", "3", "--seed", "9")
    assert job["colons"] == colon_seeds(9, 3) and job["anatomy"] == []
    # No file: the defaults, said explicitly (the procedural colon of the seed).
    job = _job(tmp_path, monkeypatch, capsys, "--seed", "2")
    assert (job["n"], job["size"], job["colons"]) == (100, 256, [2])


def test_written_config_renders_what_the_flags_render(monkeypatch, capsys, tmp_path, anatomy):
    args = ["--n", "2", "--size", "8", "--seed", "1", "--anatomy", str(anatomy), "--field-stop", "circle"]
    path = tmp_path / "job.json"
    code, stdout, _ = run_cli(monkeypatch, capsys, "render", "colon", *args, "--write-config", str(path))
    assert code == 0 and "wrote the render job" in stdout and not (tmp_path / "a").exists()
    for name, extra in (("a", args), ("b", ["--config", str(path)])):
        code, _, err = run_cli(monkeypatch, capsys, "render", "colon", *extra, "--out", str(tmp_path / name), "--no-progress")
        assert code == 0, err
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")


def test_look_realistic_renders_the_same_frames_with_the_same_labels(monkeypatch, capsys, tmp_path, anatomy):
    args = ["--n", "2", "--size", "24", "--seed", "5", "--anatomy", str(anatomy), "--field-stop", "octagon",
            "--no-normals", "--no-progress"]
    for name, extra in (("train", []), ("real", ["--look", "realistic"])):
        code, _, err = run_cli(monkeypatch, capsys, "render", "colon", *args, *extra, "--out", str(tmp_path / name))
        assert code == 0, err
    train, real = _bytes(tmp_path / "train"), _bytes(tmp_path / "real")
    assert sorted(train) == sorted(real)
    for f in train:
        if f.startswith(("depth/", "mask/", "instance/")):
            assert train[f] == real[f], f  # labels: byte for byte
        elif f.startswith("image/"):
            assert train[f] != real[f], f
    info = json.loads(real["dataset.json"])
    assert info["generator"]["job"]["config"]["look"] == "realistic"
    assert "look" not in json.loads(train["dataset.json"])["generator"]["job"]["config"]  # as before the look existed
    # A look given in a file is kept unless the flag says otherwise; the realistic set is made again from its json.
    job = _job(tmp_path, monkeypatch, capsys, "--config", str(tmp_path / "real" / "dataset.json"))
    assert job["config"]["look"] == "realistic"
    assert "look" not in _job(tmp_path, monkeypatch, capsys, "--config", str(tmp_path / "real" / "dataset.json"),
                              "--look", "training")["config"]
    code, _, err = run_cli(monkeypatch, capsys, "render", "colon", "--config", str(tmp_path / "real" / "dataset.json"),
                           "--out", str(tmp_path / "again"), "--no-progress")
    assert code == 0, err
    assert _bytes(tmp_path / "again") == real


@pytest.mark.parametrize("case", ["unknown-key", "wrong-type", "out-of-range", "both", "neither", "toml-out",
                                  "changed-anatomy", "missing-file", "bad-look", "bad-realism"])
def test_bad_config_exits_2_with_one_line(monkeypatch, capsys, tmp_path, anatomy, case):
    out = tmp_path / "out"
    cfg = tmp_path / "job.yaml"
    args = ["--config", str(cfg), "--out", str(out)]
    expect = str(cfg)
    if case == "unknown-key":
        cfg.write_text("config:\n  lens:\n    fov: [90, 100]\n")
        expect += ": unknown field 'fov' in config.lens"
    elif case == "wrong-type":
        cfg.write_text("config:\n  polyp_view:\n    distance_mm: [5, far]\n")
        expect += ": config.polyp_view.distance_mm[1]: expected a number"
    elif case == "out-of-range":
        cfg.write_text("config:\n  pose:\n    offset_frac: 1.5\n")
        expect += ": config.pose.offset_frac: must be < 1"
    elif case == "both":
        cfg.write_text("n: 2\n")
        args += ["--write-config", str(tmp_path / "w.yaml")]
        expect = "--write-config"
    elif case == "neither":
        cfg.write_text("n: 2\n")
        args = ["--config", str(cfg)]
        expect = "give --out"
    elif case == "toml-out":
        args = ["--write-config", str(tmp_path / "w.toml")]
        expect = "w.toml: --write-config writes .yaml, .yml, .json files"
    elif case == "changed-anatomy":
        ply = tmp_path / "tube.ply"
        ply.write_bytes(anatomy.read_bytes())
        old = tmp_path / "old"
        code, _, _ = run_cli(monkeypatch, capsys, "render", "colon", "--out", str(old), "--n", "1", "--size", "8",
                             "--anatomy", str(ply), "--no-progress")
        assert code == 0
        save_mesh(tube_mesh(radius=13.0, length=150.0, segments=48, rings=20), ply)
        args = ["--config", str(old / "dataset.json"), "--out", str(out)]
        expect = "changed since this dataset was rendered"
    elif case == "missing-file":
        expect += ": config file not found"
    elif case == "bad-look":
        args = ["--look", "real", "--out", str(out)]
        expect = "config.look: expected one of 'training', 'realistic'"
    elif case == "bad-realism":
        cfg.write_text("config:\n  look: realistic\n  realism:\n    jpeg_quality: [40, 120]\n")
        expect += ": config.realism.jpeg_quality: must be <= 100"
    code, stdout, err = run_cli(monkeypatch, capsys, "render", "colon", *args, "--no-progress")
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], err
    assert not out.exists() and not partial_dir(out).exists()
    assert not (tmp_path / "w.yaml").exists() and not (tmp_path / "w.toml").exists()
