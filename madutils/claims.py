"""The paper's claims C1–C12 (DESIGN.md) as functions of stored results.

Each function returns :class:`ClaimResult` rows: the measured statistic with its uncertainty and a verdict whose
criterion is fixed here, before any result is seen, and is the same at every scale. A criterion compares an effect
with its own noise (a z-score, a confidence interval over trials or seeds, an ordering that must hold at every later
generation); it never depends on hand-picked generations. ``not_run`` is only for missing data or hardware.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .paths import runs_dir
from .scales import check_scale

VERDICTS = ("reproduced", "not_reproduced", "not_run")
COLUMNS = ["claim", "notebook", "figure", "statement", "statistic", "value", "verdict", "reason"]


@dataclass
class ClaimResult:
    claim: str
    notebook: str
    figure: str
    statement: str
    statistic: str
    value: str
    verdict: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def verdict(ok: bool) -> str:
    return "reproduced" if ok else "not_reproduced"


def record_claims(rows: Iterable[ClaimResult], notebook: str, scale: str) -> pd.DataFrame:
    """Write a notebook's claim rows to ``runs/<scale>/meta/claims/<notebook>.csv`` (the gallery collects them
    into ``figures/<scale>/claims.csv``) and return them as a table."""
    check_scale(scale)
    df = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)
    folder = runs_dir(scale) / "meta" / "claims"
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{notebook}.csv", index=False)
    return df


def _z(mean: float, se: float) -> float:
    return float(mean / se) if se > 0 else (0.0 if mean == 0 else float(np.sign(mean) * np.inf))


# ---------------------------------------------------------------------------------------------------------------
# C1: the Gaussian fully synthetic loop (§3.1, App. A)
# ---------------------------------------------------------------------------------------------------------------

Z_MARTINGALE = 4.0  # |z| below which a measured conditional mean agrees with its exact value (many settings tested)
Z_EFFECT = 4.0  # z above which an effect (a drift, a difference) counts as shown
TINY = 1e-250


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
    """
    keys = sorted(results)
    ratio_z, step_z, away, drift = {}, {}, {}, {}
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

    worst = max(keys, key=lambda k: abs(ratio_z[k][1]))
    rows = [
        ClaimResult(
            "C1",
            "01",
            "nb01_trace_collapse",
            "E[Σ_t | Σ_{t-1}] = λ Σ_{t-1}: tr Σ_t is a martingale (λ = 1) or supermartingale (λ < 1)",
            "mean one-step ratio tr Σ_t / tr Σ_{t-1} against λ; criterion |z| < 4 in every (λ, n_s)",
            f"max |z| = {abs(ratio_z[worst][1]):.2f} at λ={worst[0]:g}, n_s={worst[1]} "
            f"(ratio {ratio_z[worst][0]:.4f}); {len(keys)} settings",
            verdict(all(abs(z) < Z_MARTINGALE for _, z in ratio_z.values())),
        )
    ]
    worst_s = max(keys, key=lambda k: abs(step_z[k][1]))
    least_away = min(keys, key=lambda k: away[k][1])
    ok_walk = all(abs(z) < Z_MARTINGALE for _, z in step_z.values()) and all(z > Z_EFFECT for _, z in away.values())
    rows.append(
        ClaimResult(
            "C1",
            "01",
            "nb01_mean_random_walk",
            "μ_t is a Gaussian random walk (martingale) with steps λ tr Σ_{t-1} / n_s that drifts away from μ_0",
            "mean of ‖μ_t−μ_{t-1}‖² / (λ tr Σ_{t-1}/n_s) against 1 (|z| < 4), and fraction of trials ending farther "
            "from μ_0 than at t = 1 above 1/2 (z > 4), in every setting",
            f"max |z| of the step ratio = {abs(step_z[worst_s][1]):.2f}; fraction farther away ≥ "
            f"{away[least_away][0]:.3f} (λ={least_away[0]:g}, n_s={least_away[1]})",
            verdict(ok_walk),
        )
    )
    slowest = max(keys, key=lambda k: drift[k][0] / drift[k][1] if drift[k][1] > 0 else -np.inf)
    rows.append(
        ClaimResult(
            "C1",
            "01",
            "nb01_trace_collapse",
            "tr Σ_t → 0 almost surely for every λ ≤ 1 (App. A)",
            "per-trial drift of log tr Σ_t per generation, mean over trials; criterion z < −4 in every setting",
            f"slowest: λ={slowest[0]:g}, n_s={slowest[1]}: {drift[slowest][0]:.2e} ± {drift[slowest][1]:.1e}/gen; "
            f"collapsed below 1e-3·tr Σ_0 at the last generation: "
            + ", ".join(f"λ={k[0]:g}/n_s={k[1]}: {drift[k][2]:.0%}" for k in keys),
            verdict(all(_z(m, s) < -Z_EFFECT for m, s, _ in drift.values())),
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
            "C1",
            "01",
            "nb01_trace_collapse",
            "smaller n_s and smaller λ make the collapse faster",
            "difference of the mean log-trace drift between neighbouring settings (larger n_s or larger λ minus "
            "smaller); criterion z > 4 for every neighbouring pair",
            f"min z = {min(pair_z):.1f} over {len(pair_z)} pairs" if pair_z else "no pairs",
            verdict(bool(pair_z) and min(pair_z) > Z_EFFECT),
        )
    )
    return rows


def table_markdown(df: pd.DataFrame, columns: Sequence[str] = ("claim", "statement", "value", "verdict")) -> str:
    """A claims table as Markdown (for the gallery and notebooks)."""
    cols = list(columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [str(row[c]).replace("|", "\\|").replace("\n", " ") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
