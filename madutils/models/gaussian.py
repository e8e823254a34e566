"""The Gaussian model of §3.1 as a family for the loop engine: fit eq. (1), sample N(μ, λΣ)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import gaussian
from ..plain import storable


@storable
class GaussianModel(NamedTuple):
    mu: np.ndarray
    cov: np.ndarray


@dataclass(frozen=True)
class GaussianFamily:
    """The Gaussian model of §3.1 as a family for :func:`madutils.loops.run_loop`: fit eq. (1), sample N(μ, λΣ)."""

    name: str = "gaussian"

    def fit(self, data: np.ndarray, seed: int) -> GaussianModel:
        return GaussianModel(*gaussian.fit(data))

    def sample(self, model: GaussianModel, n: int, lam: float, seed: int) -> np.ndarray:
        return gaussian.sample(model.mu, model.cov, n, lam, np.random.default_rng(seed))
