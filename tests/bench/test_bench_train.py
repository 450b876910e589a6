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


def test_bench_train_processes_times_the_trainer_with_each_process_count():
    from simreal.bench.train import bench_train_processes

    (r,) = bench_train_processes(processes=(1,), size=16, batch_size=2, steps=2, warmup=1, channels=(4, 8))
    assert (r.processes, r.batch_size, r.steps, r.accelerator) == (1, 2, 2, "cpu")
    assert r.seconds_per_step > 0 and r.images_per_second == pytest.approx(2 / r.seconds_per_step)
    with pytest.raises(SimrealError, match="batch-size 3 cannot be shared by 2 processes"):
        bench_train_processes(processes=(1, 2), batch_size=3)


@pytest.mark.slow
def test_bench_train_processes_with_two_gloo_processes():
    from simreal.bench.train import bench_train_processes

    one, two = bench_train_processes(processes=(1, 2), size=32, batch_size=4, steps=3, warmup=1, channels=(4, 8))
    assert (one.processes, two.processes) == (1, 2) and two.images_per_second > 0


def test_bench_train_cli_bad_devices_is_one_error(monkeypatch, capsys):
    from simreal_testing import run_cli

    code, _, err = run_cli(monkeypatch, capsys, "bench", "train", "--devices", "1,two")
    assert code == 2 and "--devices must be comma-separated" in err and "Traceback" not in err
