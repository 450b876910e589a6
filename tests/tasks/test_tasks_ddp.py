"""Task training in 2 CPU processes (gloo): the same run as one process, exact resume, rank-0 writes, refusals.

In-process runs use ``strategy="ddp_spawn"`` (``"ddp"`` re-runs the command line, so it is tested through the
``simreal`` command). Each DDP run starts two interpreters: a few seconds of imports on an idle machine.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from tasks_blobs import TINY

from simreal.errors import SimrealError
from simreal.tasks.config import make_config
from simreal.tasks.data import EpochSampler, contiguous_shard, shard_batches
from simreal.tasks.distributed import check_devices
from simreal.tasks.train import train, train_from_kwargs

#: 6 training images (3 global batches of 2: one image per process and step), 2 validation images; instance
#: norm, because BatchNorm statistics are per process (SyncBatchNorm is GPU-only); flips and the cosine
#: schedule on, to cover their sharding too.
RECIPE = dict(**{**TINY, "norm": "instance"}, epochs=2, augment=True, schedule="cosine", accelerator="cpu")
TWO = dict(devices="2", strategy="ddp_spawn")

#: 1 vs 2 processes: same images per step, gradients averaged in another order (measured: max weight
#: difference 2e-6 after 6 steps at lr 1e-2).
ATOL = 1e-4


class CrashAtEpoch(L.Callback):
    """Module level: ddp_spawn pickles the callbacks into its processes."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def _state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _val(run: Path) -> list[tuple[int, float, float]]:
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return [(int(r["epoch"]), float(r["val/loss"]), float(r["val/abs_rel_median"])) for r in rows if r.get("val/abs_rel_median")]


