"""Families for engine tests. ``TagFamily`` makes samples that say where they come from: a row is
(origin, id), origin 0 for real data and t for a sample of generation t's model; fitting keeps the training set."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from madutils import montecarlo
from madutils.loops import LoopConfig
from madutils.models.gaussian import GaussianFamily
from madutils.store import Run


def simulate(d, trials, method="exact", var0=None, **loop):
    """The batched Monte Carlo of the loop ``LoopConfig(**loop)``."""
    return montecarlo.simulate(LoopConfig(**loop), d, trials, method=method, var0=var0)


def stored_runs(store, folder):
    """The runs stored under ``<store>/<folder>/``."""
    import json

    for cfg in sorted((store.root / folder).glob("*/config.json")):
        yield Run(cfg.parent, json.loads(cfg.read_text()), cfg.parent.name)


@dataclass(frozen=True)
class TagSource:
    name: str = "tags"

    def draw(self, n, seed):
        ids = np.random.default_rng(seed).choice(10**9, size=n, replace=False)
        return np.stack([np.zeros(n, dtype=np.int64), ids], axis=1)


@dataclass(frozen=True)
class TagFamily:
    name: str = "tags"

    def fit(self, data, seed):
        origins = data[:, 0]
        return {"t": int(origins.max()) + 1 if len(origins) else 1, "train": data.copy()}

    def sample(self, model, n, lam, seed):
        ids = np.random.default_rng(seed).integers(0, 10**9, size=n)
        return np.stack([np.full(n, model["t"], dtype=np.int64), ids], axis=1)


@dataclass(frozen=True)
class RecordTrainingSet:
    """Evaluation hook: store the training set of G^t with the generation."""

    def __call__(self, model, output, t):
        return {"train": model["train"], "n_train": len(model["train"])}


record_training_set = RecordTrainingSet()


@dataclass(frozen=True)
class SlowGaussianFamily(GaussianFamily):
    """The Gaussian family with a pause in every fit, so that a test can kill a run in the middle of a generation."""

    pause: float = 0.05

    def fit(self, data, seed):
        time.sleep(self.pause)
        return super().fit(data, seed)


@dataclass(frozen=True)
class BigHook:
    """Evaluation hook with a few MB of arrays, so that writing a generation takes a while."""

    def __call__(self, model, output, t):
        rng = np.random.default_rng(t)
        return {"trace": float(np.trace(model.cov)), "mu0": float(model.mu[0]), "noise": rng.normal(size=(600, 500))}


@dataclass(frozen=True)
class TraceHook:
    """Evaluation hook of the Gaussian family: scalars only."""

    def __call__(self, model, output, t):
        return {"trace": float(np.trace(model.cov)), "mu0": float(model.mu[0])}


@dataclass(frozen=True)
class W2Hook:
    """Evaluation hook of the Gaussian family: W2 to N(0, I_d)."""

    d: int

    def __call__(self, model, output, t):
        from madutils import gaussian

        return {"w2": float(gaussian.w2(model.mu, model.cov, np.zeros(self.d), np.eye(self.d)))}


big_hook, trace_hook = BigHook(), TraceHook()


@dataclass(frozen=True)
class FailingGaussianFamily(GaussianFamily):
    """The Gaussian family whose fit fails from generation ``fail_at`` on in the loops with λ = ``fail_lam`` (the
    data it is given say which generation it is: generation 1 fits ``n_ini`` samples, later ones fewer)."""

    fail_lam: float = 0.5
    n_ini: int = 0

    def fit(self, data, seed):
        if len(data) != self.n_ini:
            raise FloatingPointError("loss is NaN")
        return super().fit(data, seed)

    def sample(self, model, n, lam, seed):
        if lam == self.fail_lam:
            return super().sample(model, n - 1, lam, seed)  # one short: the next fit fails
        return super().sample(model, n, lam, seed)


def thread_pools_after_a_fit() -> dict[str, int]:
    """In a worker: the thread count of every thread pool (BLAS, OpenMP) loaded once scikit-learn's GMM has been fitted,
    by library file."""
    import numpy as np
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_info

    GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(200, 2)))
    return {info["filepath"]: info["num_threads"] for info in threadpool_info()}
