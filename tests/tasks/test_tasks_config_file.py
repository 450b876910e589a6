"""`simreal train ... --config FILE`: a run's own config.json reproduces it; typed options override a file."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from simreal_testing import run_cli



def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def _train(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    code, _, err = run_cli(monkeypatch, capsys, "train", *args)
    return code, err


def test_a_runs_own_config_reproduces_it(blob_dataset, tmp_path, monkeypatch, capsys):
    first = tmp_path / "first"
    code, err = _train(monkeypatch, capsys, "depth", "--data", str(blob_dataset), "--out", str(first), "--size", "32",
                       "--channels", "4,8", "--batch-size", "2", "--lr", "0.01", "--epochs", "2", "--schedule", "cosine",
                       "--augment", "--no-progress")
    assert code == 0, err
    again = tmp_path / "again"
    code, err = _train(monkeypatch, capsys, "depth", "--config", str(first / "config.json"), "--out", str(again), "--no-progress")
    assert code == 0, err
    a, b = _weights(first), _weights(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cfg_a, cfg_b = (json.loads((r / "config.json").read_text()) for r in (first, again))
    assert cfg_b.pop("out") == str(again) and cfg_a.pop("out") == str(first) and cfg_a == cfg_b


def test_typed_options_override_a_file_and_defaults_do_not(blob_dataset, tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "depth.yaml"
    cfg.write_text(
        f"data:\n  train: {blob_dataset}\n  size: [32, 32]\n  batch_size: 2\nmodel:\n  channels: [4, 8]\n"
        f"optim:\n  lr: 0.01\n  epochs: 1\n  schedule: cosine\nout: {tmp_path / 'from_file'}\n"
    )
    code, err = _train(monkeypatch, capsys, "depth", "--config", str(cfg), "--epochs", "2", "--no-progress")
    assert code == 0, err
    written = json.loads((tmp_path / "from_file" / "config.json").read_text())
    assert written["optim"]["epochs"] == 2                  # typed: overrides the file
    assert written["optim"]["lr"] == 0.01                   # not typed: the file's value, not the CLI default 1e-3
    assert written["optim"]["schedule"] == "cosine" and written["data"]["size"] == [32, 32]


def test_bad_config_files_are_one_line_errors(blob_dataset, tmp_path, monkeypatch, capsys):
    seg_cfg = tmp_path / "seg.json"
    seg_cfg.write_text(json.dumps({"task": "seg", "out": str(tmp_path / "r"), "data": {"train": str(blob_dataset)}}))
    code, err = _train(monkeypatch, capsys, "depth", "--config", str(seg_cfg))
    assert code == 2 and "simreal train seg" in err and "Traceback" not in err
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"data:\n  train: {blob_dataset}\noptim:\n  learning_rate: 0.1\nout: {tmp_path / 'r'}\n")
    code, err = _train(monkeypatch, capsys, "depth", "--config", str(typo))
    assert code == 2 and "unknown field 'learning_rate' in optim" in err and "typo.yaml" in err
    nothing = tmp_path / "empty.toml"
    nothing.write_text("")
    code, err = _train(monkeypatch, capsys, "depth", "--config", str(nothing))
    assert code == 2 and "names no run folder" in err
    assert not (tmp_path / "r").exists()

