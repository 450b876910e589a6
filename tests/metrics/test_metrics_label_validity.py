"""Label-validity audit: a translation that keeps the outlines scores high, one that shifts them low."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from simreal_testing import run_cli

from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.writer import DatasetWriter
from simreal.errors import SimrealError
from simreal.metrics.label_validity import LABEL_VALIDITY_METRICS, evaluate_label_validity, label_validity_row

CLASSES = {0: "background", 1: "liver", 2: "tool"}
#: Per-class colours of the "simulation" and of a "translation" that recolours every class.
SIM_COLOURS = np.array([[20, 20, 20], [170, 60, 50], [200, 200, 210]], np.uint8)
NEW_COLOURS = np.array([[60, 30, 40], [230, 140, 110], [120, 130, 150]], np.uint8)


def _scene(i: int, size: int = 48) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    mask = np.zeros((size, size), np.uint8)
    mask[(y - 20 - i) ** 2 + (x - 22) ** 2 < 12**2] = 1
    mask[30:40, 5 + 2 * i : 44] = 2
    return mask


def _write(root: Path, masks: list[np.ndarray], draw, *, ids: list[str] | None = None, classes=CLASSES) -> Path:
    info = DatasetInfo(modality="laparoscopy", domain="synthetic", image_size=masks[0].shape, files=("image", "mask"),
                       labels={"mask": LabelKind(classes=classes)}, generator={"name": "test"})
    writer = DatasetWriter(root, info)
    rng = np.random.default_rng(0)
    ids = ids or [f"{i:06d}" for i in range(len(masks))]
    for sid, mask in zip(ids, masks):
        image = draw(mask).astype(np.int16) + rng.integers(-6, 7, (*mask.shape, 3))
        writer.write(SampleRecord(id=sid, files={}, group=f"patient{int(sid[:6]) % 2}"),
                     {"image": np.clip(image, 0, 255).astype(np.uint8), "mask": mask})
    return writer.finish()


@pytest.fixture(scope="module")
def masks() -> list[np.ndarray]:
    return [_scene(i) for i in range(4)]


@pytest.fixture(scope="module")
def datasets(masks, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lv")
    return {
        "source": _write(root / "source", masks, lambda m: SIM_COLOURS[m]),
        "recoloured": _write(root / "recoloured", masks, lambda m: NEW_COLOURS[m]),
        "shifted": _write(root / "shifted", masks, lambda m: NEW_COLOURS[np.roll(m, (5, 6), axis=(0, 1))]),
    }


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "rows.csv") as f:
        return list(csv.DictReader(f))


def test_a_kept_translation_scores_high_and_a_shifted_one_low(datasets, tmp_path):
    kept = evaluate_label_validity(datasets["source"], datasets["recoloured"], tmp_path / "kept")
    moved = evaluate_label_validity(datasets["source"], datasets["shifted"], tmp_path / "moved")
    k, m = kept["metrics"], moved["metrics"]
    # (boundaries are ~15 % of these pixels, strong edges the top 10 %: a recall of 1 is out of reach)
    assert k["boundary_recall_translated"]["mean"] > 0.85 and m["boundary_recall_translated"]["mean"] < 0.4
    assert k["boundary_recall_kept"]["mean"] > 0.9 and m["boundary_recall_kept"]["mean"] < 0.4
    assert k["boundary_contrast_kept"]["mean"] > 0.9 and m["boundary_contrast_kept"]["mean"] < 0.5
    assert k["edge_f1"]["mean"] > 0.85 and m["edge_f1"]["mean"] < 0.4
    assert k["ssim_gray"]["mean"] > m["ssim_gray"]["mean"] + 0.2 and k["ms_ssim_gray"]["mean"] > m["ms_ssim_gray"]["mean"]
    assert kept["n"] == 4 and kept["n_groups"] == 2 and k["edge_f1"]["n_groups"] == 2
    rows = _rows(tmp_path / "kept")
    assert list(rows[0])[:4] == ["id", "group", "source_id", "style"] and rows[0]["source_id"] == "000000"
    assert set(LABEL_VALIDITY_METRICS) <= set(rows[0])
    summary = json.loads((tmp_path / "kept" / "summary.json").read_text())
    assert summary["task"] == "label-validity" and summary["settings"]["tolerance_px"] == 2.0


def test_an_identical_translation_keeps_everything(masks):
    image = SIM_COLOURS[masks[0]]
    row = label_validity_row(image, image, masks[0])
    assert row["ssim_gray"] == pytest.approx(1.0) and row["ms_ssim_gray"] == pytest.approx(1.0, abs=1e-5)
    assert row["boundary_recall_kept"] == 1.0 and row["boundary_contrast_kept"] == 1.0 and row["edge_f1"] == 1.0


def test_styled_ids_pair_with_their_source(datasets, masks, tmp_path):
    ids = [f"{i:06d}_s{k:02d}" for i in range(2) for k in range(2)]
    styled = _write(tmp_path / "styled", [masks[0], masks[0], masks[1], masks[1]], lambda m: NEW_COLOURS[m], ids=ids)
    evaluate_label_validity(datasets["source"], styled, tmp_path / "out")
    rows = _rows(tmp_path / "out")
    assert [(r["id"], r["source_id"], r["style"]) for r in rows] == [
        ("000000_s00", "000000", "0"), ("000000_s01", "000000", "1"), ("000001_s00", "000001", "0"), ("000001_s01", "000001", "1")]


def test_mismatched_datasets_are_refused_and_nothing_is_written(datasets, masks, tmp_path, monkeypatch, capsys):
    other = _write(tmp_path / "other", masks, lambda m: NEW_COLOURS[m], classes={0: "background", 1: "liver", 2: "fat"})
    with pytest.raises(SimrealError, match="mask classes differ"):
        evaluate_label_validity(datasets["source"], other, tmp_path / "o1")
    stray = _write(tmp_path / "stray", masks[:1], lambda m: NEW_COLOURS[m], ids=["000099"])
    with pytest.raises(SimrealError, match="translated sample '000099' has no source sample"):
        evaluate_label_validity(datasets["source"], stray, tmp_path / "o2")
    small = _write(tmp_path / "small", [m[:40, :40] for m in masks], lambda m: NEW_COLOURS[m])
    with pytest.raises(SimrealError, match="differs from its source"):
        evaluate_label_validity(datasets["source"], small, tmp_path / "o3")
    code, _, err = run_cli(monkeypatch, capsys, "eval", "label-validity", "--source", str(datasets["source"]), "--translated",
                           str(other), "--out", str(tmp_path / "o4"), "--no-progress")
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and "mask classes differ" in lines[0], err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_a_segmenter_scores_the_translations_through_the_cli(datasets, masks, tmp_path, monkeypatch, capsys):
    from simreal.tasks.train import train_from_kwargs

    binary = {0: "background", 1: "liver"}
    two = [np.where(m == 1, 1, 0).astype(np.uint8) for m in masks]
    src = _write(tmp_path / "src2", two, lambda m: SIM_COLOURS[m], classes=binary)
    trans = _write(tmp_path / "trans2", two, lambda m: NEW_COLOURS[m], classes=binary)
    run = train_from_kwargs("seg", src, tmp_path / "seg", progress=False, epochs=1, size=32, channels=(4, 8), batch_size=2,
                            lr=1e-2, val_fraction=0.0)
    code, out, err = run_cli(monkeypatch, capsys, "eval", "label-validity", "--source", str(src), "--translated", str(trans),
                             "--segmenter", str(run), "--out", str(tmp_path / "ev"), "--no-progress")
    assert code == 0, err
    rows = _rows(tmp_path / "ev")
    assert {"seg_dice_liver", "seg_dice_mean", "seg_iou_mean"} <= set(rows[0])
    assert all(0.0 <= float(r["seg_dice_liver"]) <= 1.0 for r in rows)
    assert "label-validity evaluation" in out
    code, _, err = run_cli(monkeypatch, capsys, "eval", "label-validity", "--source", str(datasets["source"]), "--translated",
                           str(datasets["recoloured"]), "--segmenter", str(run), "--out", str(tmp_path / "ev2"), "--no-progress")
    assert code == 2 and "the segmenter predicts 2 classes but the dataset's mask classes are [0, 1, 2]" in err, err
