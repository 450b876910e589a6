"""CycleGAN baseline: image pool semantics, the linear schedule, a run through the engine with exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from simreal_testing import assert_same, crash_at, last_checkpoint
from simreal.adapt.config import CycleGANConfig, CycleGANRunConfig, EngineConfig, UnpairedDataConfig
from simreal.adapt.cyclegan import CycleGAN, ImagePool, linear_decay_lr, train_cyclegan
from simreal.errors import SimrealError

TINY_CYCLEGAN = dict(ngf=4, n_blocks=1, ndf=4, d_n_layers=2, pool_size=3)


def cyclegan_config(real: Path, synthetic: Path, out: Path, *, steps: int = 3, size: int = 16, **cyclegan: object) -> CycleGANRunConfig:
    return CycleGANRunConfig(
        out=str(out),
        data=UnpairedDataConfig(real=str(real), synthetic=str(synthetic), size=(size, size), batch_size=2),
        cyclegan=CycleGANConfig(**{**TINY_CYCLEGAN, **cyclegan}),
        engine=EngineConfig(steps=steps, checkpoint_every=2, sample_every=3, log_every=1, n_samples=2),
    )


def test_image_pool_fills_then_swaps_half_the_time_and_checkpoints():
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 4  # filling: the new images come back
    g = torch.Generator().manual_seed(0)
    new = torch.arange(100.0, 500.0).view(400, 1, 1, 1)
    out = pool.query(new, g)
    old = (out != new).float().mean()
    assert 0.4 < float(old) < 0.6 and len(pool) == 4  # about half are past images; the pool stays bounded
    state = pool.get_extra_state()
    other = ImagePool(4)
    other.set_extra_state(state)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x = torch.full((6, 1, 1, 1), -1.0)
    assert torch.equal(pool.query(x, g1), other.query(x, g2))
    with pytest.raises(SimrealError, match="size 4"):
        ImagePool(5).set_extra_state(state)
    assert torch.equal(ImagePool(0).query(x), x)


def test_linear_decay_schedule():
    lrs = [linear_decay_lr(2e-4, s, 100, 99) for s in (0, 100, 101, 150, 199, 400)]
    assert lrs[:2] == [2e-4, 2e-4] and lrs[2] == pytest.approx(2e-4 * 0.99) and lrs[3] == pytest.approx(1e-4)
    assert lrs[4] == pytest.approx(2e-6) and lrs[5] == 0.0


def test_cyclegan_step_logs_every_loss_and_identity_can_be_off():
    torch.manual_seed(0)
    batch = {"synthetic": torch.rand(1, 2, 3, 16, 16), "real": torch.rand(1, 2, 3, 16, 16)}
    logs = CycleGAN(channels=3, **TINY_CYCLEGAN).training_step(batch, 0)
    assert {"G/adv_ab", "G/adv_ba", "G/cycle_a", "G/cycle_b", "G/idt_a", "G/idt_b", "D/a", "D/b", "pool/size"} <= set(logs)
    assert float(logs["pool/size"]) == 2 and float(logs["G/idt_a"]) > 0
    off = CycleGAN(channels=3, **{**TINY_CYCLEGAN, "lambda_identity": 0.0}).training_step(batch, 0)
    assert float(off["G/idt_a"]) == 0.0
    with pytest.raises(SimrealError, match="deterministically"):
        CycleGAN(channels=3, **TINY_CYCLEGAN).translate(torch.rand(1, 3, 16, 16), torch.zeros(1, 8))


@pytest.fixture(scope="module")
def whole(real_dir, synthetic_dir, tmp_path_factory) -> Path:
    return train_cyclegan(cyclegan_config(real_dir, synthetic_dir, tmp_path_factory.mktemp("c") / "run"), progress=False)


def test_an_interrupted_cyclegan_run_resumes_bit_identically(whole, real_dir, synthetic_dir, tmp_path):
    cfg = json.loads((whole / "config.json").read_text())
    assert cfg["method"] == "cyclegan" and cfg["cyclegan"]["channels"] == 3 and cfg["cyclegan"]["lambda_identity"] == 0.5
    a = last_checkpoint(whole)
    assert len(a["state_dict"]["method.pool_b._extra_state"]["images"]) == 3  # the pool is saved, bounded
    run = cyclegan_config(real_dir, synthetic_dir, tmp_path / "cut")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_cyclegan(run, progress=False, callbacks=[crash_at(2)])
    b = last_checkpoint(train_cyclegan(run, progress=False))
    assert_same(a["state_dict"], b["state_dict"], "state_dict")
    assert_same(a["optimizer_states"], b["optimizer_states"], "optimizer_states")


def test_bad_cyclegan_settings_are_refused(real_dir, synthetic_dir, tmp_path):
    with pytest.raises(SimrealError, match="multiples of 4"):
        train_cyclegan(cyclegan_config(real_dir, synthetic_dir, tmp_path / "r", size=18), progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(SimrealError, match="--dropout"):
        CycleGANConfig(dropout=1.0)
    with pytest.raises(SimrealError, match="--lambda-identity must be >= 0"):
        CycleGANConfig(lambda_identity=-1)


def test_bench_times_cyclegan(monkeypatch, capsys):
    from simreal_testing import run_cli

    code, out, err = run_cli(monkeypatch, capsys, "bench", "adapt", "--method", "cyclegan", "--size", "16", "--batch-size", "1",
                             "--ngf", "4", "--blocks", "1", "--steps", "2", "--repeats", "1", "--d-layers", "2")
    assert code == 0, err
    assert "adapt cyclegan cpu" in out and "engine overhead" in out
