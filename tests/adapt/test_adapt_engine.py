"""The adversarial engine: run folder contract, exact resume, extension, refusals, any method."""

from __future__ import annotations

import csv
import random
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
from adapt_fixtures import tiny_config
from PIL import Image
from torch import nn

from simreal_testing import assert_same, last_checkpoint
from simreal_testing import crash_at as crash_callback
from simreal.adapt.config import EngineConfig
from simreal.adapt.engine import fit, image_grid, seed_step
from simreal.adapt.losses import gan_loss
from simreal.adapt.method import AdversarialMethod, frozen
from simreal.adapt.reverse import train_reverse
from simreal.adapt.runs import load_adapt_checkpoint
from simreal.configs import build, read_config_file
from simreal.adapt.config import ReverseRunConfig
from simreal.errors import SimrealError


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def whole(real_dir, synthetic_dir, tmp_path_factory) -> Path:
    """An uninterrupted 8-step run (checkpoints at 3, 6, 8; the 6-image history buffer overflows)."""
    return train_reverse(tiny_config(real_dir, synthetic_dir, tmp_path_factory.mktemp("w") / "run"), progress=False)


def test_run_folder_contract(whole):
    cfg = build(ReverseRunConfig, read_config_file(whole / "config.json"))
    assert cfg.method == "reverse" and cfg.reverse.channels == 3 and cfg.engine.steps == 8
    ckpt = last_checkpoint(whole)
    tag = ckpt["simreal"]
    assert tag["kind"] == "adapt" and tag["method"] == "reverse" and tag["iteration"] == 8
    assert tag["optimizers"] == ["refiner", "discriminator"] and len(ckpt["optimizer_states"]) == 2
    assert tag["config"] == json.loads((whole / "config.json").read_text())
    history = ckpt["state_dict"]["method.history._extra_state"]
    assert history["count"] == 6 and history["images"].shape == (6, 3, 16, 16)  # filled, bounded, saved
    assert sorted(p.name for p in (whole / "samples").glob("*.png")) == ["step_0000004.png", "step_0000008.png"]
    grid = np.asarray(Image.open(whole / "samples" / "step_0000008.png"))
    assert grid.shape == (2 * 16 + 2, 4 * 16 + 3 * 2, 3)  # 2 rows x (real, refined, difference, synthetic)
    assert list((whole / "tb").glob("events.out.tfevents.*"))
    rows = _rows(whole)
    # every log_every = 2 steps plus the checkpoint steps 3 and 6
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6, 8]
    assert rows[0]["R/reg"] and not rows[0]["D/loss"]  # step 2: refiner pre-training only
    assert rows[-1]["R/adv"] and rows[-1]["D/loss"]
    # one refined image per D update (b/2 of batch 2), logged as the mean over the last 2 steps: (5 + 6) / 2
    assert float(rows[-1]["history/size"]) == 5.5


