"""`simreal experiment cinematic-ft --scale smoke`: every stage end to end on top of a baseline smoke run;
group-level n beside frame n; held-out patients never in a fine-tuning or validation set; report renders;
rerun reuses stages; a baseline of another seed is refused. Plus the pure pieces on tiny inputs: patient seeds,
the multi / single / probe / curve sets, merging datasets, error reduction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simreal_testing import SHARED_DATA, write_tiny_dataset
from simreal_testing import run_simreal as simreal

CVC = SHARED_DATA / "cvc-clinicdb_256"
TOTALSEG = SHARED_DATA / "totalsegmentator_ct"


def _have_mitsuba() -> bool:
    try:
        import mitsuba  # noqa: F401
    except ImportError:
        return False
    return True


needs_all = pytest.mark.skipif(not (CVC.is_dir() and TOTALSEG.is_dir() and _have_mitsuba()),
                               reason="needs ../shared/data/{cvc-clinicdb_256,totalsegmentator_ct} and Mitsuba 3")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cinematic-ft smoke run; without --baseline it runs the baseline smoke into OUT/baseline first."""
    if not (CVC.is_dir() and TOTALSEG.is_dir() and _have_mitsuba()):
        pytest.skip("needs ../shared/data/{cvc-clinicdb_256,totalsegmentator_ct} and Mitsuba 3")
    out = tmp_path_factory.mktemp("cinematic_ft") / "smoke"
    done = simreal("experiment", "cinematic-ft", "--scale", "smoke", "--out", str(out), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _groups(path: Path) -> set[str]:
    from simreal.data.reader import DatasetReader

    return {r.group for r in DatasetReader(path).records}


@needs_all
def test_smoke_results_carry_group_level_n(smoke_run: Path) -> None:
    from simreal.experiments.cinematic_ft import CINEMATIC_FT_PRESETS

    c = CINEMATIC_FT_PRESETS["smoke"]
    r = _results(smoke_run)
    assert r["name"] == "cinematic-ft" and r["scale"] == "smoke"
    comp = r["metrics"]["comparisons"]
    sizes = {"test": (c.n_test, c.n_test * c.test_views * c.conditions), "external": (c.n_external_colons, c.n_external),
             "ct": (1, c.ct_views * c.conditions), "probe": (c.n_finetune, c.n_finetune * c.probe_views * c.conditions)}
    for set_name, (n_groups, n_frames) in sizes.items():
        for model in ("multi", "single"):
            for key in ("abs_rel_median", "abs_rel_none", "rmse_median", "rmse_none"):
                d = comp[set_name][model][key]
                assert (d["n_groups"], d["n_frames"]) == (n_groups, n_frames), (set_name, model, key)
                assert d["reduction"] == pytest.approx(1 - d["mean_a"] / d["mean_b"])
                assert d["reduction_ci_low"] - 1e-12 <= d["reduction"] <= d["reduction_ci_high"] + 1e-12
                assert d["frame_level"]["assumption"] == "assumes independent frames"
                assert 0.0 <= d["wilcoxon_p"] <= 1.0
    assert len(r["targets"]) == 4 and all(np.isfinite(t["value"]) for t in r["targets"])
    curve = r["metrics"]["curve"]
    assert [p["views per patient"] for p in curve] == list(c.curve_views)
    assert [p["fine-tuning frames"] for p in curve] == [c.n_finetune * v * c.conditions for v in c.curve_views]
    for table in r["tables"]:
        cols = " ".join(table["columns"])
        if not table["title"].startswith(("Protocol", "abs_rel (median-scaled) per")):
            assert "n_groups" in cols and "n_frames" in cols, table["title"]
    assert any("SMOKE SCALE" in n for n in r["notes"]) and any("3 mm" in n for n in r["notes"])
    assert r["metrics"]["render_speed"]["frames rendered now"] == sum(t["frames"] for t in r["tables"][-1]["rows"][:-1])


@needs_all
def test_held_out_patients_are_absent_from_every_finetuning_config(smoke_run: Path) -> None:
    from simreal.data.reader import DatasetReader
    from simreal.experiments.cinematic_ft import CINEMATIC_FT_PRESETS

    c = CINEMATIC_FT_PRESETS["smoke"]
    r = _results(smoke_run)
    colons = r["config"]["colons"]
    finetune = {f"phantom-{s}" for s in colons["cinematic finetune"]}
    val = {f"phantom-{s}" for s in colons["cinematic val"]}
    held_out = {f"phantom-{s}" for s in colons["cinematic test"]} | {"example_ct_sm"}
    seen_train = set()
    for run in sorted((smoke_run / "runs").iterdir()):
        cfg = json.loads((run / "config.json").read_text())
        train, val_set = Path(cfg["data"]["train"]), Path(cfg["data"]["val"])
        groups = _groups(train)
        assert groups <= finetune and not groups & held_out, run.name
        assert _groups(val_set) == val and not val & held_out
        # no frame of a probe view (the same patients' views kept for "seen patient, new view") was trained on
        assert all(rec.params["view_index"] < c.views for rec in DatasetReader(train).records)
        is_ft = run.name != "scratch" and not run.name.startswith("scratch")
        assert (cfg["init"] is not None) == is_ft
        if is_ft:
            assert Path(cfg["init"]) == smoke_run / "baseline" / "runs" / "depth"
        seen_train |= groups
    assert seen_train == finetune
    # the sets that measure: held-out patients only; the external colons are used nowhere else
    assert _groups(smoke_run / "data" / "sets" / "test") == {f"phantom-{s}" for s in colons["cinematic test"]}
    assert _groups(smoke_run / "data" / "external_realistic") == {f"colon-{s}" for s in colons["cinematic external"]}
    everything = {s for k, v in colons.items() if k != "cinematic external" for s in v}
    assert not set(colons["cinematic external"]) & everything
    info = json.loads((smoke_run / "data" / "external_realistic" / "dataset.json").read_text())
    assert info["generator"]["job"]["config"]["look"] == "realistic"
    assert tuple(info["generator"]["job"]["colons"]) == tuple(colons["cinematic external"])


@needs_all
def test_single_condition_set_has_the_multi_sets_views_and_size(smoke_run: Path) -> None:
    from simreal.data.reader import DatasetReader
    from simreal.experiments.cinematic_ft import CINEMATIC_FT_PRESETS

    c = CINEMATIC_FT_PRESETS["smoke"]
    multi = DatasetReader(smoke_run / "data" / "sets" / "finetune_multi")
    single = DatasetReader(smoke_run / "data" / "sets" / "finetune_single")
    assert len(multi) == len(single) == c.finetune_frames
    assert {r.params["condition_index"] for r in multi.records} == set(range(c.conditions))
    assert {r.params["condition_index"] for r in single.records} == {0}
    views = lambda d: {(r.group, r.params["view_index"]) for r in d.records}  # noqa: E731
    assert views(multi) == views(single)


@needs_all
def test_report_renders_every_figure(smoke_run: Path) -> None:
    r = _results(smoke_run)
    page = (smoke_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(r["figures"]) >= 6
    assert "figure missing" not in page
    for text in ("Timings", "n_groups", "Contact sheet", "Training-set-size curve", "multi- vs single-condition"):
        assert text in page


@needs_all
def test_rerun_reuses_every_stage_and_other_seed_baseline_is_refused(smoke_run: Path, tmp_path: Path) -> None:
    before = _results(smoke_run)
    again = simreal("experiment", "cinematic-ft", "--scale", "smoke", "--out", str(smoke_run), "--real-data", str(SHARED_DATA))
    assert again.returncode == 0, again.stderr[-2000:]
    after = _results(smoke_run)
    assert after["timings"].pop("total (stages run now)") == 0
    assert set(after["timings"].values()) == {"reused"}
    assert after["metrics"]["comparisons"] == before["metrics"]["comparisons"]
    other = tmp_path / "other"
    refused = simreal("experiment", "cinematic-ft", "--scale", "smoke", "--seed", "1", "--out", str(other), "--baseline",
                      str(smoke_run / "baseline"), "--real-data", str(SHARED_DATA))
    assert refused.returncode == 2 and "seed differ" in refused.stderr and "Traceback" not in refused.stderr
    assert not other.exists()  # refused before any work


# -- pure pieces ---------------------------------------------------------------------------------------------


def test_cinematic_colons_are_disjoint_from_every_other_set() -> None:
    import dataclasses

    from simreal.errors import SimrealError
    from simreal.experiments.cinematic_ft import CINEMATIC_FT_PRESETS, cinematic_jobs
    from simreal.experiments.colon_protocol import (
        REALISTIC_OFFSETS, SCALE_PRESETS, cinematic_colon_seeds, colon_seeds, realistic_colon_seeds)

    for name, scale in SCALE_PRESETS.items():
        c = CINEMATIC_FT_PRESETS[name]
        counts = {"finetune": c.n_finetune, "val": c.n_val, "test": c.n_test, "external": c.n_external_colons}
        seeds = cinematic_colon_seeds(2, scale, counts)
        mine = [s for v in seeds.values() for s in v]
        assert len(mine) == len(set(mine)) == sum(counts.values())
        others = {s for v in colon_seeds(2, scale).values() for s in v}
        others |= {s for v in realistic_colon_seeds(2, scale, 100, 100).values() for s in v}
        assert not set(mine) & others
        jobs = cinematic_jobs(2, scale, c, None)
        assert set(jobs) == {"finetune", "val", "test"}
        assert [j.phantom_seed for j in jobs["test"].values()] == seeds["test"]
        assert all(j.n == c.views + c.probe_views for j in jobs["finetune"].values())
    assert REALISTIC_OFFSETS["adapt"] > max(cinematic_colon_seeds(0, SCALE_PRESETS["full"], {"test": 40})["test"])
    wide = dataclasses.replace(SCALE_PRESETS["smoke"], n_colons=310)  # training colons reaching 300+
    with pytest.raises(SimrealError, match="also colons of another set"):
        cinematic_colon_seeds(0, wide, {"external": 2})
    with pytest.raises(SimrealError, match="takes 1..40 colons"):
        cinematic_colon_seeds(0, SCALE_PRESETS["smoke"], {"test": 41})


def test_preset_checks_the_size_curve() -> None:
    import dataclasses

    from simreal.errors import SimrealError
    from simreal.experiments.cinematic_ft import CINEMATIC_FT_PRESETS

    with pytest.raises(SimrealError, match="curve_views"):
        dataclasses.replace(CINEMATIC_FT_PRESETS["small"], curve_views=(1, 2, 4))
    with pytest.raises(SimrealError, match="at least 2"):
        dataclasses.replace(CINEMATIC_FT_PRESETS["smoke"], conditions=1)


def _fake_patient(root: Path, group: str, views: int, conditions: int) -> Path:
    """A rendered-patient-like dataset: frame v * K + k is view v under condition k."""
    from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
    from simreal.data.writer import DatasetWriter

    info = DatasetInfo(modality="colonoscopy", domain="cinematic", image_size=(4, 4), files=("image", "depth"),
                       labels={"depth": LabelKind(unit="mm")}, generator={"name": "test"})
    writer = DatasetWriter(root, info)
    for v in range(views):
        for k in range(conditions):
            i = v * conditions + k
            writer.write(SampleRecord(id=f"{i:06d}", files={}, params={"view_index": v, "condition_index": k}, group=group),
                         {"image": np.full((4, 4, 3), i, np.uint8), "depth": np.full((4, 4), 10.0 + v, np.float32)})
    return writer.finish()


def test_training_sets_split_views_and_conditions(tmp_path: Path) -> None:
    import dataclasses

    from simreal.data.reader import DatasetReader
    from simreal.experiments import stages
    from simreal.experiments.cinematic_ft import CINEMATIC_FT_PRESETS, training_sets

    c = dataclasses.replace(CINEMATIC_FT_PRESETS["smoke"], views=3, probe_views=1, conditions=2, curve_views=(1, 3))
    patients = {g: _fake_patient(tmp_path / g, g, 4, 2) for g in ("p1", "p2")}
    parts = training_sets(patients, c)
    assert set(parts) == {"multi", "single", "probe", "curve_1"}
    merged = {name: stages.merge_datasets(p, tmp_path / "sets" / name, why=name) for name, p in parts.items()}
    read = {name: DatasetReader(path) for name, path in merged.items()}
    vk = lambda name: sorted((r.group, r.params["view_index"], r.params["condition_index"]) for r in read[name].records)  # noqa: E731
    assert vk("multi") == sorted((g, v, k) for g in patients for v in range(3) for k in range(2))
    assert vk("single") == sorted((g, v, 0) for g in patients for v in range(3) for _ in range(2))
    assert vk("probe") == sorted((g, 3, k) for g in patients for k in range(2))
    assert vk("curve_1") == sorted((g, 0, k) for g in patients for k in range(2))
    assert len(read["single"]) == len(read["multi"]) == 2 * 3 * 2  # patients x views x conditions
    # repeats get their own ids; files are byte-for-byte copies of the source frames
    ids = read["single"].ids
    assert len(set(ids)) == len(ids) and "p1-000000-r1" in ids
    src = DatasetReader(patients["p1"])
    j = ids.index("p1-000002-r1")
    assert read["single"].path(j, "image").read_bytes() == src.path(2, "image").read_bytes()
    assert read["single"].records[j].source == str(src.path(2, "image").resolve())


def test_merge_refuses_parts_that_do_not_fit(tmp_path: Path) -> None:
    from simreal.errors import SimrealError
    from simreal.experiments import stages

    a = write_tiny_dataset(tmp_path / "a", n=2, size=(8, 8))
    b = write_tiny_dataset(tmp_path / "b", n=2, size=(8, 10))
    with pytest.raises(SimrealError, match="image size"):
        stages.merge_datasets([(a, [0]), (b, [0])], tmp_path / "m1")
    with pytest.raises(SimrealError, match="share a group"):
        stages.merge_datasets([(a, [0]), (a, [0])], tmp_path / "m2")  # same group and id twice from two parts
    with pytest.raises(SimrealError, match="no mask files"):
        stages.merge_datasets([(_fake_patient(tmp_path / "p", "p", 1, 1), [0])], tmp_path / "m3", kinds=("image", "mask"))
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_error_reduction_is_at_group_level() -> None:
    from simreal.experiments.cinematic_ft import reduction

    before = [{"id": f"{g}{i}", "group": g, "abs_rel": str(v)} for g, vals in (("a", [0.2, 0.4]), ("b", [0.1])) for i, v in
              enumerate(vals)]
    after = [{**r, "abs_rel": str(float(r["abs_rel"]) * 0.25)} for r in before]
    d = reduction(after, before, "abs_rel")
    assert d["reduction"] == pytest.approx(0.75) and d["frame_reduction"] == pytest.approx(0.75)
    assert d["reduction_ci_low"] == pytest.approx(0.75) and d["reduction_ci_high"] == pytest.approx(0.75)
    assert d["n_groups"] == 2 and d["n_frames"] == 3
    worse = reduction(before, after, "abs_rel")
    assert worse["reduction"] == pytest.approx(-3.0)  # fine-tuning that hurts shows as a negative reduction


def test_abs_rel_error_picture() -> None:
    from simreal.experiments.stages import abs_rel_error_rgb

    gt = np.full((4, 4), 10.0, np.float32)
    gt[0, 0] = 0.0
    same = abs_rel_error_rgb(gt * 3, gt)  # a scaled copy: no error once median-scaled
    assert same.shape == (4, 4, 3) and same.dtype == np.uint8
    assert (same[1:, 1:] == same[1, 1]).all() and tuple(same[0, 0]) == (0, 0, 0)
    metric = abs_rel_error_rgb(gt * 3, gt, scaling="none")
    assert metric[1, 1].sum() > same[1, 1].sum()
