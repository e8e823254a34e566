import json

import numpy as np
import pytest
import torch
from prdc import compute_prdc
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.spatial.distance import cdist

from madutils.metrics import (
    ImageMetrics,
    InceptionFeatures,
    InceptionWeightsError,
    LeNetFeatures,
    ReferenceSet,
    fid,
    frechet_distance,
    gaussian_stats,
    kth_neighbour_radii,
    precision_recall,
    tsne,
)


def _stats(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)) + shift
    return gaussian_stats(x)


@pytest.mark.parametrize("d, n", [(2, 500), (84, 2000), pytest.param(2048, 4000, marks=pytest.mark.slow), (300, 100)])
def test_frechet_distance_matches_pytorch_fid(d, n):
    m1, s1 = _stats(n, d, 1)
    m2, s2 = _stats(n, d, 2, shift=0.1)
    ours = frechet_distance(m1, s1, m2, s2)
    ref = calculate_frechet_distance(m1, s1, m2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_equal_covariances_is_mean_distance():
    m1, s1 = _stats(1000, 50, 3)
    m2 = m1 + np.linspace(-1, 1, 50)
    assert frechet_distance(m1, s1, m2, s1) == pytest.approx(np.sum((m1 - m2) ** 2), rel=1e-9, abs=1e-9 * np.trace(s1))


@pytest.mark.parametrize("rank", [0, 1, 10])
def test_frechet_distance_is_finite_for_singular_covariances(rank):
    d = 64
    rng = np.random.default_rng(rank)
    a = rng.normal(size=(d, rank))
    s1 = a @ a.T
    m2, s2 = _stats(30, d, 4)  # fewer samples than dimensions: singular too
    value = frechet_distance(np.zeros(d), s1, m2, s2)
    assert np.isfinite(value) and isinstance(value, float) and value >= 0
    assert np.isfinite(frechet_distance(m2, s2, np.zeros(d), s1))


def test_fid_rejects_bad_features():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="features_b has 3 features"):
        fid(rng.normal(size=(10, 4)), rng.normal(size=(10, 3)))
    bad = rng.normal(size=(10, 4))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="features_a contains NaN"):
        fid(bad, rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.mark.parametrize("n_real, n_fake, d", [(300, 200, 8), (600, 700, 64), (1000, 1000, 256)])
def test_precision_recall_matches_prdc(n_real, n_fake, d):
    rng = np.random.default_rng(d)
    real = rng.normal(size=(n_real, d))
    fake = rng.normal(size=(n_fake, d)) * 1.15 + 0.05
    ref = compute_prdc(real, fake, nearest_k=5)
    p, r = precision_recall(real, fake, k=5)
    assert p == ref["precision"] and r == ref["recall"]


@pytest.mark.parametrize("n_real, n_fake, d", [(300, 200, 3), (300, 200, 8), (600, 700, 64), (1000, 1000, 256)])
def test_density_coverage_match_prdc(n_real, n_fake, d):
    """Density and coverage (Naeem et al. 2020) against the prdc package, on both distance paths (d = 3 takes the
    exact low-dimensional one), with the fakes shifted so that density is well away from 1."""
    rng = np.random.default_rng(d + 1)
    real = rng.normal(size=(n_real, d))
    fake = rng.normal(size=(n_fake, d)) * 0.7 + 0.3
    ref = compute_prdc(real, fake, nearest_k=5)
    got = ReferenceSet(real, k=5).prdc(fake)
    assert got["density"] == pytest.approx(ref["density"], rel=1e-12)
    assert got["coverage"] == ref["coverage"]
    assert got["precision"] == ref["precision"] and got["recall"] == ref["recall"]
    assert ref["density"] > 1.05  # the shrunken fakes sit in the dense middle: the test would see a count off by one


def test_fid_bootstrap_standard_error():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(2000, 6))
    ref = ReferenceSet(real)
    fakes = [rng.normal(size=(300, 6)) + 0.2 for _ in range(60)]
    spread = np.std([ref.fid(f) for f in fakes], ddof=1)  # the FID's spread over independent fake sets
    se = np.mean([ref.fid_se(f, resamples=40, seed=i) for i, f in enumerate(fakes[:8])])
    assert 0.6 * spread < se < 1.6 * spread
    assert set(ref.evaluate(fakes[0], fid_resamples=3)) == {
        "fid",
        "fid_se",
        "precision",
        "recall",
        "density",
        "coverage",
    }


