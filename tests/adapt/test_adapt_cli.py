"""`simreal adapt reverse|apply` and `simreal bench adapt`: runs, resumes, one-line errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
from adapt_fixtures import write_images
from PIL import Image
from simreal_testing import run_cli

TINY_FLAGS = ["--size", "16", "--batch-size", "2", "--ngf", "4", "--blocks", "1", "--pretrain-r", "1", "--pretrain-d", "1",
              "--history", "4", "--checkpoint-every", "2", "--sample-every", "3", "--no-progress"]


def test_reverse_then_apply_through_the_cli(real_dir, synthetic_dir, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--real", str(real_dir), "--synthetic", str(synthetic_dir),
                           "--out", str(run), "--steps", "3", "--lambda-reg", "2.5", "--psi", "lowpass", "--identity-init",
                           "--workers", "1", *TINY_FLAGS)
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["reverse"]["lambda_reg"] == 2.5 and cfg["reverse"]["psi"] == "lowpass" and cfg["reverse"]["ngf"] == 4
    assert cfg["reverse"]["identity_init"] is True and cfg["engine"]["num_workers"] == 1
    assert cfg["data"]["size"] == [16, 16] and cfg["engine"]["steps"] == 3
    # the run's own config.json comes back with --config; a larger --steps extends the run
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--config", str(run / "config.json"), "--steps", "4", "--no-progress")
    assert code == 0, err
    import torch

    assert torch.load(run / "checkpoints/last.ckpt", weights_only=False)["simreal"]["iteration"] == 4
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "apply", "--model", str(run), "--in", str(real_dir), "--out",
                           str(tmp_path / "refined"), "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "refined" / "dataset.json").read_text())["domain"] == "refined"


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], err


def test_bad_input_is_one_line_and_exit_2(real_dir, synthetic_dir, tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--real", str(tmp_path / "empty"), "--synthetic",
                           str(synthetic_dir), "--out", str(tmp_path / "r1"), *TINY_FLAGS)
    _one_line_error(code, err, "empty", "no real images")
    assert not (tmp_path / "r1").exists()
    mixed = write_images(tmp_path / "mixed", n=1)
    Image.fromarray(np.zeros((4, 4), np.uint8), mode="L").save(mixed / "g.png")
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--real", str(mixed), "--synthetic", str(synthetic_dir),
                           "--out", str(tmp_path / "r2"), *TINY_FLAGS)
    _one_line_error(code, err, "mix grey and RGB")
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--synthetic", str(synthetic_dir), "--out", str(tmp_path / "r3"))
    _one_line_error(code, err, "--real is required")
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--real", str(real_dir), "--synthetic", str(synthetic_dir),
                           "--out", str(tmp_path / "r4"), *TINY_FLAGS, "--psi", "edges")
    _one_line_error(code, err, "reverse.psi: expected one of 'identity', 'grayscale', 'lowpass'")
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--real", str(real_dir), "--synthetic", str(synthetic_dir),
                           "--out", str(tmp_path / "r5"), *TINY_FLAGS, "--size", "big")
    _one_line_error(code, err, "--size")
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("reverse:\n  lambda: 1\n")
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "reverse", "--config", str(bad_cfg), "--real", str(real_dir),
                           "--synthetic", str(synthetic_dir), "--out", str(tmp_path / "r6"))
    _one_line_error(code, err, "bad.yaml", "unknown field 'lambda' in reverse")
    task = tmp_path / "task"
    task.mkdir()
    (task / "config.json").write_text(json.dumps({"task": "depth"}))
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "apply", "--model", str(task), "--in", str(real_dir), "--out", str(tmp_path / "o"))
    _one_line_error(code, err, "task training run")
    assert not (tmp_path / "o").exists()


def test_bench_adapt_cli_reports_both_loops(monkeypatch, capsys):
    from simreal.bench import adapt as bench

    seen = {}

    def fake(**kw):  # the measurement itself is tested in test_adapt_bench.py
        seen.update(kw)
        return bench.AdaptBench(device="cpu", size=kw["size"], batch_size=kw["batch_size"], ngf=kw["ngf"],
                                n_blocks=kw["n_blocks"], k_r=kw["k_r"], k_d=kw["k_d"], steps=kw["steps"], params=1000,
                                threads=2, plain_steps_per_s=2.0, engine_steps_per_s=1.9)

    monkeypatch.setattr(bench, "bench_adapt", fake)
    code, out, err = run_cli(monkeypatch, capsys, "bench", "adapt", "--size", "16", "--ngf", "4", "--k-r", "3")
    assert code == 0, err
    assert seen["size"] == 16 and seen["ngf"] == 4 and seen["k_r"] == 3 and seen["batch_size"] == 8
    assert "plain loop 2.000 steps/s" in out and "engine 1.900 steps/s" in out and "overhead +5.3%" in out
    monkeypatch.undo()
    code, _, err = run_cli(monkeypatch, capsys, "bench", "adapt", "--steps", "0")
    _one_line_error(code, err, "bad benchmark settings")
