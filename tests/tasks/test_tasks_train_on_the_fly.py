"""Training on a render job rendered on the fly: the same run as training on the set that job writes,
fresh frames every epoch on the training anatomies only, and one clear error for what cannot work."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from simreal.anatomy.mesh import save_mesh
from simreal.errors import SimrealError
from simreal.render.run import render_job
from simreal.render.tube import tube_mesh
from simreal.tasks.train import train_from_kwargs

TINY = dict(size=24, channels=(4, 8), batch_size=2, lr=1e-2, val_fraction=0.5)


@pytest.fixture(scope="module")
def job_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("job")
    a = save_mesh(tube_mesh(radius=12.0, length=150.0, segments=48, rings=20, polyps=((75.0, 0.0, 5.0),)), folder / "a.ply")
    b = save_mesh(tube_mesh(radius=10.0, length=120.0, segments=40, rings=16, polyps=((60.0, 1.0, 4.0),)), folder / "b.ply")
    path = folder / "job.yaml"
    # Relative anatomy paths: relative to the job file's folder.
    path.write_text(yaml.safe_dump({"n": 6, "size": 24, "seed": 3, "anatomy": [a.name, b.name]}))
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory, job_file) -> Path:
    from simreal.render.job import read_render_job

    return render_job(tmp_path_factory.mktemp("ds") / "ds", read_render_job(job_file), workers=1, progress=False)


def _state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


class _SeenIds(L.Callback):
    """The sample ids of every training batch, per epoch."""

    def __init__(self) -> None:
        self.ids: dict[int, list[str]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.ids.setdefault(trainer.current_epoch, []).extend(batch.ids)


@pytest.mark.parametrize("task", ["depth", "seg"])
def test_a_job_trains_exactly_as_the_set_it_writes(job_file, written, tmp_path, task):
    on_disk = train_from_kwargs(task, written, tmp_path / "disk", progress=False, epochs=2, **TINY)
    on_the_fly = train_from_kwargs(task, job_file, tmp_path / "fly", progress=False, epochs=2, **TINY)
    a, b = _state(on_disk), _state(on_the_fly)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    disk_cfg, fly_cfg = (json.loads((r / "config.json").read_text()) for r in (on_disk, on_the_fly))
    assert disk_cfg["model"] == fly_cfg["model"]  # same depth scale / class count, from the same frames
    assert not list(on_the_fly.rglob("*.tiff")) and not list(on_the_fly.parent.glob("*.partial"))


def test_fresh_frames_are_new_every_epoch_and_stay_on_the_training_anatomy(job_file, tmp_path):
    from simreal.tasks.train import train
    from simreal.tasks.config import make_config

    seen = _SeenIds()
    config = make_config("depth", job_file, tmp_path / "run", epochs=3, fresh=True, **TINY)
    train(config, progress=False, callbacks=[seen])
    frames = {e: sorted(int(i) for i in ids) for e, ids in seen.ids.items()}
    # 6 frames over 2 anatomies; the split keeps one anatomy (3 frames, one parity) for training.
    parity = {i % 2 for i in frames[0]}
    assert len(frames[0]) == 3 and all(i < 6 for i in frames[0]) and len(parity) == 1
    assert all(i >= 6 for e in (1, 2) for i in frames[e])  # never a frame of the job's own 6
    assert len({i for e in frames for i in frames[e]}) == 9  # 3 epochs x 3 new frames
    assert {i % 2 for e in frames for i in frames[e]} == parity  # the validation anatomy is never trained on
    # A resumed (extended) run draws the epochs it adds as a fresh run does: they depend on the epoch only.
    more = _SeenIds()
    train(config.replace(optim=dataclasses.replace(config.optim, epochs=4)), progress=False, callbacks=[more])
    added = [int(i) for i in more.ids[3]]
    assert list(more.ids) == [3] and len(added) == 3 and all(i >= 6 and i % 2 in parity for i in added)
    assert not set(added) & {i for e in frames for i in frames[e]}


def test_loader_workers_render_after_the_main_process_has(job_file):
    from simreal.tasks.data import RenderJobSource, make_loader

    source = RenderJobSource(job_file)
    source.depth(0)  # Embree scenes now live in this process; a forked worker would inherit dead threads
    loader = make_loader(source.dataset(("depth",), (24, 24), [0, 2, 4]), 2, 0, True, 1, fresh=True)
    loader.sampler.set_epoch(1)
    batch = next(iter(loader))
    assert loader.multiprocessing_context.get_start_method() == "spawn"
    assert batch.depth.shape == (2, 1, 24, 24) and all(int(i) >= 6 and int(i) % 2 == 0 for i in batch.ids)


def test_the_command_line_trains_on_a_job(job_file, tmp_path, monkeypatch):
    from simreal.cli import main

    out = tmp_path / "r"
    monkeypatch.setattr("sys.argv", ["simreal", "train", "depth", "--data", str(job_file), "--out", str(out),
                                     "--size", "24", "--channels", "4,8", "--epochs", "2", "--batch-size", "2",
                                     "--val-fraction", "0.5", "--fresh-frames", "--no-progress"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None) and (out / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((out / "config.json").read_text())["data"]["fresh"] is True


def test_what_cannot_work_is_one_clear_error(job_file, written, tmp_path):
    with pytest.raises(SimrealError, match="render job"):
        train_from_kwargs("depth", written, tmp_path / "a", progress=False, epochs=1, fresh=True, **TINY)
    bad = tmp_path / "bad.yaml"
    bad.write_text("n: 0\n")
    with pytest.raises(SimrealError, match="bad.yaml"):
        train_from_kwargs("depth", bad, tmp_path / "b", progress=False, epochs=1, **TINY)
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump({"n": 4, "size": 24, "anatomy": [str(job_file.parent / "a.ply")]}))
    with pytest.raises(SimrealError, match="1 group"):  # one anatomy: nothing to split a validation set off
        train_from_kwargs("depth", one, tmp_path / "c", progress=False, epochs=1, **TINY)
    assert not any((tmp_path / name).exists() for name in "abc")
