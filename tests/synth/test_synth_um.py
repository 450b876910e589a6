"""Mask-guided CT synthesis on the engine: D-masked pseudo-labels, teacher refresh, schedules, data, resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from simreal_testing import crash_at, last_checkpoint
from simreal.adapt.config import EngineConfig
from simreal.adapt.losses import dice_ce_loss, masked_cross_entropy, soft_dice_loss
from simreal.data.format import CTInfo, DatasetInfo, LabelKind, SampleRecord
from simreal.data.writer import write_dataset
from simreal.errors import SimrealError
from simreal.synth.data import edge_map, hu_to_unit, mask_guidance, open_synth_data, split_labelled, unit_to_hu
from simreal.synth.um import MaskGuidedSynthesis, pseudo_label_mask, train_synth
from simreal.synth.um_config import SynthDataConfig, SynthRunConfig, UMConfig, parse_labelled

WINDOW = (-1000.0, 400.0)
TINY = dict(ngf=4, n_downsample=2, n_blocks=1, ndf=4, n_layers_d=2)


def write_ct_slices(path: Path, n_per_patient: int = 4, size: int = 32, patients=("p1", "p2")) -> Path:
    """A CT slice dataset made in code, as synth prepare + synth masks write it: a body disc (40 HU) with an
    'organ' disc (liver, 160 HU) that moves from slice to slice; guidance = the windowed image quantised
    to steps of 10 (its regions are the discs), edges of it."""
    lo, hi = WINDOW
    rr, cc = np.mgrid[:size, :size]
    items = []
    for p, name in enumerate(patients):
        for k in range(n_per_patient):
            hu = np.full((size, size), -1000.0, np.float32)
            hu[(rr - size / 2) ** 2 + (cc - size / 2) ** 2 < (0.42 * size) ** 2] = 40.0
            organ = (rr - (0.4 + 0.05 * k) * size) ** 2 + (cc - (0.35 + 0.1 * p) * size) ** 2 < (0.16 * size) ** 2
            hu[organ] = 160.0
            image = np.floor((np.clip(hu, lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)
            guidance = (image // 10 * 10).astype(np.uint8)
            arrays = {"image": np.repeat(image[..., None], 3, 2), "ct": hu, "mask": organ.astype(np.uint8),
                      "guidance": guidance, "edges": edge_map(guidance)}
            rec = SampleRecord(id=f"{name}_{k:04d}", files={}, params={"spacing_mm": [1.5, 1.5], "slice_index": k}, group=name)
            items.append((rec, arrays))
    info = DatasetInfo(
        modality="ct", domain="real", image_size=(size, size), files=("image", "ct", "mask", "guidance", "edges"),
        labels={"ct": LabelKind(unit="HU"), "mask": LabelKind(classes={0: "background", 1: "liver"}),
                "guidance": LabelKind(), "edges": LabelKind()},
        ct=CTInfo(window_hu=WINDOW),
    )
    return write_dataset(path, info, items, total=len(items))


@pytest.fixture(scope="module")
def ct_slices(tmp_path_factory) -> Path:
    return write_ct_slices(tmp_path_factory.mktemp("um") / "slices")


def _batch(b: int = 2, s: int = 16, unlabelled: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {"input": torch.rand(b, 2, s, s, generator=g) * 2 - 1, "ct": torch.rand(b, 1, s, s, generator=g) * 2 - 1,
           "mask": torch.randint(0, 2, (b, s, s), generator=g)}
    if unlabelled:
        out["u_input"], out["u_ct"] = torch.rand(b, 2, s, s, generator=g) * 2 - 1, torch.rand(b, 1, s, s, generator=g) * 2 - 1
    return out


class StubD(torch.nn.Module):
    """A 'discriminator' whose full-resolution scale returns a fixed logit map (plus a parameter, so the
    optimiser has something to step)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        base = self.logits.expand(x.shape[0], -1, -1, -1) + self.w + 0 * x[:, :1].mean()
        return [base, base[..., ::2, ::2]]


# -- pure functions ------------------------------------------------------------------------------------------


