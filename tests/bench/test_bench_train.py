"""Training benchmark returns coherent figures."""

import pytest

from simreal.bench.train import bench_train
from simreal.errors import SimrealError


@pytest.mark.parametrize("task", ["depth", "seg"])
def test_bench_train_tiny(task):
    r = bench_train(task=task, size=16, batch_size=2, steps=1, warmup=1, channels=(4, 8))
    assert r.params > 0 and r.seconds_per_step > 0
    assert r.images_per_second == pytest.approx(2 / r.seconds_per_step)
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
