"""MM-FID / MM-STD: closed-form FIDs through a stub extractor, both aggregations (and the released one's
loss of scale), MM-FID(X, X) = 0 in the absolute modes, every image counted (no dropped last batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simreal.errors import SimrealError
from simreal.metrics.features import RandomConvFeatures
from simreal.metrics.mmfid import (
    aggregate,
    feature_std,
    grey_luma,
    l2_normalise_rows,
    mm_fid,
    mm_fid_from_features,
    multiscale_features,
)

SCALES = (16, 32, 64, 128)


class MeanTimesScale:
    """Stub extractor: one feature, the image mean times (side / 16) times ``gain``.

    For constant images of grey value c the feature at scale s is ``c / 255 * s / 16 * gain`` exactly, so
    the FID between two sets whose values differ by a constant shift d is ``(d / 255 * s / 16 * gain)^2``.
    """

    num_features = 1
    input_size = None

    def __init__(self, gain: float = 1.0):
        self.gain = gain
        self.name = f"mean-x-scale:{gain}"
        self.calls: list[int] = []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        assert images.ndim == 4 and images.shape[1] == 3 and images.shape[2] == images.shape[3]
        self.calls.append(images.shape[0])
        return images.mean(dim=(1, 2, 3))[:, None].double() * images.shape[-1] / 16 * self.gain


def _constant_images(folder: Path, values, size=(20, 24)) -> Path:
    folder.mkdir(parents=True)
    for n, v in enumerate(values):
        Image.fromarray(np.full(size, v, np.uint8)).save(folder / f"{n:03d}.png")
    return folder


A_VALUES = [40, 60, 80, 100, 120]
SHIFT = 30


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mm")
    return _constant_images(root / "a", A_VALUES), _constant_images(root / "b", [v + SHIFT for v in A_VALUES])


def test_pure_functions_closed_form() -> None:
    assert feature_std([[0.0, 1.0], [2.0, 5.0]]) == pytest.approx(1.5)  # (std 1 + std 2) / 2, ddof 0
    np.testing.assert_allclose(l2_normalise_rows([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]]), [[1 / 3, 2 / 3, 2 / 3], [0, 0, 0]])
    v = np.array([[1.0, 4.0, 16.0, 64.0]])
    assert aggregate(v, "l2-row")[0] == pytest.approx(85 / np.sqrt(4369) / 4)
    assert aggregate(v, "mean") == (pytest.approx(85 / 4), pytest.approx(np.std(v)))
    assert aggregate(v, "ref-normalised", reference=2 * v) == (pytest.approx(0.5), pytest.approx(0.0))
    with pytest.raises(SimrealError, match="reference"):
        aggregate(v, "ref-normalised")
    with pytest.raises(SimrealError, match="aggregate"):
        aggregate(v, "max")  # type: ignore[arg-type]
    # The released aggregation is bounded for one extractor and 4 scales: [0.25, 0.5], whatever the FIDs.
    rng = np.random.default_rng(0)
    for row in (rng.uniform(0, 1e6, (200, 4)) ** rng.uniform(0.1, 3, (200, 1))):
        assert 0.25 - 1e-12 <= aggregate(row[None], "l2-row")[0] <= 0.5 + 1e-12
    assert aggregate([[1e-9, 1e-9, 1e-9, 1e-9]], "l2-row")[0] == pytest.approx(0.5)  # tiny FIDs score the maximum
    assert aggregate([[5e3, 5e3, 5e3, 5e3]], "l2-row")[0] == pytest.approx(0.5)


def test_grey_luma_matches_pil() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(grey_luma(rgb), np.asarray(Image.fromarray(rgb).convert("L")))


def test_closed_form_fids_both_aggregations_and_std(sets) -> None:
    a, b = sets
    e1, e2 = MeanTimesScale(1.0), MeanTimesScale(2.0)
    r = mm_fid(a, b, extractors=[e1, e2], scales=SCALES, aggregate_mode="mean", batch_size=2)
    base = (SHIFT / 255.0) ** 2 * np.array([1.0, 4.0, 16.0, 64.0])  # (d / 255 * s / 16)^2
    np.testing.assert_allclose(r.fid, [base, 4 * base], rtol=1e-6)
    assert r.mm_fid == pytest.approx(5 * base.sum() / 8, rel=1e-6)
    b_feat = (np.array(A_VALUES) + SHIFT) / 255.0
    np.testing.assert_allclose(r.std, [b_feat.std() * np.array(SCALES) / 16, 2 * b_feat.std() * np.array(SCALES) / 16], rtol=1e-6)
    # The released aggregation: both rows normalise to the same unit vector, so extractor 2's 4x larger
    # FIDs vanish, and the result does not depend on how far apart the sets are.
    l2 = r.summary("l2-row")
    assert l2["mm_fid"] == pytest.approx(85 / np.sqrt(4369) / 4, rel=1e-6) and l2["mm_fid_spread"] > 0
    far = _constant_images(a.parent / "far", [v + 4 * SHIFT for v in A_VALUES])
    r_far = mm_fid(a, far, extractors=[e1], scales=SCALES, aggregate_mode="l2-row")
    assert r_far.mm_fid == pytest.approx(l2["mm_fid"], rel=1e-6)  # 16x the FID, the same l2-row MM-FID
    assert mm_fid(a, far, extractors=[e1], scales=SCALES, aggregate_mode="mean").mm_fid == pytest.approx(
        16 * base.mean(), rel=1e-6
    )
    assert r.to_dict()["all_aggregates"]["l2-row"]["mm_fid"] == pytest.approx(l2["mm_fid"])


def test_mm_fid_of_a_set_with_itself_is_zero(sets) -> None:
    a, _ = sets
    for mode in ("mean", "l2-row"):
        r = mm_fid(a, a, extractors=[MeanTimesScale()], scales=SCALES, aggregate_mode=mode)
        assert r.mm_fid == 0.0 and (r.fid == 0).all()
    conv = RandomConvFeatures(num_features=8, seed=3)
    rng = np.random.default_rng(0)
    folder = a.parent / "noise"
    folder.mkdir()
    for n in range(12):
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(folder / f"{n}.png")
    r = mm_fid(folder, folder, extractors=[conv], scales=(16, 32), aggregate_mode="ref-normalised")
    assert r.mm_fid == pytest.approx(0.0, abs=1e-9) and r.mm_std == pytest.approx(1.0)
    assert (r.reference_fid > 0).all()


def test_every_image_counts_and_extractors_must_keep_sizes(sets) -> None:
    a, _ = sets
    stub = MeanTimesScale()
    feats = multiscale_features(a, [stub], (16, 32), batch_size=2)
    assert feats[(stub.name, 16)].shape == (5, 1) and stub.calls == [2, 2, 2, 2, 1, 1]  # last batch kept
    np.testing.assert_allclose(feats[(stub.name, 16)][:, 0], np.array(A_VALUES) / 255.0, rtol=1e-6)
    with pytest.raises(SimrealError, match="input_size=None"):
        multiscale_features(a, [RandomConvFeatures(input_size=(16, 16))], (16,))
    with pytest.raises(SimrealError, match="distinct"):
        multiscale_features(a, [stub, stub], (16,))
    with pytest.raises(SimrealError, match="no features"):
        mm_fid_from_features(feats, feats, [stub.name], (16, 64))
