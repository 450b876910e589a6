"""Plain image-folder import: RGB / RGBA / grey of any size, masks matched by stem, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from simreal.cli.dataset_import import app as import_app
from simreal.data.external.common import binarise_mask, list_images
from simreal.data.external.folder import import_folder
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError


def make_folder(tmp_path):
    src, masks = tmp_path / "img", tmp_path / "msk"
    src.mkdir()
    masks.mkdir()
    rgb = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
    Image.fromarray(rgb).save(src / "a.png")
    Image.fromarray(np.dstack([rgb, np.full((6, 5), 7, np.uint8)])).save(src / "b.png")  # RGBA
    grey = np.arange(4 * 9, dtype=np.uint8).reshape(4, 9)
    Image.fromarray(grey).save(src / "c10.png")
    Image.fromarray(grey).save(src / "c2.bmp")
    for name, shape in (("a", (6, 5)), ("b", (6, 5)), ("c10", (4, 9)), ("c2", (4, 9))):
        m = np.zeros(shape, np.uint8)
        m[1:3, 1:3] = 255
        Image.fromarray(m).save(masks / f"{name}.png")
    return src, masks, rgb, grey


def test_import_folder_round_trip(tmp_path):
    src, masks, rgb, grey = make_folder(tmp_path)
    out = import_folder(src, tmp_path / "ds", masks=masks)
    validate_dataset(out)
    ds = DatasetReader(out)
    assert ds.ids == ["a", "b", "c10", "c2"]  # ids are the stems; the writer orders them as strings
    assert ds.info.image_size is None  # sizes vary
    assert np.array_equal(ds.read(0, "image"), rgb)
    assert np.array_equal(ds.read(1, "image"), rgb)  # alpha dropped
    assert np.array_equal(ds.read(3, "image"), np.repeat(grey[..., None], 3, axis=2))
    assert ds.read(3, "mask").sum() == 4 and ds.read(3, "mask").max() == 1
    assert ds.records[0].source == str(src / "a.png") and ds.records[0].group is None
    resized = DatasetReader(import_folder(src, tmp_path / "ds8", size=8))
    assert resized.info.image_size == (8, 8) and resized.info.files == ("image",)


def test_folder_errors(tmp_path):
    src, masks, _, _ = make_folder(tmp_path)
    (masks / "zz.png").write_bytes((masks / "a.png").read_bytes())
    with pytest.raises(SimrealError, match="4 images but 5 masks; 1 masks have no image .first: zz"):
        import_folder(src, tmp_path / "o", masks=masks)
    (masks / "zz.png").unlink()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(masks / "a.png")
    with pytest.raises(SimrealError, match="mask is 3x3 but its image is 5x6"):
        import_folder(src, tmp_path / "o", masks=masks)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no images"):
        import_folder(tmp_path / "empty", tmp_path / "o")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(src / "a.jpg")
    with pytest.raises(SimrealError, match="two files share the name 'a'"):
        import_folder(src, tmp_path / "o")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


def test_list_images_natural_order(tmp_path):
    src, _, _, _ = make_folder(tmp_path)
    assert [p.name for p in list_images(src)] == ["a.png", "b.png", "c2.bmp", "c10.png"]


def test_binarise_mask():
    assert np.array_equal(binarise_mask(np.array([[0, 3, 250, 255]])), [[0, 0, 1, 1]])
    assert np.array_equal(binarise_mask(np.array([[0, 1]], np.uint8)), [[0, 1]])  # already 0/1: kept
    with pytest.raises(SimrealError, match="not a binary mask"):
        binarise_mask(np.array([[100, 150, 0, 255]]))


def test_binarise_mask_jpeg_noise_is_thresholded():
    noisy = np.array([[0, 1, 1, 0]], np.uint8)  # an all-background JPEG mask with compression noise
    assert np.array_equal(binarise_mask(noisy, path="m.jpg"), [[0, 0, 0, 0]])
    assert np.array_equal(binarise_mask(noisy, path="m.JPEG"), [[0, 0, 0, 0]])
    assert np.array_equal(binarise_mask(noisy, path="m.png"), [[0, 1, 1, 0]])  # lossless 0/1: kept
    assert np.array_equal(binarise_mask(noisy, path="m.tif"), [[0, 1, 1, 0]])
    # The mid-grey band is exclusive: 64 and 191 themselves are not ambiguous.
    assert np.array_equal(binarise_mask(np.array([[64, 191, 64, 191]])), [[0, 1, 0, 1]])


def test_cli_import_folder(tmp_path):
    src, masks, _, _ = make_folder(tmp_path)
    r = CliRunner().invoke(import_app, ["folder", str(src), "--out", str(tmp_path / "ds"), "--masks", str(masks), "--size", "4"])
    assert r.exit_code == 0, r.output
    assert "wrote 4 samples (4x4, files: image, mask)" in r.output
