"""Fréchet distance between Gaussian fits of features (FID, Heusel et al. 2017; for MNIST on LeNet features, as
the paper's footnote 3 does, still called "FID").

FID is the squared 2-Wasserstein distance between the two Gaussians; it is computed by
:func:`madutils.gaussian.w2_squared`: with a factor Σ2 = L Lᵀ (Cholesky, or an eigendecomposition when Σ2 is
singular), tr (Σ1 Σ2)^{1/2} is the sum of the square roots of the eigenvalues of the symmetric Lᵀ Σ1 L. This
replaces ``scipy.linalg.sqrtm`` of the non-symmetric product Σ1 Σ2: the result is real and finite for the
rank-deficient covariances of collapsed generations (fewer samples than dimensions, duplicated samples), where
``sqrtm`` gives complex parts or needs an ``eps`` added to the diagonals, and it is an order of magnitude faster.
"""

from __future__ import annotations

import numpy as np

from ..gaussian import w2_squared


def check_features(x, name: str, dim: int | None = None, min_rows: int = 2) -> np.ndarray:
    """A 2-D finite feature matrix, with errors that name the argument."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples × features), got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} has {x.shape[1]} features per sample, the other set has {dim}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} has {x.shape[0]} samples; at least {min_rows} are needed")
    for start in range(0, x.shape[0], 8192):  # chunked: no full-size temporary for large sets
        if not np.all(np.isfinite(x[start : start + 8192])):
            raise ValueError(f"{name} contains NaN or infinite values")
    return x


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a feature matrix, in float64."""
    x = check_features(features, "features").astype(np.float64, copy=False)
    mu = x.mean(axis=0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}); never complex, never NaN."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"shapes do not match: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )
    for name, a in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or infinite values")
    return float(w2_squared(mu1, sigma1, mu2, sigma2))


def fid(features_a, features_b) -> float:
    """FID between two feature sets (rows are samples)."""
    a = check_features(features_a, "features_a")
    check_features(features_b, "features_b", dim=a.shape[1])
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))
