"""MUNIT (Pfeiffer et al.): loss closed forms, style sampling, a run through the engine with exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from adapt_fixtures import write_images
from PIL import Image
from skimage.metrics import structural_similarity

from simreal_testing import assert_same, crash_at, last_checkpoint
from simreal.adapt.config import EngineConfig, MunitConfig, MunitRunConfig, UnpairedDataConfig
from simreal.adapt.losses import (
    gray,
    l1_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    lsgan_loss,
    ms_ssim,
    ms_ssim_gray_loss,
    ms_ssim_scales,
    ssim_components,
)
from simreal.adapt.munit import MUNIT, sample_style, step_lr, train_munit
from simreal.errors import SimrealError

#: A MUNIT small enough for a test at 16 px.
TINY_MUNIT = dict(dim=4, n_res=1, mlp_dim=8, d_dim=4, d_n_layer=2, d_num_scales=2)


def munit_config(real: Path, synthetic: Path, out: Path, *, steps: int = 3, size: int = 16, **munit: object) -> MunitRunConfig:
    return MunitRunConfig(
        out=str(out),
        data=UnpairedDataConfig(real=str(real), synthetic=str(synthetic), size=(size, size), batch_size=2),
        munit=MunitConfig(**{**TINY_MUNIT, **munit}),
        engine=EngineConfig(steps=steps, checkpoint_every=2, sample_every=3, log_every=1, n_samples=2),
    )


# -- losses ------------------------------------------------------------------------------------------------


def test_gray_is_the_channel_mean():
    x = torch.tensor([[[[0.0]], [[0.3]], [[0.9]]]])
    assert gray(x).shape == (1, 1, 1, 1) and float(gray(x)) == pytest.approx(0.4)
    with pytest.raises(SimrealError, match="gray"):
        gray(torch.zeros(3, 4, 4))


def test_ssim_matches_scikit_image_and_ms_ssim_of_identical_images_is_one():
    rng = np.random.default_rng(0)
    a = rng.random((32, 40))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    s, _ = ssim_components(torch.tensor(a)[None, None].float(), torch.tensor(b)[None, None].float())
    assert float(s) == pytest.approx(ref, abs=1e-5)
    for side in (8, 16, 64, 200):
        x = torch.rand(2, 3, side, side) * 2 - 1
        assert torch.allclose(ms_ssim(x, x, data_range=2.0), torch.ones(2), atol=1e-6)
        assert float(ms_ssim_gray_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    # one level without normalize is plain SSIM; noise lowers MS-SSIM step by step
    x = torch.rand(1, 1, 64, 64)
    assert float(ms_ssim(x, x * 0.9, scales=1, normalize=False)) == pytest.approx(float(ssim_components(x, x * 0.9)[0]), abs=1e-6)
    noisy = [float(ms_ssim(x, (x + s * torch.randn_like(x)).clamp(0, 1))) for s in (0.05, 0.2, 0.5)]
    assert noisy[0] > noisy[1] > noisy[2]


def test_ms_ssim_levels_follow_the_image_size():
    assert [ms_ssim_scales(s, s)[0] for s in (16, 32, 64, 128, 176, 512)] == [1, 2, 3, 4, 5, 5]
    assert ms_ssim_scales(8, 30) == (1, 7)  # below one 11 px window: the window shrinks
    with pytest.raises(SimrealError, match="at least 176 px"):
        ms_ssim(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64), scales=5)


def test_brightness_ms_ssim_ignores_colour_but_not_structure():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(ms_ssim_gray_loss(x, x.flip(1))) == pytest.approx(0.0, abs=1e-6)  # channels swapped: same brightness
    assert float(ms_ssim_gray_loss(x, x.roll(3, dims=-1))) > 0.1  # structure moved


def test_the_ms_ssim_loss_pulls_a_free_image_onto_the_source_structure():
    torch.manual_seed(0)
    source = torch.rand(1, 3, 32, 32) * 2 - 1
    free = torch.zeros(1, 3, 32, 32, requires_grad=True)
    opt = torch.optim.Adam([free], lr=0.05)
    start = float(ms_ssim_gray_loss(source, free.detach().tanh()))
    for _ in range(60):
        opt.zero_grad()
        ms_ssim_gray_loss(source, free.tanh()).backward()
        opt.step()
    end = float(ms_ssim_gray_loss(source, free.detach().tanh()))
    assert start > 0.4 and end < 0.1


def test_lsgan_values():
    maps = [torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 1, 1)]
    assert float(lsgan_loss(maps, 1.0)) == 1.0 and float(lsgan_loss(maps, 1.0, over_scales="mean")) == 0.5
    assert float(lsgan_loss(torch.full((2, 1, 3, 3), 0.5), 0.0)) == 0.25
    assert float(lsgan_discriminator_loss(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))) == 0.0
    assert float(lsgan_discriminator_loss([torch.zeros(1, 1, 2, 2)] * 3, [torch.ones(1, 1, 2, 2)] * 3)) == 6.0
    assert float(lsgan_generator_loss([torch.ones(1, 1, 4, 4)] * 3)) == 0.0
    assert float(l1_loss(torch.zeros(2, 2), torch.full((2, 2), -0.5))) == 0.5
    with pytest.raises(SimrealError, match="over_scales"):
        lsgan_loss(maps, 1.0, over_scales="max")


# -- style sampling and schedule ---------------------------------------------------------------------------


def test_style_sampling_is_half_real_half_random_and_deterministic_by_seed():
    encoded = torch.full((2, 8), 7.0, requires_grad=True)

    def draws(seed: int, n: int = 2000, p: float = 0.5) -> list[bool]:
        g = torch.Generator().manual_seed(seed)
        return [sample_style(encoded, p, g)[1] for _ in range(n)]

    a = draws(0)
    assert 0.46 < np.mean(a) < 0.54 and a == draws(0) and a != draws(1)
    g = torch.Generator().manual_seed(3)
    style, real = sample_style(encoded, 1.0, g)
    assert real and torch.equal(style, encoded.detach()) and not style.requires_grad
    style, real = sample_style(encoded, 0.0, g)
    assert not real and style.shape == (2, 8) and abs(float(style.mean())) < 2  # N(0, I), not the encoded 7s
    assert not any(draws(5, 50, p=0.0)) and all(draws(5, 50, p=1.0))


def test_step_decay_is_a_function_of_the_step():
    assert [step_lr(1e-4, s, 100_000, 0.5) for s in (0, 99_999, 100_000, 250_000)] == [1e-4, 1e-4, 5e-5, 2.5e-5]


# -- the run -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whole(real_dir, synthetic_dir, tmp_path_factory) -> Path:
    return train_munit(munit_config(real_dir, synthetic_dir, tmp_path_factory.mktemp("m") / "run"), progress=False)


def test_munit_run_folder_contract(whole):
    cfg = json.loads((whole / "config.json").read_text())
    assert cfg["method"] == "munit" and cfg["munit"]["channels"] == 3 and cfg["munit"]["ms_ssim_a_w"] == 5.0
    ckpt = last_checkpoint(whole)
    assert ckpt["simreal"]["iteration"] == 3 and ckpt["simreal"]["optimizers"] == ["generator", "discriminator"]
    assert {k.split(".")[1] for k in ckpt["state_dict"]} == {"gen_a", "gen_b", "dis_a", "dis_b"}
    grid = np.asarray(Image.open(whole / "samples" / "step_0000003.png"))
    assert grid.shape == (2 * 16 + 2, 5 * 16 + 4 * 2, 3)  # 2 rows x 5 columns
    header = (whole / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("G/ms_ssim_ab", "G/ms_ssim_ba", "G/recon_s_b", "G/cyc_x_a", "D/loss", "style/real", "lr"):
        assert key in header, key


def test_an_interrupted_munit_run_resumes_bit_identically(whole, real_dir, synthetic_dir, tmp_path):
    cfg = munit_config(real_dir, synthetic_dir, tmp_path / "cut")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_munit(cfg, progress=False, callbacks=[crash_at(2)])
    assert last_checkpoint(tmp_path / "cut")["simreal"]["iteration"] == 2
    resumed = train_munit(cfg, progress=False)
    a, b = last_checkpoint(whole), last_checkpoint(resumed)
    assert_same(a["state_dict"], b["state_dict"], "state_dict")
    assert_same(a["optimizer_states"], b["optimizer_states"], "optimizer_states")


def test_bad_munit_input_is_refused_before_anything_is_written(real_dir, synthetic_dir, tmp_path):
    with pytest.raises(SimrealError, match="too small for MUNIT with 3 discriminator scales of 4 layers: use at least 64 px"):
        train_munit(munit_config(real_dir, synthetic_dir, tmp_path / "r1", d_n_layer=4, d_num_scales=3), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no real images"):
        train_munit(munit_config(tmp_path / "empty", synthetic_dir, tmp_path / "r2"), progress=False)
    grey = write_images(tmp_path / "grey", n=2, mode="L")
    with pytest.raises(SimrealError, match="different channel counts"):
        train_munit(munit_config(grey, synthetic_dir, tmp_path / "r3"), progress=False)
    with pytest.raises(SimrealError, match="--real-style-p"):
        MunitConfig(real_style_p=1.5)
    with pytest.raises(SimrealError, match="--ms-ssim-kernel"):
        MunitConfig(ms_ssim_kernel=10)
    assert not any((tmp_path / f"r{i}").exists() for i in (1, 2, 3))
    m = MUNIT(channels=3, **TINY_MUNIT)
    with pytest.raises(SimrealError, match="needs synthetic training crops of at least 16 px"):
        m.training_step({"synthetic": torch.rand(1, 1, 3, 8, 8), "real": torch.rand(1, 1, 3, 8, 8)}, 0)


def test_bench_times_munit_through_the_engine_and_a_plain_loop():
    from simreal.bench.adapt import bench_adapt

    r = bench_adapt(method="munit", size=16, batch_size=1, ngf=4, n_blocks=1, steps=2, warmup=1, repeats=1, d_layers=2, d_scales=2)
    assert r.method == "munit" and r.plain_steps_per_s > 0 and r.engine_steps_per_s > 0 and r.params > 0
    with pytest.raises(SimrealError, match="--method must be one of reverse, munit, cyclegan"):
        bench_adapt(method="cut")
