"""`simreal render cinematic`: a tiny phantom dataset end to end (valid folder, every frame's condition in its
record, same bytes again, resume after an interruption), real CT when present, and one clear error (exit 2,
nothing written) for each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("mitsuba")

from simreal.data.reader import DatasetReader, validate_dataset  # noqa: E402
from simreal.errors import SimrealError  # noqa: E402
from simreal.render.cinematic_run import CinematicJob, render_cinematic_dataset  # noqa: E402
from simreal_testing import SHARED_DATA, run_cli  # noqa: E402

TINY = ["--phantom-seed", "3", "--phantom-voxel-mm", "2", "--phantom-length-mm", "60", "--n", "2", "--conditions", "2",
        "--spp", "2", "--size", "16", "--device", "cpu", "--no-progress"]
TOTALSEG = SHARED_DATA / "totalsegmentator_ct"


def _job(**kw) -> CinematicJob:
    base = dict(phantom_seed=3, phantom_voxel_mm=2.0, phantom_length_mm=60.0, n=2, conditions=2, spp=2, size=16,
                device="cpu")
    return CinematicJob(**{**base, **kw})


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cine") / "ref"
    return render_cinematic_dataset(out, _job(), progress=False)


def test_cli_writes_a_valid_dataset_with_every_condition_recorded(monkeypatch, capsys, tmp_path, reference):
    out = tmp_path / "cli"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "render", "cinematic", "--out", str(out), *TINY)
    assert code == 0, stderr
    assert "4 frames (2 views x 2 conditions)" in stdout
    report = validate_dataset(out)
    assert report.n_samples == 4 and set(report.kinds) == {"image", "depth", "mask", "instance"}
    # The CLI and the library write the same bytes for the same job.
    assert _files(out) == _files(reference)
    reader = DatasetReader(out)
    info = json.loads((out / "dataset.json").read_text())
    assert info["generator"]["name"] == "cinematic-renderer" and info["generator"]["job"]["spp"] == 2
    assert info["generator"]["source"]["phantom"]["seed"] == 3
    assert info["labels"]["mask"]["classes"] == {"0": "background", "1": "polyp"}
    records = reader.records
    for i, rec in enumerate(records):
        v, k = divmod(i, 2)
        p = rec.params
        assert (p["view_index"], p["condition_index"]) == (v, k)
        assert p["condition"]["transfer"]["name"] == ("colon-mucosa", "colon-pale")[k]
        assert p["condition"]["lighting"]["kind"] in ("tip-spot", "twin-guides")
        assert p["spp"] == 2 and p["variant"] == "llvm_ad_rgb" and rec.group == "phantom-3"
        assert rec.camera.width == 16 and rec.camera.pose == tuple(tuple(r) for r in p["view"]["pose"])
    # One view, two conditions: same camera and labels, other pixels.
    assert np.array_equal(reader.read(0, "depth"), reader.read(1, "depth"))
    assert not np.array_equal(reader.read(0, "image"), reader.read(1, "image"))


def test_interrupted_render_resumes_to_identical_bytes(tmp_path, reference):
    out = tmp_path / "resumed"

    def stop(index, timings):
        if index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_cinematic_dataset(out, _job(), progress=False, on_frame=stop)
    partial = out.with_name(out.name + ".partial")
    assert partial.is_dir() and not out.exists()
    assert len(list((partial / "records").glob("*.json"))) == 2
    rendered = []
    render_cinematic_dataset(out, _job(), progress=False, on_frame=lambda i, t: rendered.append(i))
    assert sorted(rendered) == [1, 3]  # only the missing frames
    assert _files(out) == _files(reference)


def test_other_seed_other_frames(tmp_path, reference):
    out = render_cinematic_dataset(tmp_path / "s1", _job(seed=1), progress=False)
    assert DatasetReader(out).read(0, "image").tobytes() != DatasetReader(reference).read(0, "image").tobytes()


@pytest.mark.skipif(not TOTALSEG.is_dir(), reason="needs ../shared/data/totalsegmentator_ct (real CT)")
def test_real_ct_colon_lumen_and_external_views(monkeypatch, capsys, tmp_path):
    ct, seg = TOTALSEG / "example_ct_sm.nii.gz", TOTALSEG / "example_seg.nii.gz"
    common = ["--n", "1", "--conditions", "1", "--spp", "1", "--size", "16", "--device", "cpu", "--no-progress"]
    out = tmp_path / "endo"
    code, _, err = run_cli(monkeypatch, capsys, "render", "cinematic", "--ct", str(ct), "--labels", str(seg),
                           "--label", "colon", "--out", str(out), *common)
    assert code == 0, err
    rec = DatasetReader(out).records[0]
    assert validate_dataset(out).kinds == ("image", "depth") and rec.group == "example_ct_sm"
    assert (DatasetReader(out).read(0, "depth") > 0).all()
    out = tmp_path / "ext"
    code, _, err = run_cli(monkeypatch, capsys, "render", "cinematic", "--ct", str(TOTALSEG / "example_ct.nii.gz"),
                           "--view", "external", "--preset", "bone", "--light", "environment", "--out", str(out), *common)
    assert code == 0, err
    d = DatasetReader(out).read(0, "depth")
    assert 0.02 < (d > 0).mean() < 0.9


def _nifti(path: Path, array: np.ndarray, spacing: float = 2.0) -> Path:
    nib.save(nib.Nifti1Image(array, np.diag([spacing, spacing, spacing, 1.0])), str(path))
    return path


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    ct = np.full((24, 24, 24), 40.0, np.float32)
    ct[8:16, 8:16, 4:20] = -1000.0
    nan = ct.copy()
    nan[2, 3, 4] = np.nan
    seg = np.zeros(ct.shape, np.uint8)
    seg[7:17, 7:17, 3:21] = 5  # liver, not colon
    good = _nifti(tmp / "ct.nii.gz", ct)
    return {
        "nan": (["--ct", str(_nifti(tmp / "nan.nii.gz", nan)), "--view", "external"], "NaN"),
        "label missing": (["--ct", str(good), "--labels", str(_nifti(tmp / "seg.nii.gz", seg)), "--label", "colon"],
                          "label colon (id 20) is not present in the label volume; present: liver (5)"),
        "too small": (["--ct", str(_nifti(tmp / "small.nii.gz", np.zeros((20, 20, 4), np.float32))), "--view", "external"],
                      "too small to render: 20x20x4 voxels"),
        "unknown preset": (["--phantom-seed", "3", "--preset", "skin"], "unknown transfer-function preset 'skin'"),
        "unknown light": (["--phantom-seed", "3", "--light", "torch"], "unknown lighting preset 'torch'"),
        "both sources": (["--phantom-seed", "3", "--ct", str(good)], "not both or neither"),
        "no source": ([], "not both or neither"),
        "lumen without labels": (["--ct", str(good)], "endoluminal views need a segmentation"),
        "missing ct": (["--ct", str(tmp / "nope.nii.gz"), "--view", "external"], "volume not found"),
        "bad view": (["--phantom-seed", "3", "--view", "inside"], "--view must be endoluminal or external"),
    }


@pytest.mark.parametrize("case", ["nan", "label missing", "too small", "unknown preset", "unknown light",
                                  "both sources", "no source", "lumen without labels", "missing ct", "bad view"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(monkeypatch, capsys, tmp_path, case):
    args, message = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(monkeypatch, capsys, "render", "cinematic", "--out", str(out), *args,
                                   "--size", "16", "--spp", "1", "--n", "1", "--conditions", "1", "--device", "cpu",
                                   "--no-progress")
    assert code == 2, (stdout, stderr)
    assert message in stderr and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert not out.exists() and not out.with_name("out.partial").exists()


def test_missing_llvm_exits_2_with_the_install_hint(monkeypatch, capsys, tmp_path):
    import mitsuba

    def fail(variant):
        raise ImportError('jit_init_thread_state(): the LLVM backend is inactive because the LLVM shared library '
                          '("libLLVM.so") could not be found! Set the DRJIT_LIBLLVM_PATH environment variable.')

    monkeypatch.setattr(mitsuba, "variant", lambda: None)
    monkeypatch.setattr(mitsuba, "set_variant", fail)
    out = tmp_path / "out"
    code, _, stderr = run_cli(monkeypatch, capsys, "render", "cinematic", "--out", str(out), *TINY)
    assert code == 2 and "apt-get install libllvm19" in stderr and stderr.count("\n") == 1
    assert not out.exists() and not out.with_name("out.partial").exists()


def test_job_validation_names_the_field():
    with pytest.raises(SimrealError, match="spp: must be in 1..65536"):
        _job(spp=0)
    with pytest.raises(SimrealError, match="a phantom brings its own labels"):
        _job(label="colon")