def test_pseudo_label_mask_closed_form():
    """sigmoid then bilinear (align_corners False) upsampling of a 2x2 map to 4x4, thresholded at 0.5:
    p = 0.1 + 0.8 (1 - wy)(1 - wx) with weights 0, 0.25, 0.75, 1 -> only the top-left 2x2 block exceeds 0.5."""
    p = torch.tensor([[0.9, 0.1], [0.1, 0.1]])
    logits = torch.log(p / (1 - p))[None, None]
    mask = pseudo_label_mask(logits, (4, 4), 0.5)
    expected = torch.zeros(1, 4, 4, dtype=torch.bool)
    expected[0, :2, :2] = True
    assert torch.equal(mask, expected)
    assert not pseudo_label_mask(logits, (4, 4), 0.9).any()
    with pytest.raises(SimrealError, match="\\(B, 1, h, w\\)"):
        pseudo_label_mask(torch.zeros(1, 2, 4, 4), (4, 4))


def test_masked_dice_ce_counts_exactly_the_masked_pixels():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 5, 6), torch.randint(0, 3, (2, 5, 6))
    mask = torch.rand(2, 5, 6) > 0.6
    sel = mask.nonzero(as_tuple=True)
    # the masked loss equals the plain loss on the masked pixels gathered into one row
    sub_logits = logits.permute(0, 2, 3, 1)[sel].T[None, :, None, :]  # (1, C, 1, K)
    sub_target = target[sel][None, None]
    torch.testing.assert_close(dice_ce_loss(logits, target, mask), dice_ce_loss(sub_logits, sub_target))
    torch.testing.assert_close(masked_cross_entropy(logits, target), torch.nn.functional.cross_entropy(logits, target))
    empty = torch.zeros(2, 5, 6, dtype=torch.bool)
    l = logits.clone().requires_grad_()
    loss = dice_ce_loss(l, target, empty)
    loss.backward()
    assert loss.item() == 0.0 and not torch.signbit(loss) and torch.equal(l.grad, torch.zeros_like(l))
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 100
    assert soft_dice_loss(perfect, target).item() < 1e-6


def test_labelled_specs_and_split():
    assert parse_labelled("all").kind == "all"
    assert parse_labelled("3") == parse_labelled(" 3 ")
    assert parse_labelled("25%").fraction == pytest.approx(0.25) and parse_labelled("0.25").fraction == 0.25
    assert parse_labelled("1p").kind == "patients"
    for bad in ("0", "0%", "1.5", "x", "0p"):
        with pytest.raises(SimrealError, match="labelled"):
            parse_labelled(bad)
    groups = ["a"] * 4 + ["b"] * 4
    lab, unlab = split_labelled(range(8), groups, "25%")
    assert lab == [2, 6] and sorted(lab + unlab) == list(range(8))  # spread over both patients
    assert split_labelled(range(8), groups, "1p") == ([0, 1, 2, 3], [4, 5, 6, 7])
    assert split_labelled(range(8), groups, "all") == (list(range(8)), [])
    with pytest.raises(SimrealError, match="more slices"):
        split_labelled(range(8), groups, "9")


def test_conversions():
    hu = np.array([-2000.0, -1000.0, -300.0, 400.0, 900.0])
    u = hu_to_unit(hu, WINDOW)
    np.testing.assert_allclose(u, [-1, -1, 0, 1, 1])
    np.testing.assert_allclose(unit_to_hu(u, WINDOW), np.clip(hu, *WINDOW))
    assert mask_guidance(np.array([[0, 1]]), 2).tolist() == [[0, 255]]
    with pytest.raises(SimrealError, match="class ids"):
        mask_guidance(np.array([[2]]), 2)


# -- the method ----------------------------------------------------------------------------------------------