@pytest.mark.parametrize("crash_at", [5, 7], ids=["mid-epoch", "after-a-checkpoint"])
def test_an_interrupted_run_resumes_bit_identically(whole, real_dir, synthetic_dir, tmp_path, crash_at):
    cfg = tiny_config(real_dir, synthetic_dir, tmp_path / "cut")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_reverse(cfg, progress=False, callbacks=[crash_callback(crash_at)])
    assert last_checkpoint(tmp_path / "cut")["simreal"]["iteration"] == (crash_at // 3) * 3
    resumed = train_reverse(cfg, progress=False)
    a, b = last_checkpoint(whole), last_checkpoint(resumed)
    # weights, history buffer contents and optimiser states alike
    assert_same(a["state_dict"], b["state_dict"], "state_dict")
    assert_same(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    assert b["simreal"]["iteration"] == 8
    assert _rows(resumed) == _rows(whole)  # the log keeps its history row for row
    # sample grids of the crashed attempt after the checkpoint are redrawn, identical
    names = sorted(p.name for p in (whole / "samples").glob("*.png"))
    assert names == sorted(p.name for p in (resumed / "samples").glob("*.png"))
    for name in names:
        assert (whole / "samples" / name).read_bytes() == (resumed / "samples" / name).read_bytes(), name


def test_more_steps_extend_a_finished_run(whole, real_dir, synthetic_dir, tmp_path):
    short = tiny_config(real_dir, synthetic_dir, tmp_path / "ext", steps=4)
    train_reverse(short, progress=False)
    assert last_checkpoint(tmp_path / "ext")["simreal"]["iteration"] == 4
    train_reverse(short, progress=False)  # the same command again: nothing left to do
    run = train_reverse(dataclasses.replace(short, engine=dataclasses.replace(short.engine, steps=8)), progress=False)
    assert_same(last_checkpoint(whole)["state_dict"], last_checkpoint(run)["state_dict"], "state_dict")
    with pytest.raises(SimrealError, match="already at step 8"):
        train_reverse(short, progress=False)


def test_run_folders_of_another_config_method_or_kind_are_refused(whole, real_dir, synthetic_dir, tmp_path):
    cfg = tiny_config(real_dir, synthetic_dir, whole, lambda_reg=2.0)
    with pytest.raises(SimrealError, match=r"different config \(reverse.lambda_reg differ\)"):
        train_reverse(cfg, progress=False)
    task = tmp_path / "task"
    task.mkdir()
    (task / "config.json").write_text(json.dumps({"task": "depth", "out": str(task)}))
    with pytest.raises(SimrealError, match="'depth' task training run"):
        train_reverse(tiny_config(real_dir, synthetic_dir, task), progress=False)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("x")
    with pytest.raises(SimrealError, match="not a simreal run folder"):
        train_reverse(tiny_config(real_dir, synthetic_dir, junk), progress=False)
    torch.save({"state_dict": {}, "simreal": {"task": "depth"}}, tmp_path / "task.ckpt")
    with pytest.raises(SimrealError, match="task training checkpoint"):
        load_adapt_checkpoint(tmp_path / "task.ckpt")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(SimrealError, match="cannot read checkpoint"):
        load_adapt_checkpoint(tmp_path / "bad.ckpt")


def test_bad_engine_settings_are_refused_before_anything_is_written(real_dir, synthetic_dir, tmp_path):
    with pytest.raises(SimrealError, match="precision"):
        EngineConfig(precision="8-bit")
    with pytest.raises(SimrealError, match="--steps"):
        EngineConfig(steps=0)
    cfg = tiny_config(real_dir, synthetic_dir, tmp_path / "r")
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, accelerator="tpu"))
    with pytest.raises(SimrealError, match="training setup refused"):
        train_reverse(cfg, progress=False)
    assert not (tmp_path / "r").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no real images"):
        train_reverse(tiny_config(tmp_path / "empty", synthetic_dir, tmp_path / "r2"), progress=False)
    assert not (tmp_path / "r2").exists()


def test_mixed_precision_runs_on_cpu(real_dir, synthetic_dir, tmp_path):
    cfg = tiny_config(real_dir, synthetic_dir, tmp_path / "bf16", steps=5, checkpoint_every=5, sample_every=5)
    run = train_reverse(dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, precision="bf16-mixed")), progress=False)
    rows = _rows(run)
    assert all(np.isfinite(float(rows[-1][k])) for k in ("R/adv", "D/loss"))
    assert (run / "samples" / "step_0000005.png").is_file()


# -- any method: three optimisers, two discriminators, noise from the global RNG -----------------------------


