"""`simreal experiment sim2real-seg --scale smoke --baseline B`: every stage end to end on top of a baseline smoke
run; study-level n beside frame n; translators trained on the CVC adapt images only; translated sets carry the
source masks byte for byte (K styles for MUNIT); the few-label sets come from the adapt studies only; a rerun
reuses every stage. Plus the pure pieces: the curve's frame choice, the preset and translator checks."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest

from simreal_testing import SHARED_DATA
from simreal_testing import run_simreal as simreal

CVC = SHARED_DATA / "cvc-clinicdb_256"
needs_cvc = pytest.mark.skipif(not CVC.is_dir(), reason="needs ../shared/data/cvc-clinicdb_256 beside the checkout")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline smoke run, then one sim2real-seg smoke run started from it with --baseline."""
    if not CVC.is_dir():
        pytest.skip("needs ../shared/data/cvc-clinicdb_256 beside the checkout")
    root = tmp_path_factory.mktemp("sim2real")
    done = simreal("experiment", "baseline", "--scale", "smoke", "--out", str(root / "baseline"), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-3000:]
    out = root / "smoke"
    done = simreal("experiment", "sim2real-seg", "--scale", "smoke", "--out", str(out), "--baseline", str(root / "baseline"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "zero-manual-label polyp Dice" in done.stdout
    return out


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@needs_cvc
def test_smoke_results_carry_study_level_n(smoke_run: Path) -> None:
    from simreal.experiments.sim2real_seg import SIM2REAL_PRESETS

    r = _results(smoke_run)
    assert r["name"] == "sim2real-seg" and r["scale"] == "smoke"
    dice = r["metrics"]["dice"]
    n_test = r["metrics"]["baseline_cvc_test_dice"]["n_frames"]
    for name in ("synthetic", "cyclegan", "munit"):
        assert dice[name]["n_groups"] == 14 and dice[name]["n_frames"] == n_test  # studies are the groups
        assert dice[name]["ci_low"] <= dice[name]["value"] <= dice[name]["ci_high"]
    # the synthetic-only row is the baseline's own network on the baseline's own CVC TEST frames
    assert dice["synthetic"]["value"] == pytest.approx(r["metrics"]["baseline_cvc_test_dice"]["value"], abs=1e-9)
    for d in r["metrics"]["paired"].values():
        assert d["n_groups"] == 14 and 0.0 <= d["wilcoxon_p"] <= 1.0
        assert d["frame_level"]["assumption"] == "assumes independent frames"
    halves = r["config"]["cvc_halves"]
    ks = [c["k"] for c in r["metrics"]["curve"]]
    assert ks == [*SIM2REAL_PRESETS["smoke"].curve_k, halves["adapt"]]  # all adapt frames is the last point
    for c in r["metrics"]["curve"]:
        assert c["paired"]["n_groups"] == 14 and 1 <= c["studies"] <= c["k"]
    assert r["metrics"]["curve"][-1]["studies"] == 14  # all adapt frames: the 14 adapt studies
    validity = r["metrics"]["validity"]["ssim_gray"]
    assert validity["cyclegan"]["n_frames"] == validity["munit"]["n_frames"] > 0  # the same source frames
    for row in r["metrics"]["fid"]:
        assert np.isfinite(row["fid"]) and np.isfinite(row["kid_mean"]) and row["n_a"] >= 2
    for table in r["tables"][:4]:
        assert "n_groups" in table["columns"]
    assert any("SMOKE SCALE" in n for n in r["notes"])
    page = (smoke_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(r["figures"]) >= 3
    assert "KID" in page and "n_groups" in page


@needs_cvc
def test_translators_saw_adapt_images_only_and_masks_are_copied(smoke_run: Path) -> None:
    from simreal.data.reader import DatasetReader
    from simreal.experiments.sim2real_seg import SIM2REAL_PRESETS

    data = smoke_run / "data"
    adapt, test = DatasetReader(data / "cvc_adapt_images"), DatasetReader(data / "cvc_test")
    assert adapt.info.files == ("image",) and len(adapt) + len(test) == 609
    assert not {rec.group for rec in adapt.records} & {rec.group for rec in test.records}
    for method in ("cyclegan", "munit"):
        cfg = json.loads((smoke_run / "runs" / f"translator_{method}" / "config.json").read_text())
        assert Path(cfg["data"]["real"]) == data / "cvc_adapt_images"
    k = SIM2REAL_PRESETS["smoke"].styles
    for part in ("train", "val"):
        src = DatasetReader(data / ("synth_train_to_translate" if part == "train" else "synth_val"))
        cyc, mun = DatasetReader(data / f"cyclegan_{part}"), DatasetReader(data / f"munit_{part}")
        assert cyc.ids == src.ids and len(mun) == k * len(src)
        assert cyc.read(0, "image").shape == src.read(0, "image").shape  # whole frames at their own size
        for i, sid in enumerate(src.ids[:5]):
            assert filecmp.cmp(src.path(i, "mask"), cyc.path(cyc.ids.index(sid), "mask"), shallow=False)
            for j in range(k):
                assert filecmp.cmp(src.path(i, "mask"), mun.path(mun.ids.index(f"{sid}_s{j:02d}"), "mask"), shallow=False)
        assert mun.info.generator["styles"]["source"] == "images"
    # the few-label sets are labelled adapt frames, never test frames
    test_groups = {rec.group for rec in test.records}
    for folder in data.glob("cvc_adapt_labelled_*"):
        labelled = DatasetReader(folder)
        assert "mask" in labelled.info.files and not {rec.group for rec in labelled.records} & test_groups


@needs_cvc
def test_rerun_reuses_every_stage(smoke_run: Path) -> None:
    before = _results(smoke_run)
    again = simreal("experiment", "sim2real-seg", "--scale", "smoke", "--out", str(smoke_run), "--baseline",
                    str(smoke_run.parent / "baseline"))
    assert again.returncode == 0, again.stderr[-2000:]
    after = _results(smoke_run)
    assert after["timings"].pop("total (stages run now)") == 0
    assert set(after["timings"].values()) == {"reused"}
    assert after["metrics"] == before["metrics"]


def test_curve_frames_spread_over_the_adapt_half() -> None:
    from simreal.experiments.sim2real_seg import curve_indices

    adapt = [5, 1, 9, 3, 7, 11, 13]
    assert curve_indices(adapt, 3) == [1, 7, 13]  # first, middle, last of the sorted half
    assert curve_indices(adapt, 7) == curve_indices(adapt, 50) == sorted(adapt)


def test_bad_preset_and_unknown_translator_are_refused(tmp_path: Path) -> None:
    import dataclasses

    from simreal.errors import SimrealError
    from simreal.experiments.sim2real_seg import SIM2REAL_PRESETS, translator_config

    with pytest.raises(SimrealError, match="curve_k"):
        dataclasses.replace(SIM2REAL_PRESETS["smoke"], curve_k=(8, 4))
    with pytest.raises(SimrealError, match="styles"):
        dataclasses.replace(SIM2REAL_PRESETS["smoke"], styles=0)
    with pytest.raises(SimrealError, match="unknown translator 'cut'"):
        translator_config("cut", SIM2REAL_PRESETS["smoke"], tmp_path, tmp_path, tmp_path / "run", 0)
    munit = translator_config("munit", SIM2REAL_PRESETS["small"], tmp_path / "a", tmp_path / "b", tmp_path / "run", 0)
    assert munit.munit.ms_ssim_a_w == 5.0 and munit.munit.ms_ssim_b_w == 3.0  # the paper's content weights stay on
    assert munit.data.synthetic == str(tmp_path / "a") and munit.data.real == str(tmp_path / "b")
