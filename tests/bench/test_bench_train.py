"""Training benchmark returns coherent figures."""

import pytest

from simreal.bench.train import bench_train
from simreal.errors import SimrealError


@pytest.mark.parametrize("task, out_channels", [("depth", 1), ("seg", 2)])
def test_bench_train_times_the_network_it_names(task, out_channels):
    from simreal.nets.unet import UNet

    r = bench_train(task=task, size=16, batch_size=2, steps=1, warmup=1, channels=(4, 8))
    # the network timed is the task's U-Net (counted independently), at the size and batch asked for
    assert r.params == sum(p.numel() for p in UNet(out_channels=out_channels, channels=(4, 8)).parameters())
    assert (r.task, r.size, r.batch_size, r.steps) == (task, 16, 2, 1) and r.seconds_per_step > 0
    with pytest.raises(SimrealError):
        bench_train(task="pose", size=16)  # type: ignore[arg-type]


def test_bench_train_cli_bad_channels_is_one_error(monkeypatch, capsys):
    import sys

    from simreal.cli import main

    monkeypatch.setattr(sys, "argv", ["simreal", "bench", "train", "--channels", "a,b"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--channels" in err and "Traceback" not in err