def test_precision_recall_is_identical_for_every_block_size():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(700, 32)).astype(np.float32)
    fake = (rng.normal(size=(650, 32)) * 0.9).astype(np.float32)
    results = {precision_recall(real, fake, block=b) for b in (16, 100, 256, 5000)}
    assert len(results) == 1


def test_radii_match_brute_force_with_duplicates():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 6))
    x = np.concatenate([x, x[:30], x[:30]])  # exact duplicates, as a collapsed generator makes
    d = cdist(x, x)
    np.fill_diagonal(d, -1)
    np.testing.assert_allclose(kth_neighbour_radii(x, 5, block=17), np.sort(d, axis=1)[:, 5], atol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5, 7])
def test_low_dimensional_path_is_identical_to_the_block_path(monkeypatch, d):
    from madutils.metrics import prd

    rng = np.random.default_rng(d)
    centres = rng.normal(size=(25, d)) * 3
    real = centres[rng.integers(0, 25, 2000)] + 0.05 * rng.normal(size=(2000, d))
    # a collapsing generation: few modes, exact duplicates and near-duplicates
    fake = centres[rng.integers(0, 4, 1000)] + 0.01 * rng.normal(size=(1000, d))
    fake[::7] = fake[0]
    fake[1::11] = fake[1] + 1e-12
    monkeypatch.setattr(prd, "_LOW_DIM_BYTES", 50_000)  # many row blocks
    low = (kth_neighbour_radii(fake), precision_recall(real, fake))
    monkeypatch.setattr(prd, "LOW_DIM", 0)
    block = (kth_neighbour_radii(fake, block=300), precision_recall(real, fake, block=300))
    np.testing.assert_array_equal(low[0], block[0])
    assert low[1] == block[1]
    assert 0.9 < low[1][0] and low[1][1] < 0.5


def test_a_set_against_itself_and_the_tie_convention():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10))
    assert precision_recall(x, x) == (1.0, 1.0)
    # groups of k + 1 = 6 identical points: every radius is 0. With "<=" each point covers its own copies; with
    # the strict "<" of the prdc package, computed on exact distances, nothing is covered.
    dup = np.repeat(rng.normal(size=(40, 10)), 6, axis=0)
    assert precision_recall(dup, dup, k=5) == (1.0, 1.0)
    d = cdist(dup, dup)
    radii = np.sort(d, axis=1)[:, 5]
    assert radii.max() == 0.0 and (d < radii[:, None]).any(axis=0).mean() == 0.0


def test_a_collapsed_generator_has_high_precision_and_low_recall():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(1000, 16))
    fake = real[:20][rng.integers(0, 20, size=1000)] + 0.01 * rng.normal(size=(1000, 16))
    p, r = precision_recall(real, fake)
    assert p > 0.95 and r < 0.1


def test_reference_set_reuses_its_statistics():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(500, 20)), rng.normal(size=(400, 20)) + 0.2
    ref = ReferenceSet(real)
    out = ref.evaluate(fake)
    assert out["fid"] == pytest.approx(fid(fake, real), rel=1e-9)
    assert (out["precision"], out["recall"]) == precision_recall(real, fake)
    assert ref.key() == ReferenceSet(real).key() != ReferenceSet(fake).key()


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(fake=np.zeros((4, 20))), "at least 6"),
        (dict(fake=np.zeros((50, 21))), "21 features"),
        (dict(fake=np.full((50, 20), np.inf)), "infinite"),
        (dict(real=np.zeros((50, 20, 1))), "2-D"),
    ],
)
def test_precision_recall_rejects_bad_input(bad, match):
    rng = np.random.default_rng(0)
    args = dict(real=rng.normal(size=(50, 20)), fake=rng.normal(size=(50, 20))) | bad
    with pytest.raises(ValueError, match=match):
        precision_recall(args["real"], args["fake"])


@pytest.fixture(scope="module")
def lenet():
    return LeNetFeatures(progress=False)


def test_lenet_accuracy_and_features(lenet):
    from madutils.data import load_mnist

    x, y = load_mnist("test")
    assert lenet.accuracy >= 0.99
    assert (lenet.classify(x[:2000]) == y[:2000]).mean() >= 0.98
    f = lenet(x[:100])
    assert f.shape == (100, 84) and f.dtype == np.float32
    # 32×32 zero-padded images give the same features (centre crop), floats in [0, 1] the same as uint8
    padded = np.pad(x[:10], ((0, 0), (2, 2), (2, 2)))
    np.testing.assert_allclose(lenet(padded), f[:10], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lenet(x[:10].astype(np.float32) / 255), f[:10], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((3, 2, 28, 28), np.uint8), "shape"),
        (np.full((3, 28, 28), 2.0, np.float32), r"\[0, 1\]"),
        (np.zeros((3, 28, 28), np.int32), "uint8"),
        (np.zeros((3, 20, 20), np.uint8), "28×28"),
    ],
)
def test_lenet_rejects_bad_images(lenet, images, match):
    with pytest.raises(ValueError, match=match):
        lenet(images)


