"""adapt translate (+ the forward CLI): labels byte for byte, K styles, style images, provenance, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from adapt_fixtures import tiny_config, write_images
from simreal_testing import run_cli, write_tiny_dataset
from test_adapt_cyclegan import cyclegan_config
from test_adapt_munit import munit_config

from simreal.adapt.cyclegan import train_cyclegan
from simreal.adapt.munit import train_munit
from simreal.adapt.reverse import train_reverse
from simreal.adapt.translate import load_translator, random_styles, style_ids, translate_dataset
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError


@pytest.fixture(scope="module")
def munit_run(real_dir, synthetic_dir, tmp_path_factory) -> Path:
    return train_munit(munit_config(real_dir, synthetic_dir, tmp_path_factory.mktemp("tm") / "run", steps=2, lr=1e-2),
                       progress=False)


@pytest.fixture(scope="module")
def cyclegan_run(real_dir, synthetic_dir, tmp_path_factory) -> Path:
    return train_cyclegan(cyclegan_config(real_dir, synthetic_dir, tmp_path_factory.mktemp("tc") / "run", steps=2),
                          progress=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Three 17x21 samples (not a multiple of 4: translators pad and crop back) with labels and groups."""
    return write_tiny_dataset(tmp_path_factory.mktemp("src") / "sim", n=3, size=(17, 21), seed=4)


def _same_records(a: DatasetReader, b: DatasetReader, ids: list[str]) -> None:
    by_id = {r.id: r for r in a.records}
    for rec, sid in zip(b.records, ids):
        ra = by_id[sid]
        assert (rec.group, rec.camera, rec.params) == (ra.group, ra.camera, ra.params)
        for kind in ("depth", "normals", "mask"):
            assert (b.root / rec.files[kind]).read_bytes() == (a.root / ra.files[kind]).read_bytes(), kind


