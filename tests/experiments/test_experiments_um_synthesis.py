"""`simreal experiment um-synthesis --scale smoke`: every stage end to end on the real liver CT; split by patient
(held-out patients never train a generator or a segmenter); both generators see the same labelled slices; patient-
level n beside slice n; a rerun reuses every stage; a missing volume is refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simreal_testing import SHARED_DATA
from simreal_testing import run_simreal as simreal

NEEDED = [SHARED_DATA / "ircadb_ct_liver", SHARED_DATA / "chaos_ct_liver"]
needs_ct = pytest.mark.skipif(not all(p.is_dir() for p in NEEDED), reason="needs ../shared/data/{ircadb,chaos}_ct_liver")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not all(p.is_dir() for p in NEEDED):
        pytest.skip("needs ../shared/data/{ircadb,chaos}_ct_liver beside the checkout")
    out = tmp_path_factory.mktemp("um_synthesis") / "smoke"
    done = simreal("experiment", "um-synthesis", "--scale", "smoke", "--out", str(out), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@needs_ct
def test_smoke_results_carry_patient_level_n(smoke_run: Path) -> None:
    r = _results(smoke_run)
    assert r["name"] == "um-synthesis" and r["scale"] == "smoke"
    n_heldout = sum(r["metrics"]["n_heldout"].values())
    for d in r["metrics"]["dice"].values():
        assert d["n_groups"] == 2 and d["n_frames"] <= n_heldout
    for d in r["metrics"]["paired"].values():
        assert d["n_groups"] == 2 and d["wilcoxon_p"] >= 0.5  # two patients: no group-level p below 0.5
        assert d["frame_level"]["assumption"] == "assumes independent frames"
    for name in ("um", "mask", "real (training patient)"):
        agg = r["metrics"]["mmfid"][name]["all_aggregates"]
        assert np.isfinite(agg["l2-row"]["mm_fid"]) and np.isfinite(agg["mean"]["mm_fid"])
    assert all(np.isfinite(row["kid_mean"]) for row in r["metrics"]["fid"])
    assert any("cannot reach p < 0.5" in n for n in r["notes"]) and any("SMOKE SCALE" in n for n in r["notes"])
    page = (smoke_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(r["figures"]) >= 1 and "MM-FID" in page


@needs_ct
def test_held_out_patients_never_train_and_labelled_slices_are_shared(smoke_run: Path) -> None:
    from simreal.data.reader import DatasetReader
    from simreal.experiments.um_synthesis import HELDOUT_PATIENTS, TRAIN_PATIENTS

    data = json.loads((smoke_run / "runs" / "generator_um" / "data.json").read_text())
    mask = json.loads((smoke_run / "runs" / "generator_mask" / "data.json").read_text())
    assert sorted(data["groups"]) == sorted(TRAIN_PATIENTS) == sorted(mask["groups"])
    assert data["labelled"] == mask["labelled"] and data["unlabelled"] and not mask["unlabelled"]
    heldout = DatasetReader(smoke_run / "data" / "heldout")
    assert {rec.group for rec in heldout.records} == set(HELDOUT_PATIENTS)
    assert not set(heldout.ids) & (set(data["labelled"]) | set(data["unlabelled"]))
    labelled = DatasetReader(smoke_run / "data" / "labelled_real")
    assert labelled.ids == data["labelled"] and {rec.group for rec in labelled.records} == set(TRAIN_PATIENTS)
    for m in ("um", "mask"):
        s = DatasetReader(smoke_run / "data" / f"samples_{m}")
        assert s.read(0, "image").shape[:2] == s.read(0, "mask").shape == s.read(0, "ct").shape  # aligned outputs


@needs_ct
def test_rerun_reuses_every_stage(smoke_run: Path) -> None:
    before = _results(smoke_run)
    again = simreal("experiment", "um-synthesis", "--scale", "smoke", "--out", str(smoke_run), "--real-data", str(SHARED_DATA))
    assert again.returncode == 0, again.stderr[-2000:]
    after = _results(smoke_run)
    assert after["timings"].pop("total (stages run now)") == 0 and set(after["timings"].values()) == {"reused"}
    assert after["metrics"] == before["metrics"]


def test_missing_volume_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "data" / "ircadb_ct_liver").mkdir(parents=True)
    out = tmp_path / "out"
    done = simreal("experiment", "um-synthesis", "--out", str(out), "--real-data", str(tmp_path / "data"))
    assert done.returncode == 2 and "incomplete" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_bad_preset_is_refused() -> None:
    import dataclasses

    from simreal.errors import SimrealError
    from simreal.experiments.um_synthesis import UM_PRESETS

    with pytest.raises(SimrealError, match="multiple of 2"):
        dataclasses.replace(UM_PRESETS["smoke"], size=30)
    with pytest.raises(SimrealError, match="mm_scales"):
        dataclasses.replace(UM_PRESETS["smoke"], mm_scales=(64,))
