"""`simreal experiment reverse-da --scale smoke`: every stage end to end on top of a baseline smoke run;
group-level n; refiners trained on the adapt sets only; refinement at full resolution with labels copied;
rerun reuses stages; a baseline of another seed is refused; an identity-initialised refiner changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simreal_testing import SHARED_DATA, write_tiny_dataset
from simreal_testing import run_simreal as simreal

CVC = SHARED_DATA / "cvc-clinicdb_256"
needs_cvc = pytest.mark.skipif(not CVC.is_dir(), reason="needs ../shared/data/cvc-clinicdb_256 beside the checkout")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One reverse-da smoke run; without --baseline it runs the baseline smoke into OUT/baseline first."""
    if not CVC.is_dir():
        pytest.skip("needs ../shared/data/cvc-clinicdb_256 beside the checkout")
    out = tmp_path_factory.mktemp("reverse_da") / "smoke"
    done = simreal("experiment", "reverse-da", "--scale", "smoke", "--out", str(out), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@needs_cvc
def test_smoke_results_carry_group_level_n(smoke_run: Path) -> None:
    from simreal.experiments.reverse_da import REVERSE_PRESETS

    r = _results(smoke_run)
    preset = REVERSE_PRESETS["smoke"]
    assert r["name"] == "reverse-da" and r["scale"] == "smoke"
    depth = r["metrics"]["depth"]
    for key in ("abs_rel_median", "abs_rel_none", "ssim_none", "ssim_median"):
        d = depth[key]
        assert d["n_groups"] == preset.n_eval_colons >= 6 and d["n_frames"] == preset.n_eval  # colons are the groups
        assert d["rel_ci_low"] <= d["relative_change"] <= d["rel_ci_high"]
        assert d["frame_level"]["assumption"] == "assumes independent frames"
        assert 0.0 <= d["wilcoxon_p"] <= 1.0
    seg = r["metrics"]["seg_cvc"]
    assert seg["n_groups"] == len(r["metrics"]["cvc_test_sequences"]) == 14
    assert seg["n_frames"] == r["metrics"]["baseline_cvc_test_dice"]["n_frames"]
    # the raw frames are the baseline's own CVC TEST frames, read by the same network
    assert seg["mean_b"] == pytest.approx(r["metrics"]["baseline_cvc_test_dice"]["value"], abs=1e-9)
    for row in r["metrics"]["fid"]:
        assert 2 <= row["n_a"] <= preset.fid_max_images and 2 <= row["n_b"] <= preset.fid_max_images
        assert np.isfinite(row["fid"]) and np.isfinite(row["kid_mean"])
    for table in r["tables"][:2] + r["tables"][3:4]:
        assert {"n_groups", "n_frames"} <= set(table["columns"])
    assert r["metrics"]["twin_labels_identical"] is True and r["metrics"]["refined_labels_identical"] is True
    assert any("SMOKE SCALE" in n for n in r["notes"])
    page = (smoke_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(r["figures"]) >= 4
    assert "Timings" in page and "n_groups" in page and "KID" in page


@needs_cvc
def test_refiners_never_saw_the_evaluation_sets(smoke_run: Path) -> None:
    from simreal.data.reader import DatasetReader

    data = smoke_run / "data"
    real = {}
    for name, real_set in (("realistic", "realistic_adapt"), ("cvc", "cvc_adapt_images")):
        cfg = json.loads((smoke_run / "runs" / f"refiner_{name}" / "config.json").read_text())
        assert Path(cfg["data"]["real"]) == data / real_set
        assert Path(cfg["data"]["synthetic"]) == smoke_run / "baseline" / "data" / "synth_train"
        real[name] = DatasetReader(data / real_set)
    # CVC: the refiner's real images are the adapt sequences' images only (no masks); the test sequences are apart
    adapt, test = real["cvc"], DatasetReader(data / "cvc_test")
    assert adapt.info.files == ("image",)
    assert not {rec.group for rec in adapt.records} & {rec.group for rec in test.records}
    assert len(adapt) + len(test) == 609
    # realistic: adapt colons, eval colons and the baseline's train / val / test colons are all disjoint
    colons = {name: {rec.group for rec in DatasetReader(path).records} for name, path in (
        ("adapt", data / "realistic_adapt"), ("eval", data / "realistic_eval"),
        *((s, smoke_run / "baseline" / "data" / f"synth_{s}") for s in ("train", "val", "test")))}
    names = sorted(colons)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not colons[a] & colons[b], (a, b)
    assert DatasetReader(data / "realistic_eval").info.generator["job"]["config"]["look"] == "realistic"


@needs_cvc
def test_refined_sets_are_full_size_with_labels_copied(smoke_run: Path) -> None:
    import filecmp

    from simreal.data.reader import DatasetReader
    from simreal.experiments.reverse_da import REVERSE_PRESETS

    crop = REVERSE_PRESETS["smoke"].crop
    for raw_name, refined_name, run in (("realistic_eval", "realistic_eval_refined", "refiner_realistic"),
                                        ("cvc_test", "cvc_test_refined", "refiner_cvc")):
        raw, ref = DatasetReader(smoke_run / "data" / raw_name), DatasetReader(smoke_run / "data" / refined_name)
        cfg = json.loads((smoke_run / "runs" / run / "config.json").read_text())
        assert tuple(cfg["data"]["size"]) == (crop, crop) < tuple(raw.info.image_size)  # trained on crops ...
        assert ref.info.image_size == raw.info.image_size  # ... refines whole frames at their own size
        assert ref.read(0, "image").shape == raw.read(0, "image").shape
        assert ref.ids == raw.ids and ref.info.domain == "refined"
        for i in range(len(raw)):
            for kind in set(raw.info.files) - {"image"}:
                assert filecmp.cmp(raw.path(i, kind), ref.path(i, kind), shallow=False)


@needs_cvc
def test_rerun_reuses_every_stage_and_other_seed_baseline_is_refused(smoke_run: Path, tmp_path: Path) -> None:
    before = _results(smoke_run)
    again = simreal("experiment", "reverse-da", "--scale", "smoke", "--out", str(smoke_run), "--real-data", str(SHARED_DATA))
    assert again.returncode == 0, again.stderr[-2000:]
    after = _results(smoke_run)
    assert after["timings"].pop("total (stages run now)") == 0
    assert set(after["timings"].values()) == {"reused"}
    assert after["metrics"] == before["metrics"]
    other = tmp_path / "other"
    refused = simreal("experiment", "reverse-da", "--scale", "smoke", "--seed", "1", "--out", str(other), "--baseline",
                      str(smoke_run / "baseline"))
    assert refused.returncode == 2 and "seed differ" in refused.stderr and "Traceback" not in refused.stderr
    assert not other.exists()  # refused before any work
    assert simreal("experiment", "baseline", "--out", str(other), "--baseline", str(smoke_run / "baseline")).returncode == 2


def test_identity_initialised_refiner_at_step_0_leaves_images_unchanged(tmp_path: Path) -> None:
    """The experiment's refiner starts as the identity: a run whose only step pre-trains the discriminator
    (the refiner untouched) refines every pixel of every frame to itself through `adapt apply`."""
    import dataclasses

    from simreal.adapt.apply import apply_refiner
    from simreal.adapt.reverse import train_reverse
    from simreal.data.reader import DatasetReader
    from simreal.experiments.reverse_da import REVERSE_PRESETS, refiner_config

    real = write_tiny_dataset(tmp_path / "real", n=3, size=(20, 24), seed=2)
    synthetic = write_tiny_dataset(tmp_path / "syn", n=4, size=(16, 16), seed=1)
    preset = dataclasses.replace(REVERSE_PRESETS["smoke"], crop=8, steps=1, pretrain_d=1)
    config = refiner_config(preset, real, synthetic, tmp_path / "run", seed=0)
    assert config.reverse.identity_init and config.reverse.pretrain_r == 0
    run = train_reverse(config, progress=False)
    out = apply_refiner(run, real, tmp_path / "refined", device="cpu", progress=False)
    a, b = DatasetReader(real), DatasetReader(out)
    for i in range(len(a)):
        assert np.array_equal(a.read(i, "image"), b.read(i, "image"))


def test_realistic_colons_are_disjoint_from_the_protocol_sets() -> None:
    import dataclasses

    from simreal.errors import SimrealError
    from simreal.experiments.colon_protocol import SCALE_PRESETS, colon_seeds, realistic_colon_seeds, realistic_jobs

    for name, scale in SCALE_PRESETS.items():
        seeds = realistic_colon_seeds(3, scale, 10, 12)
        taken = {s for v in colon_seeds(3, scale).values() for s in v}
        assert not (set(seeds["adapt"]) | set(seeds["eval"])) & taken and not set(seeds["adapt"]) & set(seeds["eval"])
    wide = dataclasses.replace(SCALE_PRESETS["smoke"], n_val_colons=250)  # validation colons reaching 700+
    with pytest.raises(SimrealError, match="also train / val / test colons"):
        realistic_colon_seeds(0, wide, 2, 6)
    jobs = realistic_jobs(SCALE_PRESETS["smoke"], 0, n_adapt=4, n_adapt_colons=2, n_eval=6, n_eval_colons=6)
    real, twin = jobs["realistic_eval"], jobs["realistic_eval_training_look"]
    assert real.config.look == "realistic" and twin.config.look == "training"
    assert dataclasses.replace(real, config=twin.config) == twin  # the same frames, only the look differs


def test_paired_figure_relative_change_is_at_group_level() -> None:
    from simreal.experiments.stages import paired_figure

    raw = [{"id": f"{g}{i}", "group": g, "x": str(v)} for g, vals in (("a", [1.0, 3.0]), ("b", [4.0])) for i, v in enumerate(vals)]
    refined = [{**r, "x": str(float(r["x"]) / 2)} for r in raw]
    refined[0]["x"] = "nan"  # dropped from both sides
    fig = paired_figure(refined, raw, "x")
    assert fig["n_groups"] == 2 and fig["n_frames"] == 2
    assert fig["relative_change"] == pytest.approx(-0.5)  # every frame halved
    assert fig["rel_ci_low"] == pytest.approx(-0.5) and fig["rel_ci_high"] == pytest.approx(-0.5)
    assert fig["frame_level"]["level"] == "frame"


def test_depth_edge_recall_sees_a_fold_only_where_the_image_shows_it() -> None:
    from simreal.experiments.reverse_da import depth_edge_recall

    depth = np.full((32, 32), 20.0, np.float32)
    depth[:, 16:] = 40.0  # an occluding fold down the middle
    shown = np.zeros((32, 32, 3), np.uint8)
    shown[:, :16] = 200
    flat = np.full((32, 32, 3), 120, np.uint8)
    assert depth_edge_recall(shown, depth) == 1.0
    assert depth_edge_recall(flat, depth) == 0.0
    assert np.isnan(depth_edge_recall(shown, np.zeros((32, 32), np.float32)))
