"""SimCol3D and C3VD depth conventions: closed-form values, file round trips, importers."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from simreal.data.external.c3vd import c3vd_depth_mm, c3vd_depth_raw, import_c3vd, read_c3vd_depth
from simreal.data.external.common import write_uint16_png
from simreal.data.external.simcol import import_simcol, read_simcol_depth, simcol_depth_mm, simcol_depth_raw
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError


def test_simcol_convention():
    raw = np.array([[0, 255 * 256, 255 * 128, 65534]], np.uint16)
    mm = simcol_depth_mm(raw)
    # depth_cm = v / 255 / 256 * 20: 65280 -> 20 cm = 200 mm; half of it -> 100 mm.
    assert mm[0, :3] == pytest.approx([0.0, 200.0, 100.0])
    assert mm[0, 3] == pytest.approx(65534 / 65280 * 200, rel=1e-6)  # above 65280 but not saturated: kept
    assert np.array_equal(simcol_depth_raw(mm), raw)


def test_simcol_saturated_code_is_no_depth(tmp_path):
    # 65535 means "at or beyond the far limit": no valid depth (0), not a distance of 200.78 mm.
    raw = np.array([[65535, 65534], [1000, 65535]], np.uint16)
    expected = np.array([[0.0, 65534 / 65280 * 200], [1000 / 65280 * 200, 0.0]], np.float32)
    np.testing.assert_allclose(simcol_depth_mm(raw), expected, rtol=1e-6)
    write_uint16_png(tmp_path / "Depth_0000.png", raw)
    assert (read_simcol_depth(tmp_path / "Depth_0000.png") == 0).tolist() == [[True, False], [False, True]]
    # and a depth beyond the deepest code is stored as that code, never as the "no depth" one
    assert simcol_depth_raw(np.array([500.0]))[0] == 65534


def test_c3vd_convention():
    raw = np.array([[0, 65535, 32768]], np.uint16)
    assert c3vd_depth_mm(raw)[0] == pytest.approx([0.0, 100.0, 32768 / 65535 * 100])
    assert np.array_equal(c3vd_depth_raw(c3vd_depth_mm(raw)), raw)


def test_file_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    mm = rng.uniform(1, 90, (5, 7))
    write_uint16_png(tmp_path / "Depth_0000.png", simcol_depth_raw(mm))
    assert np.abs(read_simcol_depth(tmp_path / "Depth_0000.png") - mm).max() < 200 / 65280  # one step
    tifffile.imwrite(tmp_path / "0000_depth.tiff", c3vd_depth_raw(mm))
    assert np.abs(read_c3vd_depth(tmp_path / "0000_depth.tiff") - mm).max() < 100 / 65535
    write_uint16_png(tmp_path / "c3.png", c3vd_depth_raw(mm))
    assert np.abs(read_c3vd_depth(tmp_path / "c3.png") - mm).max() < 100 / 65535
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "eight.png")
    with pytest.raises(SimrealError, match="expected a 16-bit"):
        read_simcol_depth(tmp_path / "eight.png")


def _rgb(path, shape=(6, 8)):
    Image.fromarray(np.full((*shape, 3), 90, np.uint8)).save(path)


def test_import_simcol(tmp_path):
    seq = tmp_path / "simcol" / "SyntheticColon_I" / "Frames_S1"
    seq.mkdir(parents=True)
    mm = np.linspace(10, 150, 48).reshape(6, 8)
    for i in (1, 0):
        _rgb(seq / f"FrameBuffer_{i:04d}.png")
        write_uint16_png(seq / f"Depth_{i:04d}.png", simcol_depth_raw(mm + i))
    out = import_simcol(tmp_path / "simcol", tmp_path / "ds")
    validate_dataset(out)
    ds = DatasetReader(out)
    assert ds.ids == ["SyntheticColon_I_Frames_S1_0000", "SyntheticColon_I_Frames_S1_0001"]
    assert ds.records[0].group == "SyntheticColon_I/Frames_S1" and ds.info.domain == "synthetic"
    assert np.abs(ds.read(1, "depth") - (mm + 1)).max() < 0.01
    (seq / "Depth_0001.png").unlink()
    with pytest.raises(SimrealError, match="frame has no depth file Depth_0001.png"):
        import_simcol(tmp_path / "simcol", tmp_path / "ds2")
    assert not (tmp_path / "ds2").exists()


def test_import_c3vd(tmp_path):
    seq = tmp_path / "c3vd" / "cecum_t1_a"
    seq.mkdir(parents=True)
    mm = np.linspace(5, 95, 48).reshape(6, 8)
    _rgb(seq / "0000_color.png")
    tifffile.imwrite(seq / "0000_depth.tiff", c3vd_depth_raw(mm))
    ds = DatasetReader(import_c3vd(tmp_path / "c3vd", tmp_path / "ds", size=(3, 4)))
    assert ds.ids == ["cecum_t1_a_0000"] and ds.records[0].group == "cecum_t1_a"
    d = ds.read(0, "depth")
    assert d.shape == (3, 4)
    nearest_stored = np.abs(d.reshape(-1, 1) - mm.reshape(1, -1)).min(axis=1)
    assert nearest_stored.max() < 0.01  # nearest neighbour: every value is a stored depth, none invented
    tifffile.imwrite(seq / "0000_depth.tiff", c3vd_depth_raw(mm)[:3])
    with pytest.raises(SimrealError, match="depth is 8x3 but its frame is 8x6"):
        import_c3vd(tmp_path / "c3vd", tmp_path / "ds2")
