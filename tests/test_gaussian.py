import numpy as np
import ot
import pytest
import scipy.linalg
from loop_helpers import simulate
from scipy.stats import ks_2samp

from madutils import gaussian
from madutils.data import GaussianSource
from madutils.models.gaussian import GaussianFamily


def test_fit_matches_numpy():
    x = np.random.default_rng(0).normal(size=(50, 4)) @ np.diag([1, 2, 3, 4]) + 7
    mu, cov = gaussian.fit(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, ddof=1))


def test_fit_batched_matches_loop():
    x = np.random.default_rng(1).normal(size=(3, 20, 5))
    mu, cov = gaussian.fit(x)
    for i in range(3):
        np.testing.assert_allclose(cov[i], np.cov(x[i], rowvar=False))
        np.testing.assert_allclose(mu[i], x[i].mean(0))


@pytest.mark.parametrize("n", [0, 1])
def test_fit_rejects_too_few_samples(n):
    with pytest.raises(ValueError, match="n >= 2|n = "):
        gaussian.fit(np.zeros((n, 3)))


def test_fit_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        gaussian.fit(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]))


@pytest.mark.parametrize("lam", [0.0, -0.5, 1.5, float("nan"), "x"])
def test_sample_rejects_invalid_lambda(lam):
    with pytest.raises(ValueError, match="lam"):
        gaussian.sample(np.zeros(2), np.eye(2), 10, lam)


def test_sample_has_biased_covariance():
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = gaussian.sample(np.array([1.0, -1.0]), cov, 200_000, 0.6, 0)
    np.testing.assert_allclose(x.mean(0), [1.0, -1.0], atol=0.01)
    np.testing.assert_allclose(np.cov(x, rowvar=False), 0.6 * cov, atol=0.02)


def test_sample_from_singular_covariance():
    x = gaussian.sample(np.zeros(3), np.diag([1.0, 0.0, 0.0]), 1000, 1.0, 0)
    assert np.all(np.isfinite(x))
    assert np.allclose(x[:, 1:], 0)


def _w2_scipy(m1, c1, m2, c2):
    r2 = scipy.linalg.sqrtm(c2)
    cross = scipy.linalg.sqrtm(r2 @ c1 @ r2)
    return np.sqrt(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(cross)))


