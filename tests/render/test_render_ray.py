"""Rendering on Ray (a local instance of 2 CPUs started here): the same bytes as local rendering, an
interrupted run resumes to them, the CLI's --ray, a dead worker and an unreachable address are one clear
error each."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from simreal.anatomy.mesh import save_mesh
from simreal.data.format import DatasetInfo
from simreal.data.writer import DatasetWriter, partial_dir
from simreal.errors import SimrealError
from simreal.render.parallel import run_frames
from simreal.render.ray_executor import RayCluster, connect
from simreal.render.run import render_colon_dataset
from simreal.render.tube import tube_mesh
from simreal_testing import run_cli

ray = pytest.importorskip("ray")

N, SIZE = 6, 24


@pytest.fixture(scope="module")
def cluster():
    try:
        session = connect(RayCluster(num_cpus=2))  # ray.init: every render below reuses this instance
        r = session.__enter__()
    except SimrealError as exc:  # Ray's own start-up (its agent has ~60 s) can fail on an overloaded machine
        pytest.skip(f"no local Ray instance here: {exc}")
    yield r
    session.__exit__(None, None, None)


@pytest.fixture(scope="module")
def anatomy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("anatomy") / "tube.ply"
    return save_mesh(tube_mesh(radius=12.0, length=150.0, segments=48, rings=20, polyps=((75.0, 0.0, 5.0),)), path)


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _render(out: Path, anatomy: Path, **kw) -> Path:
    return render_colon_dataset(out, **{**dict(n=N, size=SIZE, seed=4, anatomy=anatomy, progress=False), **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, anatomy) -> Path:
    return _render(tmp_path_factory.mktemp("ref") / "ds", anatomy, workers=1)


def test_ray_gives_the_local_bytes(cluster, tmp_path, anatomy, reference):
    assert _bytes(_render(tmp_path / "ray", anatomy, ray="local", workers=2)) == _bytes(reference)


def test_interrupted_ray_run_resumes_to_the_same_bytes(cluster, tmp_path, anatomy, reference):
    out, seen = tmp_path / "resumed", []

    def stop_after_two(index, timings):
        seen.append(index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _render(out, anatomy, ray="local", workers=2, on_frame=stop_after_two)
    kept = len(list((partial_dir(out) / "records").glob("*.json")))
    assert not out.exists() and kept >= 2
    time.sleep(1.0)  # the actors were stopped with the run: no worker goes on writing without the lock
    assert len(list((partial_dir(out) / "records").glob("*.json"))) == kept
    rendered = []
    _render(out, anatomy, ray="local", on_frame=lambda i, t: rendered.append(i))  # workers: one per CPU
    assert 0 < len(rendered) <= N - 2  # finished frames were kept
    assert _bytes(out) == _bytes(reference)


def test_cli_ray(cluster, monkeypatch, capsys, tmp_path, anatomy, reference):
    out = tmp_path / "cli"
    code, stdout, _ = run_cli(monkeypatch, capsys, "render", "colon", "--out", str(out), "--ray", "local", "--n", str(N),
                              "--size", str(SIZE), "--seed", "4", "--anatomy", str(anatomy), "--no-progress")
    assert code == 0 and f"wrote {N} frames" in stdout
    assert _bytes(out) == _bytes(reference)


def test_more_workers_than_cpus_is_an_error_and_leaves_nothing(cluster, tmp_path, anatomy):
    with pytest.raises(SimrealError, match="3 Ray workers asked for, but the Ray cluster at 'local' has 2 CPUs"):
        _render(tmp_path / "big", anatomy, ray="local", workers=3)
    assert not (tmp_path / "big").exists() and not partial_dir(tmp_path / "big").exists()


# A renderer whose worker dies at frame 2 (the module is sent to the workers by value: they cannot import tests/).
def _init() -> None:
    pass


def _render_or_die(index: int):
    if index == 2:
        os._exit(1)
    return index, {}


@pytest.fixture
def by_value():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_dead_worker_is_one_clear_error(cluster, by_value, tmp_path):
    writer = DatasetWriter(tmp_path / "ds", DatasetInfo(modality="image", domain="x", image_size=(4, 4), files=("image",)))
    try:
        with pytest.raises(SimrealError, match="a Ray render worker died; finished frames are kept"):
            run_frames([[0], [1], [2], [3]], total=4, writer=writer, init_worker=_init, init_args=(),
                       render_one=_render_or_die, workers=2, progress=False, ray="local")
    finally:
        writer.close()


def test_a_worker_that_cannot_see_the_folder_says_so(cluster, by_value, tmp_path):
    from simreal.render.ray_executor import ray_results

    with pytest.raises(SimrealError, match="cannot see the unfinished dataset .*nowhere: .* storage every node mounts"):
        list(ray_results("local", [[0]], root=tmp_path / "nowhere", init_worker=_init, init_args=(),
                         render_one=_render_or_die, workers=1))


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_address_exits_2_naming_it_and_leaves_nothing(monkeypatch, capsys, tmp_path, anatomy, address):
    out = tmp_path / "out"
    code, _, stderr = run_cli(monkeypatch, capsys, "render", "colon", "--out", str(out), "--ray", address,
                              "--n", "2", "--size", "16", "--anatomy", str(anatomy), "--no-progress")
    assert code == 2 and f"cannot reach a Ray cluster at '{address}'" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not out.exists() and not partial_dir(out).exists()


def test_laparoscopy_on_ray_gives_the_local_bytes(cluster, tmp_path, monkeypatch, capsys):
    """The laparoscopy renderer goes through the same runner: `render laparoscopy --ray` writes the bytes of
    one local process (2 frames per scene, so whole scenes travel to the actors)."""
    import trimesh

    from simreal.anatomy.liver import liver_phantom
    from simreal.render.laparoscopy_config import LaparoscopyJob
    from simreal.render.laparoscopy_run import render_laparoscopy_job

    liver = liver_phantom()
    mesh = tmp_path / "phantom.obj"
    trimesh.Trimesh(liver.vertices, liver.faces, process=False).export(mesh)
    job = LaparoscopyJob(n=N, size=SIZE, seed=5, livers=(str(mesh),), frames_per_scene=2)
    local = render_laparoscopy_job(tmp_path / "local", job, progress=False)
    code = run_cli(monkeypatch, capsys, "render", "laparoscopy", "--out", str(tmp_path / "ray"), "--n", str(N), "--size",
                   str(SIZE), "--seed", "5", "--liver", str(mesh), "--frames-per-scene", "2", "--ray", "local",
                   "--workers", "2", "--no-progress")[0]
    assert code == 0
    assert _bytes(tmp_path / "ray") == _bytes(local)
