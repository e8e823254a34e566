"""Gaussian autophagous loops: fits, biased sampling, the 2-Wasserstein distance, the engine family, and a fast
batched Monte Carlo of every loop kind (paper §3.1, §5, App. A and G).

The paper's Gaussian model (§3.1, eq. 1): a generation fits the unbiased sample mean and covariance of its training
data, and samples with bias λ from N(μ_t, λ Σ_t). In the fully synthetic loop E[μ_t | μ_{t-1}] = μ_{t-1} and
E[Σ_t | Σ_{t-1}] = λ Σ_{t-1} (eq. 2): μ_t is a martingale (a random walk), Σ_t a supermartingale that goes to 0
almost surely.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from .utils import check_int, check_lam

# ---------------------------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------------------------


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


def sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (batched), tiny negative eigenvalues clipped."""
    w, v = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


def sample(
    mu: np.ndarray, cov: np.ndarray, n: int, lam: float = 1.0, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``n`` samples from N(mu, lam * cov), the biased sampling of §2.3 (λ = 1 is unbiased).

    Works for singular covariances (a collapsed model): the square root comes from a symmetric eigendecomposition.
    """
    lam = check_lam(lam)
    n = check_int(n, "n", 0)
    rng = np.random.default_rng(rng)
    mu = np.asarray(mu, dtype=np.float64)
    root = sqrt_psd(cov)
    z = rng.standard_normal((n, mu.shape[-1]))
    return mu + math.sqrt(lam) * z @ root.T


def w2(mu1, cov1, mu2, cov2) -> np.ndarray:
    """2-Wasserstein distance (not squared) between N(mu1, cov1) and N(mu2, cov2); batched over leading axes.

    W2² = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr (Σ2^{1/2} Σ1 Σ2^{1/2})^{1/2}. The inner square root is taken through a
    symmetric eigendecomposition, so the result is real and finite for singular and zero covariances.
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    cov1, cov2 = np.asarray(cov1, dtype=np.float64), np.asarray(cov2, dtype=np.float64)
    root2 = sqrt_psd(cov2)
    middle = root2 @ cov1 @ root2
    middle = (middle + np.swapaxes(middle, -1, -2)) / 2
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum(axis=-1)
    sq = (
        ((mu1 - mu2) ** 2).sum(axis=-1)
        + np.trace(cov1, axis1=-2, axis2=-1)
        + np.trace(cov2, axis1=-2, axis2=-1)
        - 2 * cross
    )
    return np.sqrt(np.clip(sq, 0.0, None))


# ---------------------------------------------------------------------------------------------------------------
# The family for the loop engine
# ---------------------------------------------------------------------------------------------------------------


class GaussianModel(NamedTuple):
    mu: np.ndarray
    cov: np.ndarray


@dataclass(frozen=True)
class GaussianFamily:
    """The Gaussian model of §3.1 as a family for :func:`madutils.loops.run_loop`: fit eq. (1), sample N(μ, λΣ)."""

    name: str = "gaussian"

    def fit(self, data: np.ndarray, seed: int) -> GaussianModel:
        return GaussianModel(*fit(data))

    def sample(self, model: GaussianModel, n: int, lam: float, seed: int) -> np.ndarray:
        return sample(model.mu, model.cov, n, lam, np.random.default_rng(seed))


@dataclass(frozen=True)
class GaussianSource:
    """The reference distribution P_r = N(mu0, cov0) as a source of real data for the loop engine."""

    mu0: tuple[float, ...]
    cov0: tuple[tuple[float, ...], ...]
    name: str = "gaussian"

    @classmethod
    def standard(cls, d: int) -> GaussianSource:
        """N(0, I_d), the reference of §5.1."""
        return cls(tuple([0.0] * d), tuple(tuple(float(i == j) for j in range(d)) for i in range(d)))

    @classmethod
    def from_arrays(cls, mu0, cov0) -> GaussianSource:
        mu0 = np.asarray(mu0, dtype=float)
        cov0 = np.asarray(cov0, dtype=float)
        return cls(tuple(mu0.tolist()), tuple(tuple(r) for r in cov0.tolist()))

    def draw(self, n: int, seed: int) -> np.ndarray:
        return sample(np.array(self.mu0), np.array(self.cov0), n, 1.0, np.random.default_rng(seed))


# ---------------------------------------------------------------------------------------------------------------
# Batched Monte Carlo of the Gaussian autophagous loops
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SimResult:
    """Per-trial, per-generation summaries of a Gaussian loop (arrays of shape ``(trials, generations)``;
    column ``t - 1`` is generation ``t``).

    ``w2`` is the 2-Wasserstein distance of G^t = N(μ_t, Σ_t) to P_r, ``trace`` is tr Σ_t, ``mean_dist`` is
    ‖μ_t − μ_0‖ and ``step_sq`` is the squared step of the mean, ‖μ_t − μ_{t−1}‖² (‖μ_1 − μ_0‖² for t = 1).
    """

    w2: np.ndarray
    trace: np.ndarray
    mean_dist: np.ndarray
    step_sq: np.ndarray
    config: dict = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"w2": self.w2, "trace": self.trace, "mean_dist": self.mean_dist, "step_sq": self.step_sq}


