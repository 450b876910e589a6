"""TrainConfig: keywords, JSON round trip, validation, resume identity; the group split."""

import pytest

from simreal.errors import SimrealError
from simreal.tasks.config import TrainConfig, make_config
from simreal.tasks.data import EpochSampler, split_by_group


def test_make_config_routes_keywords_and_round_trips():
    c = make_config("seg", "ds", "run", size=(24, 40), channels=[4, 8], lr=0.01, mask_map={2: 1}, seed=3)
    assert (c.data.size, c.model.channels, c.optim.lr, c.data.mask_map, c.seed) == ((24, 40), (4, 8), 0.01, {2: 1}, 3)
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_identity_ignores_run_length_and_hardware_only():
    c = make_config("depth", "ds", "run")
    assert c.identity() == make_config("depth", "ds", "run", epochs=99, max_steps=5, devices="2", num_workers=3).identity()
    assert c.identity() != make_config("depth", "ds", "run", lr=0.5).identity()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"lr": -1.0}, "--lr"), ({"size": 4}, "--size"), ({"freeze": "encoder"}, "--init"), ({"bogus": 1}, "unknown"),
        ({"val_fraction": 1.0}, "val-fraction"), ({"precision": "8"}, "precision"), ({"size": 8, "channels": (4, 8, 16, 32, 64)}, "too small"),
    ],
)
def test_bad_options_raise(kw, match):
    with pytest.raises(SimrealError, match=match):
        make_config("depth", "ds", "run", **kw)


@pytest.mark.parametrize("mask_map", [{256: 1}, {-1: 0}, {2: -1}])
def test_mask_map_out_of_range_is_refused(mask_map):
    with pytest.raises(SimrealError, match="mask_map"):
        make_config("seg", "ds", "run", mask_map=mask_map)
    assert make_config("seg", "ds", "run", mask_map={0: 0, 255: 1}).data.mask_map == {0: 0, 255: 1}


def test_split_by_group_never_leaks_a_group_and_is_deterministic():
    recs = [f"p{i % 5}" for i in range(20)]
    tr, va = split_by_group(recs, 0.4, seed=1)
    assert sorted(tr + va) == list(range(20)) and va
    assert not {recs[i] for i in tr} & {recs[i] for i in va}
    assert len({recs[i] for i in va}) == 2
    assert split_by_group(recs, 0.4, seed=1) == (tr, va)
    assert any(split_by_group(recs, 0.4, seed=s)[1] != va for s in range(2, 8))


def test_split_without_groups_is_by_sample_and_needs_two():
    tr, va = split_by_group([None] * 10, 0.2, seed=0)
    assert len(va) == 2 and len(tr) == 8
    with pytest.raises(SimrealError, match="--val"):
        split_by_group(["a", "a", "a"], 0.2, seed=0)
    assert split_by_group(["a"], 0.0, seed=0) == ([0], [])


def test_epoch_sampler_order_depends_only_on_seed_and_epoch():
    s = EpochSampler(10, seed=4)
    s.set_epoch(2)
    a = list(s)
    s.set_epoch(3)
    assert sorted(a) == list(range(10)) and list(s) != a
    t = EpochSampler(10, seed=4)
    t.set_epoch(2)
    assert list(t) == a


def test_cosine_schedule_and_augment_options() -> None:
    from simreal.tasks.config import make_config
    from simreal.tasks.modules import cosine_factor

    c = make_config("depth", "d", "r", schedule="cosine", augment=True, epochs=3)
    assert c.optim.schedule == "cosine" and c.data.augment
    assert "epochs" in c.identity()["optim"]  # a cosine run's length decides its learning rates
    assert "epochs" not in make_config("depth", "d", "r").identity()["optim"]
    assert cosine_factor(0, 100, 0.02) == pytest.approx(1.0)
    assert cosine_factor(50, 100, 0.02) == pytest.approx(0.51)
    assert cosine_factor(100, 100, 0.02) == pytest.approx(0.02)
    with pytest.raises(SimrealError, match="--schedule"):
        make_config("depth", "d", "r", schedule="step")


def test_flips_move_image_and_labels_together() -> None:
    import torch

    from simreal.data.torch_dataset import Batch
    from simreal.tasks.modules import flip_batch_

    image = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    depth = image[:, :1].clone() + 1
    mask = (image[:, 0] % 2).long()
    batch = Batch(image=image.clone(), depth=depth.clone(), mask=mask.clone(), cameras=[None, None], ids=["a", "b"])
    torch.manual_seed(3)
    flip_batch_(batch)
    assert torch.equal(batch.depth, batch.image[:, :1] + 1)  # the depth map followed its image
    assert torch.equal(batch.mask, (batch.image[:, 0] % 2).long())
    assert not torch.equal(batch.image, image)  # seed 3 flips at least one sample
