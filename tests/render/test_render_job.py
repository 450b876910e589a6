"""Render jobs: one validated tree, read from YAML / TOML / JSON or a rendered dataset.json, strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simreal.configs import write_config_file
from simreal.errors import SimrealError
from simreal.render.config import ColonoscopyConfig, LensConfig, PolypViewConfig
from simreal.render.job import RenderJob, read_render_job


def test_job_defaults_resolve_and_round_trip(tmp_path: Path) -> None:
    job = RenderJob(n=3, size=16, seed=5, config=ColonoscopyConfig(lens=LensConfig(fisheye=True)))
    resolved = job.resolved()
    assert resolved.colons == (5,) and resolved.anatomy == ()  # the procedural colon of the seed, said explicitly
    assert RenderJob.from_dict(json.loads(json.dumps(resolved.to_dict()))) == resolved
    with_file = RenderJob(anatomy=("rel/a.ply",)).resolved()
    assert with_file.colons == () and Path(with_file.anatomy[0]).is_absolute()
    for suffix in (".yaml", ".json"):
        path = write_config_file(tmp_path / f"job{suffix}", resolved)
        assert read_render_job(path) == resolved


def test_toml_file_with_relative_anatomy(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "job.toml"
    path.write_text('n = 4\nanatomy = ["../colon.ply"]\n[config]\nfield_stop = "octagon"\n'
                    '[config.polyp_view]\nprob = 0.6\ndistance_mm = [5, 30]\n')
    job = read_render_job(path)
    assert job.n == 4 and job.size == 256
    assert job.config == ColonoscopyConfig(field_stop="octagon", polyp_view=PolypViewConfig(prob=0.6, distance_mm=(5.0, 30.0)))
    assert Path(job.anatomy[0]).resolve() == (tmp_path / "colon.ply").resolve()  # relative to the file


@pytest.mark.parametrize("text, message", [
    ("n: 0\n", "n: must be at least 1, got 0"),
    ("size: 4\n", "size: must be in 8..4096, got 4"),
    ("colons: [1, 1]\n", "colons: colon seeds must be distinct"),
    ("workers: 2\n", "unknown field 'workers'; known: n, size, seed, anatomy, colons, config"),
    ("config: {lens: {fov: [1, 2]}}\n", "unknown field 'fov' in config.lens; known: fov_deg, fisheye, fisheye_k1"),
    ("config: {lens: {fov_deg: [90, x]}}\n", "config.lens.fov_deg[1]: expected a number, got 'x'"),
    ("config: {lens: {fov_deg: [140, 100]}}\n", "config.lens.fov_deg: low 140.0 above high 100.0"),
    ("config: {appearance: {exposure: [0, 1]}}\n", "config.appearance.exposure: must be > 0"),
    ("config: {appearance: {light_power: [1, 2]}}\n", "unknown field 'light_power' in config.appearance"),
    ("config: {normals: maybe}\n", "config.normals: expected true or false, got 'maybe'"),
    ("config: {field_stop: square}\n", "config.field_stop: expected one of 'none', 'circle', 'octagon'"),
])
def test_bad_job_files_name_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(SimrealError) as exc:
        read_render_job(path)
    assert message in str(exc.value) and str(path) in str(exc.value)
    assert len(str(exc.value).splitlines()) == 1


def test_dataset_json_of_another_generator_is_refused(tmp_path: Path, tiny_dataset: Path) -> None:
    with pytest.raises(SimrealError, match="not by `simreal render colon`"):
        read_render_job(tiny_dataset / "dataset.json")
    old = tmp_path / "dataset.json"
    info = json.loads((tiny_dataset / "dataset.json").read_text())
    info["generator"] = {"name": "colonoscopy-forward-model", "config": {}}
    old.write_text(json.dumps(info))
    with pytest.raises(SimrealError, match="records no render job"):
        read_render_job(old)


def test_visibility_defaults_to_raster_and_older_datasets_read_as_embree(tmp_path: Path, tiny_dataset: Path) -> None:
    """A job file without ``visibility`` takes the default (raster); a rendered dataset.json without it was cast
    by Embree before the rasteriser existed, so its job says embree and renders the same bytes again."""
    assert RenderJob().visibility == "raster" and RenderJob().to_dict()["visibility"] == "raster"
    path = tmp_path / "job.yaml"
    path.write_text("n: 2\n")
    assert read_render_job(path).visibility == "raster"
    embree = RenderJob(n=2, visibility="embree").resolved()
    assert RenderJob.from_dict(json.loads(json.dumps(embree.to_dict()))) == embree
    info = json.loads((tiny_dataset / "dataset.json").read_text())
    for recorded, expected in ((None, "embree"), ("embree", "embree"), ("raster", "raster")):
        job = RenderJob(n=2).resolved().to_dict()
        if recorded is None:
            del job["visibility"]
        else:
            job["visibility"] = recorded
        info["generator"] = {"name": "colonoscopy-forward-model", "job": job}
        (tmp_path / "dataset.json").write_text(json.dumps(info))
        assert read_render_job(tmp_path / "dataset.json").visibility == expected
    with pytest.raises(SimrealError, match="visibility: expected one of 'embree', 'raster'"):
        RenderJob.from_dict({"visibility": "zbuffer"})
