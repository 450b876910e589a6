"""adapt apply: refined images, labels byte for byte, any image size, provenance, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from adapt_fixtures import tiny_config, write_images
from PIL import Image
from simreal_testing import write_tiny_dataset

from simreal.adapt.apply import apply_refiner, load_refiner
from simreal.adapt.reverse import train_reverse
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError


@pytest.fixture(scope="module")
def trained(real_dir, synthetic_dir, tmp_path_factory) -> Path:
    """A briefly trained (not identity) refiner."""
    return train_reverse(tiny_config(real_dir, synthetic_dir, tmp_path_factory.mktemp("a") / "run", steps=6,
                                     checkpoint_every=6, sample_every=6, lr_r=1e-2), progress=False)


@pytest.fixture(scope="module")
def identity(real_dir, synthetic_dir, tmp_path_factory) -> Path:
    """An identity-initialised refiner after self-regularisation pre-training only: still the identity."""
    return train_reverse(tiny_config(real_dir, synthetic_dir, tmp_path_factory.mktemp("i") / "run", steps=2,
                                     checkpoint_every=2, sample_every=2, identity_init=True), progress=False)


def test_labels_and_metadata_are_carried_over_byte_for_byte(trained, tmp_path):
    src = write_tiny_dataset(tmp_path / "src", n=3, size=(16, 20), seed=4)
    out = apply_refiner(trained, src, tmp_path / "out", batch_size=2, device="cpu", progress=False)
    validate_dataset(out)
    a, b = DatasetReader(src), DatasetReader(out)
    assert b.info.domain == "refined" and b.info.files == a.info.files and b.info.image_size == (16, 20)
    assert b.info.labels == a.info.labels and b.info.modality == a.info.modality and b.info.seed == a.info.seed
    for ra, rb in zip(a.records, b.records):
        assert (rb.id, rb.group, rb.camera, rb.params) == (ra.id, ra.group, ra.camera, ra.params)
        for kind in ("depth", "normals", "mask"):
            assert (out / rb.files[kind]).read_bytes() == (src / ra.files[kind]).read_bytes(), kind
    refined = [b.read(i, "image") for i in range(len(b))]
    originals = [a.read(i, "image") for i in range(len(a))]
    assert any(not np.array_equal(x, y) for x, y in zip(refined, originals))  # the images did change
    gen = b.info.generator
    ckpt = trained / "checkpoints" / "last.ckpt"
    assert gen["method"] == "reverse" and gen["step"] == 6 and gen["model"] == str(trained.resolve())
    assert gen["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert gen["input"] == str(src.resolve()) and gen["input_generator"] == a.info.generator
    assert gen["method_config"]["ngf"] == 8


def test_any_image_size_and_plain_folders(trained, tmp_path):
    folder = write_images(tmp_path / "imgs", n=2, size=(16, 16))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (23, 37, 3), dtype=np.uint8)).save(folder / "big.png")
    out = apply_refiner(trained, folder, tmp_path / "out", batch_size=4, device="cpu", progress=False)
    r = DatasetReader(out)
    assert r.info.image_size is None and r.info.files == ("image",)
    sizes = {rec.id: r.read(i, "image").shape for i, rec in enumerate(r.records)}
    assert sizes == {"0": (16, 16, 3), "1": (16, 16, 3), "big": (23, 37, 3)}
    assert r.records[0].source == str(folder / "0.png")
    one = apply_refiner(trained, folder, tmp_path / "one", batch_size=1, device="cpu", progress=False)
    for i in range(3):  # batching does not change a pixel
        assert np.array_equal(DatasetReader(one).read(i, "image"), r.read(i, "image"))


def test_identity_refiner_leaves_images_unchanged(identity, tmp_path):
    src = write_tiny_dataset(tmp_path / "src", n=2, size=(17, 21), seed=5)
    out = apply_refiner(identity, src, tmp_path / "out", device="cpu", progress=False)
    a, b = DatasetReader(src), DatasetReader(out)
    for i in range(2):
        diff = np.abs(a.read(i, "image").astype(int) - b.read(i, "image").astype(int))
        assert diff.max() <= 1  # within 1/255 (in fact exact)
    assert load_refiner(identity).step == 2


def test_bad_inputs_are_refused_and_nothing_is_written(trained, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no images"):
        apply_refiner(trained, tmp_path / "empty", tmp_path / "o1", progress=False)
    mixed = write_images(tmp_path / "mixed", n=1)
    Image.fromarray(np.zeros((4, 4), np.uint8), mode="L").save(mixed / "g.png")
    with pytest.raises(SimrealError, match="mix grey and RGB"):
        apply_refiner(trained, mixed, tmp_path / "o2", progress=False)
    grey = write_images(tmp_path / "grey", n=1, mode="L")
    with pytest.raises(SimrealError, match="refines RGB images but these are grey"):
        apply_refiner(trained, grey, tmp_path / "o3", progress=False)
    task = tmp_path / "taskrun"
    (task / "checkpoints").mkdir(parents=True)
    (task / "config.json").write_text(json.dumps({"task": "seg", "out": str(task)}))
    with pytest.raises(SimrealError, match="'seg' task training run"):
        apply_refiner(task, mixed, tmp_path / "o4", progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"method": "munit", "out": str(other)}))
    with pytest.raises(SimrealError, match="'munit' run; adapt apply refines with reverse runs"):
        apply_refiner(other, mixed, tmp_path / "o5", progress=False)
    with pytest.raises(SimrealError, match="not found"):
        apply_refiner(tmp_path / "nope", mixed, tmp_path / "o6", progress=False)
    assert not any((tmp_path / f"o{i}").exists() or (tmp_path / f"o{i}.partial").exists() for i in range(1, 7))
    ok = write_images(tmp_path / "ok", n=1)
    apply_refiner(trained, ok, tmp_path / "done", progress=False)
    with pytest.raises(SimrealError, match="already exists"):
        apply_refiner(trained, ok, tmp_path / "done", progress=False)
