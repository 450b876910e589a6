"""U-Net: shapes at odd sizes, encoder freezing, argument checks."""

import pytest
import torch

from simreal.errors import SimrealError
from simreal.nets.unet import UNet, count_parameters


@pytest.mark.parametrize("hw", [(32, 32), (33, 47), (8, 12)])
def test_unet_output_shape_matches_input(hw):
    net = UNet(out_channels=3, channels=(4, 8, 16))
    assert net(torch.zeros(2, 3, *hw)).shape == (2, 3, *hw)


def test_freeze_encoder_keeps_weights_and_batchnorm_statistics():
    torch.manual_seed(0)
    net = UNet(out_channels=1, channels=(4, 8))
    net.freeze_encoder()
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    dec_before = {k: v.clone() for k, v in net.decoder.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net.train()
    for _ in range(2):
        opt.zero_grad()
        net(torch.rand(2, 3, 16, 16)).square().mean().backward()
        opt.step()
    assert not net.encoder.training and net.decoder.training
    for k, v in net.encoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, dec_before[k]) for k, v in net.decoder.state_dict().items())
    assert count_parameters(net, trainable_only=True) < count_parameters(net)


def test_unet_rejects_bad_arguments_and_inputs():
    with pytest.raises(SimrealError):
        UNet(channels=(8,))
    with pytest.raises(SimrealError):
        UNet(norm="weird")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match=r"\(B, 3, H, W\)"):
        UNet(channels=(4, 8))(torch.zeros(1, 1, 8, 8))
