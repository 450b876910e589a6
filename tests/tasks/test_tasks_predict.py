"""Prediction: plain image folders of mixed sizes and modes, datasets (ids kept), bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tasks_blobs import TINY
from PIL import Image

from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError
from simreal.tasks.predict import predict
from simreal.tasks.train import train_from_kwargs


@pytest.fixture(scope="module")
def runs(blob_dataset, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {t: train_from_kwargs(t, blob_dataset, root / t, progress=False, epochs=1, **TINY) for t in ("depth", "seg")}


@pytest.fixture
def image_folder(tmp_path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(d / "a_rgb.png")
    Image.fromarray(rng.integers(0, 255, (41, 17, 4), dtype=np.uint8), mode="RGBA").save(d / "b_rgba.png")
    Image.fromarray(rng.integers(0, 255, (24, 50), dtype=np.uint8), mode="L").save(d / "c_grey.jpg")
    Image.fromarray(rng.integers(0, 255, (33, 33, 3), dtype=np.uint8)).save(d / "d.tiff")
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.mark.parametrize("task", ["depth", "seg"])
def test_predict_folder_keeps_each_input_size_and_source(runs, image_folder, tmp_path, task):
    out = predict(runs[task], image_folder, tmp_path / "pred", batch_size=3, progress=False)
    validate_dataset(out)
    r = DatasetReader(out)
    kind = "depth" if task == "depth" else "mask"
    assert r.info.image_size is None and r.info.files == ("image", kind)
    sizes = {"a_rgb.png": (20, 30), "b_rgba.png": (41, 17), "c_grey.jpg": (24, 50), "d.tiff": (33, 33)}
    assert [Path(rec.source).name for rec in r.records] == sorted(sizes)
    for i, rec in enumerate(r.records):
        assert Path(rec.source).is_file()
        pred = r.read(i, kind)
        assert pred.shape == sizes[Path(rec.source).name]
        if task == "depth":
            assert pred.dtype == np.float32 and (pred > 0).all()
        else:
            assert set(np.unique(pred)) <= {0, 1}


def test_predict_dataset_keeps_ids_and_groups(runs, blob_dataset, tmp_path):
    out = predict(runs["depth"], blob_dataset, tmp_path / "pred", progress=False)
    src, dst = DatasetReader(blob_dataset), DatasetReader(out)
    assert dst.ids == src.ids and [r.group for r in dst.records] == [r.group for r in src.records]
    assert dst.info.image_size == (32, 32)
    assert np.array_equal(dst.read(0, "image"), src.read(0, "image"))


def test_predict_bad_input_raises_and_leaves_nothing(runs, image_folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SimrealError, match="no images"):
        predict(runs["seg"], empty, tmp_path / "p1", progress=False)
    (image_folder / "e_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(SimrealError, match="e_corrupt.png"):
        predict(runs["seg"], image_folder, tmp_path / "p2", batch_size=2, progress=False)
    assert not (tmp_path / "p2").exists() and not (tmp_path / "p2.partial").exists()
    norun = tmp_path / "norun"
    norun.mkdir()
    (norun / "config.json").write_text((runs["seg"] / "config.json").read_text())
    with pytest.raises(SimrealError, match="no checkpoint"):
        predict(norun, image_folder, tmp_path / "p3", progress=False)