class Toy(AdversarialMethod):
    """A generator and two discriminators with three optimisers of two kinds; noise from torch's global RNG."""

    name = "toy"

    def __init__(self, lr: float):
        super().__init__()
        self.lr = lr
        self.g = nn.Conv2d(1, 1, 3, padding=1)
        self.d1, self.d2 = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 1)

    def configure_optimizers(self):
        return {"g": torch.optim.Adam(self.g.parameters(), self.lr),
                "d1": torch.optim.SGD(self.d1.parameters(), self.lr, momentum=0.9),
                "d2": torch.optim.Adam(self.d2.parameters(), self.lr)}

    def training_step(self, batch, step):
        self.set_lr("g", self.lr * 0.5 ** (step // 2))  # a schedule as a function of the step
        x = batch["x"]
        noise = torch.randn_like(x)
        for name, d in (("d1", self.d1), ("d2", self.d2)):
            with torch.no_grad():
                fake = self.g(x + noise)
            self.update(name, gan_loss(d(fake), False) + gan_loss(d(x), True))
        with frozen(self.d1, self.d2):
            y = self.g(x + noise)
            loss = gan_loss(self.d1(y), True) + gan_loss(self.d2(y), True)
            self.update("g", loss)
        return {"g": loss.detach(), "noise": noise.mean()}

    def sample(self, batch):
        return {"x": batch["x"], "g": self.g(batch["x"]).clamp(0, 1)}


class ToyData:
    def __getitem__(self, step):
        return {"x": torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(step))}

    def sample_batch(self, n):
        return {"x": torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(10**6))}


@dataclass(frozen=True)
class ToyRun:
    out: str
    engine: EngineConfig = field(default_factory=lambda: EngineConfig(steps=5, checkpoint_every=2, sample_every=5, log_every=1, n_samples=2))
    lr: float = 1e-2
    method: Literal["toy"] = "toy"


def test_the_engine_runs_any_method_and_resumes_it_exactly(tmp_path, real_dir, synthetic_dir):
    whole = fit(lambda: Toy(1e-2), ToyData(), ToyRun(out=str(tmp_path / "toy")), progress=False)
    ckpt = last_checkpoint(whole)
    assert ckpt["simreal"]["optimizers"] == ["g", "d1", "d2"] and len(ckpt["optimizer_states"]) == 3
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-2 * 0.5 ** (4 // 2))
    assert [int(r["step"]) for r in _rows(whole)] == [1, 2, 3, 4, 5]
    cut = ToyRun(out=str(tmp_path / "cut"))
    with pytest.raises(RuntimeError):
        fit(lambda: Toy(1e-2), ToyData(), cut, progress=False, callbacks=[crash_callback(3)])
    resumed = fit(lambda: Toy(1e-2), ToyData(), cut, progress=False)
    assert_same(ckpt["state_dict"], last_checkpoint(resumed)["state_dict"])
    assert_same(ckpt["optimizer_states"], last_checkpoint(resumed)["optimizer_states"])
    assert [r["noise"] for r in _rows(resumed)] == [r["noise"] for r in _rows(whole)]  # same noise per step
    # another method's run folder is refused by name
    with pytest.raises(SimrealError, match="holds a 'toy' run, not a 'reverse' run"):
        train_reverse(tiny_config(real_dir, synthetic_dir, whole), progress=False)


def test_image_grid_layout_and_checks():
    cols = {"a": torch.zeros(3, 1, 4, 5), "b": torch.ones(3, 3, 4, 5)}
    grid = image_grid(cols, gap=1)
    assert grid.shape == (3 * 4 + 2, 2 * 5 + 1, 3) and grid.dtype == np.uint8
    assert grid[0, 0].tolist() == [0, 0, 0] and grid[0, 6].tolist() == [255, 255, 255]
    with pytest.raises(SimrealError, match="share one shape"):
        image_grid({"a": torch.zeros(2, 1, 4, 4), "b": torch.zeros(3, 1, 4, 4)})


def test_per_step_reseeding_is_reproducible_and_queues_nothing():
    queued = getattr(torch.cuda, "_queued_calls", [])
    before = len(queued)
    seed_step(3, 7)
    a = (torch.rand(3), np.random.rand(), random.random())
    for s in range(20):
        seed_step(3, s)
    seed_step(3, 7)
    assert torch.equal(a[0], torch.rand(3)) and a[1] == np.random.rand() and a[2] == random.random()
    # torch.manual_seed would queue a lazy CUDA seed call (with a stack trace) per step on a CPU machine
    assert len(queued) == before
    seed_step(3, 8)
    assert not torch.equal(a[0], torch.rand(3))
