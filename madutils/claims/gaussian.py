"""C1: the Gaussian fully synthetic loop is a martingale whose covariance collapses (§3.1, App. A)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .core import TINY, ClaimResult, Setting, _z, mc_decide, mc_row


def log_drift(trace: np.ndarray) -> np.ndarray:
    """Per-trial drift of log tr Σ_t per generation, (log tr Σ_τ − log tr Σ_1) / (τ − 1), where τ is the last
    generation or, for a trial whose trace fell below the float range, the last generation before that."""
    alive = trace > TINY
    tau = np.where(alive.all(axis=1), trace.shape[1], alive.argmin(axis=1)) - 1  # 0-based index of τ
    tau = np.maximum(tau, 1)
    rows = np.arange(trace.shape[0])
    logs = np.log(np.clip(trace[rows, tau], TINY, None)) - np.log(np.clip(trace[:, 0], TINY, None))
    return logs / tau


def theory_drift(lam: float, n_s: int, d: int) -> float:
    """The slowest drift per generation of log tr Σ_t that the theory allows in d dimensions with n_s samples a
    generation and bias λ (to second order in 1/n_s): |log λ| + 1/(d (n_s − 1)), the second term from
    E[log tr S] < log tr Σ for a sample covariance S (equal variances give the least)."""
    return abs(float(np.log(lam))) + 1.0 / (d * max(n_s - 1, 1))


def both(row: ClaimResult, other: tuple[str, str, float]) -> ClaimResult:
    """``row`` with a second criterion (a :func:`~.core.mc_decide` result) that must hold as well: not reproduced
    when either is not, reproduced when both are; the power of the weaker."""
    v, why, p = other
    if v == "not_reproduced" or row.verdict == "reproduced" and v != "reproduced":
        row.verdict, row.reason = v, why if row.verdict != "not_reproduced" else f"{row.reason}; {why}"
    if np.isfinite(p):
        row.power = round(min(row.power, p) if np.isfinite(row.power) else p, 3)
    return row


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    """The mean of ``x`` and its standard error."""
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


def c1_gaussian_martingale(
    results: Mapping[tuple[float, int], Mapping[str, np.ndarray]],
    trace0: float,
    n_ini: Mapping[tuple[float, int], int],
    d: int = 2,
) -> list[ClaimResult]:
    """C1 from the stored Monte Carlo of the fully synthetic Gaussian loop.

    ``results[(lam, n_s)]`` holds arrays ``trace`` (tr Σ_t), ``step_sq`` (‖μ_t − μ_{t−1}‖²) and ``mean_dist``
    (‖μ_t − μ_0‖) of shape (trials, generations); ``d`` is the dimension. Five rows, each over every (λ, n_s) and
    judged on intervals of ± 4 standard errors over the independent trials (:func:`~.core.mc_decide`: a row holds
    when it holds in every setting), each against an effect stated in code:

    1. Σ_t is a (super)martingale: the one-step ratio tr Σ_t / tr Σ_{t−1} has conditional mean exactly λ (eq. 2);
       its mean over trials and generations lies within 1 % of λ.
    2. μ_t is a martingale with the predicted step size: ‖μ_t − μ_{t−1}‖² / (λ tr Σ_{t−1} / n_s) has conditional
       mean 1 (within 1 %); and the walk carries μ_t away from μ_0: more than half of the trials end farther from
       μ_0 than they started (by at least 0.05).
    3. tr Σ_t → 0 almost surely: the per-trial drift of log tr Σ_t over the run is negative, counted from half the
       slowest drift the theory allows (:func:`theory_drift`).
    4. Smaller n_s and smaller λ collapse faster: the mean drift of log tr Σ_t is ordered along both axes of the
       grid, each adjacent difference counted from half the difference of their theory drifts.
    5. The distance grows (§3.1): E[W2(G^t, P_r)] at the last generation exceeds that at generation 1 (with ``w2``
       among the arrays), counted from a tenth of √tr Σ_0, the distance to a model collapsed onto μ_0.

    Each row's power is that of its weakest setting at the stated effect."""
    keys = sorted(results)
    ratio_z, step_z, away, drift, grows = {}, {}, {}, {}, {}
    ratio, step, away_se = {}, {}, {}
    for key in keys:
        lam, n_s = key
        tr, step_sq = results[key]["trace"], results[key]["step_sq"]
        prev, cur = tr[:, :-1], tr[:, 1:]
        ok = prev > TINY
        ratio[key] = _mean_se(cur[ok] / prev[ok])  # the quotient's temporaries are freed at once
        ratio_z[key] = (ratio[key][0], _z(ratio[key][0] - lam, ratio[key][1]))
        pred = np.concatenate([np.full((tr.shape[0], 1), trace0 / n_ini[key]), lam * prev / n_s], axis=1)
        # below ~1e-24 tr Σ_0 the step is lost in the rounding of μ_t (float64, |μ_t| ~ sqrt(tr Σ_0))
        ok = pred > 1e-24 * trace0
        step[key] = _mean_se(step_sq[ok] / pred[ok])
        step_z[key] = (step[key][0], _z(step[key][0] - 1.0, step[key][1]))
        del pred, step_sq
        dist = results[key]["mean_dist"]
        frac = float((dist[:, -1] > dist[:, 0]).mean())
        away[key] = (frac, _z(frac - 0.5, 0.5 / np.sqrt(dist.shape[0])))
        away_se[key] = 0.5 / np.sqrt(dist.shape[0])
        slope = log_drift(tr)
        drift[key] = (slope.mean(), slope.std(ddof=1) / np.sqrt(slope.size), float((tr[:, -1] < 1e-3 * trace0).mean()))
        if "w2" in results[key]:
            w2 = results[key]["w2"]
            first, change = w2[:, 0].copy(), w2[:, -1] - w2[:, 0]
            del w2  # one loop's arrays at a time (notebook 01 at the paper scale)
            grows[key] = (change.mean(), change.std(ddof=1) / np.sqrt(change.size), float(first.mean()))
        del tr, prev, cur, ok, dist, slope  # one loop's arrays at a time

    head = ("C1", "nb01_trace_collapse")
    ratio_settings = [Setting(f"λ={k[0]:g}, n_s={k[1]}", ratio[k][0] - k[0], ratio[k][1], 0.01 * k[0]) for k in keys]
    worst = max(keys, key=lambda k: abs(ratio_z[k][1]))
    rows = [
        mc_row(
            head,
            "E[Σ_t | Σ_{t-1}] = λ Σ_{t-1}: tr Σ_t is a martingale (λ = 1) or supermartingale (λ < 1)",
            "mean one-step ratio tr Σ_t / tr Σ_{t-1} minus λ, ± 4 SE over trials and generations, within ±1 % of λ "
            "in every (λ, n_s)",
            f"max |z| = {abs(ratio_z[worst][1]):.2f} at λ={worst[0]:g}, n_s={worst[1]} "
            f"(ratio {ratio_z[worst][0]:.4f}); {len(keys)} settings",
            ratio_settings,
            "δ = 0.01 × λ: a one-step ratio within 1 % of λ counts as the exact E[Σ_t | Σ_{t-1}] = λ Σ_{t-1}",
            kind="equal",
        )
    ]
    worst_s = max(keys, key=lambda k: abs(step_z[k][1]))
    least_away = min(keys, key=lambda k: away[k][1])
    step_settings = [Setting(f"λ={k[0]:g}, n_s={k[1]}", step[k][0] - 1.0, step[k][1], 0.01) for k in keys]
    away_settings = [Setting(f"λ={k[0]:g}, n_s={k[1]}", away[k][0] - 0.5, away_se[k], 0.05) for k in keys]
    rows.append(
        both(
            mc_row(
                ("C1", "nb01_mean_random_walk"),
                "μ_t is a Gaussian random walk (martingale) with steps λ tr Σ_{t-1} / n_s that drifts away from μ_0",
                "mean of ‖μ_t−μ_{t-1}‖² / (λ tr Σ_{t-1}/n_s) minus 1 within ±0.01 (± 4 SE), and the fraction of "
                "trials ending farther from μ_0 than at t = 1 above 1/2 (4 SE), in every setting",
                f"max |z| of the step ratio = {abs(step_z[worst_s][1]):.2f}; fraction farther away ≥ "
                f"{away[least_away][0]:.3f} (λ={least_away[0]:g}, n_s={least_away[1]})",
                step_settings,
                "δ = 0.01: a step ratio within 1 % of 1 counts as the predicted step; a share of 1/2 + 0.05 "
                "farther away counts as drifting away",
                kind="equal",
            ),
            mc_decide(away_settings),
        )
    )
    slowest = max(keys, key=lambda k: drift[k][0] / drift[k][1] if drift[k][1] > 0 else -np.inf)
    rows.append(
        mc_row(
            head,
            "tr Σ_t → 0 almost surely for every λ ≤ 1 (App. A)",
            "per-trial drift of log tr Σ_t per generation, mean over trials (± 4 SE), below 0 in every setting",
            f"slowest: λ={slowest[0]:g}, n_s={slowest[1]}: {drift[slowest][0]:.2e} ± "
            f"{drift[slowest][1]:.1e}/gen; "
            f"collapsed below 1e-3·tr Σ_0 at the last generation: "
            + ", ".join(f"λ={k[0]:g}/n_s={k[1]}: {drift[k][2]:.0%}" for k in keys),
            [Setting(f"λ={k[0]:g}, n_s={k[1]}", drift[k][0], drift[k][1], theory_drift(*k, d) / 2) for k in keys],
            "δ = half the slowest drift the theory allows in each setting, (|log λ| + 1/(d (n_s − 1))) / 2 per "
            "generation (to second order in 1/n_s)",
            sign=-1,
        )
    )
    lams = sorted({k[0] for k in keys})
    nss = sorted({k[1] for k in keys})
    pairs = [((lam, a), (lam, b)) for lam in lams for a, b in zip(nss, nss[1:], strict=False)]
    pairs += [((a, n), (b, n)) for n in nss for a, b in zip(lams, lams[1:], strict=False)]
    pairs = [(lo, hi) for lo, hi in pairs if lo in drift and hi in drift]
    pair_settings = [
        Setting(
            f"{lo} → {hi}",
            drift[hi][0] - drift[lo][0],
            float(np.hypot(drift[hi][1], drift[lo][1])),
            (theory_drift(*lo, d) - theory_drift(*hi, d)) / 2 or TINY,
        )
        for lo, hi in pairs
    ]
    pair_z = [_z(st.estimate, st.se) for st in pair_settings]
    rows.append(
        mc_row(
            head,
            "smaller n_s and smaller λ make the collapse faster",
            "difference of the mean log-trace drift between neighbouring settings (larger n_s or larger λ minus "
            "smaller), ± 4 SE, above 0 for every neighbouring pair",
            f"min z = {min(pair_z):.1f} over {len(pair_z)} pairs" if pair_z else "no pairs",
            pair_settings,
            "δ = half the difference of the two settings' slowest drifts by the theory, |log λ| + 1/(d (n_s − 1)) "
            "per generation",
        )
    )
    if grows:
        least = min(grows, key=lambda k: _z(grows[k][0], grows[k][1]))
        rows.append(
            mc_row(
                head,
                "the distance E[W2(G^t, P_r)] grows over the generations (§3.1)",
                "mean over trials of W2 at the last generation minus at generation 1, ± 4 SE, above 0 in every setting",
                f"least growth: λ={least[0]:g}, n_s={least[1]}: {grows[least][0]:+.3g} ± {grows[least][1]:.2g} "
                f"(from {grows[least][2]:.3g})",
                [Setting(f"λ={k[0]:g}, n_s={k[1]}", m, se, 0.1 * np.sqrt(trace0)) for k, (m, se, _) in grows.items()],
                "δ = 0.1 √tr Σ_0: a tenth of the distance from P_r to a model collapsed onto μ_0",
            )
        )
    trials = min(results[k]["trace"].shape[0] for k in keys)
    for r in rows:
        r.seeds = trials  # independent Monte Carlo trials
    return rows
