"""The adversarial engine in 2 CPU processes (gloo, ddp_spawn): the same run as one process, exact resume,
a real method on UnpairedBatches, batch sharding.

The classes are at module level: ddp_spawn pickles the method, the data and the callbacks into its processes.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import lightning as L
import pytest
import torch
from adapt_fixtures import tiny_config
from torch import nn

from simreal.adapt.config import EngineConfig
from simreal.adapt.engine import fit, shard
from simreal.adapt.losses import gan_loss
from simreal.adapt.method import AdversarialMethod, frozen
from simreal.adapt.reverse import train_reverse
from simreal.adapt.runs import load_adapt_checkpoint
from simreal.errors import SimrealError

#: 1 vs 2 processes: same images per step, gradients averaged in another order.
ATOL = 1e-5


class Det(AdversarialMethod):
    """A generator and a discriminator with no randomness of their own (noise would be drawn per rank)."""

    name = "det"

    def __init__(self) -> None:
        super().__init__()
        self.g = nn.Conv2d(1, 1, 3, padding=1)
        self.d = nn.Conv2d(1, 1, 3)

    def configure_optimizers(self):
        return {"g": torch.optim.Adam(self.g.parameters(), 1e-2), "d": torch.optim.SGD(self.d.parameters(), 1e-2, momentum=0.9)}

    def training_step(self, batch, step):
        x = batch["x"]
        with torch.no_grad():
            fake = self.g(x)
        d_loss = gan_loss(self.d(fake), False) + gan_loss(self.d(x), True)
        self.update("d", d_loss)
        with frozen(self.d):
            g_loss = gan_loss(self.d(self.g(x)), True)
            self.update("g", g_loss)
        return {"g": g_loss.detach(), "d": d_loss.detach()}

    def sample(self, batch):
        return {"x": batch["x"], "g": self.g(batch["x"]).clamp(0, 1)}


class Frames:
    """4 images per step (2 per process with 2 processes), a function of the step only."""

    batch_size = 4

    def __getitem__(self, step):
        return {"x": torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(step))}

    def sample_batch(self, n):
        return {"x": torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(10**6))}


@dataclass(frozen=True)
class DetRun:
    out: str
    engine: EngineConfig = field(default_factory=EngineConfig)
    method: Literal["det"] = "det"


def _engine(**kw) -> EngineConfig:
    return EngineConfig(**{**dict(steps=6, checkpoint_every=3, sample_every=6, log_every=1, n_samples=2, accelerator="cpu"), **kw})


TWO = dict(devices="2", strategy="ddp_spawn")


class CrashAtStep(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.iteration == self.step:
            raise RuntimeError("simulated crash")


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _ckpt(run: Path) -> dict:
    return load_adapt_checkpoint(run / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def det_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("det")
    one = fit(Det, Frames(), DetRun(out=str(root / "one"), engine=_engine(devices="1")), progress=False)
    two = fit(Det, Frames(), DetRun(out=str(root / "two"), engine=_engine(**TWO)), progress=False)
    return one, two


def test_two_processes_train_what_one_trains(det_runs):
    one, two = det_runs
    a, b = _ckpt(one), _ckpt(two)
    assert b["simreal"]["iteration"] == 6
    for k in a["state_dict"]:
        assert torch.allclose(a["state_dict"][k], b["state_dict"][k], atol=ATOL, rtol=0), k
    # the logged losses are means over both processes' images: the one-process figures
    ra, rb = _rows(one), _rows(two)
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [str(s) for s in range(1, 7)]
    for x, y in zip(ra, rb):
        assert float(y["g"]) == pytest.approx(float(x["g"]), rel=1e-4) and float(y["d"]) == pytest.approx(float(x["d"]), rel=1e-4)
    assert len(list((two / "tb").glob("events.out.tfevents.*"))) == 1
    assert not [p for p in two.rglob("*") if p.name.endswith(".tmp")]


def test_an_interrupted_ddp_run_resumes_exactly(det_runs, tmp_path):
    _, two = det_runs
    cut = DetRun(out=str(tmp_path / "cut"), engine=_engine(**TWO))
    with pytest.raises(Exception, match="simulated crash"):
        fit(Det, Frames(), cut, progress=False, callbacks=[CrashAtStep(5)])
    assert _ckpt(tmp_path / "cut")["simreal"]["iteration"] == 3
    resumed = fit(Det, Frames(), cut, progress=False)
    a, b = _ckpt(two), _ckpt(resumed)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert _rows(resumed) == _rows(two)


def test_reverse_da_runs_in_two_processes(real_dir, synthetic_dir, tmp_path):
    cfg = tiny_config(real_dir, synthetic_dir, tmp_path / "rev", steps=5, checkpoint_every=5, sample_every=5)
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, accelerator="cpu", **TWO))
    run = train_reverse(cfg, progress=False)
    ckpt = _ckpt(run)
    # UnpairedBatches holds (draws, batch, C, H, W): each process refined its 1 of the 2 images per batch
    assert ckpt["simreal"]["iteration"] == 5 and ckpt["state_dict"]["method.history._extra_state"]["count"] >= 1
    assert [int(r["step"]) for r in _rows(run)] == [2, 4, 5] and (run / "samples" / "step_0000005.png").is_file()


def test_shard_slices_the_batch_dimension_and_refuses_uneven_batches():
    batch = {"x": torch.arange(2 * 4).view(2, 4, 1), "y": torch.arange(4)}
    assert shard(batch, 0, 1) == batch
    parts = [shard({"x": batch["x"]}, r, 2, dim=1)["x"] for r in (0, 1)]
    assert torch.equal(torch.cat(parts, dim=1), batch["x"]) and parts[1][0, :, 0].tolist() == [2, 3]
    with pytest.raises(SimrealError, match=r"'y' of shape \(4,\) cannot be shared by 3 processes"):
        shard({"y": batch["y"]}, 0, 3)
    with pytest.raises(SimrealError, match="--strategy must be one of"):
        EngineConfig(strategy="deepspeed")


@pytest.mark.slow  # two fresh interpreters: the command and its rank 1
def test_cli_adapt_reverse_with_strategy_ddp(real_dir, synthetic_dir, tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    exe = Path(sys.executable).with_name("simreal")  # "ddp" re-runs this command line in rank 1
    done = subprocess.run(
        [str(exe), "adapt", "reverse", "--real", str(real_dir), "--synthetic", str(synthetic_dir), "--out", str(run),
         "--steps", "4", "--size", "16", "--batch-size", "2", "--ngf", "8", "--blocks", "2", "--pretrain-r", "1",
         "--pretrain-d", "1", "--checkpoint-every", "2", "--sample-every", "4", "--log-every", "2", "--devices", "2",
         "--accelerator", "cpu", "--strategy", "ddp", "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _ckpt(run)["simreal"]["iteration"] == 4 and _ckpt(run)["simreal"]["config"]["engine"]["strategy"] == "ddp"
    assert [int(r["step"]) for r in _rows(run)] == [2, 4] and len(list((run / "tb").glob("events.out.tfevents.*"))) == 1
    assert done.stderr.count("run folder:") == 1  # every process runs the command; only rank 0 says where the run is
