"""`simreal experiment sim2real-laparoscopy --scale smoke`: the laparoscopy pipeline end to end on the two P2ILF
frames (render, CycleGAN and MUNIT, translated sets with labels copied byte for byte, label-validity audit,
zero-label segmenters, the real frames segmented); a rerun reuses every stage. Plus the user's own frames
(``--real-images``) and the errors around them."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simreal_testing import SHARED_DATA
from simreal_testing import run_simreal as simreal

P2ILF = SHARED_DATA / "p2ilf_laparoscopic_liver"
needs_p2ilf = pytest.mark.skipif(not P2ILF.is_dir(), reason="needs ../shared/data/p2ilf_laparoscopic_liver beside the checkout")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not P2ILF.is_dir():
        pytest.skip("needs ../shared/data/p2ilf_laparoscopic_liver beside the checkout")
    out = tmp_path_factory.mktemp("lap") / "smoke"
    done = simreal("experiment", "sim2real-laparoscopy", "--scale", "smoke", "--out", str(out), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@needs_p2ilf
def test_smoke_runs_end_to_end_on_the_p2ilf_frames(smoke_run: Path) -> None:
    from simreal.data.reader import DatasetReader
    from simreal.experiments.sim2real_laparoscopy import LAP_PRESETS, P2ILF_FRAMES

    r = json.loads((smoke_run / "results.json").read_text())
    assert r["name"] == "sim2real-laparoscopy" and r["scale"] == "smoke"
    assert r["metrics"]["n_real_frames"] == 2
    real = DatasetReader(smoke_run / "data" / "real_frames")
    assert sorted(real.ids) == sorted(Path(f).stem for f in P2ILF_FRAMES)  # never the contour label image
    h, w = real.read(0, "image").shape[:2]
    assert h == LAP_PRESETS["smoke"].real_height and w > h  # 16:9 frames keep their aspect
    train, val = DatasetReader(smoke_run / "data" / "synth_train"), DatasetReader(smoke_run / "data" / "synth_val")
    assert {rec.group for rec in train.records}.isdisjoint({rec.group for rec in val.records})  # split by liver mesh
    assert r["tables"][0]["rows"] and r["tables"][0]["rows"][0]["n_frames"] > 0
    assert any("No real frame has a pixel-wise label" in n for n in r["notes"])
    page = (smoke_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(r["figures"]) == 2
    for name in ("synthetic", "cyclegan", "munit"):  # every network segmented every real frame
        assert len(DatasetReader(smoke_run / "predictions" / f"real_{name}")) == 2


@needs_p2ilf
def test_translated_labels_are_the_sources_byte_for_byte(smoke_run: Path) -> None:
    from simreal.data.reader import DatasetReader

    data = smoke_run / "data"
    for method in ("cyclegan", "munit"):
        src, trans = DatasetReader(data / "synth_val"), DatasetReader(data / f"{method}_val")
        for rec in trans.records:
            source_id = rec.id.rsplit("_s", 1)[0] if method == "munit" else rec.id
            assert filecmp.cmp(trans.path(trans.ids.index(rec.id), "mask"), src.path(src.ids.index(source_id), "mask"), shallow=False)


@needs_p2ilf
def test_rerun_reuses_every_stage(smoke_run: Path) -> None:
    before = (smoke_run / "results.json").read_text()
    done = simreal("experiment", "sim2real-laparoscopy", "--scale", "smoke", "--out", str(smoke_run), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-3000:]
    timings = json.loads((smoke_run / "results.json").read_text())["timings"]
    assert all(v == "reused" for k, v in timings.items() if not k.startswith("total"))
    assert json.loads(before)["metrics"] == json.loads((smoke_run / "results.json").read_text())["metrics"]


def test_user_frames_are_imported_at_one_size_with_their_aspect(tmp_path: Path) -> None:
    from simreal.data.reader import DatasetReader
    from simreal.experiments.sim2real_laparoscopy import import_real_frames, real_frame_files

    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(((320, 180), (300, 170), (320, 180))):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(frames / f"f{i}.jpg")
    files = real_frame_files(frames, None)
    assert [f.name for f in files] == ["f0.jpg", "f1.jpg", "f2.jpg"]
    (tmp_path / "data").mkdir()
    ds = DatasetReader(import_real_frames(files, tmp_path / "data" / "real", 36))
    assert len(ds) == 3 and {ds.read(i, "image").shape for i in range(3)} == {(36, 64, 3)}


def test_empty_real_folder_and_wrong_experiment_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = simreal("experiment", "sim2real-laparoscopy", "--scale", "smoke", "--out", str(tmp_path / "o"), "--real-images", str(empty))
    assert done.returncode != 0 and "no real laparoscopic frames" in done.stderr and str(empty) in done.stderr
    assert not (tmp_path / "o" / "results.json").exists()
    done = simreal("experiment", "um-synthesis", "--scale", "smoke", "--out", str(tmp_path / "u"), "--real-images", str(empty))
    assert done.returncode != 0 and "leave --real-images out" in done.stderr
    assert not (tmp_path / "u").exists()
