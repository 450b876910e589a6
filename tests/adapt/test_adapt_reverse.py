"""The reverse-DA method on its own (a plain loop, no engine): schedule, k steps, history, identity."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from simreal.adapt.config import ReverseDAConfig
from simreal.adapt.reverse import ReverseDA, build_method
from simreal.errors import SimrealError


def _batch(seed: int, k_r: int = 2, k_d: int = 1, b: int = 4, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"real": torch.rand(k_r + k_d, b, 3, size, size, generator=g),
            "synthetic": torch.rand(k_d, b, 3, size, size, generator=g)}


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_config_fields_are_the_constructor_keywords_with_the_same_defaults():
    sig = inspect.signature(ReverseDA.__init__).parameters
    fields = {f.name: f.default for f in dataclasses.fields(ReverseDAConfig)}
    assert set(fields) == {n for n in sig if n != "self"}
    for name, default in fields.items():
        if name != "channels":  # None in the config: filled in from the images
            assert sig[name].default == default, name
    # the documented paper / port defaults
    c = ReverseDAConfig()
    assert (c.ngf, c.n_blocks, c.pretrain_r, c.pretrain_d, c.history_size, c.k_d) == (64, 4, 1000, 200, 12800, 1)
    assert c.lambda_reg == 0.5 and c.psi == "identity" and c.lr_r == c.lr_d == 1e-4
    assert isinstance(build_method(ReverseDAConfig(ngf=4, n_blocks=1)), ReverseDA)


def test_schedule_pretrains_refiner_then_discriminator_then_alternates():
    torch.manual_seed(0)
    m = ReverseDA(ngf=8, n_blocks=2, pretrain_r=2, pretrain_d=1, history_size=16, lr_r=1e-2, lr_d=1e-2)
    assert [m.phase(s) for s in range(5)] == ["pretrain_r", "pretrain_r", "pretrain_d", "adversarial", "adversarial"]
    r0, d0 = _params(m.refiner), _params(m.discriminator)
    logs = m.training_step(_batch(0), 0)
    assert set(logs) == {"R/reg", "R/loss", "history/size"}
    assert not _same(_params(m.refiner), r0) and _same(_params(m.discriminator), d0)
    m.training_step(_batch(1), 1)
    r1 = _params(m.refiner)
    logs = m.training_step(_batch(2), 2)  # discriminator pre-training: the refiner stays
    assert "D/loss" in logs and "R/adv" not in logs
    assert _same(_params(m.refiner), r1) and not _same(_params(m.discriminator), d0)
    logs = m.training_step(_batch(3), 3)
    assert {"R/adv", "R/reg", "D/loss", "D/acc_refined", "D/acc_synthetic"} <= set(logs)
    steps = {name: opt.state[next(iter(opt.param_groups[0]["params"]))]["step"] for name, opt in
             m._bound_optimizers.items()}
    assert float(steps["refiner"]) == 2 + 2 and float(steps["discriminator"]) == 1 + 1  # k_r = 2, k_d = 1


@pytest.mark.parametrize("k_r, k_d", [(1, 1), (3, 2)])
def test_k_updates_per_network_per_step(k_r, k_d):
    m = ReverseDA(ngf=4, n_blocks=1, pretrain_r=0, pretrain_d=0, k_r=k_r, k_d=k_d, history_size=0)
    m.training_step(_batch(0, k_r, k_d), 0)
    state = {n: o.state[next(iter(o.param_groups[0]["params"]))]["step"] for n, o in m._bound_optimizers.items()}
    assert (float(state["refiner"]), float(state["discriminator"])) == (k_r, k_d)
    with pytest.raises(SimrealError, match="mini-batches"):
        m.training_step(_batch(0, 1, 0), 0)


def test_history_buffer_fills_during_training_and_feeds_the_discriminator():
    m = ReverseDA(ngf=4, n_blocks=1, pretrain_r=0, pretrain_d=0, history_size=5)
    sizes = [float(m.training_step(_batch(s), s)["history/size"]) for s in range(4)]
    assert sizes == [2.0, 4.0, 5.0, 5.0]  # b/2 = 2 new refined images per discriminator update, capped at 5


def test_refiner_update_leaves_the_discriminator_without_gradients():
    m = ReverseDA(ngf=4, n_blocks=1, pretrain_r=0, pretrain_d=0)
    m.refiner_update(_batch(0)["real"][0] * 2 - 1)
    assert all(p.grad is None for p in m.discriminator.parameters())
    assert all(p.requires_grad for p in m.discriminator.parameters())  # restored after the update
    assert any(p.grad is not None for p in m.refiner.parameters())


def test_identity_refiner_stays_the_identity_through_self_regularisation_pretraining():
    torch.manual_seed(0)
    m = ReverseDA(ngf=8, n_blocks=2, identity_init=True, pretrain_r=3, pretrain_d=0, lr_r=1e-2)
    x = torch.rand(2, 3, 19, 23)
    assert torch.equal(m.refine(x), x)
    for s in range(3):  # |R(x) - x| = 0: the L1's gradient is 0, Adam moves nothing
        m.training_step(_batch(s), s)
    assert torch.equal(m.refine(x), x)


def test_sample_columns_and_bad_settings():
    m = ReverseDA(ngf=4, n_blocks=1)
    cols = m.sample({"real": torch.rand(2, 3, 8, 8), "synthetic": torch.rand(2, 3, 8, 8)})
    assert list(cols) == ["real", "refined", "difference x4", "synthetic"]
    assert all(c.shape == (2, 3, 8, 8) for c in cols.values())
    for bad, match in [({"k_r": 0}, "--k-r"), ({"psi": "edges"}, "--psi"), ({"lambda_reg": -1.0}, "--lambda-reg"),
                       ({"channels": 2}, "channels"), ({"norm": "group"}, "--norm")]:
        with pytest.raises(SimrealError, match=match):
            ReverseDAConfig(**bad)
        with pytest.raises(SimrealError, match=match):
            ReverseDA(**bad)
