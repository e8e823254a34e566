"""Gaussian mixtures in the fully synthetic loop (App. B.2, Fig. 14, 15).

The reference is the 2-D 25-mode distribution of the GAN mode-collapse literature: an equal-weight mixture of
isotropic Gaussians centred on the 5 × 5 grid {−4, −2, 0, 2, 4}² (spacing 2) with standard deviation 0.05.

The family fits scikit-learn's ``GaussianMixture`` (25 components, full covariances) and samples from the fit
with every component covariance scaled by λ. Two of scikit-learn's pitfalls are avoided on purpose:
``GaussianMixture.sample`` draws from the estimator's own ``random_state`` (an integer state returns the same
samples on every call) and returns the samples ordered by component; sampling here draws the components and the
points with a generator seeded per call, in random order. ``reg_covar`` (a floor added to the variances, 1e-6
by default) keeps a collapsed component from becoming singular.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..plain import storable
from ..utils import check_int, check_lam


@storable
@dataclass
class GMMModel:
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    converged: bool


@dataclass(frozen=True)
class GMMFamily:
    """``GaussianMixture(n_components)`` fitted by EM (k-means++ initialisation, ``n_init`` restarts); λ scales
    every component covariance when sampling."""

    n_components: int = 25
    n_init: int = 1
    max_iter: int = 200
    reg_covar: float = 1e-6
    name: str = "gmm"

    def fit(self, data: np.ndarray, seed: int) -> GMMModel:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        x = np.asarray(data, dtype=np.float64)
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise ValueError(f"GMM training data must be a finite 2-D array, got shape {x.shape}")
        distinct = len(np.unique(x, axis=0))
        if distinct < self.n_components:
            raise ValueError(
                f"cannot fit {self.n_components} mixture components to {len(x)} samples with {distinct} distinct "
                "values (the data have collapsed, or n_s is smaller than the number of components)"
            )
        gm = GaussianMixture(
            self.n_components,
            covariance_type="full",
            n_init=self.n_init,
            max_iter=self.max_iter,
            reg_covar=self.reg_covar,
            init_params="k-means++",
            random_state=seed % 2**32,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(x)
        return GMMModel(gm.weights_.copy(), gm.means_.copy(), gm.covariances_.copy(), bool(gm.converged_))

    def sample(self, model: GMMModel, n: int, lam: float, seed: int) -> np.ndarray:
        lam = check_lam(lam)
        n = check_int(n, "n", 0)
        rng = np.random.default_rng(seed)
        comp = rng.choice(len(model.weights), size=n, p=model.weights / model.weights.sum())
        low = np.linalg.cholesky(model.covariances)
        z = rng.standard_normal((n, model.means.shape[1]))
        return model.means[comp] + np.sqrt(lam) * np.einsum("nij,nj->ni", low[comp], z)


def density(model: GMMModel, xy: np.ndarray) -> np.ndarray:
    """The mixture density at points ``xy`` (m, 2)."""
    out = np.zeros(len(xy))
    for w, m, c in zip(model.weights, model.means, model.covariances, strict=True):
        diff = xy - m
        inv = np.linalg.inv(c)
        q = np.einsum("ni,ij,nj->n", diff, inv, diff)
        out += w * np.exp(-0.5 * q) / (2 * np.pi * np.sqrt(np.linalg.det(c)))
    return out