def test_lenet_cache_is_checked(tmp_path, lenet):
    path = tmp_path / "lenet.pt"
    path.write_bytes(lenet.path.read_bytes())
    meta = json.loads(lenet.path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert LeNetFeatures(path=path).accuracy == lenet.accuracy
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(RuntimeError, match="checksum"):
        LeNetFeatures(path=path)


def test_inception_architecture_random_init_and_local_weights(tmp_path):
    net = InceptionFeatures.random_init(seed=0)
    rng = np.random.default_rng(0)
    images = (rng.random((3, 3, 75, 75)) * 255).astype(np.uint8)
    f = net(images)
    assert f.shape == (3, 2048) and np.all(np.isfinite(f))
    assert net(images[:, :1]).shape == (3, 2048)  # grey images are repeated to three channels
    # a weights file in pytorch-fid's format (torchvision Inception3 keys) with the same random weights
    from unittest import mock

    import pytorch_fid.inception as fid_inception

    torch.manual_seed(0)
    with (
        mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(torch.nn.Module, "load_state_dict", lambda *a, **k: None),
    ):
        inner = fid_inception.fid_inception_v3()
    weights = tmp_path / "pt_inception.pth"
    torch.save(inner.state_dict(), weights)
    again = InceptionFeatures(weights=weights)
    np.testing.assert_allclose(again(images), f, rtol=1e-5, atol=1e-12)


def test_missing_inception_weights_say_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv("MAD_OFFLINE", "1")
    monkeypatch.setenv("MAD_DATA", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("MAD_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(InceptionWeightsError, match=r"pt_inception-2015-12-05-6726825d\.pth.*MAD_INCEPTION_WEIGHTS"):
        InceptionFeatures()
    with pytest.raises(InceptionWeightsError, match="does not exist"):
        InceptionFeatures(weights=tmp_path / "nope.pth")


def test_tsne_is_seeded_and_keeps_the_sets_apart():
    rng = np.random.default_rng(0)
    sets = {"real": rng.normal(size=(60, 10)), "fake": rng.normal(size=(40, 10)) + 5}
    a, b = tsne(sets, seed=1), tsne(sets, seed=1)
    assert a["real"].shape == (60, 2) and a["fake"].shape == (40, 2)
    np.testing.assert_array_equal(a["fake"], b["fake"])
    gap = np.linalg.norm(a["real"].mean(0) - a["fake"].mean(0))
    assert gap > 3 * a["real"].std(0).mean()
    with pytest.raises(ValueError, match="common width"):
        tsne({"a": np.zeros((10, 3)), "b": np.zeros((10, 4))})


def test_image_metrics_hook_in_the_engine(lenet, tmp_path):
    from dataclasses import dataclass

    from madutils.data import MnistSource, load_mnist
    from madutils.loops import LoopConfig, run_loop
    from madutils.store import Store

    @dataclass(frozen=True)
    class Resampler:
        """A 'model' that memorises its training set and resamples it (with replacement)."""

        name: str = "resampler"

        def fit(self, data, seed):
            return data

        def sample(self, model, n, lam, seed):
            idx = np.random.default_rng(seed).integers(0, len(model[0]), size=n)
            return model[0][idx], model[1][idx]

    xt, _ = load_mnist("test")
    hook = ImageMetrics(lenet, ReferenceSet(lenet(xt[:2000])), keep_features=50, keep_images=16)
    run = run_loop(
        Resampler(),
        LoopConfig(generations=4, n_ini=500, n_s=500),
        MnistSource(),
        store=Store(tmp_path),
        evaluate=hook,
        progress=False,
    )
    m = run.metrics().pivot_table(index="generation", columns="metric", values="value")
    prdc = ["coverage", "density", "precision", "recall"]
    assert sorted(m.columns) == sorted(["fid", "fid_se", "label_accuracy", *prdc, *[f"{k}_full" for k in prdc]])
    # 500 samples against 500 of the 2,000 reference digits: coverage of a faithful resampler is high, while
    # against all 2,000 most reference balls stay empty
    assert m.coverage.iloc[0] > 0.6 > m.coverage_full.iloc[0]
    assert m.label_accuracy.iloc[0] > 0.95  # real digits, resampled: LeNet reads them right
    # resampling with replacement loses distinct images each generation: recall falls
    assert m.recall.iloc[-1] < m.recall.iloc[0]
    g = run.generation(2)
    assert g.array("features").shape == (50, 84) and g.array("grid").shape == (16, 1, 28, 28)
    assert g.array("labels").shape == (50,)


def test_equal_set_sizes_compare_as_many_reference_points_as_fakes():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(5000, 8)).astype(np.float32)
    fake = rng.normal(size=(500, 8)).astype(np.float32)  # the same distribution
    ref = ReferenceSet(real)
    equal, full = ref.prdc_equal(fake), ref.prdc(fake)
    sub = ref.subset(500)
    assert len(sub.features) == 500 and sub is ref.subset(500)  # one fixed subset, made once
    assert equal == sub.prdc(fake)
    # the same distribution on equal sizes: coverage near 1 and precision near recall; against 10x the points
    # coverage collapses and precision is inflated
    assert equal["coverage"] > 0.9 and full["coverage"] < 0.5
    assert abs(equal["precision"] - equal["recall"]) < 0.05 < full["precision"] - equal["precision"]
    # more fakes than reference points: the first len(reference) fakes
    assert ReferenceSet(real[:300]).prdc_equal(fake) == ReferenceSet(real[:300]).prdc(fake[:300])
    assert ref.subset(10**6) is ref


def test_covering_radii_agree_with_precision_and_name_the_balls():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(400, 8)).astype(np.float32)
    fake = (rng.normal(size=(300, 8)) * 1.5).astype(np.float32)
    ref = ReferenceSet(real, k=5)
    cover = ref.covering_radii(fake, block=64)
    precision, _ = ref.precision_recall(fake)
    assert cover.shape == (300,)
    assert np.isfinite(cover).mean() == pytest.approx(precision, abs=1e-12)
    radii = ref.radii
    dist = np.sqrt(((fake[:, None, :].astype(np.float64) - real[None]) ** 2).sum(-1))
    i = int(np.flatnonzero(np.isfinite(cover))[0])
    assert cover[i] == pytest.approx(radii[dist[i] <= radii].min(), rel=1e-5)
    far = np.full((2, 8), 100.0, np.float32)
    assert np.all(np.isinf(ref.covering_radii(far)))


def test_collapsed_sets_keep_exact_zero_radii_without_a_full_scan():
    """Half of the points are tenfold copies: their radius is exactly 0, with or without the scan over every
    point, and precision and recall agree with a brute-force float64 computation (``<=`` for ties; prdc's ``<``
    would not count a copy as inside a ball of radius 0)."""
    import torch
    from scipy.spatial.distance import cdist

    from madutils.metrics import prd

    rng = np.random.default_rng(0)
    x = np.concatenate([np.repeat(rng.standard_normal((30, 40)), 10, axis=0), rng.standard_normal((300, 40))])
    x = x.astype(np.float32)[rng.permutation(600)]
    s = prd._Set.make(x, x.mean(axis=0, dtype=np.float64), torch.device("cpu"))
    fast, full = prd._radii_sq(s, 5, 128), prd._radii_sq(s, 5, 128, full_scan_zero=True)
    assert torch.equal(fast, full) and int((fast == 0).sum()) == 300
    fake = np.concatenate([x[:200], rng.standard_normal((200, 40)).astype(np.float32)])
    ours = precision_recall(x, fake, k=5, block=128)
    xr, xf = x.astype(np.float64), fake.astype(np.float64)
    r_real = np.sort(cdist(xr, xr, "sqeuclidean"), axis=1)[:, 5]
    r_fake = np.sort(cdist(xf, xf, "sqeuclidean"), axis=1)[:, 5]
    cross = cdist(xr, xf, "sqeuclidean")
    brute = ((cross <= r_real[:, None]).any(axis=0).mean(), (cross <= r_fake[None, :]).any(axis=1).mean())
    assert ours == pytest.approx(brute, abs=1e-12) and ours[0] > 0.5


def test_distances_are_computed_without_tf32_and_the_setting_is_restored(monkeypatch):
    import torch

    from madutils.metrics import prd

    knobs = prd._precision_knobs()
    if not knobs:
        pytest.skip("this PyTorch has no per-backend fp32_precision settings")
    seen = []
    block_sq = prd._block_sq

    def spy(*args):
        seen.append(tuple(k.fp32_precision for k in knobs))
        return block_sq(*args)

    monkeypatch.setattr(prd, "_block_sq", spy)
    before = [k.fp32_precision for k in knobs]
    torch.backends.cuda.matmul.fp32_precision = "tf32"  # what a training set-up (StyleGAN2 on a GPU) leaves behind
    try:
        rng = np.random.default_rng(1)
        precision_recall(rng.normal(size=(60, 20)), rng.normal(size=(60, 20)), block=16)
        assert seen and set(seen) == {("ieee",) * len(knobs)}
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        # the legacy flags, set by other code between two metric calls, do not break the next call (PyTorch raises
        # when the legacy getters are read after the two APIs were mixed)
        for tf32 in (False, True, False):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            precision_recall(rng.normal(size=(60, 20)), rng.normal(size=(60, 20)), block=16)
    finally:
        for k, v in zip(knobs, before, strict=True):
            k.fp32_precision = v


def test_metric_controls_degrade_real_images():
    from types import SimpleNamespace

    from madutils.metrics.controls import CONTROLS, degraded, metric_controls

    rng = np.random.default_rng(0)
    x = np.zeros((300, 28, 28), np.uint8)
    for i in range(300):  # strokes: a random bright bar per image
        r, c = rng.integers(4, 20, 2)
        x[i, r : r + 6, c : c + 2] = 255
    out = degraded(x, seed=1)
    assert list(out) == list(CONTROLS) and all(v.shape == x.shape and v.dtype == np.uint8 for v in out.values())
    np.testing.assert_array_equal(out["real"], x)
    b = out["blurred (σ = 2 px)"]
    assert ((b > 10) & (b < 245)).mean() > 5 * ((x > 10) & (x < 245)).mean()  # blur turns edges grey
    blob_ink = (out["smoothed noise blobs"] > 127).mean()
    assert 0.5 * (x > 127).mean() < blob_ink < 2 * (x > 127).mean()  # the same ink area
    with pytest.raises(ValueError, match="uint8"):
        degraded(x.astype(np.float32))

    def embed(images):
        return np.asarray(images, np.float64).reshape(len(images), -1)[:, ::7] / 255.0

    ref = np.zeros((500, 28, 28), np.uint8)
    for i in range(500):
        r, c = rng.integers(4, 20, 2)
        ref[i, r : r + 6, c : c + 2] = 255
    hook = SimpleNamespace(embed=embed, reference=ReferenceSet(embed(ref)))
    table = metric_controls(hook, x)
    assert list(table.index) == list(CONTROLS) and list(table.columns)[:3] == ["fid", "precision", "recall"]
    assert table.fid["real"] < table.fid.drop("real").min()


def test_images_become_floats_one_batch_at_a_time(monkeypatch):
    from madutils.metrics import features

    x = np.random.default_rng(0).integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    whole = features.as_float_images(x)
    seen = []
    real = features.as_float_images

    def spy(images, *args, **kwargs):
        seen.append(len(images))
        return real(images, *args, **kwargs)

    monkeypatch.setattr(features, "as_float_images", spy)
    got = torch.cat(list(features.float_batches(x, 256)))
    assert torch.equal(got, whole) and max(seen) == 256  # never the whole set at once
    with pytest.raises(ValueError, match="images must be uint8"):
        next(features.float_batches(x.astype(np.int32), 256))


def test_grey_background_share_counts_digits_on_grey():
    from madutils.data import load_mnist
    from madutils.metrics import grey_background_share

    x, _ = load_mnist("test")
    assert grey_background_share(x) == 0.0  # MNIST leaves the frame black
    assert grey_background_share(x[:, None]) == 0.0
    grey = np.clip(x[:100].astype(int) + 60, 0, 255).astype(np.uint8)  # the same digits on a grey background
    assert grey_background_share(grey) == 1.0
    assert grey_background_share(np.concatenate([x[:300], grey])) == pytest.approx(0.25)
    for bad, match in [(x[:0], "non-empty"), (np.zeros((2, 3, 28, 28)), "one channel"), (x[:5, 0], "images")]:
        with pytest.raises(ValueError, match=match):
            grey_background_share(bad)
    with pytest.raises(ValueError, match="border"):
        grey_background_share(x[:5], border=14)