@pytest.fixture(scope="module")
def runs(blob_dataset, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    one = train_from_kwargs("depth", blob_dataset, root / "one", progress=False, devices="1", **RECIPE)
    two = train_from_kwargs("depth", blob_dataset, root / "two", progress=False, **TWO, **RECIPE)
    return one, two


def test_two_processes_learn_what_one_learns(runs):
    one, two = runs
    a, b = _state(one), _state(two)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=ATOL, rtol=0), k
    va, vb = _val(one), _val(two)
    assert [e for e, *_ in va] == [e for e, *_ in vb] == [0, 1]
    for (_, la, ma), (_, lb, mb) in zip(va, vb):  # validation figures reduced over both processes' images
        assert lb == pytest.approx(la, rel=1e-3) and mb == pytest.approx(ma, rel=1e-3)
    ckpt = torch.load(two / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 6 and ckpt["simreal"]["config"]["strategy"] == "ddp_spawn"
    # only rank 0 wrote: one event file, one log, no temporary files left behind
    assert len(list((two / "tb").glob("events.out.tfevents.*"))) == 1
    assert not [p for p in two.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert sorted(p.name for p in (two / "samples").glob("*.png")) == ["val_epoch0000.png", "val_epoch0001.png"]


def test_an_interrupted_ddp_run_resumes_to_the_same_weights(runs, blob_dataset, tmp_path):
    _, two = runs
    cfg = make_config("depth", blob_dataset, tmp_path / "cut", **TWO, **RECIPE)
    with pytest.raises(Exception, match="simulated crash"):  # raised in the spawned processes
        train(cfg, progress=False, callbacks=[CrashAtEpoch(1)])
    assert torch.load(tmp_path / "cut/checkpoints/last.ckpt", weights_only=False)["epoch"] == 0
    resumed = train(cfg, progress=False)
    a, b = _state(two), _state(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _val(resumed) == _val(two)  # the log keeps epoch 0 once and adds epoch 1


def test_shards_of_two_processes_make_up_the_batches_of_one():
    order = list(EpochSampler(7, seed=3))
    ranks = [list(EpochSampler(7, seed=3, batch_size=4, rank=r, world_size=2)) for r in (0, 1)]
    # global batch 1 = order[0:4] (2 per rank), batch 2 = order[4:7] padded with order[0] (2 per rank)
    assert ranks[0] == order[0:2] + order[4:6] and ranks[1] == order[2:4] + [order[6], order[0]]
    assert len(EpochSampler(7, seed=3, batch_size=4, rank=1, world_size=2)) == 4
    assert shard_batches(order, 4, 0, 1) == order  # one process: the order itself
    blocks = [contiguous_shard(5, r, 2) for r in (0, 1)]
    assert blocks == [[0, 1, 2], [3, 4]]  # validation: every image once, rank 0 first
    with pytest.raises(SimrealError, match="cannot shard"):
        EpochSampler(8, 0, batch_size=3, rank=0, world_size=2)


@pytest.mark.parametrize("kw, match", [
    (dict(strategy="fsdp"), "--strategy must be one of auto, ddp, ddp_spawn"),
    (dict(num_nodes=0), "--num-nodes must be an integer >= 1"),
    (dict(devices="two"), "--devices must be auto"),
    (dict(devices="0,x"), "--devices must be auto"),
    (dict(num_nodes=2, strategy="ddp_spawn"), "needs --strategy ddp"),
])
def test_bad_distributed_options_are_refused(kw, match):
    with pytest.raises(SimrealError, match=match):
        make_config("depth", "ds", "run", **kw)
    assert make_config("depth", "ds", "run", devices="0,1", strategy="ddp").identity() == make_config("depth", "ds", "run").identity()


def test_gpus_the_machine_lacks_and_unshareable_batches_are_refused(blob_dataset, tmp_path, monkeypatch):
    with pytest.raises(SimrealError, match="batch-size 3 cannot be shared by 2 processes"):
        train_from_kwargs("depth", blob_dataset, tmp_path / "r", progress=False, **{**RECIPE, "batch_size": 3}, **TWO)
    assert not (tmp_path / "r").exists()  # refused before anything was written
    if not torch.cuda.is_available():
        with pytest.raises(SimrealError, match="this machine has no GPU"):
            train_from_kwargs("depth", blob_dataset, tmp_path / "g", progress=False, **{**RECIPE, "accelerator": "gpu"})
        assert not (tmp_path / "g").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SimrealError, match="--devices 2: this machine has 1 GPU"):
        check_devices("gpu", "2")
    with pytest.raises(SimrealError, match="--devices 0,1: this machine has 1 GPU"):
        check_devices("auto", "0,1")
    check_devices("cpu", "2")  # CPU processes: any number


@pytest.mark.slow  # three fresh interpreters: the command, its rank 1, the refused command
def test_cli_ddp_runs_two_processes_that_write_once(blob_dataset, tmp_path):
    exe = Path(sys.executable).with_name("simreal")  # "ddp" re-runs this command line in rank 1
    run = tmp_path / "run"
    args = [str(exe), "train", "depth", "--data", str(blob_dataset), "--out", str(run), "--devices", "2", "--accelerator",
            "cpu", "--strategy", "ddp", "--epochs", "1", "--size", "32", "--channels", "4,8", "--batch-size", "2",
            "--norm", "instance"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Starting with 2 processes" in done.stderr + done.stdout and done.stderr.count("run folder:") == 1
    assert (run / "checkpoints" / "last.ckpt").is_file() and len(list((run / "tb").glob("events.out.tfevents.*"))) == 1
    assert len(_val(run)) == 1
    bad = subprocess.run([*args, "--strategy", "horovod"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--strategy must be one of" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_ddp_process_learns_what_a_plain_gpu_run_learns(blob_dataset, tmp_path):
    """The GPU check: DDP over NCCL (one process per GPU there is, at most 2) against a plain one-GPU run."""
    n = min(2, torch.cuda.device_count())
    gpu = {**RECIPE, "accelerator": "gpu"}
    one = train_from_kwargs("depth", blob_dataset, tmp_path / "one", progress=False, devices="1", **gpu)
    many = train_from_kwargs("depth", blob_dataset, tmp_path / "many", progress=False, devices=str(n),
                             strategy="ddp_spawn", **gpu)
    a, b = _state(one), _state(many)
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=ATOL, rtol=0), k
    from simreal.bench.train import bench_train_processes

    (r,) = bench_train_processes(processes=(1,), accelerator="gpu", size=64, batch_size=8, steps=5)
    assert r.images_per_second > 0