def _method(**kw) -> MaskGuidedSynthesis:
    torch.manual_seed(0)
    return MaskGuidedSynthesis(in_channels=2, num_classes=2, **{**TINY, "teacher_every": 1, **kw})


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_the_pseudo_label_loss_counts_the_pixels_where_d_says_real(threshold):
    m = _method(pseudo_threshold=threshold)
    logits = torch.linspace(-3, 3, 16 * 16).view(1, 1, 16, 16)  # a full-resolution map: upsampling is the identity
    m.discriminator = StubD(logits)
    logs = m.training_step(_batch(), step=1)
    expected = (torch.sigmoid(logits) > threshold).float().mean()
    torch.testing.assert_close(logs["U/counted"], expected)
    assert 0 < logs["U/seg"].item()


def test_the_pseudo_label_loss_is_zero_when_d_calls_everything_fake():
    m = _method()
    m.discriminator = StubD(torch.full((1, 1, 16, 16), -20.0))
    logs = m.training_step(_batch(), step=1)
    assert logs["U/counted"].item() == 0.0 and logs["U/seg"].item() == 0.0
    assert logs["G/seg"].item() > 0 and logs["U/l1"].item() > 0  # the rest of the pass still trains


def test_pseudo_labels_come_from_the_frozen_teacher():
    m = _method(teacher_every=2)
    with torch.no_grad():
        m.teacher.seg_head[1].bias.copy_(torch.tensor([-50.0, 50.0]))  # the teacher says "class 1" everywhere
        m.generator.seg_head[1].bias.copy_(torch.tensor([50.0, -50.0]))
    assert torch.equal(m.pseudo_labels(torch.zeros(1, 2, 16, 16)), torch.ones(1, 16, 16, dtype=torch.long))
    assert not any(p.requires_grad for p in m.teacher.parameters())
    assert all(id(p) not in {id(q) for g in m.configure_optimizers().values() for grp in g.param_groups for q in grp["params"]}
               for p in m.teacher.parameters())


def test_teacher_refresh_schedule():
    m = _method(teacher_every=2)
    t0 = {k: v.clone() for k, v in m.teacher.state_dict().items()}
    g0 = m.generator.state_dict()
    assert all(torch.equal(t0[k], g0[k]) for k in t0)  # a copy at construction
    m.training_step(_batch(), 0)
    logs = m.training_step(_batch(seed=1), 1)
    assert "U/seg" not in logs  # no unlabelled pass before the first refresh
    assert all(torch.equal(m.teacher.state_dict()[k], t0[k]) for k in t0)  # unchanged by the updates
    before = {k: v.clone() for k, v in m.generator.state_dict().items()}
    logs = m.training_step(_batch(seed=2), 2)  # refresh at the start of step 2, then updates
    assert "U/seg" in logs
    assert all(torch.equal(m.teacher.state_dict()[k], before[k]) for k in before)
    assert not all(torch.equal(m.generator.state_dict()[k], before[k]) for k in before)
    assert [m.refreshes_teacher(s) for s in range(5)] == [False, False, True, False, True]


def test_learning_rate_is_constant_then_decays_linearly():
    m = _method(total_steps=8, lr=1e-3)
    assert [m.lr_at(s) for s in range(8)] == pytest.approx([1e-3] * 6 + [1e-3, 5e-4])
    m = _method(total_steps=10, decay_steps=5, lr=1.0)
    assert [m.lr_at(s) for s in (4, 5, 6, 9)] == pytest.approx([1.0, 1.0, 0.8, 0.2])
    m.training_step(_batch(unlabelled=False), 9)
    assert m.optimizer("generator").param_groups[0]["lr"] == pytest.approx(0.2)
    assert _method().lr_at(10**6) == pytest.approx(2e-4)  # no total: no decay


def test_bad_batches_and_settings_are_refused():
    m = _method()
    with pytest.raises(SimrealError, match="needs input"):
        m.training_step({"input": torch.zeros(2, 2, 16, 16), "ct": torch.zeros(2, 1, 16, 16)}, 0)
    with pytest.raises(SimrealError, match="pseudo-threshold"):
        UMConfig(pseudo_threshold=1.0)
    with pytest.raises(SimrealError, match="teacher-every"):
        _method(teacher_every=0)


# -- data and the engine ---------------------------------------------------------------------------------------


