"""Unpaired image sources: dataset and plain folders, deterministic draws by (seed, step), clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adapt_fixtures import write_images
from PIL import Image

from simreal.adapt.config import UnpairedDataConfig
from simreal.adapt.data import ArraySource, ImageSource, UnpairedBatches, crop_or_resize, open_unpaired
from simreal.errors import SimrealError


def _batches(real_dir, synthetic_dir, seed=0, **kw):
    return open_unpaired(UnpairedDataConfig(real=str(real_dir), synthetic=str(synthetic_dir), size=(12, 12), batch_size=3, **kw),
                         draws={"real": 3, "synthetic": 1}, seed=seed)


def test_a_step_gives_its_mini_batches_in_0_1(real_dir, synthetic_dir):
    b = _batches(real_dir, synthetic_dir)
    assert ImageSource(real_dir).kind == "folder" and ImageSource(synthetic_dir).kind == "dataset"
    batch = b[7]
    assert batch["real"].shape == (3, 3, 3, 12, 12) and batch["synthetic"].shape == (1, 3, 3, 12, 12)
    for x in batch.values():
        assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1


def test_draws_depend_only_on_seed_and_step(real_dir, synthetic_dir):
    a, b = _batches(real_dir, synthetic_dir), _batches(real_dir, synthetic_dir)
    _ = [a[k] for k in range(5)]  # history does not matter
    for k in (0, 5, 123):
        assert all(torch.equal(a[k][n], b[k][n]) for n in ("real", "synthetic"))
    assert not torch.equal(a[1]["real"], a[2]["real"])
    assert not torch.equal(a[1]["real"], _batches(real_dir, synthetic_dir, seed=1)[1]["real"])
    assert torch.equal(a.sample_batch(2)["real"], b.sample_batch(2)["real"])


def test_crops_are_windows_of_the_image_and_small_images_are_scaled_up():
    img = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    crop = crop_or_resize(img, (4, 5), "crop", (0.0, 0.99))
    assert torch.equal(crop, torch.from_numpy(img[:4, 7:12].transpose(2, 0, 1)).float() / 255)
    assert crop_or_resize(img, (4, 5), "crop", None).shape == (3, 4, 5)
    assert crop_or_resize(img, (16, 16), "crop", (0.5, 0.5)).shape == (3, 16, 16)  # smaller than the crop
    assert crop_or_resize(img, (6, 6), "resize", None).shape == (3, 6, 6)


def test_grey_folders_give_one_channel(tmp_path):
    grey = write_images(tmp_path / "g", n=2, mode="L")
    src = ImageSource(grey)
    assert src.channels == 1 and src.read(0).shape == (20, 24, 1)
    b = UnpairedBatches({"real": src, "synthetic": ArraySource(np.zeros((2, 30, 30, 1), np.uint8))},
                        batch_size=2, size=(8, 8), draws={"real": 1, "synthetic": 1}, seed=0)
    assert b[0]["real"].shape == (1, 2, 1, 8, 8) and b.channels == 1


def test_bad_folders_are_one_clear_error(tmp_path, real_dir, synthetic_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no real images") as e:
        ImageSource(tmp_path / "empty", what="real images")
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(SimrealError, match="not found"):
        ImageSource(tmp_path / "missing")
    mixed = write_images(tmp_path / "mixed", n=2)
    Image.fromarray(np.zeros((5, 5), np.uint8), mode="L").save(mixed / "grey.png")
    with pytest.raises(SimrealError, match=r"mix grey and RGB files \(grey.png is grey"):
        ImageSource(mixed)
    rgba = write_images(tmp_path / "rgba", n=1, mode="RGBA")
    with pytest.raises(SimrealError, match="alpha channel") as e:
        ImageSource(rgba)
    assert "0.png" in str(e.value)
    grey = write_images(tmp_path / "grey", n=2, mode="L")
    with pytest.raises(SimrealError, match="different channel counts"):
        _batches(grey, synthetic_dir)
    with pytest.raises(SimrealError, match="--size"):
        UnpairedDataConfig(real="a", synthetic="b", size=(4, 64))


def test_a_file_changed_after_opening_is_named_when_decoded(tmp_path):
    folder = write_images(tmp_path / "f", n=2)
    src = ImageSource(folder)
    Image.fromarray(np.zeros((5, 5), np.uint8), mode="L").save(folder / "1.png")
    with pytest.raises(SimrealError, match="is grey .* other images are RGB") as e:
        src.read(1)
    assert "1.png" in str(e.value)
