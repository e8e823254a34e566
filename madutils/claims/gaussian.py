"""C1: the Gaussian fully synthetic loop is a martingale whose covariance collapses (§3.1, App. A)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .core import TINY, Z_EFFECT, Z_MARTINGALE, ClaimResult, _z, verdict, z_power


def log_drift(trace: np.ndarray) -> np.ndarray:
    """Per-trial drift of log tr Σ_t per generation, (log tr Σ_τ − log tr Σ_1) / (τ − 1), where τ is the last
    generation or, for a trial whose trace fell below the float range, the last generation before that."""
    alive = trace > TINY
    tau = np.where(alive.all(axis=1), trace.shape[1], alive.argmin(axis=1)) - 1  # 0-based index of τ
    tau = np.maximum(tau, 1)
    rows = np.arange(trace.shape[0])
    logs = np.log(np.clip(trace[rows, tau], TINY, None)) - np.log(np.clip(trace[:, 0], TINY, None))
    return logs / tau


def c1_gaussian_martingale(
    results: Mapping[tuple[float, int], Mapping[str, np.ndarray]], trace0: float, n_ini: Mapping[tuple[float, int], int]
) -> list[ClaimResult]:
    """C1 from the stored Monte Carlo of the fully synthetic Gaussian loop.

    ``results[(lam, n_s)]`` holds arrays ``trace`` (tr Σ_t), ``step_sq`` (‖μ_t − μ_{t−1}‖²) and ``mean_dist``
    (‖μ_t − μ_0‖) of shape (trials, generations). Four checks, each over every (λ, n_s):

    1. Σ_t is a (super)martingale: the one-step ratio tr Σ_t / tr Σ_{t−1} has conditional mean exactly λ (eq. 2);
       its mean over trials and generations must agree with λ (|z| < 4 for every setting).
    2. μ_t is a martingale with the predicted step size: ‖μ_t − μ_{t−1}‖² / (λ tr Σ_{t−1} / n_s) has conditional
       mean 1; and the walk carries μ_t away from μ_0: more than half of the trials end farther from μ_0 than they
       started (binomial z > 4).
    3. tr Σ_t → 0 almost surely: the per-trial drift of log tr Σ_t over the run is negative (z < −4).
    4. Smaller n_s and smaller λ collapse faster: the mean drift of log tr Σ_t is strictly ordered along both
       axes of the grid (each adjacent difference with z > 4).
    5. The distance grows (§3.1): E[W2(G^t, P_r)] at the last generation exceeds that at generation 1 (z > 4), in
       every setting (with ``w2`` among the arrays).

    Each row states the smallest effect it counts (``effect``) and its power there (``power``, the normal
    approximation of "z > 4" with the measured standard error, for the worst setting); the equalities of rows 1
    and 2 count deviations below 1 % of the exact value as agreement."""
    keys = sorted(results)
    ratio_z, step_z, away, drift, grows = {}, {}, {}, {}, {}
    for key in keys:
        lam, n_s = key
        tr, step = results[key]["trace"], results[key]["step_sq"]
        prev, cur = tr[:, :-1], tr[:, 1:]
        ok = prev > TINY
        r = cur[ok] / prev[ok]
        ratio_z[key] = (r.mean(), _z(r.mean() - lam, r.std(ddof=1) / np.sqrt(r.size)))
        pred = np.concatenate([np.full((tr.shape[0], 1), trace0 / n_ini[key]), lam * prev / n_s], axis=1)
        # below ~1e-24 tr Σ_0 the step is lost in the rounding of μ_t (float64, |μ_t| ~ sqrt(tr Σ_0))
        ok = pred > 1e-24 * trace0
        u = step[ok] / pred[ok]
        step_z[key] = (u.mean(), _z(u.mean() - 1.0, u.std(ddof=1) / np.sqrt(u.size)))
        dist = results[key]["mean_dist"]
        frac = float((dist[:, -1] > dist[:, 0]).mean())
        away[key] = (frac, _z(frac - 0.5, 0.5 / np.sqrt(dist.shape[0])))
        slope = log_drift(tr)
        drift[key] = (slope.mean(), slope.std(ddof=1) / np.sqrt(slope.size), float((tr[:, -1] < 1e-3 * trace0).mean()))
        if "w2" in results[key]:
            w2 = results[key]["w2"]
            first, change = w2[:, 0].copy(), w2[:, -1] - w2[:, 0]
            del w2  # one loop's arrays at a time (notebook 01 at the paper scale)
            grows[key] = (change.mean(), change.std(ddof=1) / np.sqrt(change.size), float(first.mean()))

    worst = max(keys, key=lambda k: abs(ratio_z[k][1]))
    rows = [
        ClaimResult(
            claim="C1",
            figure="nb01_trace_collapse",
            statement="E[Σ_t | Σ_{t-1}] = λ Σ_{t-1}: tr Σ_t is a martingale (λ = 1) or supermartingale (λ < 1)",
            statistic="mean one-step ratio tr Σ_t / tr Σ_{t-1} against λ; criterion |z| < 4 in every (λ, n_s)",
            value=f"max |z| = {abs(ratio_z[worst][1]):.2f} at λ={worst[0]:g}, n_s={worst[1]} "
            f"(ratio {ratio_z[worst][0]:.4f}); {len(keys)} settings",
            verdict=verdict(all(abs(z) < Z_MARTINGALE for _, z in ratio_z.values())),
            effect="δ = 0.01 × λ: a one-step ratio within 1 % of λ counts as the exact E[Σ_t | Σ_{t-1}] = λ Σ_{t-1}",
        )
    ]
    worst_s = max(keys, key=lambda k: abs(step_z[k][1]))
    least_away = min(keys, key=lambda k: away[k][1])
    ok_walk = all(abs(z) < Z_MARTINGALE for _, z in step_z.values()) and all(z > Z_EFFECT for _, z in away.values())
    rows.append(
        ClaimResult(
            claim="C1",
            figure="nb01_mean_random_walk",
            statement="μ_t is a Gaussian random walk (martingale) with steps λ tr Σ_{t-1} / n_s that drifts away "
            "from μ_0",
            statistic="mean of ‖μ_t−μ_{t-1}‖² / (λ tr Σ_{t-1}/n_s) against 1 (|z| < 4), and fraction of trials "
            "ending farther "
            "from μ_0 than at t = 1 above 1/2 (z > 4), in every setting",
            value=f"max |z| of the step ratio = {abs(step_z[worst_s][1]):.2f}; fraction farther away ≥ "
            f"{away[least_away][0]:.3f} (λ={least_away[0]:g}, n_s={least_away[1]})",
            verdict=verdict(ok_walk),
            effect="δ = 0.01: a step ratio within 1 % of 1 counts as the predicted step; a share of 1/2 + 0.05 "
            "farther away counts as drifting away",
            power=round(min(z_power(0.05, 0.5 / np.sqrt(results[k]["mean_dist"].shape[0])) for k in keys), 3),
        )
    )
    slowest = max(keys, key=lambda k: drift[k][0] / drift[k][1] if drift[k][1] > 0 else -np.inf)
    rows.append(
        ClaimResult(
            claim="C1",
            figure="nb01_trace_collapse",
            statement="tr Σ_t → 0 almost surely for every λ ≤ 1 (App. A)",
            statistic="per-trial drift of log tr Σ_t per generation, mean over trials; criterion z < −4 in every "
            "setting",
            value=f"slowest: λ={slowest[0]:g}, n_s={slowest[1]}: {drift[slowest][0]:.2e} ± "
            f"{drift[slowest][1]:.1e}/gen; "
            f"collapsed below 1e-3·tr Σ_0 at the last generation: "
            + ", ".join(f"λ={k[0]:g}/n_s={k[1]}: {drift[k][2]:.0%}" for k in keys),
            verdict=verdict(all(_z(m, s) < -Z_EFFECT for m, s, _ in drift.values())),
            effect="δ = 1e-3 per generation: a drift of log tr Σ_t of −0.001/gen or faster counts as a collapse",
            power=round(min(z_power(1e-3, s) for _, s, _ in drift.values()), 3),
        )
    )
    lams = sorted({k[0] for k in keys})
    nss = sorted({k[1] for k in keys})
    pairs = [((lam, a), (lam, b)) for lam in lams for a, b in zip(nss, nss[1:], strict=False)]
    pairs += [((a, n), (b, n)) for n in nss for a, b in zip(lams, lams[1:], strict=False)]
    pair_z = [
        _z(drift[hi][0] - drift[lo][0], np.hypot(drift[hi][1], drift[lo][1]))
        for lo, hi in pairs
        if lo in drift and hi in drift
    ]
    rows.append(
        ClaimResult(
            claim="C1",
            figure="nb01_trace_collapse",
            statement="smaller n_s and smaller λ make the collapse faster",
            statistic="difference of the mean log-trace drift between neighbouring settings (larger n_s or larger λ "
            "minus "
            "smaller); criterion z > 4 for every neighbouring pair",
            value=f"min z = {min(pair_z):.1f} over {len(pair_z)} pairs" if pair_z else "no pairs",
            verdict=verdict(bool(pair_z) and min(pair_z) > Z_EFFECT),
            effect="δ = 10 % of the faster drift: a smaller difference does not count as faster",
            power=round(
                min(
                    (z_power(0.1 * abs(drift[lo][0]), np.hypot(drift[hi][1], drift[lo][1])) for lo, hi in pairs),
                    default=float("nan"),
                ),
                3,
            ),
        )
    )
    if grows:
        least = min(grows, key=lambda k: _z(grows[k][0], grows[k][1]))
        rows.append(
            ClaimResult(
                claim="C1",
                figure="nb01_trace_collapse",
                statement="the distance E[W2(G^t, P_r)] grows over the generations (§3.1)",
                statistic="mean over trials of W2 at the last generation minus at generation 1; criterion z > 4 in "
                "every setting",
                value=f"least growth: λ={least[0]:g}, n_s={least[1]}: {grows[least][0]:+.3g} ± {grows[least][1]:.2g} "
                f"(from {grows[least][2]:.3g})",
                verdict=verdict(all(_z(m, s) > Z_EFFECT for m, s, _ in grows.values())),
                effect="δ = 10 % of W2 at generation 1: a smaller growth does not count",
                power=round(min(z_power(0.1 * w, s) for _, s, w in grows.values()), 3),
            )
        )
    trials = min(results[k]["trace"].shape[0] for k in keys)
    for r in rows:
        r.seeds = trials  # independent Monte Carlo trials
    return rows