class _Group(NamedTuple):
    """Sufficient statistics of a group of samples: count, mean, scatter matrix Σ (x − x̄)(x − x̄)ᵀ."""

    n: np.ndarray  # (R,)
    mean: np.ndarray  # (R, d)
    scatter: np.ndarray  # (R, d, d)


def _merge(a: _Group, b: _Group) -> _Group:
    """Pooled statistics of two groups (Chan et al.): the fit of the concatenated data, without the data."""
    n = a.n + b.n
    safe = np.where(n > 0, n, 1).astype(np.float64)
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / safe)[:, None]
    w = (a.n * b.n / safe)[:, None, None]
    scatter = a.scatter + b.scatter + w * delta[:, :, None] * delta[:, None, :]
    return _Group(n, mean, scatter)


def _factor(cov: np.ndarray) -> np.ndarray:
    """A matrix L with L Lᵀ = cov for each item of a batch: Cholesky, or a symmetric root where Cholesky fails
    (singular covariances, e.g. fits on fewer than d + 1 samples)."""
    import torch

    c = torch.from_numpy(np.ascontiguousarray(cov))
    low, info = torch.linalg.cholesky_ex(c)
    bad = (info != 0).nonzero().flatten()
    if len(bad):
        w, v = torch.linalg.eigh(c[bad])
        low[bad] = v * w.clamp_min(0).sqrt()[:, None, :]
    return low.numpy()


