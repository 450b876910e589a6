"""Sampling new CT + mask pairs (perturbed guidance, aligned outputs, provenance) and the memorisation check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_synth_um import TINY, WINDOW, write_ct_slices

from simreal.adapt.config import EngineConfig
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError
from simreal.synth.data import edge_map, mask_guidance, read_slices
from simreal.synth.memorisation import (
    cross_patient_distances,
    within_patient_distances,
    downsample_images,
    memorisation_check,
    memorisation_from_run,
    nearest_neighbours,
    pairwise_distances,
)
from simreal.synth.sample import (
    PerturbConfig,
    apply_perturbation,
    draw_perturbation,
    jitter_levels,
    parse_perturb,
    sample_dataset,
    sample_from_run,
    sampling_grid,
    warp_nearest,
)
from simreal.synth.um import train_synth
from simreal.synth.um_config import SynthDataConfig, SynthRunConfig, UMConfig
from simreal_testing import run_cli

CLASSES = {0: "background", 1: "liver"}


@pytest.fixture(scope="module")
def ct_slices(tmp_path_factory) -> Path:
    return write_ct_slices(tmp_path_factory.mktemp("sample") / "slices")


@pytest.fixture(scope="module")
def sources(ct_slices):
    return read_slices(DatasetReader(ct_slices), range(8), method="um", size=None, edges=True, num_classes=2, window=WINDOW)


class ThresholdGenerator(torch.nn.Module):
    """CT = the guidance channel itself; segmentation = 'CT above the window's middle' (logits 20 ct, -20 ct)."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        ct = x[:, :1] + 0 * self.p
        return ct, torch.cat([-20 * ct, 20 * ct], dim=1)


# -- perturbations (pure) ----------------------------------------------------------------------------------


def test_warps_keep_values_and_rotate_exactly():
    img = np.arange(25, dtype=np.uint8).reshape(5, 5)
    assert np.array_equal(warp_nearest(img, sampling_grid(5, None, None)), img)
    rot = warp_nearest(img, sampling_grid(5, {"rotate_deg": 90.0, "scale": 1.0, "translate": [0.0, 0.0]}, None))
    assert np.array_equal(rot, np.rot90(img, -1))
    shifted = warp_nearest(img, sampling_grid(5, {"rotate_deg": 0.0, "scale": 1.0, "translate": [0.0, 0.2]}, None))
    assert np.array_equal(shifted[:, 1:], img[:, :-1]) and np.array_equal(shifted[:, 0], img[:, 0])  # one px right, border replicated
    g = np.random.default_rng(0).integers(0, 26, (32, 32)).astype(np.uint8) * 10
    out = warp_nearest(g, sampling_grid(32, {"rotate_deg": 7.0, "scale": 1.1, "translate": [0.03, -0.02]},
                                        {"seed": 3, "alpha": 0.05, "sigma": 0.1}))
    assert set(np.unique(out)) <= set(np.unique(g)) and not np.array_equal(out, g)


def test_jitter_moves_whole_regions_by_whole_steps():
    g = np.zeros((8, 8), np.uint8)
    g[:, 4:] = 100
    g[2:4, 1:3] = 50
    out = jitter_levels(g, seed=1, max_steps=2, step=10)
    for region in (g == 0, g == 100, g == 50):
        vals = np.unique(out[region])
        assert len(vals) == 1  # a region stays one level
        assert (int(vals[0]) - int(g[region][0])) % 10 == 0 and abs(int(vals[0]) - int(g[region][0])) <= 20
    assert np.array_equal(jitter_levels(g, 1, 2, 10), out)  # deterministic


def test_draw_then_apply_is_deterministic_and_complete():
    cfg = PerturbConfig(kinds=("affine", "elastic", "jitter", "mix"), mix_prob=1.0, mix_window=1)
    groups = ["a", "a", "b"]
    p1 = draw_perturbation(np.random.default_rng([0, 4]), cfg, 1, groups)
    assert p1 == draw_perturbation(np.random.default_rng([0, 4]), cfg, 1, groups)
    json.dumps(p1)  # stored in samples.jsonl
    assert p1["mix"]["partner"] == 0  # same patient, within the window
    assert draw_perturbation(np.random.default_rng([0, 4]), cfg, 2, groups)["mix"] is None  # no partner in b
    off = draw_perturbation(np.random.default_rng([0, 4]), PerturbConfig(kinds=("affine",)), 1, groups)
    assert off["affine"] == p1["affine"] and off["elastic"] is None  # switching others off keeps the values
    base = np.full((16, 16), 50, np.uint8)
    base[4:12, 4:12] = 120
    a = apply_perturbation(base, p1, partner=base[::-1].copy())
    assert np.array_equal(a, apply_perturbation(base, p1, partner=base[::-1].copy()))
    assert np.array_equal(apply_perturbation(base, draw_perturbation(np.random.default_rng(0), PerturbConfig(kinds=()), 0, groups)), base)
    assert parse_perturb("none") == () and parse_perturb("affine, jitter") == ("affine", "jitter")
    with pytest.raises(SimrealError, match="unknown perturbation"):
        PerturbConfig(kinds=("flip",))


