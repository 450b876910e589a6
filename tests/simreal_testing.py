"""Helpers shared by tests in several folders (a uniquely named module: every folder may have its own
conftest.py, so ``from conftest import ...`` would find the wrong one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simreal.data.format import Camera, DatasetInfo, LabelKind, SampleRecord
from simreal.data.writer import DatasetWriter

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_tiny_dataset(root: Path, n: int = 3, size: tuple[int, int] = (8, 8), seed: int = 0) -> Path:
    """A tiny colonoscopy-like dataset: image, depth (mm), normals, mask {0, 1}, with cameras."""
    rng = np.random.default_rng(seed)
    h, w = size
    info = DatasetInfo(
        modality="colonoscopy",
        domain="synthetic",
        image_size=size,
        files=("image", "depth", "normals", "mask"),
        labels={
            "depth": LabelKind(unit="mm", description="z-depth"),
            "normals": LabelKind(description="camera frame"),
            "mask": LabelKind(classes={0: "background", 1: "polyp"}),
        },
        generator={"name": "test", "config": {"n": n}},
        seed=seed,
    )
    writer = DatasetWriter(root, info)
    for i in range(n):
        normals = np.zeros((h, w, 3), np.float32)
        normals[..., 2] = -1.0
        mask = np.zeros(size, np.uint8)
        mask[: h // 2, : w // 2] = 1
        cam = Camera(width=w, height=h, fx=4.0, fy=4.0, cx=(w - 1) / 2, cy=(h - 1) / 2, pose=tuple(map(tuple, np.eye(4))))
        writer.write(
            SampleRecord(id=f"{i:06d}", files={}, camera=cam, params={"i": i}, group=f"seq{i % 2}"),
            {
                "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                "depth": rng.uniform(5, 50, size).astype(np.float32),
                "normals": normals,
                "mask": mask,
            },
        )
    return writer.finish()




def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``simreal ARGS`` in this process through the console entry point; (exit code, stdout, stderr)."""
    import sys

    import pytest

    from simreal.cli import main

    monkeypatch.setattr(sys, "argv", ["simreal", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else int(code)), out.out, out.err


def run_simreal(*args: str):
    """Run ``simreal ARGS`` in a fresh Python process (what a user's shell does); the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "from simreal.cli import main; main()", *args], capture_output=True, text=True
    )


# -- adversarial runs (adapt, synth): interrupt a run, compare checkpoints -----------------------------------


def last_checkpoint(run: Path) -> dict:
    """The run's ``checkpoints/last.ckpt``, loaded on the CPU."""
    import torch

    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def assert_same(a, b, where: str = "") -> None:
    """Bit-identical nested checkpoint contents (tensors with torch.equal)."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def crash_at(step: int):
    """A Lightning callback that raises when an engine run reaches ``step`` (a simulated crash)."""
    import lightning as L

    class CrashAt(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if module.iteration == step:
                raise RuntimeError("simulated crash")

    return CrashAt()