def test_one_style_keeps_ids_labels_and_records_the_provenance(munit_run, source, tmp_path):
    out = translate_dataset(munit_run, source, tmp_path / "t1", seed=3, batch_size=2, device="cpu", progress=False)
    validate_dataset(out)
    a, b = DatasetReader(source), DatasetReader(out)
    assert b.ids == a.ids and b.info.domain == "translated" and b.info.files == a.info.files
    assert b.info.labels == a.info.labels and b.info.image_size == (17, 21)
    _same_records(a, b, a.ids)
    images = [b.read(i, "image") for i in range(3)]
    assert all(img.shape == (17, 21, 3) for img in images)
    assert any(not np.array_equal(x, a.read(i, "image")) for i, x in enumerate(images))
    gen = b.info.generator
    ckpt = munit_run / "checkpoints" / "last.ckpt"
    assert gen["name"] == "simreal adapt translate" and gen["method"] == "munit" and gen["step"] == 2
    assert gen["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest() and gen["model"] == str(munit_run.resolve())
    assert gen["input"] == str(source.resolve()) and gen["input_generator"] == a.info.generator and gen["method_config"]["dim"] == 4
    styles = gen["styles"]
    assert styles["source"] == "random" and styles["k"] == 1 and styles["seed"] == 3
    assert styles["styles"][0]["seed"] == [3, 0] and styles["styles"][0]["code"] == list(random_styles(1, 8, 3)[0].code)
    again = translate_dataset(munit_run, source, tmp_path / "t1b", seed=3, device="cpu", progress=False)
    for i in range(3):  # same seed, same bytes (batching does not matter either)
        assert (again / b.records[i].files["image"]).read_bytes() == (out / b.records[i].files["image"]).read_bytes()


def test_k_styles_give_suffixed_ids_with_their_own_label_copies(munit_run, source, tmp_path):
    out = translate_dataset(munit_run, source, tmp_path / "t3", styles=3, device="cpu", progress=False)
    validate_dataset(out)  # every label file named once: each style has its own copy
    a, b = DatasetReader(source), DatasetReader(out)
    assert b.ids == [f"{sid}_s{k:02d}" for sid in a.ids for k in range(3)]
    _same_records(a, b, [sid for sid in a.ids for _ in range(3)])
    assert b.records[0].files["mask"] == "mask/000000_s00.png"
    x = [b.read(i, "image").astype(int) for i in range(3)]  # one input, three styles
    assert not np.array_equal(x[0], x[1]) and not np.array_equal(x[1], x[2])
    assert [s["seed"] for s in b.info.generator["styles"]["styles"]] == [[0, 0], [0, 1], [0, 2]]
    assert style_ids("a", 1) == ["a"] and style_ids("a", 101)[-1] == "a_s100"


def test_styles_from_real_images_are_recorded_with_their_files(munit_run, source, real_dir, tmp_path):
    out = translate_dataset(munit_run, source, tmp_path / "ts", styles=2, style_from=real_dir, seed=1, device="cpu", progress=False)
    styles = DatasetReader(out).info.generator["styles"]
    assert styles["source"] == "images" and styles["folder"] == str(real_dir.resolve())
    for s in styles["styles"]:
        image = Path(s["image"])
        assert image.parent == real_dir.resolve() and s["image_sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
        assert len(s["code"]) == 8
    assert styles["styles"][0]["image"] != styles["styles"][1]["image"]
    with pytest.raises(SimrealError, match="--styles 9 needs 9 style images but the folder holds 5"):
        translate_dataset(munit_run, source, tmp_path / "no", styles=9, style_from=real_dir, device="cpu", progress=False)
    grey = write_images(tmp_path / "grey", n=2, mode="L")
    with pytest.raises(SimrealError, match="real domain is RGB but these style images are grey"):
        translate_dataset(munit_run, source, tmp_path / "no2", style_from=grey, device="cpu", progress=False)
    assert not (tmp_path / "no").exists() and not (tmp_path / "no.partial").exists()


def test_cyclegan_translates_deterministically_and_refuses_styles(cyclegan_run, source, tmp_path):
    out = translate_dataset(cyclegan_run, source, tmp_path / "c1", device="cpu", progress=False)
    b = DatasetReader(out)
    assert b.ids == DatasetReader(source).ids and b.info.generator["styles"]["source"] == "none"
    assert load_translator(cyclegan_run).style_dim == 0
    with pytest.raises(SimrealError, match="deterministic: use --styles 1"):
        translate_dataset(cyclegan_run, source, tmp_path / "c2", styles=2, device="cpu", progress=False)


def test_bad_translate_input_is_refused_and_nothing_is_written(munit_run, real_dir, synthetic_dir, source, tmp_path):
    grey = write_images(tmp_path / "grey", n=2, mode="L")
    with pytest.raises(SimrealError, match="the model translates RGB images but these are grey"):
        translate_dataset(munit_run, grey, tmp_path / "o1", device="cpu", progress=False)
    refiner = train_reverse(tiny_config(real_dir, synthetic_dir, tmp_path / "rev", steps=1, checkpoint_every=1, sample_every=1),
                            progress=False)
    with pytest.raises(SimrealError, match="'reverse' run; adapt translate uses munit, cyclegan runs .refiners are applied with simreal adapt apply"):
        translate_dataset(refiner, source, tmp_path / "o2", device="cpu", progress=False)
    with pytest.raises(SimrealError, match="--styles must be >= 1"):
        translate_dataset(munit_run, source, tmp_path / "o3", styles=0, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no images"):
        translate_dataset(munit_run, tmp_path / "empty", tmp_path / "o4", device="cpu", progress=False)
    assert not any((tmp_path / f"o{i}").exists() or (tmp_path / f"o{i}.partial").exists() for i in range(1, 5))
    folder = write_images(tmp_path / "imgs", n=2, size=(13, 30))  # a plain folder of another size works
    r = DatasetReader(translate_dataset(munit_run, folder, tmp_path / "ok", device="cpu", progress=False))
    assert r.ids == ["0", "1"] and r.read(0, "image").shape == (13, 30, 3) and r.info.files == ("image",)


# -- the CLI -----------------------------------------------------------------------------------------------

FORWARD_FLAGS = ["--size", "16", "--batch-size", "2", "--dim", "4", "--n-res", "1", "--d-dim", "4", "--d-layers", "2",
                 "--checkpoint-every", "2", "--sample-every", "2", "--no-progress"]


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], err


def test_forward_and_translate_through_the_cli(real_dir, synthetic_dir, source, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "forward", "--method", "munit", "--synthetic", str(synthetic_dir),
                           "--real", str(real_dir), "--out", str(run), "--steps", "2", "--d-scales", "2", "--mlp-dim", "8",
                           "--ms-ssim-a-w", "7", *FORWARD_FLAGS)
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["method"] == "munit" and cfg["munit"]["ms_ssim_a_w"] == 7.0 and cfg["munit"]["dim"] == 4
    assert cfg["data"]["batch_size"] == 2 and cfg["engine"]["steps"] == 2
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "forward", "--config", str(run / "config.json"), "--steps", "3", "--no-progress")
    assert code == 0, err  # the run's own config resumes and extends it
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "translate", "--model", str(run), "--in", str(source), "--out",
                           str(tmp_path / "tr"), "--styles", "2", "--seed", "5", "--device", "cpu", "--no-progress")
    assert code == 0, err
    info = json.loads((tmp_path / "tr" / "dataset.json").read_text())
    assert info["domain"] == "translated" and info["n_samples"] == 6 and info["generator"]["step"] == 3
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "forward", "--method", "cyclegan", "--synthetic", str(synthetic_dir),
                           "--real", str(real_dir), "--out", str(tmp_path / "cyc"), "--steps", "1", "--pool", "2", *FORWARD_FLAGS)
    assert code == 0, err
    cfg = json.loads((tmp_path / "cyc" / "config.json").read_text())
    assert cfg["cyclegan"]["ngf"] == 4 and cfg["cyclegan"]["n_blocks"] == 1 and cfg["cyclegan"]["pool_size"] == 2


def test_bad_forward_input_is_one_line_and_exit_2(real_dir, synthetic_dir, tmp_path, monkeypatch, capsys):
    base = ["adapt", "forward", "--synthetic", str(synthetic_dir), "--real", str(real_dir)]
    code, _, err = run_cli(monkeypatch, capsys, *base, "--method", "pix2pix", "--out", str(tmp_path / "r1"))
    _one_line_error(code, err, "--method must be one of munit, cyclegan, got 'pix2pix'")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "forward", "--method", "munit", "--synthetic", str(synthetic_dir),
                           "--real", str(tmp_path / "empty"), "--out", str(tmp_path / "r2"), *FORWARD_FLAGS)
    _one_line_error(code, err, "empty", "no real images")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--method", "cyclegan", "--out", str(tmp_path / "r3"), "--style-dim", "4")
    _one_line_error(code, err, "--style-dim is a munit flag")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--out", str(tmp_path / "r4"))
    _one_line_error(code, err, "--method is required")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--method", "munit", "--out", str(tmp_path / "r5"), "--size", "16", "--no-progress")
    _one_line_error(code, err, "too small for MUNIT")
    code, _, err = run_cli(monkeypatch, capsys, "adapt", "translate", "--model", str(tmp_path / "none"), "--in", str(real_dir),
                           "--out", str(tmp_path / "o"))
    _one_line_error(code, err, "model run folder not found")
    assert not any((tmp_path / f"r{i}").exists() for i in range(1, 6)) and not (tmp_path / "o").exists()
