"""A fast batched Monte Carlo of the Gaussian autophagous loops (paper §3.1, §5, App. A and G): many independent
trials of one :class:`~madutils.loops.LoopConfig` at once.

The loop is the engine's loop: every generation's training set is :meth:`LoopConfig.composition` (one definition
of what a loop is). What differs is how a block of that set is represented: ``method="samples"`` draws the samples
and fits eq. (1), the plain definition; ``method="exact"`` draws each block's mean and scatter matrix from their
exact joint law and pools them, so a generation costs O(d³) per trial whatever the sample sizes.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from .gaussian import fit, psd_factor, sample
from .loops import LoopConfig
from .utils import check_int, cpu_threads


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


def simulate(
    cfg: LoopConfig,
    d: int,
    trials: int,
    *,
    method: str = "exact",
    var0: np.ndarray | float | None = None,
) -> SimResult:
    """Monte Carlo of the Gaussian autophagous loop ``cfg`` over ``trials`` independent trials at once (§3.1, §5,
    App. G), seeded by ``cfg.seed``.

    Each generation fits the training set that :meth:`LoopConfig.composition` describes: generation 1 ``n_ini``
    real samples; later ones a real part (none, the fixed first ``n_r`` samples, or ``n_r`` fresh ones) and
    ``n_s`` synthetic samples with bias λ from the last ``memory`` models (multinomial counts over them), or with
    ``accumulate`` every earlier generation's synthetic samples.

    The reference is P_r = N(μ_0, diag(var0)) (default N(0, I_d)). The loop is affine-equivariant, so it runs in
    standardised coordinates and the summaries are mapped back; none of them depends on μ_0.

    ``method="samples"`` draws the data and fits eq. (1). ``method="exact"`` draws each block's mean and scatter
    matrix from their exact joint law (mean ~ N(m, C/n_g), scatter ~ Wishart(C, n_g − 1), independent) and pools
    them.
    """
    if not isinstance(cfg, LoopConfig):
        raise TypeError(f"cfg must be a LoopConfig, got {type(cfg).__name__}")
    if cfg.n_ini < 2:
        raise ValueError(f"n_ini = {cfg.n_ini}: a Gaussian fit needs at least 2 samples")
    per_generation = (cfg.n_r if cfg.real != "none" else 0) + cfg.n_s
    if cfg.generations > 1 and per_generation < 2:
        raise ValueError(f"n_r + n_s = {per_generation} training samples a generation: a Gaussian fit needs >= 2")
    d = check_int(d, "d", 1)
    trials = check_int(trials, "trials", 1)
    if method not in ("exact", "samples"):
        raise ValueError(f"method = {method!r}; choose 'exact' or 'samples'")
    var0 = np.ones(d) if var0 is None else np.broadcast_to(np.asarray(var0, dtype=float), (d,)).copy()
    if np.any(var0 <= 0) or not np.all(np.isfinite(var0)):
        raise ValueError("var0 (the reference variances) must be positive and finite")
    config = dict(loop=cfg, d=d, trials=trials, method=method)
    if method == "exact":
        # Many small (d × d) matrices: one BLAS thread per matrix, and the trials split into fixed chunks that run
        # on the available cores (numpy releases the GIL); each chunk has its own seed, so the numbers depend on
        # the seed and the number of trials only, not on the number of cores.
        size = exact_chunk(d)
        sizes = [min(size, trials - s) for s in range(0, trials, size)]
        seeds = np.random.SeedSequence(cfg.seed).spawn(len(sizes))

        def chunk(i):
            return _simulate_exact(cfg, d, sizes[i], np.random.default_rng(seeds[i]), var0)

        with _one_blas_thread(), ThreadPoolExecutor(max_workers=min(cpu_threads(), len(sizes))) as pool:
            parts = list(pool.map(chunk, range(len(sizes))))
        out = tuple(np.concatenate([p[k] for p in parts]) for k in range(4))
    else:
        out = _simulate_samples(cfg, d, trials, np.random.default_rng(cfg.seed), var0)
    return SimResult(*out, config=config)


def _simulate_exact(cfg: LoopConfig, d: int, trials: int, rng: np.random.Generator, var0: np.ndarray) -> tuple:
    out = np.zeros((4, trials, cfg.generations))
    const = lambda v: np.full(trials, v, dtype=np.int64)  # noqa: E731
    empty = _Group(const(0), np.zeros((trials, d)), np.zeros((trials, d, d)))

    # Generation 1: n_ini real samples; for a fixed real set, its first n_r samples form their own group.
    if cfg.real == "fixed":
        fixed = _draw_group(None, None, const(cfg.n_r), 1.0, rng, d)
        data = _merge(fixed, _draw_group(None, None, const(cfg.n_ini - cfg.n_r), 1.0, rng, d))
    else:
        data = _draw_group(None, None, const(cfg.n_ini), 1.0, rng, d)
    pool = empty  # the accumulated synthetic samples of every earlier generation
    models: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for t in range(1, cfg.generations + 1):
        if t > 1:
            data = empty
            for part in cfg.composition(t, rng=rng, trials=trials):
                count = part.count if np.ndim(part.count) else const(part.count)
                if part.source == "fixed":
                    data = _merge(data, fixed)
                elif part.source == "fresh":
                    data = _merge(data, _draw_group(None, None, count, 1.0, rng, d))
                elif part.source == "output" and cfg.accumulate:
                    if part.generation == t - 1:  # the earlier outputs are in the pool already
                        pool = _merge(pool, _draw_group(*models[t - 1], count, cfg.lam, rng, d))
                else:  # the previous output, or samples of one of the last K models
                    data = _merge(data, _draw_group(*models[part.generation], count, cfg.lam, rng, d))
            if cfg.accumulate:
                data = _merge(data, pool)
        mu = data.mean
        cov = data.scatter / (data.n - 1)[:, None, None]
        prev = models[t - 1][0] if t > 1 else np.zeros((trials, d))
        out[:, :, t - 1] = _summaries(mu, cov, prev, var0)
        models[t] = (mu, psd_factor(cov))
        models.pop(t - cfg.memory, None)
    return tuple(out)


def _simulate_samples(cfg: LoopConfig, d: int, trials: int, rng: np.random.Generator, var0: np.ndarray) -> tuple:
    out = np.zeros((4, trials, cfg.generations))
    first = [rng.standard_normal((cfg.n_ini, d)) for _ in range(trials)]
    outputs: list[dict[int, np.ndarray]] = [{} for _ in range(trials)]
    models: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in range(trials)]
    prev = np.zeros((trials, d))
    for t in range(1, cfg.generations + 1):
        mus, covs = np.zeros((trials, d)), np.zeros((trials, d, d))
        for i in range(trials):
            parts = []
            for part in cfg.composition(t, rng=rng):
                if part.source == "initial":
                    parts.append(first[i])
                elif part.source == "fixed":
                    parts.append(first[i][: part.count])
                elif part.source == "fresh":
                    parts.append(rng.standard_normal((part.count, d)))
                elif part.source == "output":
                    if part.generation not in outputs[i]:
                        outputs[i][part.generation] = sample(*models[i][part.generation], part.count, cfg.lam, rng)
                    parts.append(outputs[i][part.generation])
                else:
                    parts.append(sample(*models[i][part.generation], part.count, cfg.lam, rng))
            mus[i], covs[i] = fit(np.concatenate(parts))
            models[i][t] = (mus[i], covs[i])
            models[i].pop(t - cfg.memory, None)
            if not cfg.accumulate:
                outputs[i].pop(t - 1, None)
        out[:, :, t - 1] = _summaries(mus, covs, prev, var0)
        prev = mus
    return tuple(out)


def summarize_trials(
    arrays: Mapping[str, np.ndarray], metrics: Sequence[str] | None = None, **labels: Any
) -> pd.DataFrame:
    """A tidy table of Monte Carlo results: one row per generation × metric (every array, or those in
    ``metrics``, each read from ``arrays`` only when its turn comes) with the mean over trials (``value``), its
    standard error, the median and the 5 % / 95 % quantiles; ``labels`` (e.g. ``lam=0.9, n_s=100``) become
    columns."""
    rows = []
    for metric in arrays if metrics is None else metrics:
        v = np.asarray(arrays[metric], dtype=np.float64)
        q05, q50, q95 = np.quantile(v, [0.05, 0.5, 0.95], axis=0)
        frame = pd.DataFrame(
            {
                "generation": np.arange(1, v.shape[1] + 1),
                "metric": metric,
                "value": v.mean(0),
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