@pytest.mark.parametrize("d", [1, 2, 10, 50])
def test_w2_matches_scipy_and_pot(d):
    rng = np.random.default_rng(d)
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    c1, c2 = a @ a.T / d + 0.1 * np.eye(d), b @ b.T / d + 0.1 * np.eye(d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    got = gaussian.w2(m1, c1, m2, c2)
    np.testing.assert_allclose(got, _w2_scipy(m1, c1, m2, c2), rtol=1e-8)
    np.testing.assert_allclose(got, ot.gaussian.bures_wasserstein_distance(m1, m2, c1, c2), rtol=1e-6)


def test_w2_closed_forms_and_degenerate_cases():
    d = 4
    assert gaussian.w2(np.zeros(d), np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(0, abs=1e-7)
    # between zero covariances it is the distance of the means
    assert gaussian.w2(np.zeros(d), np.zeros((d, d)), np.ones(d), np.zeros((d, d))) == pytest.approx(2.0)
    # N(0, s² I) vs N(0, I): sqrt(d) |s − 1|
    assert gaussian.w2(np.zeros(d), 4 * np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(np.sqrt(d))
    # a rank-1 covariance against the identity stays finite and real
    v = np.ones((d, 1))
    value = gaussian.w2(np.zeros(d), v @ v.T, np.zeros(d), np.eye(d))
    assert np.isfinite(value) and value > 0


def test_family_and_source_in_the_engine_protocol():
    fam = GaussianFamily()
    src = GaussianSource.standard(3)
    x = src.draw(500, 0)
    model = fam.fit(x, 0)
    y = fam.sample(model, 500, 0.5, 1)
    assert y.shape == (500, 3)
    assert np.trace(np.cov(y, rowvar=False)) == pytest.approx(0.5 * np.trace(model.cov), rel=0.2)
    np.testing.assert_array_equal(src.draw(5, 3), src.draw(5, 3))


# -- the batched Monte Carlo ---------------------------------------------------------------------------------------

SETTINGS = [
    dict(d=5, n_ini=20, n_s=10, real="none", lam=1.0),
    dict(d=10, n_ini=8, n_s=6, real="none", lam=0.8),  # n < d: singular covariances
    dict(d=4, n_ini=40, n_s=30, real="fresh", n_r=20, lam=0.7, memory=3),
    dict(d=4, n_ini=50, n_s=10, real="fixed", n_r=30, lam=0.9, accumulate=True),
    dict(d=30, n_ini=12, n_s=15, real="fresh", n_r=5, lam=1.0),  # n_r + n_s < d
]


@pytest.mark.slow
@pytest.mark.parametrize("kw", SETTINGS)
def test_exact_and_samples_have_the_same_distribution(kw):
    gens = 5
    a = simulate(generations=gens, trials=2000, method="exact", seed=1, **kw)
    b = simulate(generations=gens, trials=2000, method="samples", seed=2, **kw)
    pvalues = [ks_2samp(getattr(a, m)[:, t], getattr(b, m)[:, t]).pvalue for m in ("w2", "trace") for t in range(gens)]
    # 10 tests per setting: with a Bonferroni bound a true difference of distribution fails this
    assert min(pvalues) > 0.001 / len(pvalues), pvalues


def test_simulate_is_seeded():
    kw = dict(d=3, generations=4, trials=20, n_ini=10, n_s=10, real="fresh", n_r=5, lam=0.9, memory=2)
    for method in ("exact", "samples"):
        a, b = simulate(method=method, seed=5, **kw), simulate(method=method, seed=5, **kw)
        c = simulate(method=method, seed=6, **kw)
        np.testing.assert_array_equal(a.w2, b.w2)
        assert not np.array_equal(a.w2, c.w2)


def test_simulate_trace_expectation_is_lambda_power():
    """E[tr Σ_t] = λ^(t−1) tr Σ_0 (eq. 2): checked within 4 standard errors."""
    res = simulate(d=3, generations=4, trials=20000, n_ini=20, n_s=20, lam=0.7, var0=[1.0, 2.0, 0.5])
    expected = gaussian.expected_trace(4, 0.7, 3.5)
    se = res.trace.std(0) / np.sqrt(res.trace.shape[0])
    assert np.all(np.abs(res.trace.mean(0) - expected) < 4 * se)


def test_simulate_real_only_w2_matches_samples_reference():
    """Generation 1 of any loop is a fit on n_ini real samples: its W2 to N(0, I) against a direct computation."""
    d, n, trials = 6, 40, 3000
    res = simulate(d=d, generations=1, trials=trials, n_ini=n, n_s=0, seed=3)
    rng = np.random.default_rng(4)
    direct = [gaussian.w2(*gaussian.fit(rng.normal(size=(n, d))), np.zeros(d), np.eye(d)) for _ in range(trials)]
    assert ks_2samp(res.w2[:, 0], direct).pvalue > 1e-3


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(real="fresh", n_r=0), "n_r = 0"),
        (dict(n_s=-1), "n_s"),
        (dict(lam=0.0), "lam"),
        (dict(real="sideways"), "loop kind"),
        (dict(real="fixed", n_r=100), "n_r"),
        (dict(memory=2, accumulate=True), "accumulate"),
        (dict(method="fast"), "method"),
        (dict(n_ini=1), "n_ini"),
    ],
)
def test_simulate_rejects_bad_input(kw, match):
    args = dict(d=2, generations=3, trials=2, n_ini=10, n_s=5) | kw
    with pytest.raises(ValueError, match=match):
        simulate(**args)