# -- sampling ----------------------------------------------------------------------------------------------


def test_generated_masks_images_and_guidance_are_aligned(sources, tmp_path):
    out = sample_dataset(ThresholdGenerator(), sources, tmp_path / "s", n=6, method="um", window=WINDOW, classes=CLASSES,
                         seed=3, batch_size=4, perturb=PerturbConfig(kinds=("affine", "elastic", "jitter")))
    assert validate_dataset(out).n_samples == 6
    ds = DatasetReader(out)
    assert ds.info.domain == "synthetic" and ds.info.ct.window_hu == WINDOW and ds.info.files == ("image", "ct", "mask", "guidance", "edges")
    for i in range(len(ds)):
        guide, image, mask, hu = ds.read(i, "guidance"), ds.read(i, "image")[..., 0], ds.read(i, "mask"), ds.read(i, "ct")
        assert np.array_equal(ds.read(i, "edges"), edge_map(guide))
        # CT = guidance (the stub), so the windowed image reproduces the guidance level by level ...
        assert np.abs(image.astype(int) - guide.astype(int)).max() <= 1
        np.testing.assert_allclose(hu, WINDOW[0] + guide / 255.0 * (WINDOW[1] - WINDOW[0]), atol=0.5)
        # ... and the mask is exactly the CT's bright region (above the window's middle)
        assert np.array_equal(mask, (guide > 127.5).astype(np.uint8))
        rec = ds.records[i]
        assert rec.source == sources.ids[rec.params["source"]] and rec.group == sources.groups[rec.params["source"]]
        assert not any(np.array_equal(guide, g) for g in sources.guidance)  # new structure, not a training map
    gen = ds.info.generator
    assert gen["name"] == "simreal.synth.sample" and gen["perturb"]["kinds"] == ["affine", "elastic", "jitter"]
    again = sample_dataset(ThresholdGenerator(), sources, tmp_path / "t", n=6, method="um", window=WINDOW, classes=CLASSES,
                           seed=3, batch_size=1)
    for kind in ("image", "ct", "mask", "guidance"):
        for i in range(6):
            assert (out / ds.records[i].files[kind]).read_bytes() == (again / ds.records[i].files[kind]).read_bytes()


def test_mask_guided_samples_keep_the_perturbed_manual_mask(ct_slices, tmp_path):
    src = read_slices(DatasetReader(ct_slices), range(8), method="mask", size=None, edges=True, num_classes=2, window=WINDOW)

    class Wrong(ThresholdGenerator):
        def forward(self, x):  # a seg head that says "background" everywhere: not used by method "mask"
            ct, _ = super().forward(x)
            return ct, torch.cat([torch.ones_like(ct), -torch.ones_like(ct)], 1)

    out = sample_dataset(Wrong(), src, tmp_path / "m", n=4, method="mask", window=WINDOW, classes=CLASSES, seed=0,
                         perturb=PerturbConfig(kinds=("affine", "elastic", "jitter")))
    ds = DatasetReader(out)
    for i in range(4):
        mask = ds.read(i, "mask")
        assert mask.any() and np.array_equal(ds.read(i, "guidance"), mask_guidance(mask, 2))


def test_sample_from_a_trained_run_and_the_cli(ct_slices, tmp_path, monkeypatch, capsys):
    cfg = SynthRunConfig(out=str(tmp_path / "run"), data=SynthDataConfig(str(ct_slices), labelled="50%", groups=("p1",)),
                         um=UMConfig(**TINY, teacher_every=1), engine=EngineConfig(steps=2, checkpoint_every=2, sample_every=2))
    run = train_synth(cfg, progress=False)
    out = sample_from_run(run, tmp_path / "samples", n=3, seed=1, device="cpu")
    ds = DatasetReader(out)
    assert len(ds) == 3 and validate_dataset(out).n_samples == 3
    gen = ds.info.generator
    assert gen["model"] == str(run) and gen["model_step"] == 2 and gen["from_training_slices"] and gen["model_config"]["method"] == "um"
    assert all(r.source.startswith("p1") for r in ds.records)  # guidance of the run's training slices only
    code, stdout, stderr = run_cli(monkeypatch, capsys, "synth", "sample", "--model", str(run), "--n", "2", "--out",
                                   str(tmp_path / "cli"), "--perturb", "affine", "--no-progress", "--device", "cpu")
    assert code == 0 and "wrote 2 samples" in stdout, stderr
    code, stdout, stderr = run_cli(monkeypatch, capsys, "synth", "memorisation", "--samples", str(out), "--model", str(run),
                                   "--out", str(tmp_path / "mem.json"))
    assert code == 0 and "held-out real" in stdout, stderr
    rep = json.loads((tmp_path / "mem.json").read_text())
    assert rep["summary"]["n_train"] == 4 and rep["summary"]["n_heldout"] == 4  # p2 never seen
    code, _, stderr = run_cli(monkeypatch, capsys, "synth", "sample", "--model", str(tmp_path / "nothing"), "--n", "1",
                              "--out", str(tmp_path / "x"))
    assert code == 2 and "not a simreal run folder" in stderr


