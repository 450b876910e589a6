"""Rendering dataset folders: valid, byte-reproducible, worker-count independent, resumable, and clean
failures on bad input (through the real CLI entry point: one line, exit status 2, nothing left behind)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simreal.anatomy.mesh import save_mesh
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.data.writer import partial_dir
from simreal.errors import SimrealError
from simreal.render.run import render_colon_dataset
from simreal.render.tube import tube_mesh
from simreal_testing import run_cli

N, SIZE = 4, 16


@pytest.fixture(scope="module")
def anatomy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("anatomy") / "tube.ply"
    return save_mesh(tube_mesh(radius=12.0, length=150.0, segments=48, rings=20, polyps=((75.0, 0.0, 5.0),)), path)


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _render(out: Path, anatomy, **kw) -> Path:
    args = dict(n=N, size=SIZE, seed=7, anatomy=anatomy, workers=1, progress=False)
    return render_colon_dataset(out, **{**args, **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, anatomy) -> Path:
    return _render(tmp_path_factory.mktemp("ref") / "ds", anatomy)


def test_dataset_is_valid_and_complete(reference):
    report = validate_dataset(reference)
    assert report.n_samples == N and set(report.kinds) == {"image", "depth", "normals", "mask", "instance"}
    info = json.loads((reference / "dataset.json").read_text())
    assert info["generator"]["name"] == "colonoscopy-forward-model"
    assert info["generator"]["anatomies"][0]["sha256"]
    # The whole job, resolved: what `--config dataset.json` reads back.
    job = info["generator"]["job"]
    assert (job["n"], job["size"], job["seed"], job["colons"]) == (N, SIZE, 7, [])
    assert job["anatomy"] == [info["generator"]["anatomies"][0]["path"]] and Path(job["anatomy"][0]).is_absolute()
    assert set(job["config"]) == {"lens", "pose", "polyp_view", "appearance", "normals", "field_stop"}
    assert info["labels"]["mask"]["classes"] == {"0": "background", "1": "polyp"}
    ds = DatasetReader(reference)
    rec = ds.records[0]
    assert rec.camera is not None and rec.camera.pose is not None and (rec.camera.width, rec.camera.height) == (SIZE, SIZE)
    assert {"pose", "fov_deg", "shading", "placement", "anatomy_index"} <= set(rec.params)
    assert rec.camera.cx == (SIZE - 1) / 2  # OpenCV pixel convention
    assert not partial_dir(reference).exists()


def test_same_seed_same_bytes_other_seed_other_frames(tmp_path, anatomy, reference):
    again = _render(tmp_path / "again", anatomy)
    assert _bytes(again) == _bytes(reference)
    other = _render(tmp_path / "other", anatomy, seed=8)
    ref, oth = _bytes(reference), _bytes(other)
    assert ref.keys() == oth.keys()
    assert all(ref[k] != oth[k] for k in ref if k.startswith("image/"))


def test_two_workers_give_identical_bytes(tmp_path, anatomy, reference):
    two = _render(tmp_path / "two", anatomy, workers=2)
    assert _bytes(two) == _bytes(reference)


def test_interrupted_render_resumes_to_identical_bytes(tmp_path, anatomy, reference):
    out = tmp_path / "resumed"
    seen = []

    def stop_after_two(index, timings):
        seen.append(index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _render(out, anatomy, on_frame=stop_after_two)
    assert not out.exists() and len(list((partial_dir(out) / "records").glob("*.json"))) == 2
    rendered = []
    _render(out, anatomy, on_frame=lambda i, t: rendered.append(i))
    assert len(rendered) == N - 2  # finished frames were kept, not rendered again
    assert _bytes(out) == _bytes(reference)


def test_cli_renders(monkeypatch, capsys, tmp_path, anatomy):
    out = tmp_path / "cli"
    code, stdout, _ = run_cli(
        monkeypatch, capsys, "render", "colon", "--out", str(out), "--n", "2", "--size", "16",
        "--anatomy", str(anatomy), "--no-normals", "--fisheye", "--no-progress",
    )
    assert code == 0 and "wrote 2 frames" in stdout
    assert validate_dataset(out).kinds == ("image", "depth", "mask", "instance")
    assert DatasetReader(out).records[0].camera.model == "fisheye"


@pytest.mark.parametrize("case", ["n0", "missing", "corrupt", "exists", "bad-size"])
def test_cli_bad_input_exits_2_and_leaves_nothing(monkeypatch, capsys, tmp_path, anatomy, case):
    out = tmp_path / "out"
    args = ["--n", "2", "--size", "16", "--anatomy", str(anatomy)]
    if case == "n0":
        args[1] = "0"
    elif case == "missing":
        args[-1] = str(tmp_path / "nope.ply")
    elif case == "corrupt":
        bad = tmp_path / "bad.ply"
        bad.write_bytes(anatomy.read_bytes()[:300])
        args[-1] = str(bad)
    elif case == "exists":
        out.mkdir()
    elif case == "bad-size":
        args[3] = "2"
    code, _, err = run_cli(monkeypatch, capsys, "render", "colon", "--out", str(out), *args, "--no-progress")
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not partial_dir(out).exists()
    assert out.exists() == (case == "exists")


def test_several_anatomies_cycle_and_group(tmp_path, anatomy):
    """Frame i renders anatomy i % K; records name it in params and group; dataset.json lists them all."""
    from simreal.render.tube import tube_mesh

    other = save_mesh(tube_mesh(radius=20.0, length=150.0, segments=48, rings=20), tmp_path / "wide.ply")
    out = _render(tmp_path / "multi", [anatomy, other], n=5)
    info = json.loads((out / "dataset.json").read_text())
    assert [Path(a["path"]).name for a in info["generator"]["anatomies"]] == ["tube.ply", "wide.ply"]
    recs = DatasetReader(out).records
    assert [r.params["anatomy_index"] for r in recs] == [0, 1, 0, 1, 0]
    assert [r.params["placement"]["view"] in ("lumen", "polyp") for r in recs] == [True] * 5
    assert [r.group for r in recs] == ["tube", "wide", "tube", "wide", "tube"]
    # The camera sits in the lumen of its own tube: its distance from the axis is below that radius.
    for r in recs:
        x, y = np.asarray(r.params["pose"])[:2, 3]
        radius = 12.0 if r.group == "tube" else 20.0
        assert np.hypot(x, y) < (0.5 * radius + 1e-6 if r.params["placement"]["view"] == "lumen" else radius)
    two = _render(tmp_path / "multi2", [anatomy, other], n=5, workers=2)
    assert _bytes(two) == _bytes(out)


def test_procedural_colons_and_cli(monkeypatch, capsys, tmp_path):
    from simreal.render.run import colon_seeds

    seeds = colon_seeds(3, 2)
    assert seeds == colon_seeds(3, 2) and len(set(seeds)) == 2 and seeds != colon_seeds(4, 2)
    out = tmp_path / "cols"
    code, stdout, _ = run_cli(
        monkeypatch, capsys, "render", "colon", "--out", str(out), "--n", "3", "--size", "8", "--seed", "3",
        "--colons", "2", "--no-normals", "--no-progress",
    )
    assert code == 0, stdout
    info = json.loads((out / "dataset.json").read_text())
    assert [a["seed"] for a in info["generator"]["anatomies"]] == seeds
    assert [r.group for r in DatasetReader(out).records] == [f"colon-{seeds[0]}", f"colon-{seeds[1]}", f"colon-{seeds[0]}"]
    with pytest.raises(SimrealError, match="distinct"):
        render_colon_dataset(tmp_path / "x", n=1, size=8, seed=0, colons=[1, 1], progress=False)
    assert not partial_dir(tmp_path / "x").exists()
