"""Gaussian autophagous loops: fits, biased sampling, the 2-Wasserstein distance, the engine family, and a fast
batched Monte Carlo of every loop kind (paper §3.1, §5, App. A and G).

The paper's Gaussian model (§3.1, eq. 1): a generation fits the unbiased sample mean and covariance of its training
data, and samples with bias λ from N(μ_t, λ Σ_t). In the fully synthetic loop E[μ_t | μ_{t-1}] = μ_{t-1} and
E[Σ_t | Σ_{t-1}] = λ Σ_{t-1} (eq. 2): μ_t is a martingale (a random walk), Σ_t a supermartingale that goes to 0
almost surely.
"""

from __future__ import annotations

import functools
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from .utils import check_int, check_lam, cpu_threads

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
    cov1, cov2 = np.asarray(cov1, dtype=np.float64), np.asarray(cov2, dtype=np.float64)
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


def _wishart_scatter(low: np.ndarray | None, nu: np.ndarray, rng: np.random.Generator, d: int) -> np.ndarray:
    """Scatter matrices S ~ Wishart(L Lᵀ, ν) for each item of a batch (ν may differ across the batch; ``low=None``
    means L = I).

    ν ≥ d: Bartlett decomposition W = A Aᵀ with A lower-triangular, A_ii = sqrt(χ²_{ν−i}), A_ij ~ N(0, 1); then
    S = (L A)(L A)ᵀ. ν < d (singular Wishart): S = (L Zᵀ)(L Zᵀ)ᵀ with Z a ν × d standard normal matrix.
    """
    r = len(nu)
    out = np.zeros((r, d, d))
    full = np.nonzero(nu >= d)[0]
    if len(full):
        rows, cols = np.tril_indices(d, -1)
        a = np.zeros((len(full), d, d))
        a[:, rows, cols] = rng.standard_normal((len(full), len(rows)))
        dof = nu[full][:, None] - np.arange(d)[None, :]
        a[:, np.arange(d), np.arange(d)] = np.sqrt(rng.chisquare(dof))
        b = a if low is None else low[full] @ a
        out[full] = b @ np.swapaxes(b, -1, -2)
    part = np.nonzero((nu > 0) & (nu < d))[0]
    if len(part):
        m = int(nu[part].max())
        z = rng.standard_normal((len(part), d, m))
        z *= (np.arange(m)[None, :] < nu[part][:, None])[:, None, :]
        b = z if low is None else low[part] @ z
        out[part] = b @ np.swapaxes(b, -1, -2)
    return out


def _draw_group(mu, low, count, lam, rng, d) -> _Group:
    """Exact statistics of ``count`` samples from N(mu, lam L Lᵀ) (``mu=None, low=None``: N(0, I)):
    x̄ ~ N(mu, lam Σ / count) and an independent scatter ~ Wishart(lam Σ, count − 1)."""
    count = np.asarray(count, dtype=np.int64)
    r = len(count)
    z = rng.standard_normal((r, d))
    scale = np.sqrt(lam / np.maximum(count, 1))[:, None]
    shift = z if low is None else np.einsum("rij,rj->ri", low, z)
    mean = scale * shift + (0.0 if mu is None else mu)
    mean = np.where(count[:, None] > 0, mean, 0.0)
    scatter = _wishart_scatter(low, np.maximum(count - 1, 0), rng, d)
    return _Group(count, mean, scatter if lam == 1.0 else lam * scatter)


def _summaries(mu: np.ndarray, cov: np.ndarray, prev_mu: np.ndarray, var0: np.ndarray) -> tuple:
    """W2 to P_r = N(mu0, diag(var0)), tr Σ, ‖μ − μ0‖ and ‖μ − μ_prev‖² for a batch of fits expressed in the
    standardised coordinates z = (x − mu0) / sqrt(var0), in which P_r = N(0, I)."""
    s = np.sqrt(var0)
    mean_dist = np.sqrt(((mu * s) ** 2).sum(-1))
    trace = np.einsum("rii,i->r", cov, var0)
    # In original coordinates Σ' = S Σ S and Σ0 = S²; Σ0^{1/2} Σ' Σ0^{1/2} = S² Σ S².
    middle = cov * (var0[:, None] * var0[None, :])
    with _one_blas_thread():  # one thread per small matrix is ~3x faster than OpenBLAS threads here
        ev = np.linalg.eigvalsh(middle)
    sq = mean_dist**2 + trace + var0.sum() - 2 * np.sqrt(np.clip(ev, 0, None)).sum(-1)
    step_sq = (((mu - prev_mu) * s) ** 2).sum(-1)
    return np.sqrt(np.clip(sq, 0, None)), trace, mean_dist, step_sq