def _wishart_scatter(low: np.ndarray, nu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scatter matrices S ~ Wishart(L Lᵀ, ν) for each item of a batch (ν may differ across the batch).

    ν ≥ d: Bartlett decomposition W = A Aᵀ with A lower-triangular, A_ii = sqrt(χ²_{ν−i}), A_ij ~ N(0, 1); then
    S = (L A)(L A)ᵀ. ν < d (singular Wishart): S = (L Zᵀ)(L Zᵀ)ᵀ with Z a ν × d standard normal matrix.
    """
    r, d, _ = low.shape
    out = np.zeros((r, d, d))
    full = np.nonzero(nu >= d)[0]
    if len(full):
        a = np.tril(rng.standard_normal((len(full), d, d)), k=-1)
        dof = nu[full][:, None] - np.arange(d)[None, :]
        a[:, np.arange(d), np.arange(d)] = np.sqrt(rng.chisquare(dof))
        b = low[full] @ a
        out[full] = b @ np.swapaxes(b, -1, -2)
    part = np.nonzero((nu > 0) & (nu < d))[0]
    if len(part):
        m = int(nu[part].max())
        z = rng.standard_normal((len(part), d, m))
        z *= (np.arange(m)[None, :] < nu[part][:, None])[:, None, :]
        b = low[part] @ z
        out[part] = b @ np.swapaxes(b, -1, -2)
    return out


def _draw_group(mu, low, count, lam, rng) -> _Group:
    """Exact statistics of ``count`` samples from N(mu, lam L Lᵀ): x̄ ~ N(mu, lam Σ / count) and an independent
    scatter ~ Wishart(lam Σ, count − 1)."""
    count = np.asarray(count, dtype=np.int64)
    r, d = mu.shape
    z = rng.standard_normal((r, d))
    scale = np.sqrt(lam / np.maximum(count, 1))[:, None]
    mean = mu + scale * np.einsum("rij,rj->ri", low, z)
    mean = np.where(count[:, None] > 0, mean, 0.0)
    scatter = lam * _wishart_scatter(low, np.maximum(count - 1, 0), rng)
    return _Group(count, mean, scatter)


def _summaries(mu: np.ndarray, cov: np.ndarray, prev_mu: np.ndarray, var0: np.ndarray) -> tuple:
    """W2 to P_r = N(mu0, diag(var0)), tr Σ, ‖μ − μ0‖ and ‖μ − μ_prev‖² for a batch of fits expressed in the
    standardised coordinates z = (x − mu0) / sqrt(var0), in which P_r = N(0, I)."""
    import torch

    s = np.sqrt(var0)
    mean_dist = np.sqrt(((mu * s) ** 2).sum(-1))
    trace = np.einsum("rii,i->r", cov, var0)
    # In original coordinates Σ' = S Σ S and Σ0 = S²; Σ0^{1/2} Σ' Σ0^{1/2} = S² Σ S².
    middle = cov * (var0[:, None] * var0[None, :])
    ev = torch.linalg.eigvalsh(torch.from_numpy(np.ascontiguousarray(middle))).numpy()
    sq = mean_dist**2 + trace + var0.sum() - 2 * np.sqrt(np.clip(ev, 0, None)).sum(-1)
    step_sq = (((mu - prev_mu) * s) ** 2).sum(-1)
    return np.sqrt(np.clip(sq, 0, None)), trace, mean_dist, step_sq


def _check_loop(real, n_ini, n_r, n_s, lam, memory, accumulate, generations):
    """The loop engine's validation (one definition of a loop), plus what a Gaussian fit needs."""
    from .loops import LoopConfig

    cfg = LoopConfig(
        generations=generations, n_ini=n_ini, n_s=n_s, real=real, n_r=n_r, lam=lam, memory=memory, accumulate=accumulate
    )
    if cfg.n_ini < 2:
        raise ValueError(f"n_ini = {n_ini}: a Gaussian fit needs at least 2 samples")
    if cfg.generations > 1 and (cfg.n_r if real != "none" else 0) + cfg.n_s < 2:
        raise ValueError(f"n_r + n_s = {cfg.n_r + cfg.n_s} training samples a generation: a Gaussian fit needs >= 2")
    return int(cfg.n_ini), int(cfg.n_r), int(cfg.n_s), cfg.lam, int(cfg.memory), int(cfg.generations)


def simulate(
    d: int,
    generations: int,
    trials: int,
    *,
    n_ini: int,
    n_s: int,
    real: str = "none",
    n_r: int = 0,
    lam: float = 1.0,
    memory: int = 1,
    accumulate: bool = False,
    method: str = "exact",
    seed: int = 0,
    var0: np.ndarray | float | None = None,
) -> SimResult:
    """Monte Carlo of the Gaussian autophagous loop over ``trials`` independent trials at once (§3.1, §5, App. G).

    Generation 1 fits ``n_ini`` real samples. Each later generation t fits a training set made of a real part
    (``real``: ``"none"``, the fully synthetic loop; ``"fixed"``, the first ``n_r`` of the generation-1 samples, the
    synthetic augmentation loop; ``"fresh"``, ``n_r`` new real samples, the fresh data loop) and ``n_s`` synthetic
    samples drawn with bias ``lam`` from the last ``memory`` models (each sample from one of them uniformly at
    random, so the counts are multinomial), or, with ``accumulate=True``, a pool that keeps every earlier
    generation's ``n_s`` synthetic samples.

    The reference is P_r = N(μ_0, diag(var0)) (default N(0, I_d)). The loop is affine-equivariant, so it runs in
    standardised coordinates and the summaries are mapped back; none of them depends on μ_0.

    ``method="samples"`` draws the data and fits eq. (1): the plain definition. ``method="exact"`` draws each group's
    mean and scatter matrix from their exact joint law (mean ~ N(m, C/n_g), scatter ~ Wishart(C, n_g − 1),
    independent) and pools them, so a generation costs O(d³) per trial whatever the sample sizes.
    """
    n_ini, n_r, n_s, lam, memory, generations = _check_loop(real, n_ini, n_r, n_s, lam, memory, accumulate, generations)
    d = check_int(d, "d", 1)
    trials = check_int(trials, "trials", 1)
    if method not in ("exact", "samples"):
        raise ValueError(f"method = {method!r}; choose 'exact' or 'samples'")
    var0 = np.ones(d) if var0 is None else np.broadcast_to(np.asarray(var0, dtype=float), (d,)).copy()
    if np.any(var0 <= 0) or not np.all(np.isfinite(var0)):
        raise ValueError("var0 (the reference variances) must be positive and finite")
    config = dict(
        d=d,
        generations=generations,
        trials=trials,
        n_ini=n_ini,
        n_s=n_s,
        real=real,
        n_r=n_r,
        lam=lam,
        memory=memory,
        accumulate=accumulate,
        method=method,
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    run = _simulate_exact if method == "exact" else _simulate_samples
    out = run(d, generations, trials, n_ini, n_s, real, n_r, lam, memory, accumulate, rng, var0)
    return SimResult(*out, config=config)


def _multinomial_counts(rng, n_s, k, trials):
    if k == 1:
        return np.full((trials, 1), n_s, dtype=np.int64)
    return rng.multinomial(n_s, np.full(k, 1.0 / k), size=trials)


def _simulate_exact(d, generations, trials, n_ini, n_s, real, n_r, lam, memory, accumulate, rng, var0):
    out = np.zeros((4, trials, generations))
    zero_mu, eye_low = np.zeros((trials, d)), np.broadcast_to(np.eye(d), (trials, d, d)).copy()
    const = lambda v: np.full(trials, v, dtype=np.int64)  # noqa: E731

    # Generation 1: n_ini real samples; for a fixed real set, its first n_r samples form their own group.
    if real == "fixed":
        fixed = _draw_group(zero_mu, eye_low, const(n_r), 1.0, rng)
        data = _merge(fixed, _draw_group(zero_mu, eye_low, const(n_ini - n_r), 1.0, rng))
    else:
        data = _draw_group(zero_mu, eye_low, const(n_ini), 1.0, rng)
    pool = _Group(const(0), np.zeros((trials, d)), np.zeros((trials, d, d)))
    models: list[tuple[np.ndarray, np.ndarray]] = []
    for t in range(1, generations + 1):
        if t > 1:
            if real == "fixed":
                data = fixed
            elif real == "fresh":
                data = _draw_group(zero_mu, eye_low, const(n_r), 1.0, rng)
            else:
                data = _Group(const(0), np.zeros((trials, d)), np.zeros((trials, d, d)))
            if accumulate:
                pool = _merge(pool, _draw_group(*models[-1], const(n_s), lam, rng))
                data = _merge(data, pool)
            elif n_s:
                recent = models[-memory:]
                counts = _multinomial_counts(rng, n_s, len(recent), trials)
                for j, (mu_j, low_j) in enumerate(recent):
                    data = _merge(data, _draw_group(mu_j, low_j, counts[:, j], lam, rng))
        mu = data.mean
        cov = data.scatter / (data.n - 1)[:, None, None]
        out[:, :, t - 1] = _summaries(mu, cov, models[-1][0] if models else zero_mu, var0)
        models.append((mu, _factor(cov)))
        models = models[-memory:]
    return tuple(out)


def _simulate_samples(d, generations, trials, n_ini, n_s, real, n_r, lam, memory, accumulate, rng, var0):
    out = np.zeros((4, trials, generations))
    for i in range(trials):
        first = rng.standard_normal((n_ini, d))
        pool: list[np.ndarray] = []
        models: list[tuple[np.ndarray, np.ndarray]] = []
        mus, covs = np.zeros((generations, d)), np.zeros((generations, d, d))
        for t in range(1, generations + 1):
            if t == 1:
                x = first
            else:
                parts = []
                if real == "fixed":
                    parts.append(first[:n_r])
                elif real == "fresh":
                    parts.append(rng.standard_normal((n_r, d)))
                if accumulate:
                    pool.append(sample(*models[-1], n_s, lam, rng))
                    parts.extend(pool)
                elif n_s:
                    recent = models[-memory:]
                    counts = _multinomial_counts(rng, n_s, len(recent), 1)[0]
                    parts.extend(sample(*m, c, lam, rng) for m, c in zip(recent, counts, strict=True))
                x = np.concatenate(parts)
            mu, cov = fit(x)
            mus[t - 1], covs[t - 1] = mu, cov
            models = (models + [(mu, cov)])[-memory:]
        prev = np.concatenate([np.zeros((1, d)), mus[:-1]])
        out[:, i, :] = _summaries(mus, covs, prev, var0)
    return tuple(out)


def expected_trace(generations: int, lam: float, trace0: float) -> np.ndarray:
    """E[tr Σ_t] = λ^(t−1) tr Σ_0 in the fully synthetic loop (eq. 2; generation 1 fits unbiased real data)."""
    return trace0 * lam ** np.arange(generations)


def expected_mean_sq_dist(generations: int, lam: float, n_ini: int, n_s: int, trace0: float) -> np.ndarray:
    """E‖μ_t − μ_0‖² in the fully synthetic loop: the random walk of §3.1 adds λ E[tr Σ_{s−1}] / n_s at step s.

    E‖μ_1 − μ_0‖² = tr Σ_0 / n_ini and E‖μ_t − μ_{t−1}‖² = λ E[tr Σ_{t−1}] / n_s = λ^{t−1} tr Σ_0 / n_s.
    """
    steps = np.concatenate([[trace0 / n_ini], trace0 * lam ** np.arange(1, generations) / n_s])
    return np.cumsum(steps)


def _warn(msg: str) -> None:
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def summarize_trials(arrays: dict[str, np.ndarray], **labels) -> pd.DataFrame:
    """A tidy table of Monte Carlo results: one row per generation × metric with the mean over trials, its
    standard error, the median and the 5 % / 95 % quantiles; ``labels`` (e.g. ``lam=0.9, n_s=100``) become
    columns."""
    rows = []
    for metric, values in arrays.items():
        v = np.asarray(values, dtype=np.float64)
        q05, q50, q95 = np.quantile(v, [0.05, 0.5, 0.95], axis=0)
        frame = pd.DataFrame(
            {
                "generation": np.arange(1, v.shape[1] + 1),
                "metric": metric,
                "mean": v.mean(0),
                "sem": v.std(0, ddof=1) / np.sqrt(v.shape[0]) if v.shape[0] > 1 else np.nan,
                "median": q50,
                "q05": q05,
                "q95": q95,
            }
        )
        rows.append(frame)
    df = pd.concat(rows, ignore_index=True)
    for k, val in labels.items():
        df[k] = val
    return df