def test_synth_train_cli_resumes_and_refuses_bad_flags(ct_slices, tmp_path, monkeypatch, capsys):
    args = ["synth", "train", "--method", "mask", "--data", str(ct_slices), "--out", str(tmp_path / "r"), "--steps", "1",
            "--size", "16", "--ngf", "4", "--n-downsample", "2", "--n-blocks", "1", "--ndf", "4", "--n-layers-d", "2",
            "--labelled", "1p", "--no-progress"]
    code, _, stderr = run_cli(monkeypatch, capsys, *args)
    assert code == 0, stderr
    plain = json.loads((tmp_path / "r" / "config.json").read_text())
    assert plain["method"] == "mask" and plain["data"]["labelled"] == "1p" and plain["um"]["teacher_every"] == 2
    code, _, stderr = run_cli(monkeypatch, capsys, "synth", "train", "--config", str(tmp_path / "r" / "config.json"), "--steps", "2", "--no-progress")
    assert code == 0, stderr
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.ckpt", weights_only=False)["simreal"]["iteration"] == 2
    code, _, stderr = run_cli(monkeypatch, capsys, "synth", "train", "--data", str(ct_slices), "--out", str(tmp_path / "b"),
                              "--labelled", "half")
    assert code == 2 and "--labelled" in stderr


# -- memorisation ------------------------------------------------------------------------------------------


def test_distances_closed_form():
    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(pairwise_distances(a, b), [[np.sqrt(0.5), 1.0], [np.sqrt(0.5), 0.0]])
    x = np.random.default_rng(0).random((3, 16))
    np.testing.assert_allclose(np.diag(pairwise_distances(x, x, "ssim")), 0, atol=1e-12)
    d, i = nearest_neighbours(x[[2, 0]] + 1e-9, x)
    assert i.tolist() == [2, 0] and d.max() < 1e-6
    imgs = np.zeros((1, 4, 4), np.uint8)
    imgs[0, :2] = 255
    np.testing.assert_allclose(downsample_images(imgs, 2), [[1, 1, 0, 0]])
    cross = cross_patient_distances(np.array([[0.0], [0.1], [1.0]]), ["a", "a", "b"])
    np.testing.assert_allclose(cross, [1.0, 0.9, 0.9])
    assert cross_patient_distances(x, ["a"] * 3) is None
    within = within_patient_distances(np.array([[0.0], [0.1], [0.5], [1.0]]), ["a", "a", "a", "b"])
    np.testing.assert_allclose(within, [0.1, 0.1, 0.4])  # b has one slice: left out
    assert within_patient_distances(x, ["a", "b", "c"]) is None


def test_copies_of_training_slices_are_flagged(ct_slices, tmp_path):
    report = memorisation_check(ct_slices, ct_slices, train_ids=[f"p1_{k:04d}" for k in range(4)],
                                heldout_ids=[f"p2_{k:04d}" for k in range(4)], size=16, copy_threshold=1e-6)
    s = report.summary
    p1 = [i for i, sid in enumerate(report.sample_ids) if sid.startswith("p1")]
    assert np.all(report.sample_distance[p1] == 0) and [report.sample_nearest[i] for i in p1] == [report.sample_ids[i] for i in p1]
    assert s["copies"] == 0.5 and s["n_heldout"] == 4 and s["heldout_median"] > 0
    default = memorisation_check(ct_slices, ct_slices, train_ids=[f"p1_{k:04d}" for k in range(4)], size=16).summary
    assert default["copy_threshold"] == default["neighbour_median"] > 0 and default["closer_than_neighbour_median"] >= 0.5
    with pytest.raises(SimrealError, match="overlap"):
        memorisation_check(ct_slices, ct_slices, train_ids=["p1_0000"], heldout_ids=["p1_0000"])
    with pytest.raises(SimrealError, match="no data.json"):
        memorisation_from_run(tmp_path, ct_slices)