def exact_chunk(d: int) -> int:
    """Trials per independently seeded chunk of the exact Monte Carlo: 32 for d ≥ 16, more for small d, where
    per-call overhead, not arithmetic, is the cost (a function of d only, so the numbers do not depend on the
    machine)."""
    return 32 * max(1, (16 // d) ** 2)


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspecting the loaded libraries is slow: once per process


def _one_blas_thread():
    """Limit BLAS/LAPACK to one thread (many small matrices: threads cost more than they save)."""
    return _blas_controller().limit(limits=1, user_api="blas")


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
    if method == "exact":
        # Many small (d × d) matrices: one BLAS thread per matrix, and the trials split into fixed chunks that run
        # on the available cores (numpy releases the GIL); each chunk has its own seed, so the numbers depend on
        # the seed and the number of trials only, not on the number of cores.
        chunk = exact_chunk(d)
        sizes = [min(chunk, trials - s) for s in range(0, trials, chunk)]
        seeds = np.random.SeedSequence(seed).spawn(len(sizes))

        def chunk(i):
            return _simulate_exact(
                d,
                generations,
                sizes[i],
                n_ini,
                n_s,
                real,
                n_r,
                lam,
                memory,
                accumulate,
                np.random.default_rng(seeds[i]),
                var0,
            )

        with _one_blas_thread(), ThreadPoolExecutor(max_workers=min(cpu_threads(), len(sizes))) as pool:
            parts = list(pool.map(chunk, range(len(sizes))))
        out = tuple(np.concatenate([p[k] for p in parts]) for k in range(4))
    else:
        rng = np.random.default_rng(seed)
        out = _simulate_samples(d, generations, trials, n_ini, n_s, real, n_r, lam, memory, accumulate, rng, var0)
    return SimResult(*out, config=config)


def _multinomial_counts(rng, n_s, k, trials):
    if k == 1:
        return np.full((trials, 1), n_s, dtype=np.int64)
    return rng.multinomial(n_s, np.full(k, 1.0 / k), size=trials)


def _simulate_exact(d, generations, trials, n_ini, n_s, real, n_r, lam, memory, accumulate, rng, var0):
    out = np.zeros((4, trials, generations))
    zero_mu = np.zeros((trials, d))
    const = lambda v: np.full(trials, v, dtype=np.int64)  # noqa: E731

    # Generation 1: n_ini real samples; for a fixed real set, its first n_r samples form their own group.
    if real == "fixed":
        fixed = _draw_group(None, None, const(n_r), 1.0, rng, d)
        data = _merge(fixed, _draw_group(None, None, const(n_ini - n_r), 1.0, rng, d))
    else:
        data = _draw_group(None, None, const(n_ini), 1.0, rng, d)
    pool = _Group(const(0), np.zeros((trials, d)), np.zeros((trials, d, d)))
    models: list[tuple[np.ndarray, np.ndarray]] = []
    for t in range(1, generations + 1):
        if t > 1:
            if real == "fixed":
                data = fixed
            elif real == "fresh":
                data = _draw_group(None, None, const(n_r), 1.0, rng, d)
            else:
                data = _Group(const(0), np.zeros((trials, d)), np.zeros((trials, d, d)))
            if accumulate:
                pool = _merge(pool, _draw_group(*models[-1], const(n_s), lam, rng, d))
                data = _merge(data, pool)
            elif n_s:
                recent = models[-memory:]
                counts = _multinomial_counts(rng, n_s, len(recent), trials)
                for j, (mu_j, low_j) in enumerate(recent):
                    data = _merge(data, _draw_group(mu_j, low_j, counts[:, j], lam, rng, d))
        mu = data.mean
        cov = data.scatter / (data.n - 1)[:, None, None]
        out[:, :, t - 1] = _summaries(mu, cov, models[-1][0] if models else zero_mu, var0)
        models.append((mu, psd_factor(cov)))
        models = models[-memory:]
    return tuple(out)


def _simulate_samples(d, generations, trials, n_ini, n_s, real, n_r, lam, memory, accumulate, rng, var0):
    out = np.zeros((4, trials, generations))
    first = [rng.standard_normal((n_ini, d)) for _ in range(trials)]
    pools: list[list[np.ndarray]] = [[] for _ in range(trials)]
    models: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(trials)]
    prev = np.zeros((trials, d))
    for t in range(1, generations + 1):
        mus, covs = np.zeros((trials, d)), np.zeros((trials, d, d))
        for i in range(trials):
            if t == 1:
                x = first[i]
            else:
                parts = []
                if real == "fixed":
                    parts.append(first[i][:n_r])
                elif real == "fresh":
                    parts.append(rng.standard_normal((n_r, d)))
                if accumulate:
                    pools[i].append(sample(*models[i][-1], n_s, lam, rng))
                    parts.extend(pools[i])
                elif n_s:
                    recent = models[i][-memory:]
                    counts = _multinomial_counts(rng, n_s, len(recent), 1)[0]
                    parts.extend(sample(*m, c, lam, rng) for m, c in zip(recent, counts, strict=True))
                x = np.concatenate(parts)
            mus[i], covs[i] = fit(x)
            models[i] = (models[i] + [(mus[i], covs[i])])[-memory:]
        out[:, :, t - 1] = _summaries(mus, covs, prev, var0)
        prev = mus
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


# ---------------------------------------------------------------------------------------------------------------
# The fresh data loop: its limit WD(n_r, n_s, λ) (eq. 3) and the effective sample size n_e (eq. 4)
# ---------------------------------------------------------------------------------------------------------------


def relaxation_time(n_r: int, n_s: int, memory: int = 1) -> float:
    """Generations over which the fresh data loop forgets its past (§5.2).

    A fit weights the previous model's samples by a = n_s / (n_r + n_s), so the mean of the loop is an AR(1)
    process with coefficient a and relaxation time 1 / (1 − a) = 1 + n_s / n_r; with memory K the weight is spread
    over the last K models, which stretches it by about (K + 1) / 2. (The covariance relaxes with λ a, faster.)
    """
    return (1.0 + n_s / n_r) * (1.0 + (memory - 1) / 2.0)


@dataclass
class FreshLimit:
    """The limit of E[W2(G^t, P_r)] in a fresh data loop (eq. 3), averaged over trials and over the generations
    after a burn-in; ``converged`` says whether the first and second half of the averaging window agree."""

    wd: float
    se: float
    converged: bool
    generations: int
    burn_in: int
    drift_z: float


def fresh_limit(
    n_r: int,
    n_s: int,
    lam: float,
    d: int,
    *,
    trials: int = 100,
    memory: int = 1,
    generations: int | None = None,
    max_generations: int = 5000,
    seed: int = 0,
) -> FreshLimit:
    """WD(n_r, n_s, λ) of eq. (3) for the Gaussian fresh data loop with P_r = N(0, I_d), by exact Monte Carlo.

    The loop starts from a fit on n_ini = n_r + n_s real samples (the limit does not depend on it, C5), runs a
    burn-in of 6 relaxation times and averages W2 over the next 4 (at least 20 generations). The average is
    accepted when the mean W2 of the first and second half of that window agree (|z| < 4 over trials); otherwise
    the result is ``nan`` with a warning. ``generations`` fixes the total length; too short a run for the
    relaxation time, or a run longer than ``max_generations``, also gives ``nan`` with a warning that says why.
    """
    n_r, n_s = check_int(n_r, "n_r", 1), check_int(n_s, "n_s", 0)
    tau = relaxation_time(n_r, n_s, memory)
    burn_in, window = int(math.ceil(6 * tau)), max(20, int(math.ceil(4 * tau)))
    needed = burn_in + window
    if generations is None:
        generations = needed
    if generations > max_generations or generations < needed:
        _warn(
            f"fresh data loop n_r={n_r}, n_s={n_s}, λ={lam:g}, K={memory} relaxes over ~{tau:.0f} generations and "
            f"needs about {needed} generations to converge; {generations} allowed "
            f"(max_generations={max_generations}): WD is nan"
        )
        return FreshLimit(float("nan"), float("nan"), False, generations, burn_in, float("nan"))
    window = generations - burn_in
    res = simulate(
        d=d,
        generations=generations,
        trials=trials,
        n_ini=n_r + n_s,
        n_s=n_s,
        real="fresh",
        n_r=n_r,
        lam=lam,
        memory=memory,
        seed=seed,
    )
    w = res.w2[:, burn_in:]
    per_trial = w.mean(axis=1)
    wd, se = float(per_trial.mean()), float(per_trial.std(ddof=1) / math.sqrt(trials))
    half = window // 2
    diff = w[:, :half].mean(axis=1) - w[:, half:].mean(axis=1)
    sd = diff.std(ddof=1) / math.sqrt(trials)
    drift_z = float(diff.mean() / sd) if sd > 0 else 0.0
    converged = abs(drift_z) < 4.0
    if not converged:
        _warn(
            f"fresh data loop n_r={n_r}, n_s={n_s}, λ={lam:g} did not settle in {generations} generations "
            f"(first and second half of the window differ, z = {drift_z:.1f}): WD is nan"
        )
        wd = float("nan")
    return FreshLimit(wd, se, converged, generations, burn_in, drift_z)


@dataclass
class Calibration:
    """E[W2(G(n), P_r)] of Gaussians fitted on n real samples only, on a grid of n (the right side of eq. 4)."""

    d: int
    n: np.ndarray
    w2: np.ndarray
    se: np.ndarray

    def n_for(self, wd: float) -> float:
        """The n whose expected W2 equals ``wd`` (log-log interpolation); ``nan`` with a warning outside the
        calibrated range, never a clipped number."""
        if not np.isfinite(wd):
            return float("nan")
        lo, hi = self.w2[-1], self.w2[0]
        if not lo <= wd <= hi:
            _warn(
                f"W2 = {wd:.4g} lies outside the calibrated range [{lo:.4g}, {hi:.4g}] "
                f"(n from {self.n[0]} to {self.n[-1]}); n_e is nan: widen the calibration grid"
            )
            return float("nan")
        # W2 decreases with n; interpolate log n on log W2 (increasing abscissa needed)
        return float(np.exp(np.interp(np.log(wd), np.log(self.w2[::-1]), np.log(self.n[::-1]))))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"n": self.n, "w2": self.w2, "se": self.se, "d": np.array(self.d)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> Calibration:
        return cls(int(a["d"]), a["n"], a["w2"], a["se"])


def calibrate(
    d: int,
    n_min: int = 2,
    n_max: int = 10**6,
    points: int = 48,
    trials: int = 2000,
    seed: int = 0,
    method: str = "exact",
) -> Calibration:
    """The calibration curve of eq. (4): E[W2(G(n), N(0, I_d))] for fits on n real samples, n log-spaced from
    ``n_min`` to ``n_max``. Made monotone (running minimum) so that it can be inverted; the Monte Carlo error at
    each point is kept in ``se``."""
    ns = np.unique(np.round(np.logspace(np.log10(max(2, n_min)), np.log10(n_max), points)).astype(np.int64))
    w2s, ses = np.zeros(len(ns)), np.zeros(len(ns))
    for i, n in enumerate(ns):
        w = simulate(d=d, generations=1, trials=trials, n_ini=int(n), n_s=0, seed=seed + i, method=method).w2[:, 0]
        w2s[i], ses[i] = w.mean(), w.std(ddof=1) / math.sqrt(trials)
    return Calibration(d, ns, np.minimum.accumulate(w2s), ses)


@dataclass
class EffectiveSampleSize:
    """n_e of eq. (4) for one (n_r, n_s, λ): the number of real samples whose fit is, on average, as close to P_r
    as the limit of the fresh data loop. ``ratio`` = n_e / n_r; ``ratio_low``/``ratio_high`` follow the ± 2
    standard errors of WD through the calibration curve."""

    n_r: int
    n_s: int
    lam: float
    n_e: float
    ratio: float
    ratio_low: float
    ratio_high: float
    wd: float
    wd_se: float
    converged: bool


def effective_sample_size(
    n_r: int, n_s: int, lam: float, d: int, *, calibration: Calibration | None = None, **limit_kwargs
) -> EffectiveSampleSize:
    """Effective sample size n_e (eq. 4) of the Gaussian fresh data loop: find n_e with
    E[W2(G(n_e), P_r)] = WD(n_r, n_s, λ). ``calibration`` (from :func:`calibrate`, same d) is made when absent;
    ``limit_kwargs`` go to :func:`fresh_limit` (trials, memory, generations, seed). ``nan`` with a warning when the
    loop does not converge or its limit falls outside the calibrated range."""
    lam = check_lam(lam)
    if calibration is None:
        calibration = calibrate(d)
    if calibration.d != d:
        raise ValueError(f"the calibration is for d = {calibration.d}, not d = {d}")
    lim = fresh_limit(n_r, n_s, lam, d, **limit_kwargs)
    n_e = calibration.n_for(lim.wd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the band may touch the calibrated range's ends: nan there is fine
        hi = calibration.n_for(lim.wd - 2 * lim.se)
        lo = calibration.n_for(lim.wd + 2 * lim.se)
    return EffectiveSampleSize(n_r, n_s, lam, n_e, n_e / n_r, lo / n_r, hi / n_r, lim.wd, lim.se, lim.converged)


def fresh_limits(
    points: list[dict],
    d: int,
    *,
    store=None,
    experiment: str = "gaussian-fresh-limit",
    trials: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """WD(n_r, n_s, λ) (eq. 3) for many points ``{"n_r", "n_s", "lam"[, "memory"]}``, one row each (columns
    ``wd``, ``wd_se``, ``converged`` besides the point's own). With a ``store`` each point is computed once and
    kept, so an interrupted grid resumes."""
    from tqdm.auto import tqdm

    rows = []
    for p in tqdm(points, desc=experiment, disable=not progress, leave=False):
        point = dict(n_r=int(p["n_r"]), n_s=int(p["n_s"]), lam=float(p["lam"]), memory=int(p.get("memory", 1)))
        config = point | dict(d=d, trials=trials, seed=seed)

        def compute(point=point):
            lim = fresh_limit(
                point["n_r"], point["n_s"], point["lam"], d, trials=trials, memory=point["memory"], seed=seed
            )
            return {"wd": np.array(lim.wd), "wd_se": np.array(lim.se), "converged": np.array(lim.converged)}

        values = store.cached_arrays(experiment, config, compute) if store is not None else compute()
        rows.append(p | point | {k: float(v) for k, v in values.items()})
    df = pd.DataFrame(rows)
    df["converged"] = df["converged"].astype(bool)
    return df


def effective_sample_sizes(limits: pd.DataFrame, calibration: Calibration) -> pd.DataFrame:
    """Add n_e and n_e / n_r (with the ± 2 SE band of WD) to a :func:`fresh_limits` table (eq. 4)."""
    out = limits.copy()
    n_e, low, high = [], [], []
    for _, r in out.iterrows():
        n_e.append(calibration.n_for(r.wd))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the band may touch the ends of the calibrated range: nan there
            low.append(calibration.n_for(r.wd + 2 * r.wd_se))
            high.append(calibration.n_for(r.wd - 2 * r.wd_se))
    out["n_e"] = n_e
    out["ratio"] = out.n_e / out.n_r
    out["ratio_low"] = np.asarray(low) / out.n_r
    out["ratio_high"] = np.asarray(high) / out.n_r
    return out


def admissible_thresholds(df: pd.DataFrame) -> pd.DataFrame:
    """The admissible threshold n_s* of the fresh data loop (§5.3) for every (lam, n_r) of an
    :func:`effective_sample_sizes` table: the n_s where n_e / n_r falls through 1, by log-log interpolation
    between the last admissible and the first inadmissible grid point, with an interval from the ± 2 SE band.

    ``censored`` is ``"below"`` when even the smallest n_s > 0 of the grid is inadmissible, ``"above"`` when every
    n_s is admissible, else ``""``; the threshold is then the grid's end (a bound, not a value)."""

    def crossing(ns, r):
        ok = r >= 1
        if not ok[0]:
            return ns[0], "below"
        if ok.all():
            return ns[-1], "above"
        i = int(np.argmin(ok)) - 1  # last admissible before the first inadmissible
        x0, x1, y0, y1 = np.log(ns[i]), np.log(ns[i + 1]), np.log(r[i]), np.log(r[i + 1])
        return float(np.exp(x0 + (0 - y0) * (x1 - x0) / (y1 - y0))), ""

    rows = []
    for (lam, n_r), g in df[(df.n_s > 0) & np.isfinite(df.ratio)].groupby(["lam", "n_r"]):
        g = g.sort_values("n_s")
        ns = g.n_s.to_numpy(float)
        value, censored = crossing(ns, g.ratio.to_numpy())
        low, _ = crossing(ns, g.ratio_low.to_numpy())
        high, _ = crossing(ns, g.ratio_high.to_numpy())
        rows.append(dict(lam=lam, n_r=n_r, threshold=value, low=low, high=high, censored=censored))
    return pd.DataFrame(rows)
