"""Unsupervised masks: SLIC on the windowed slice, mean fill, exact quantisation, pix2pixHD edges,
same input -> same bytes, and a dataset the contract (and the generator) can read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synth_fixtures import phantom, write_nifti

from simreal.data.images import write_png
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError
from simreal.synth.masks import (
    MaskConfig,
    get_edges,
    make_mask_dataset,
    mean_fill,
    quantised_mean,
    slic_superpixels,
    unsupervised_mask,
)
from simreal.synth.prepare import CTCase, PrepareConfig, prepare_ct_dataset


def test_get_edges_marks_both_sides_like_pix2pixhd() -> None:
    t = np.zeros((4, 5), np.uint8)
    t[:, 3:] = 7
    e = get_edges(t)
    assert e[:, 2].all() and e[:, 3].all() and not e[:, [0, 1, 4]].any()
    t2 = np.zeros((4, 4), np.uint8)
    t2[2:, :] = 1
    assert get_edges(t2).sum(axis=1).tolist() == [0, 4, 4, 0]


def test_mean_fill_and_quantisation_are_exact() -> None:
    image = np.array([[9, 11, 200, 201], [10, 10, 199, 255]], np.uint8)
    segments = np.array([[0, 0, 1, 1], [0, 0, 1, 2]])
    np.testing.assert_allclose(mean_fill(image, segments), [[10, 10, 200, 200], [10, 10, 200, 255]])
    g = quantised_mean(image, segments, step=10)
    assert g.dtype == np.uint8 and g.tolist() == [[10, 10, 200, 200], [10, 10, 200, 250]]  # int(v / 10) * 10
    assert quantised_mean(image, segments, step=7).tolist() == [[7, 7, 196, 196], [7, 7, 196, 252]]
    with pytest.raises(SimrealError, match="step"):
        quantised_mean(image, segments, step=0)


def test_slic_follows_anatomy_and_is_deterministic() -> None:
    image = np.full((48, 48), 30, np.uint8)
    image[10:30, 12:40] = 200  # a bright organ
    a = unsupervised_mask(image, n_segments=16, compactness=10.0, step=10)
    b = unsupervised_mask(image.copy(), n_segments=16, compactness=10.0, step=10)
    assert a.guidance.tobytes() == b.guidance.tobytes() and a.edges.tobytes() == b.edges.tobytes()
    assert set(np.unique(a.guidance)) == {30, 200}  # each superpixel lies inside one region
    assert set(np.unique(a.edges)) == {0, 255}
    np.testing.assert_array_equal(a.edges > 0, get_edges(image))  # guidance edges = the organ's outline
    seg = slic_superpixels(image, n_segments=16)
    assert seg.dtype == np.int32 and seg.min() == 0 and len(np.unique(seg)) == seg.max() + 1 > 4
    sp = unsupervised_mask(image, n_segments=16, edges_from="superpixels")
    assert (sp.edges > 0).sum() > (a.edges > 0).sum()  # every superpixel boundary, not only value changes
    with pytest.raises(SimrealError, match="uint8"):
        unsupervised_mask(image.astype(np.float32))


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("um")
    hu, labels = phantom()
    ct, seg = write_nifti(root / "ct.nii.gz", hu), write_nifti(root / "seg.nii.gz", labels, dtype=np.uint8)
    return prepare_ct_dataset([CTCase(ct, seg, "p")], root / "slices", PrepareConfig(labels=("organ=5",), size=48, every=3))


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_mask_dataset_keeps_inputs_adds_guidance_and_is_byte_identical(slices, tmp_path) -> None:
    config = MaskConfig(n_segments=32, compactness=10.0, step=10)
    a = make_mask_dataset(slices, tmp_path / "a", config)
    b = make_mask_dataset(slices, tmp_path / "b", config)
    assert _bytes(a) == _bytes(b)  # same input, same bytes
    validate_dataset(a)
    src, ds = DatasetReader(slices), DatasetReader(a)
    assert ds.info.files == ("image", "ct", "mask", "guidance", "edges") and ds.ids == src.ids
    assert ds.info.ct == src.info.ct and ds.info.generator["name"] == "simreal.synth.masks"
    for kind in ("image", "ct", "mask"):  # carried over byte for byte
        assert (a / ds.records[1].files[kind]).read_bytes() == (slices / src.records[1].files[kind]).read_bytes()
    assert [r.params for r in ds.records] == [r.params for r in src.records]
    assert [r.group for r in ds.records] == [r.group for r in src.records]
    for i in range(len(ds)):
        g, e, image = ds.read(i, "guidance"), ds.read(i, "edges"), ds.read(i, "image")[..., 0]
        assert g.shape == image.shape and not (g % 10).any() and set(np.unique(e)) <= {0, 255}
        np.testing.assert_array_equal(g, unsupervised_mask(image, n_segments=32).guidance)
    other = make_mask_dataset(a, tmp_path / "again", MaskConfig(n_segments=8, step=20))  # replaces the guidance
    assert DatasetReader(other).info.files == ("image", "ct", "mask", "guidance", "edges")


def test_contract_rejects_damaged_edges(slices, tmp_path) -> None:
    out = make_mask_dataset(slices, tmp_path / "m", MaskConfig(n_segments=16))
    ds = DatasetReader(out)
    bad = np.full(ds.read(0, "edges").shape, 128, np.uint8)
    write_png(out / ds.records[0].files["edges"], bad)
    with pytest.raises(SimrealError, match="edges must be 0 or 255") as err:
        validate_dataset(out)
    assert err.value.path == out / ds.records[0].files["edges"]
    with pytest.raises(SimrealError, match="no 'image'"):
        _no_image(tmp_path)


def _no_image(tmp_path: Path) -> None:
    from simreal.data.format import DatasetInfo, SampleRecord
    from simreal.data.writer import write_dataset

    info = DatasetInfo(modality="ct", domain="real", image_size=(4, 4), files=("ct",))
    src = write_dataset(tmp_path / "ct_only", info, [(SampleRecord(id="a", files={}), {"ct": np.zeros((4, 4), np.float32)})])
    make_mask_dataset(src, tmp_path / "y")
