"""C9 and C11: the 2-D loops of App. B (the 25-mode GMM loses modes; the flow loses the tails)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .core import ClaimResult, Effect, Interval, across_seeds, judge, per_seed, point_variance, seed_slopes

# C11's stated effects. The tail mass is a share in [0, 1]: a slope cannot state "the tails are lost" (a run that
# falls to 0 by generation 5 and stays there has a 16-generation slope shallower than any loss it has made), so the
# loss is measured as a level, the share of its own start a run has lost by its late generations (at most 1).
TAILS_LOST = Effect(
    0.5, "half of its generation-1 tail mass gone by the late generations: the tails the paper sees vanish"
)
TAILS_FASTER = Effect(
    1 / 32, "an extra half of its generation-1 tail mass lost over the paper's 16 generations", "/gen"
)

LOG_POINTS = 30  # iterations at which C9's correlations are taken, log-spaced from the first to the last


def log_spaced(generations, points: int = LOG_POINTS) -> np.ndarray:
    """About ``points`` of ``generations`` spaced evenly in log t (every early iteration counts as much as the long
    late phase in which every measure has already collapsed)."""
    g = np.asarray(sorted(generations))
    want = np.unique(np.round(np.geomspace(g[0], g[-1], points)))
    return g[np.unique(np.searchsorted(g, want).clip(0, len(g) - 1))]


def c9_gmm_modes(df: pd.DataFrame) -> list[ClaimResult]:
    """C9 (App. B.2, Fig. 14, 15): the 25-mode GMM in a fully synthetic loop loses modes, and recall follows the
    loss of modes better than the total variance. ``df``: tidy table of the GMM runs (one run per seed) with metrics
    ``modes_covered``, ``recall``, ``total_variance``, ``modal_variance``.

    * loses modes: each seed's change in covered modes from the first to the last iteration; interval across
      seeds below 0;
    * recall tracks the modes: per seed, the Spearman correlation with ``modes_covered`` over log-spaced iterations
      (:func:`log_spaced`) of recall minus that of the total variance; interval across seeds above 0."""
    from scipy.stats import spearmanr

    modes = per_seed(df, "modes_covered")
    lost = across_seeds((modes.iloc[-1] - modes.iloc[0]).to_numpy()) if len(modes) else across_seeds([])
    gap, parts = [], []
    spearman: dict[str, list[float]] = {"recall": [], "total_variance": [], "modal_variance": []}
    for seed in modes.columns:
        rho = {}
        for m in ("recall", "total_variance", "modal_variance"):
            y = per_seed(df, m)[seed]
            t = log_spaced(y.index.intersection(modes.index))
            r = spearmanr(modes[seed].loc[t], y.loc[t]).statistic
            rho[m] = float(r) if np.isfinite(r) else 0.0
            spearman[m].append(rho[m])
        gap.append(rho["recall"] - rho["total_variance"])
        parts.append(
            f"seed {seed}: modes {modes[seed].iloc[0]:.0f} → {modes[seed].iloc[-1]:.0f}; Spearman with modes: recall "
            f"{rho['recall']:.2f}, modal variance {rho['modal_variance']:.2f}, total variance "
            f"{rho['total_variance']:.2f}"
        )
    tracked = across_seeds(gap)
    if len(parts) > 5:  # many seeds: the range over seeds of each number instead of one entry per seed
        first, final = modes.iloc[0], modes.iloc[-1]
        span = {m: f"{min(v):.2f} … {max(v):.2f}" for m, v in spearman.items()}
        summary = (
            f"{len(parts)} seeds: modes {first.min():.0f}–{first.max():.0f} → {final.min():.0f}–{final.max():.0f}; "
            f"Spearman with modes: recall {span['recall']}, modal variance {span['modal_variance']}, total variance "
            f"{span['total_variance']}"
        )
        lost_text, tracked_text = summary.split(";")[0], summary
    else:
        lost_text, tracked_text = "; ".join(p.split(";")[0] for p in parts), "; ".join(parts)
    return [
        judge(
            ("C9", "fig14_gmm_densities"),
            "a 25-mode GMM in a fully synthetic loop loses modes",
            "change in covered modes from the first to the last iteration; 95% CI across seeds",
            lost.text("modes change") + "; " + lost_text,
            lost,
            Effect(1.0, "one of the 25 modes, the smallest loss Fig. 14 can show", " modes"),
            -1,
        ),
        judge(
            ("C9", "fig15_gmm_diversity_measures"),
            "recall follows the loss of modes better than the total variance",
            f"Spearman correlation with the covered modes over {LOG_POINTS} log-spaced iterations, recall minus "
            "total variance; 95% CI across seeds",
            tracked.text("ρ(recall) − ρ(total variance)") + "; " + tracked_text,
            tracked,
            Effect(0.2, "a tenth of the range [−2, 2] of a difference of two correlations"),
            +1,
        ),
    ]


def c11_flow_tails(df: pd.DataFrame, metric: str = "tail_mass") -> list[ClaimResult]:
    """C11 (App. B.4, Fig. 17): the flow loses the tails of the Rosenbrock density over the generations, faster with
    λ < 1. ``df``: tidy table of the flow runs with metric ``tail_mass`` (fraction of samples with |x1| > 2).

    * every λ: the share of its generation-1 tail mass each seed has lost by its late generations (the second half,
      :func:`share_lost`) is above 0; it counts from half of the start lost (a level: the tail mass is bounded
      below by 0, so a slope would understate a run that has lost everything early);
    * λ < 1 faster: each run measured against its own start, the share of its generation-1 tail mass it loses per
      generation (slope / generation-1 value, a gain counting as no loss), λ < 1 minus λ = 1, paired by seed, below
      0 (a λ = 1 run that gains tail mass does not make a flat λ < 1 run "faster"); it counts from an extra half of
      the start lost over 16 generations."""
    rows = []
    for lam in sorted(df.lam.unique(), reverse=True):
        lost, since = share_lost(df, metric, lam=lam)
        rows.append(
            judge(
                ("C11", "fig17_flow_rosenbrock"),
                f"the flow loses the tails of the Rosenbrock density (λ = {lam:g})",
                f"per seed, the share of its generation-1 tail mass P(|x1| > 2) lost by generations ≥ {since} "
                "(1 − late mean / generation-1 value); 95% CI across seeds (floored by binomial noise)",
                lost.text("share lost"),
                lost,
                TAILS_LOST,
                +1,
            )
        )
    rel = {}
    for lam in df.lam.unique():
        y = per_seed(df, metric, lam=lam)
        slopes, _ = seed_slopes(df, metric, lam=lam)
        # the share of its own start lost per generation; a gain counts as no loss
        rel[lam] = (
            slopes.clip(upper=0) / y.iloc[0].reindex(slopes.index).where(lambda v: v > 0) if len(slopes) else slopes
        )
    for lam in sorted(v for v in df.lam.unique() if v < 1 and 1.0 in rel):  # "faster" needs the λ = 1 loop
        paired = rel[lam].index.intersection(rel[1.0].index)
        faster = across_seeds((rel[lam][paired] - rel[1.0][paired]).to_numpy(), seeds=paired)
        rows.append(
            judge(
                ("C11", "fig17_flow_rosenbrock"),
                f"sampling bias λ = {lam:g} loses the tails faster",
                "the share of its own generation-1 tail mass lost per generation (per-seed slope / generation-1 "
                "value; a gain counts as no loss), λ < 1 minus λ = 1, paired by seed; 95% CI across seeds",
                faster.text(f"relative slope λ={lam:g} − λ=1", "/gen"),
                faster,
                TAILS_FASTER,
                -1,
            )
        )
    return rows


def share_lost(df: pd.DataFrame, metric: str, **where) -> tuple[Interval, int]:
    """Per seed, the share of its generation-1 value of ``metric`` that the runs ``where`` have lost by their late
    generations t ≥ G // 2 + 1 (G: the last generation): 1 − (mean over the late generations) / (generation 1),
    with an interval across seeds whose variance is floored by the binomial noise of that ratio (delta method).
    Returns the interval and the first late generation; no interval with fewer than 2 generations or 2 seeds, and a
    seed whose generation-1 value is 0 is left out (it has nothing to lose)."""
    y = per_seed(df, metric, **where)
    if len(y.index) < 2:
        return Interval(float("nan"), float("nan"), float("nan"), y.shape[1]), 2
    last = int(y.index.max())
    since = last // 2 + 1
    first, late = y.iloc[0], y.loc[y.index >= since].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        lost = (1 - late / first.where(first > 0)).to_numpy(float)
    f, m = float(np.nanmean(first)), float(np.nanmean(late))
    k = int((y.index >= since).sum())
    pv = point_variance(df, metric, **where)
    noise = (pv / k) / f**2 + m**2 * pv / f**4 if f > 0 else 0.0
    return across_seeds(lost, noise, seeds=y.columns.to_numpy()), since
