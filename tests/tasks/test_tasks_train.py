"""Training runs: the run folder contract, exact resume, --init/--freeze, refusals, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from tasks_blobs import TINY, write_blob_dataset

from simreal.errors import SimrealError
from simreal.tasks.config import make_config
from simreal.tasks.train import train, train_from_kwargs


def _state(run: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=False)["state_dict"]


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _last(rows: list[dict[str, str]], key: str) -> float:
    return [float(r[key]) for r in rows if r.get(key)][-1]


def test_depth_run_writes_the_run_folder_contract(blob_dataset, tmp_path):
    run = train_from_kwargs("depth", blob_dataset, tmp_path / "run", progress=False, epochs=2, **TINY)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "depth" and cfg["model"]["depth_scale_mm"] == pytest.approx(40.0)
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["val_epoch0000.png", "val_epoch0001.png"]
    rows = _rows(run)
    for key in ("train/loss_step", "val/loss", "val/abs_rel", "val/abs_rel_median", "val/delta1_median", "val/rmse_mm"):
        assert any(r.get(key) for r in rows), key
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["simreal"]["task"] == "depth" and ckpt["simreal"]["config"]["model"]["depth_scale_mm"] == pytest.approx(40.0)
    assert "depth_scale_mm" not in ckpt["state_dict"]  # a float in the config, never cast to the run's precision


def test_depth_scale_stays_exact_in_low_precision_and_loads_old_checkpoints():
    from simreal.tasks.modules import DepthModule

    m = DepthModule(make_config("depth", "ds", "run", size=8, channels=(4, 8)), depth_scale_mm=37.3)
    m.to(torch.bfloat16)  # what precision="bf16-true" does to parameters and buffers
    assert m.depth_scale_mm == 37.3  # bf16 would round it to 37.25
    old = dict(m.state_dict(), depth_scale_mm=torch.tensor(37.3, dtype=torch.float64))  # former buffer
    m.load_state_dict(old)
    ckpt = {"simreal": {"config": {"model": {"depth_scale_mm": 12.5}}}}
    m.on_load_checkpoint(ckpt)
    assert m.depth_scale_mm == 12.5 and m.loss_fn.scale_mm == 12.5


def test_seg_run_learns_the_disc(tmp_path):
    data = write_blob_dataset(tmp_path / "ds", n=8, size=(16, 16))
    run = train_from_kwargs("seg", data, tmp_path / "run", progress=False, epochs=6, size=16, channels=(8, 16),
                            batch_size=2, lr=3e-2, val_fraction=0.25)
    rows = _rows(run)
    first, last = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")][::5]
    assert last < first  # it learns something in a few steps
    assert json.loads((run / "config.json").read_text())["model"]["num_classes"] == 2


@pytest.mark.parametrize("recipe", [{}, {"schedule": "cosine", "augment": True}], ids=["constant", "cosine+flips"])
def test_interrupted_run_resumes_to_the_same_weights(blob_dataset, tmp_path, recipe):
    kw = dict(progress=False, epochs=3, **TINY, **recipe)
    whole = train_from_kwargs("depth", blob_dataset, tmp_path / "whole", **kw)

    class Crash(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 2:
                raise RuntimeError("simulated crash")

    cfg = make_config("depth", blob_dataset, tmp_path / "cut", epochs=3, **TINY, **recipe)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, progress=False, callbacks=[Crash()])
    assert torch.load(tmp_path / "cut/checkpoints/last.ckpt", weights_only=False)["epoch"] == 1
    resumed = train(cfg, progress=False)
    a, b = _state(whole), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the whole history survives the resume, row for row
    val = lambda run: [(r["epoch"], r["val/loss"], r["val/abs_rel"]) for r in _rows(run) if r.get("val/loss")]  # noqa: E731
    assert len(val(whole)) == 3 and val(resumed) == val(whole)
    # last.ckpt is the last epoch even when that epoch's val/loss was not the best (Lightning's save_last
    # alone skips such epochs)
    for run in (whole, resumed):
        assert torch.load(run / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 9


def test_last_checkpoint_is_the_last_epoch_even_when_validation_got_worse(blob_dataset, tmp_path):
    class WorseEachEpoch(L.Callback):  # a val/loss that only grows: epoch 0 stays the best
        def on_validation_epoch_end(self, trainer, pl_module):
            pl_module.log("val/loss", float(trainer.current_epoch))

    cfg = make_config("depth", blob_dataset, tmp_path / "run", epochs=3, select="val/loss", **TINY)
    run = train(cfg, progress=False, callbacks=[WorseEachEpoch()])
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 9
    assert torch.load(run / "checkpoints/best.ckpt", weights_only=False)["global_step"] == 3


@pytest.mark.parametrize("task, figure, values, best_epoch", [
    ("depth", "val/abs_rel_median", [0.5, 0.2, 0.3], 1),   # lower is better
    ("seg", "val/dice", [0.3, 0.4, 0.9, 0.1], 2),          # higher is better
])
def test_best_checkpoint_is_chosen_on_the_reported_validation_figure(blob_dataset, tmp_path, monkeypatch, task, figure,
                                                                    values, best_epoch):
    import simreal.tasks.modules as modules

    calls = iter(values)  # one validation batch per epoch (2 of the 8 samples, batch 2)

    def depth_figures(pred, target):
        v = torch.full((pred.shape[0],), next(calls))
        return {"abs_rel": v, "abs_rel_median": v, "delta1_median": v, "rmse_mm": v}

    def dice_figures(pred, target, num_classes):
        return torch.full((pred.shape[0], num_classes - 1), next(calls))

    monkeypatch.setattr(modules, "depth_metrics_per_image", depth_figures)
    monkeypatch.setattr(modules, "dice_per_image", dice_figures)
    cfg = make_config(task, blob_dataset, tmp_path / "run", epochs=len(values), **TINY)
    run = train(cfg, progress=False)
    steps_per_epoch = 3  # 6 training samples, batch 2
    best = torch.load(run / "checkpoints/best.ckpt", weights_only=False)
    assert best["global_step"] == (best_epoch + 1) * steps_per_epoch
    logged = [float(r[figure]) for r in _rows(run) if r.get(figure)]
    assert logged == pytest.approx(values)


def test_validation_figures_are_the_reported_ones():
    from simreal.tasks.modules import depth_metrics_per_image, dice_per_image

    gt = torch.full((2, 1, 4, 4), 50.0)
    gt[1, 0, :2] = 0.0  # half of image 2 has no surface
    gt[1, 0, 2:] = torch.tensor([10.0, 20.0, 30.0, 40.0])
    m = depth_metrics_per_image(2.0 * gt + 0.0, gt)
    assert torch.allclose(m["abs_rel"], torch.tensor([1.0, 1.0]))          # metric: twice too far
    assert torch.allclose(m["abs_rel_median"], torch.zeros(2), atol=1e-6)  # the shape is right
    assert torch.allclose(m["delta1_median"], torch.ones(2))
    empty = depth_metrics_per_image(gt[:1], torch.zeros(1, 1, 4, 4))
    assert torch.isnan(empty["abs_rel"]).all()                            # no valid pixel, no figure
    target = torch.zeros(3, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    target[1, :1] = 1
    pred = torch.zeros_like(target)
    pred[0, :2] = 1                      # perfect
    pred[1, :2] = 1                      # 4 true positives of 4 + 8 predicted: 2*4 / (8 + 4)
    pred[2, :1] = 1                      # no polyp in the frame: not part of the figure
    d = dice_per_image(pred, target, num_classes=2)
    assert d.shape == (3, 1) and d[0, 0] == 1.0 and d[1, 0] == pytest.approx(8 / 12) and torch.isnan(d[2, 0])


def test_select_must_be_a_figure_of_the_task(blob_dataset, tmp_path):
    with pytest.raises(SimrealError, match="--select"):
        make_config("depth", blob_dataset, tmp_path / "r", select="val/dice")
    with pytest.raises(SimrealError, match="--select"):
        make_config("seg", blob_dataset, tmp_path / "r", select="val/nope")


def test_rerun_with_another_config_is_refused(blob_dataset, tmp_path):
    train_from_kwargs("depth", blob_dataset, tmp_path / "run", progress=False, epochs=1, **TINY)
    with pytest.raises(SimrealError, match="optim.lr"):
        train_from_kwargs("depth", blob_dataset, tmp_path / "run", progress=False, epochs=1, **{**TINY, "lr": 0.5})
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(SimrealError, match="not a simreal run folder"):
        train_from_kwargs("depth", blob_dataset, tmp_path / "junk", progress=False, epochs=1, **TINY)


def test_init_and_freeze_encoder_keep_encoder_weights(blob_dataset, tmp_path):
    pre = train_from_kwargs("depth", blob_dataset, tmp_path / "pre", progress=False, epochs=1, **TINY)
    fine = train_from_kwargs("depth", blob_dataset, tmp_path / "fine", progress=False, epochs=1, init=str(pre),
                             freeze="encoder", seed=5, **TINY)
    a, b = _state(pre, "best.ckpt"), _state(fine)
    enc = [k for k in a if k.startswith("net.encoder.")]
    dec = [k for k in a if k.startswith("net.decoder.") and a[k].is_floating_point()]
    assert enc and dec
    for k in enc:  # weights and batch-norm statistics alike
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], b[k]) for k in dec)


def test_init_from_a_checkpoint_of_another_task_is_refused(blob_dataset, tmp_path):
    seg = train_from_kwargs("seg", blob_dataset, tmp_path / "seg", progress=False, epochs=1, **TINY)
    with pytest.raises(SimrealError, match="task 'seg'"):
        train_from_kwargs("depth", blob_dataset, tmp_path / "d", progress=False, epochs=1, init=str(seg), **TINY)
    with pytest.raises(SimrealError, match="channels"):
        train_from_kwargs("seg", blob_dataset, tmp_path / "s2", progress=False, epochs=1, init=str(seg / "checkpoints" / "last.ckpt"),
                          **{**TINY, "channels": (4, 8, 16)})


def test_dataset_without_the_task_labels_is_refused(tmp_path):
    import numpy as np

    from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
    from simreal.data.writer import DatasetWriter

    w = DatasetWriter(tmp_path / "d", DatasetInfo(modality="colonoscopy", domain="synthetic", image_size=(16, 16),
                                                  files=("image", "depth"), labels={"depth": LabelKind(unit="mm")}))
    for i in range(2):
        w.write(SampleRecord(id=f"{i}", files={}), {"image": np.zeros((16, 16, 3), np.uint8), "depth": np.ones((16, 16), np.float32)})
    data = w.finish()
    with pytest.raises(SimrealError, match="no 'mask' labels"):
        train_from_kwargs("seg", data, tmp_path / "r", progress=False, epochs=1, val_fraction=0.5, size=16, channels=(4, 8))
    assert not (tmp_path / "r").exists()


def test_cli_train_and_bad_input_exit_status(blob_dataset, tmp_path, monkeypatch, capsys):
    from simreal.cli import main

    monkeypatch.setattr("sys.argv", ["simreal", "train", "depth", "--data", str(blob_dataset), "--out", str(tmp_path / "r"),
                                     "--size", "32", "--channels", "4,8", "--epochs", "1", "--batch-size", "2", "--no-progress"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None) and (tmp_path / "r" / "checkpoints" / "last.ckpt").is_file()
    monkeypatch.setattr("sys.argv", ["simreal", "train", "seg", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and "missing" in capsys.readouterr().err
