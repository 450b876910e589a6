"""`simreal render laparoscopy`: a valid dataset in the contract, the same seed giving the same bytes, its own
dataset.json rendering it again, an interrupted run resuming to the same bytes, and bad input (missing or
non-mesh liver, bad config) as one line with exit status 2 and nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simreal.anatomy.liver import liver_phantom
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.data.writer import partial_dir
from simreal.render.laparoscopy_config import LaparoscopyJob
from simreal.render.laparoscopy_run import render_laparoscopy_job
from simreal_testing import run_cli

N, SIZE = 3, 16


@pytest.fixture(scope="module")
def liver_file(tmp_path_factory) -> Path:
    import trimesh

    path = tmp_path_factory.mktemp("liver") / "phantom.obj"
    liver = liver_phantom()
    trimesh.Trimesh(liver.vertices, liver.faces, process=False).export(path)
    return path


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(monkeypatch, capsys, out: Path, liver: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, "render", "laparoscopy", "--out", str(out), "--n", str(N), "--size", str(SIZE),
                   "--seed", "5", "--liver", str(liver), "--no-progress", *extra)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, liver_file) -> Path:
    out = tmp_path_factory.mktemp("ref") / "lap"
    job = LaparoscopyJob(n=N, size=SIZE, seed=5, livers=(str(liver_file),))
    return render_laparoscopy_job(out, job, progress=False)


def test_dataset_follows_the_contract(reference, liver_file):
    report = validate_dataset(reference)
    assert report.n_samples == N and set(report.kinds) == {"image", "depth", "normals", "mask", "instance"}
    info = json.loads((reference / "dataset.json").read_text())
    assert info["modality"] == "laparoscopy" and info["image_size"] == [SIZE, SIZE]
    assert info["labels"]["mask"]["classes"]["3"] == "abdominal_wall" and len(info["labels"]["mask"]["classes"]) == 8
    gen = info["generator"]
    assert gen["name"] == "laparoscopy-forward-model"
    assert gen["job"]["livers"] == [str(liver_file.resolve())] and gen["livers"][0]["sha256"]
    ds = DatasetReader(reference)
    for rec in ds.records:
        assert rec.group == "phantom"
        assert {"scene", "pose", "fov_deg", "placement", "tools", "shading", "field_stop_radius"} <= set(rec.params)
        assert rec.camera.pose == tuple(tuple(r) for r in rec.params["pose"])
        assert rec.camera.cx == (SIZE - 1) / 2 and rec.camera.model == "pinhole"
        fov = np.degrees(2 * np.arctan(SIZE / 2 / rec.camera.fx))
        assert 70 <= fov <= 90 and fov == pytest.approx(rec.params["fov_deg"])
        for tool in rec.params["tools"]:
            assert np.asarray(tool["pose"]).shape == (4, 4)
    assert not partial_dir(reference).exists()


def test_same_seed_same_bytes_and_dataset_json_renders_it_again(monkeypatch, capsys, tmp_path, reference, liver_file):
    again = tmp_path / "again"
    code, out, err = _cli(monkeypatch, capsys, again, liver_file)
    assert code == 0, err
    assert _bytes(again) == _bytes(reference)
    copy = tmp_path / "copy"
    code, _, err = run_cli(monkeypatch, capsys, "render", "laparoscopy", "--config", str(reference / "dataset.json"),
                           "--out", str(copy), "--no-progress")
    assert code == 0, err
    assert _bytes(copy) == _bytes(reference)
    other = tmp_path / "other"
    code, _, err = _cli(monkeypatch, capsys, other, liver_file, "--seed", "6")
    assert code == 0, err
    assert (other / "image" / "000000.png").read_bytes() != (reference / "image" / "000000.png").read_bytes()


def test_an_interrupted_run_resumes_to_the_same_bytes(tmp_path, reference, liver_file):
    out = tmp_path / "lap"
    job = LaparoscopyJob(n=N, size=SIZE, seed=5, livers=(str(liver_file),))

    def stop(index: int, timings: dict) -> None:
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_laparoscopy_job(out, job, progress=False, on_frame=stop)
    assert partial_dir(out).exists() and not out.exists()
    render_laparoscopy_job(out, job, progress=False)
    assert _bytes(out) == _bytes(reference)


@pytest.mark.slow
def test_workers_do_not_change_the_bytes(tmp_path, reference, liver_file):
    job = LaparoscopyJob(n=N, size=SIZE, seed=5, livers=(str(liver_file),))
    assert _bytes(render_laparoscopy_job(tmp_path / "w2", job, workers=2, progress=False)) == _bytes(reference)


@pytest.mark.parametrize("case", ["missing", "not_a_mesh", "unknown_field", "out_of_range", "bad_yaml", "no_out"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(monkeypatch, capsys, tmp_path, liver_file, case):
    out = tmp_path / "lap"
    liver, extra = liver_file, []
    if case == "missing":
        liver = tmp_path / "nope.obj"
        named = str(liver)
    elif case == "not_a_mesh":
        liver = tmp_path / "notes.obj"
        liver.write_text("this is not a mesh\n")
        named = str(liver)
    else:
        cfg = tmp_path / "job.yaml"
        cfg.write_text({"unknown_field": "config:\n  camera:\n    fovv_deg: [70, 80]\n",
                        "out_of_range": "config:\n  camera:\n    fov_deg: [95, 80]\n",
                        "bad_yaml": "config: [unclosed\n", "no_out": "n: 2\n"}[case])
        extra = ["--config", str(cfg)]
        named = str(cfg)
    if case == "no_out":
        code, _, err = run_cli(monkeypatch, capsys, "render", "laparoscopy", "--config", str(cfg))
        named = "--out"
    else:
        code, _, err = _cli(monkeypatch, capsys, out, liver, *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], err
    assert not out.exists() and not partial_dir(out).exists()


def test_written_config_reads_back_as_the_same_job(monkeypatch, capsys, tmp_path, liver_file):
    from simreal.render.laparoscopy_config import read_laparoscopy_job

    path = tmp_path / "job.yaml"
    code, _, err = run_cli(monkeypatch, capsys, "render", "laparoscopy", "--write-config", str(path), "--n", "7",
                           "--liver", str(liver_file), "--fov-min", "75", "--field-stop-prob", "0", "--frames-per-scene", "2")
    assert code == 0, err
    job = read_laparoscopy_job(path)
    assert (job.n, job.frames_per_scene, job.livers) == (7, 2, (str(liver_file.resolve()),))
    assert job.config.camera.fov_deg == (75.0, 90.0) and job.config.field_stop_prob == 0.0
    # A partial file keeps every other default, down to one field of one class's look.
    part = tmp_path / "part.yaml"
    part.write_text("config:\n  appearance:\n    liver:\n      specular: [0.5, 0.5]\n")
    look = read_laparoscopy_job(part).config.appearance.liver
    assert look.specular == (0.5, 0.5) and look.base_rgb == LaparoscopyJob().config.appearance.liver.base_rgb
