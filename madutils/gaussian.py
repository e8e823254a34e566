"""Gaussian closed forms (paper §3.1, eq. 1 and App. A): the unbiased fit, biased sampling N(μ, λΣ), the
2-Wasserstein distance between Gaussians (what FID computes on Gaussian fits of features) and the exact
expectations of the fully synthetic loop.

In the fully synthetic loop E[μ_t | μ_{t-1}] = μ_{t-1} and E[Σ_t | Σ_{t-1}] = λ Σ_{t-1} (eq. 2): μ_t is a martingale
(a random walk), Σ_t a supermartingale that goes to 0 almost surely. This module is the bottom layer of the package:
it imports nothing from it but :mod:`madutils.utils`. The loop family is :mod:`madutils.models.gaussian`, the
batched Monte Carlo :mod:`madutils.montecarlo`, the fresh-loop analysis :mod:`madutils.fresh`.
"""

from __future__ import annotations

import math

import numpy as np

from .utils import check_int, check_lam


def fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unbiased sample mean and covariance of eq. (1); ``x`` has shape ``(..., n, d)``.

    Returns ``mu`` of shape ``(..., d)`` and ``cov`` of shape ``(..., d, d)`` (normalised by ``n - 1``).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., n, d), got shape {x.shape}")
    n = x.shape[-2]
    if n < 2:
        raise ValueError(f"cannot fit a Gaussian to n = {n} sample(s): the unbiased covariance needs n >= 2")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite values; a Gaussian cannot be fitted to them")
    mu = x.mean(axis=-2)
    xc = x - mu[..., None, :]
    cov = np.swapaxes(xc, -1, -2) @ xc / (n - 1)
    return mu, cov


def sample(
    mu: np.ndarray, cov: np.ndarray, n: int, lam: float = 1.0, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``n`` samples from N(mu, lam * cov), the biased sampling of §2.3 (λ = 1 is unbiased).

    Works for singular covariances (a collapsed model): see :func:`psd_factor`.
    """
    lam = check_lam(lam)
    n = check_int(n, "n", 0)
    rng = np.random.default_rng(rng)
    mu = np.asarray(mu, dtype=np.float64)
    low = psd_factor(cov)
    z = rng.standard_normal((n, mu.shape[-1]))
    return mu + math.sqrt(lam) * z @ low.T


def psd_factor(cov: np.ndarray) -> np.ndarray:
    """A matrix L with L Lᵀ = cov (batched): the Cholesky factor, or, when Cholesky fails (singular covariances,
    e.g. fits on fewer than d + 1 samples), the symmetric-eigendecomposition factor V diag(sqrt(max(w, 0)))."""
    cov = np.asarray(cov, dtype=np.float64)
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0, None))[..., None, :]


def w2_squared(mu1, cov1, mu2, cov2, factor2: np.ndarray | None = None) -> np.ndarray:
    """Squared 2-Wasserstein distance between N(mu1, cov1) and N(mu2, cov2), batched over leading axes (FID is
    this quantity for Gaussian fits of features).

    W2² = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ1 Σ2)^{1/2}. With any L such that L Lᵀ = Σ2, Σ1 Σ2 = Σ1 L Lᵀ has the
    eigenvalues of the symmetric positive semi-definite Lᵀ Σ1 L, so tr (Σ1 Σ2)^{1/2} is the sum of the square
    roots of its eigenvalues (negative round-off clipped): real and finite for singular and zero covariances, and
    a Cholesky factor plus one symmetric eigenvalue problem is much cheaper than ``scipy.linalg.sqrtm``.
    ``factor2`` is such an L when already known (a reference set reused across generations).
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    cov1, cov2 = _check_cov(cov1, "cov1"), _check_cov(cov2, "cov2")
    for name, mu in (("mu1", mu1), ("mu2", mu2)):
        if not np.all(np.isfinite(mu)):
            raise ValueError(f"{name} contains NaN or infinite values; W2 is defined for finite means only")
    low = psd_factor(cov2) if factor2 is None else factor2
    middle = np.swapaxes(low, -1, -2) @ cov1 @ low
    middle = (middle + np.swapaxes(middle, -1, -2)) / 2
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum(axis=-1)
    sq = (
        ((mu1 - mu2) ** 2).sum(axis=-1)
        + np.trace(cov1, axis1=-2, axis2=-1)
        + np.trace(cov2, axis1=-2, axis2=-1)
        - 2 * cross
    )
    return np.clip(sq, 0.0, None)


def w2(mu1, cov1, mu2, cov2) -> np.ndarray:
    """2-Wasserstein distance (not squared) between N(mu1, cov1) and N(mu2, cov2); batched over leading axes.
    Real and finite for singular and zero covariances (see :func:`w2_squared`)."""
    return np.sqrt(w2_squared(mu1, cov1, mu2, cov2))


def _check_cov(cov, name: str) -> np.ndarray:
    """A covariance argument: finite, symmetric and positive semi-definite up to round-off (an error names it
    otherwise, instead of a silent nan or a clipped 0)."""
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., d, d), got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{name} contains NaN or infinite values; it is not a covariance matrix")
    scale = np.abs(cov).max(initial=0.0)
    if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-8, atol=1e-12 * max(scale, 1e-300)):
        raise ValueError(f"{name} is not symmetric; it is not a covariance matrix")
    if scale > 0 and np.linalg.eigvalsh(cov).min() < -1e-8 * scale:
        raise ValueError(
            f"{name} has a negative eigenvalue ({np.linalg.eigvalsh(cov).min():.3g}): a covariance matrix must be "
            "positive semi-definite"
        )
    return cov


def expected_trace(generations: int, lam: float, trace0: float) -> np.ndarray:
    """E[tr Σ_t] = λ^(t−1) tr Σ_0 in the fully synthetic loop (eq. 2; generation 1 fits unbiased real data)."""
    return trace0 * lam ** np.arange(generations)


def expected_mean_sq_dist(generations: int, lam: float, n_ini: int, n_s: int, trace0: float) -> np.ndarray:
    """E‖μ_t − μ_0‖² in the fully synthetic loop: the random walk of §3.1 adds λ E[tr Σ_{s−1}] / n_s at step s.

    E‖μ_1 − μ_0‖² = tr Σ_0 / n_ini and E‖μ_t − μ_{t−1}‖² = λ E[tr Σ_{t−1}] / n_s = λ^{t−1} tr Σ_0 / n_s.
    """
    steps = np.concatenate([[trace0 / n_ini], trace0 * lam ** np.arange(1, generations) / n_s])
    return np.cumsum(steps)