def test_data_splits_labelled_and_unlabelled_slices(ct_slices):
    d = open_synth_data(SynthDataConfig(str(ct_slices), labelled="25%"), method="um", seed=0)
    assert d.num_classes == 2 and d.window == WINDOW and len(d.labelled_ids) == 2 and len(d.unlabelled_ids) == 6
    b = d.batches[3]
    assert b["input"].shape == (2, 2, 32, 32) and b["ct"].shape == (2, 1, 32, 32) and b["mask"].dtype == torch.int64
    assert b["u_input"].shape == (2, 2, 32, 32) and "u_mask" not in b
    for k, v in d.batches[3].items():
        assert torch.equal(v, b[k])  # a step's batch depends on (seed, step) only
    assert set(b["input"][:, 1].unique().tolist()) <= {0.0, 1.0}  # the edge channel
    assert set(d.batches.labelled.masks.unique().tolist()) == {0, 1}  # the dataset's masks
    m = open_synth_data(SynthDataConfig(str(ct_slices), labelled="25%", size=16, groups=("p2",)), method="mask", seed=0)
    assert m.unlabelled_ids == [] and m.batches.size == 16 and all(i.startswith("p2") for i in m.labelled_ids)
    g = m.batches.labelled.guidance
    assert set(np.unique(g).tolist()) == {0, 255}  # the manual mask drawn as guidance
    with pytest.raises(SimrealError, match="no training slice has group"):
        open_synth_data(SynthDataConfig(str(ct_slices), groups=("p9",)), method="um", seed=0)


def _run_config(data: Path, out: Path, steps: int = 3) -> SynthRunConfig:
    return SynthRunConfig(
        out=str(out), data=SynthDataConfig(str(data), labelled="50%", size=16),
        um=UMConfig(**TINY, teacher_every=1),
        engine=EngineConfig(steps=steps, checkpoint_every=2, sample_every=3, log_every=1, n_samples=2),
    )


def test_a_three_step_run_resumes_exactly(ct_slices, tmp_path):
    whole = train_synth(_run_config(ct_slices, tmp_path / "whole"), progress=False)
    ck = last_checkpoint(whole)
    assert ck["simreal"]["method"] == "um" and ck["simreal"]["iteration"] == 3
    assert any(k.startswith("method.teacher.") for k in ck["state_dict"])  # the teacher resumes too
    data = json.loads((whole / "data.json").read_text())
    assert len(data["labelled"]) == 4 and len(data["unlabelled"]) == 4 and data["window_hu"] == list(WINDOW)
    cfg = json.loads((whole / "config.json").read_text())
    assert cfg["um"]["in_channels"] == 2 and cfg["um"]["num_classes"] == 2
    assert (whole / "samples" / "step_0000003.png").is_file()
    rows = (whole / "metrics.csv").read_text().splitlines()
    assert "U/counted" in rows[0] and len(rows) == 4

    cut = _run_config(ct_slices, tmp_path / "cut")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_synth(cut, progress=False, callbacks=[crash_at(2)])
    assert last_checkpoint(tmp_path / "cut")["simreal"]["iteration"] == 2
    resumed = last_checkpoint(train_synth(cut, progress=False))
    assert ck["state_dict"].keys() == resumed["state_dict"].keys()
    for k in ck["state_dict"]:
        assert torch.equal(ck["state_dict"][k], resumed["state_dict"][k]), k
    for a, b in zip(ck["optimizer_states"], resumed["optimizer_states"]):
        for pid in a["state"]:
            for name in a["state"][pid]:
                assert torch.equal(torch.as_tensor(a["state"][pid][name]), torch.as_tensor(b["state"][pid][name]))
    with pytest.raises(SimrealError, match="different config"):
        train_synth(dataclasses.replace(cut, um=dataclasses.replace(cut.um, lambda_l1=1.0)), progress=False)


def test_runs_refuse_sizes_the_generator_cannot_take(ct_slices, tmp_path):
    cfg = _run_config(ct_slices, tmp_path / "bad")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, size=18))
    with pytest.raises(SimrealError, match="multiple of 2\\*\\*n_downsample"):
        train_synth(cfg, progress=False)
    assert not (tmp_path / "bad").exists()

