"""C5–C8: the fresh data loop (§5, App. G): the limit forgets the start, the phase transition of the effective
sample size, memory, and dataset size; C5 also on the DDPM."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .core import (
    Z_EFFECT,
    Z_MARTINGALE,
    ClaimResult,
    Effect,
    Gate,
    _slope,
    _z,
    across_seeds,
    difference,
    gate,
    judge,
    trend,
    verdict,
)

PLATEAU_TOL = 0.05  # a limit is reached when the drift over the late generations stays within ±5 % of its level


def c5_limit_independent_of_start(
    w2: Mapping[tuple[float, int], np.ndarray],
    figure: str = "fig10_fresh_gaussian_w2",
    what: str = "Gaussian W2",
) -> list:
    """C5: in the fresh data loop the distance converges to a limit that does not depend on n_ini.

    ``w2[(lam, n_ini)]`` has shape (trials, generations); the trials are independent loops. For each λ:

    * start apart: at generation 1 the smallest and the largest n_ini differ (z > 4 over trials);
    * a limit: over the second half of the generations every curve is on a plateau: its drift (per-trial slope ×
      span, 95% interval over trials) stays within ±``PLATEAU_TOL`` of its level;
    * the same limit: the late means of every pair of n_ini agree (|z| < 4)."""
    rows = []
    for lam in sorted({k[0] for k in w2}):
        inis = sorted(k[1] for k in w2 if k[0] == lam)
        gens = w2[(lam, inis[0])].shape[1]
        late_idx = np.arange(gens // 2, gens)
        first = {n: w2[(lam, n)][:, 0] for n in inis}
        late = {n: w2[(lam, n)][:, late_idx].mean(axis=1) for n in inis}

        def z(a, b):
            return _z(a.mean() - b.mean(), np.hypot(a.std(ddof=1) / np.sqrt(a.size), b.std(ddof=1) / np.sqrt(b.size)))

        start_z = z(first[inis[0]], first[inis[-1]])
        end_z = max(abs(z(late[a], late[b])) for i, a in enumerate(inis) for b in inis[i + 1 :])
        xc = late_idx - late_idx.mean()
        drift = {}
        for n in inis:
            per_trial = (w2[(lam, n)][:, late_idx] * xc).sum(axis=1) / np.sum(xc**2) * (late_idx[-1] - late_idx[0])
            d = across_seeds(per_trial)
            drift[n] = max(abs(d.lo), abs(d.hi)) / late[n].mean() if len(late_idx) > 2 else np.nan
        flat = all(np.isfinite(v) and v < PLATEAU_TOL for v in drift.values())
        ok = start_z > Z_EFFECT and end_z < Z_MARTINGALE and flat
        trials = min(w2[(lam, n)].shape[0] for n in inis)
        rows.append(
            ClaimResult(
                claim="C5",
                figure=figure,
                statement=f"fresh data loop: the limit of the distance does not depend on n_ini ({what}, λ={lam:g})",
                statistic="generation 1: smallest vs largest n_ini differ (z > 4); second half of the generations: "
                f"a plateau (drift within ±{PLATEAU_TOL:.0%} of the level, 95% CI over trials) and every pair of "
                "n_ini agrees (|z| < 4)",
                value=f"start z = {start_z:.1f}; max |z| between limits = {end_z:.2f}; largest late drift "
                f"{max(drift.values()):.1%} of the level; limits "
                + ", ".join(f"n_ini={n}: {late[n].mean():.3f}" for n in inis),
                verdict=verdict(ok),
                seeds=trials,
                effect=f"δ = {PLATEAU_TOL:.0%} of the limit: curves whose late means differ by less, and whose late "
                "drift stays within it, share one limit",
            )
        )
    return rows


CONSTANT_TOL = 0.5  # a log-log slope of n_s* on n_r within ±0.5: nearer a constant threshold than a proportional one
GROWTH_TOL = 1.5  # ... and n_s* growing by less than half across the upper half of the n_r grid


def c6_phase_transition(ess: pd.DataFrame, thresholds: pd.DataFrame) -> list[ClaimResult]:
    """C6 from the grid of effective sample sizes (``gaussian.effective_sample_sizes``) and its thresholds
    (``gaussian.admissible_thresholds``). Five checks:

    1. too much synthetic data hurts: for every λ < 1 and n_r, n_e/n_r < 1 (upper band) at the largest n_s;
    2. a modest amount helps when n_r is small: for every λ < 1, at the smallest n_r some n_s > 0 has
       n_e/n_r > 1 (lower band);
    3. the threshold becomes constant (the paper: it "seems to become constant"): over the upper half of the n_r
       grid, the log-log slope of n_s* on n_r lies within ±``CONSTANT_TOL`` with its 2-SE band and n_s* grows by
       less than ``GROWTH_TOL`` (a threshold that still rises by half is not constant), for every λ < 1;
    4. smaller λ lowers the threshold: no pair of λ values at any n_r is ordered the other way (intervals
       disjoint), and at least half of the pairs are ordered significantly;
    5. λ = 1 is always admissible: no grid point at λ = 1 has n_e/n_r significantly below 1.
    """
    rows = []
    trials = _trials(ess)
    biased = sorted(lam for lam in ess.lam.unique() if lam < 1)
    nrs = sorted(ess.n_r.unique())
    last = ess[ess.n_s == ess.groupby(["lam", "n_r"]).n_s.transform("max")]
    bad = last[(last.lam < 1) & ~(last.ratio_high < 1)]
    rows.append(
        ClaimResult(
            claim="C6",
            figure="fig11_fresh_admissible_region",
            statement="fresh data loop, λ < 1: beyond a threshold, synthetic data lowers the effective sample size "
            "(n_e < n_r)",
            statistic="n_e/n_r (upper 2-SE band) < 1 at the largest n_s, for every λ < 1 and n_r",
            value=f"{len(last[last.lam < 1]) - len(bad)} of {len(last[last.lam < 1])} (λ, n_r) have n_e/n_r < 1 at the "
            f"largest n_s; largest such n_e/n_r = {last[last.lam < 1].ratio.max():.2f}",
            verdict=verdict(len(bad) == 0 and len(biased) > 0),
            effect="δ = the 2-SE band of n_e/n_r: any n_e below n_r beyond the Monte Carlo noise counts",
        )
    )
    small = ess[(ess.n_r == nrs[0]) & (ess.n_s > 0) & (ess.lam < 1)]
    helped = small.groupby("lam").ratio_low.max()
    rows.append(
        ClaimResult(
            claim="C6",
            figure="fig11_fresh_admissible_region",
            statement="a modest amount of synthetic data raises the effective sample size (n_e > n_r) when n_r is "
            "small",
            statistic=f"at n_r = {nrs[0]}: the largest lower band of n_e/n_r over n_s > 0 exceeds 1, for every λ < 1",
            value=", ".join(
                f"λ={lam:g}: max n_e/n_r = {small[small.lam == lam].ratio.max():.2f}" for lam in helped.index
            ),
            verdict=verdict(len(helped) > 0 and bool((helped > 1).all())),
            effect="δ = the 2-SE band of n_e/n_r: any gain beyond the Monte Carlo noise counts",
        )
    )
    thr = thresholds[thresholds.lam < 1]
    parts, ok3 = [], len(biased) > 0
    for lam in biased:
        g = thr[(thr.lam == lam) & (thr.censored == "")].sort_values("n_r")
        g = g[g.n_r >= np.median(g.n_r)] if len(g) > 3 else g
        if len(g) < 2:
            parts.append(f"λ={lam:g}: an uncensored threshold at {len(g)} n_r of the upper range only")
            ok3 = False
            continue
        se = np.maximum((np.log(g.high) - np.log(g.low)) / 4, 1e-3) * g.threshold
        slope, slope_se = _slope(g.n_r, g.threshold, se)
        growth = float(g.threshold.iloc[-1] / g.threshold.iloc[0])
        ok3 &= bool(abs(slope) + 2 * slope_se < CONSTANT_TOL and growth < GROWTH_TOL)
        parts.append(
            f"λ={lam:g}: n_s* {g.threshold.iloc[0]:.3g} (n_r={g.n_r.iloc[0]:g}) → {g.threshold.iloc[-1]:.3g} "
            f"(n_r={g.n_r.iloc[-1]:g}, ×{growth:.2f}), log-log slope {slope:.2f} ± {slope_se:.2f}"
        )
    rows.append(
        ClaimResult(
            claim="C6",
            figure="fig12_fresh_threshold_vs_lambda",
            statement="the admissible threshold of n_s becomes constant as n_r grows",
            statistic=f"over the upper half of the n_r grid (uncensored thresholds): the log-log slope of n_s* on n_r "
            f"with |slope| + 2 SE < {CONSTANT_TOL:g} (nearer constant, 0, than proportional, 1), and n_s* growing by "
            f"less than ×{GROWTH_TOL:g} from the first to the last n_r, for every λ < 1",
            value="; ".join(parts),
            verdict=verdict(ok3),
            seeds=trials,
            effect=f"a threshold is constant when its log-log slope on n_r is within ±{CONSTANT_TOL:g} and it grows by "
            f"less than {GROWTH_TOL - 1:.0%} across the upper half of the grid",
        )
    )
    contra, signif, total = 0, 0, 0
    for n_r in nrs:
        g = thresholds[(thresholds.n_r == n_r) & (thresholds.lam < 1)].sort_values("lam")
        for (_, lo), (_, hi) in zip(g.iterrows(), g.iloc[1:].iterrows(), strict=False):
            total += 1
            contra += int(lo.low > hi.high)
            signif += int(
                lo.high < hi.low
                or (lo.censored == "below" and hi.censored != "below")
                or (hi.censored == "above" and lo.censored != "above")
            )
    rows.append(
        ClaimResult(
            claim="C6",
            figure="fig12_fresh_threshold_vs_lambda",
            statement="more sampling bias (smaller λ) lowers the admissible threshold of n_s",
            statistic="thresholds of neighbouring λ < 1 at every n_r: none ordered the wrong way, at least half "
            "significantly "
            "ordered (2-SE intervals disjoint or censored apart)",
            value=f"{signif} of {total} pairs significantly ordered, {contra} contradicting",
            verdict=verdict(total > 0 and contra == 0 and signif >= total / 2),
            effect="δ = the 2-SE bands of the thresholds: an ordering counts when the bands are disjoint",
        )
    )
    unb = ess[(ess.lam == 1.0) & (ess.n_s > 0)]
    rows.append(
        ClaimResult(
            claim="C6",
            figure="fig12_fresh_threshold_vs_lambda",
            statement="unbiased sampling (λ = 1) is always admissible: n_e ≥ n_r for every n_s",
            statistic="no grid point at λ = 1 with the upper 2-SE band of n_e/n_r below 1",
            value=f"{len(unb)} points at λ = 1, min n_e/n_r = {unb.ratio.min():.2f}"
            if len(unb)
            else "λ = 1 not in the grid",
            verdict=verdict(len(unb) > 0 and bool((unb.ratio_high >= 1).all())),
            reason="" if len(unb) else "the grid has no λ = 1 points",
            effect="δ = the 2-SE band of n_e/n_r: a loss beyond the Monte Carlo noise would contradict",
        )
    )
    return _with_seeds(rows, trials)


def _trials(*tables: pd.DataFrame) -> int:
    return min((int(t.trials.min()) for t in tables if "trials" in t and len(t)), default=0)


def _with_seeds(rows: list[ClaimResult], trials: int) -> list[ClaimResult]:
    for r in rows:
        r.seeds = r.seeds or trials
    return rows


def c7_memory(ess: pd.DataFrame) -> list[ClaimResult]:
    """C7: sampling from the last K models raises n_e/n_r with diminishing returns (App. G exp. 1, Fig. 30).

    ``ess`` has one row per K (column ``memory``). Raised: n_e/n_r at the largest K exceeds the one at K = 1
    (2-SE bands disjoint). Diminishing: the gain per added model over the first step of K exceeds the gain per
    added model over the last step, z > 4 (standard errors from the bands)."""
    g = ess.sort_values("memory").reset_index(drop=True)
    se = (g.ratio_high - g.ratio_low) / 4
    raised = g.ratio_low.iloc[-1] > g.ratio_high.iloc[0]
    k = g.memory.to_numpy(float)
    first = (g.ratio[1] - g.ratio[0]) / (k[1] - k[0])
    final = (g.ratio.iloc[-1] - g.ratio.iloc[-2]) / (k[-1] - k[-2])
    z = _z(
        first - final,
        np.sqrt(
            (se[0] ** 2 + se[1] ** 2) / (k[1] - k[0]) ** 2
            + (se.iloc[-1] ** 2 + se.iloc[-2] ** 2) / (k[-1] - k[-2]) ** 2
        ),
    )
    return _with_seeds(
        [
            ClaimResult(
                claim="C7",
                figure="fig30_fresh_memory",
                statement="sampling from the last K models raises n_e/n_r",
                statistic="n_e/n_r at the largest K above n_e/n_r at K = 1 (2-SE bands disjoint)",
                value=", ".join(f"K={int(m)}: {r:.2f}" for m, r in zip(g.memory, g.ratio, strict=True)),
                verdict=verdict(raised),
                effect="δ = the 2-SE bands of n_e/n_r: a gain counts when the bands are disjoint",
            ),
            ClaimResult(
                claim="C7",
                figure="fig30_fresh_memory",
                statement="the gain from a larger memory K diminishes",
                statistic="gain of n_e/n_r per added model, first step of K minus last step, z > 4",
                value=f"first step {first:.3f}/model, last step {final:.3f}/model, z = {z:.1f}",
                verdict=verdict(z > Z_EFFECT),
                effect="δ = 4 standard errors of the difference of the gains",
            ),
        ],
        _trials(ess),
    )


def c8_dataset_size(by_p: pd.DataFrame, by_lam: pd.DataFrame) -> list[ClaimResult]:
    """C8 (App. G exp. 2, Fig. 31): with a fraction p of real data in the fresh data loop, WD falls with the total
    size n more slowly than with real data only; with λ < 1 it plateaus.

    ``by_p`` (λ = 1) and ``by_lam`` (fixed p) have columns ``n``, ``wd``, ``wd_se`` and ``p`` or ``lam``. Checks:
    1. λ = 1: WD falls with n for every p (log-log slope < 0, z > 4);
    2. λ = 1: more slowly with synthetic data (the paper's "decreases the rate"): the log-log slope with p < 1 minus
       the slope with p = 1 is above 0 (z > 4);
    3. λ = 1: synthetic data costs accuracy: WD(p < 1) > WD(p = 1) at every n (z > 4);
    4. λ < 1: WD plateaus: over the upper half of the n grid its log-log slope is above −0.25 for every λ < 1
       (real data alone: about −0.5), and WD at the largest n exceeds the λ = 1 value (z > 4)."""
    rows = []
    slopes = {p: _slope(g.n, g.wd, g.wd_se) for p, g in by_p.groupby("p")}
    rows.append(
        ClaimResult(
            claim="C8",
            figure="fig31_fresh_dataset_size",
            statement="λ = 1: WD falls as the dataset grows, for every real fraction p",
            statistic="log-log slope of WD on n below 0 (z < −4) for every p",
            value=", ".join(f"p={p:g}: {s:.3f} ± {e:.3f}" for p, (s, e) in slopes.items()),
            verdict=verdict(all(_z(s, e) < -Z_EFFECT for s, e in slopes.values())),
            effect="δ = 4 standard errors of the log-log slope",
        )
    )
    rate = (
        {p: _z(slopes[p][0] - slopes[1.0][0], np.hypot(slopes[p][1], slopes[1.0][1])) for p in slopes if p < 1}
        if 1.0 in slopes
        else {}
    )
    rows.append(
        ClaimResult(
            claim="C8",
            figure="fig31_fresh_dataset_size",
            statement="λ = 1: with synthetic data in the pool (p < 1), WD falls more slowly with n than with real "
            "data only",
            statistic="log-log slope of WD on n with p < 1 minus the slope with p = 1 above 0 (z > 4), for every p < 1",
            value=", ".join(f"p={p:g}: {slopes[p][0] - slopes[1.0][0]:+.4f} (z = {z:.1f})" for p, z in rate.items())
            or "no p = 1 reference",
            verdict=verdict(bool(rate) and all(z > Z_EFFECT for z in rate.values())),
            effect="δ = 4 standard errors of the slope difference",
        )
    )
    real = by_p[by_p.p == 1.0].set_index("n")
    worse = []
    for p, g in by_p[by_p.p < 1].groupby("p"):
        g = g.set_index("n")
        zs = [_z(g.wd[n] - real.wd[n], np.hypot(g.wd_se[n], real.wd_se[n])) for n in g.index if n in real.index]
        worse.append((p, min(zs) if zs else np.nan))
    rows.append(
        ClaimResult(
            claim="C8",
            figure="fig31_fresh_dataset_size",
            statement="λ = 1: with synthetic data in the pool (p < 1), WD is higher than with real data only at "
            "every n",
            statistic="WD(p, n) − WD(1, n) > 0 with z > 4 at every n, for every p < 1",
            value=", ".join(f"p={p:g}: min z = {z:.1f}" for p, z in worse),
            verdict=verdict(len(worse) > 0 and all(z > Z_EFFECT for _, z in worse)),
            effect="δ = 4 standard errors of the difference at every n",
        )
    )
    plateau, parts = True, []
    ref = by_lam[by_lam.lam == 1.0].set_index("n")
    for lam, g in by_lam[by_lam.lam < 1].groupby("lam"):
        g = g.sort_values("n")
        upper = g[g.n >= np.median(g.n)]
        s, e = _slope(upper.n, upper.wd, upper.wd_se)
        top = g.n.max()
        z = (
            _z(g.set_index("n").wd[top] - ref.wd[top], np.hypot(g.set_index("n").wd_se[top], ref.wd_se[top]))
            if top in ref.index
            else np.nan
        )
        plateau &= bool(s > -0.25 and z > Z_EFFECT)
        parts.append(f"λ={lam:g}: upper slope {s:.3f} ± {e:.3f}, z vs λ=1 at n={top:g}: {z:.1f}")
    if len(ref):
        upper = ref[ref.index >= np.median(ref.index)]
        s, e = _slope(upper.index, upper.wd, upper.wd_se)
        parts.append(f"λ=1: upper slope {s:.3f} ± {e:.3f}")
    rows.append(
        ClaimResult(
            claim="C8",
            figure="fig31_fresh_dataset_size",
            statement="with sampling bias (λ < 1) WD plateaus: more data stops helping",
            statistic="log-log slope of WD on n over the upper half of the n grid above −0.25 for every λ < 1 (real "
            "data only: "
            "about −0.5), and WD at the largest n above the λ = 1 value (z > 4)",
            value="; ".join(parts),
            verdict=verdict(plateau and (by_lam.lam < 1).any()),
            effect="a plateau: a log-log slope above −0.25 over the upper half of the n grid (half the −0.5 of real "
            "data alone)",
        )
    )
    return _with_seeds(rows, _trials(by_p, by_lam))


def c5_fresh_images(
    df: pd.DataFrame,
    figure: str = "fig10_fresh_ddpm_fid",
    model: str = "DDPM on MNIST",
    metric: str = "fid",
) -> list[ClaimResult]:
    """C5 for an image model (Fig. 10 right): fresh data loops that differ only in n_ini converge to the same FID.
    With G generations and the late ones t > G/2 (intervals across seeds, :mod:`.core`), the stated effect is half
    the start gap (FID at generation 1, smallest minus largest n_ini, paired by seed): what the loop has to forget.

    * the limit does not depend on n_ini: the late gap (the same difference over the late generations) lies within
      ± half the start gap;
    * each loop reaches a limit: its late drift (per-seed slope over the late generations, times the G − 1 steps of
      the whole loop; with G = 3 the one step from generation 2 to 3) lies within ± half the start gap.

    A start gap whose interval holds 0 leaves nothing to forget: the rows are then ``uninformative``. The loops'
    generation 1 must pass the validity gate."""
    inis = sorted(df[df.real == "fresh"].n_ini.unique())
    head = ("C5", figure)
    statement = f"fresh data loop ({model}): the FID converges to a limit independent of n_ini"
    if len(inis) < 2:
        return [
            ClaimResult(
                *head, statement, "needs two n_ini", "fewer than two runs", "not_run", "fewer than two fresh data loops"
            )
        ]
    small, large = (dict(n_ini=n, real="fresh") for n in (inis[0], inis[-1]))
    last = int(df[df.real == "fresh"].generation.max())
    since = last // 2 + 1
    start = difference(df, metric, large, small, since=1, until=1)
    gap = difference(df, metric, large, small, since=since)
    g = gate(df, *(dict(n_ini=n, real="fresh") for n in inis))
    apart = start.informative and (start.lo > 0 or start.hi < 0)
    effect = Effect(
        max(abs(start.estimate) / 2, 1e-9) if apart else 1.0,
        f"half the start gap {start.estimate:+.3g} (generation 1, n_ini = {inis[0]} minus {inis[-1]}): what the "
        "loop has to forget",
    )
    if not apart:
        g = Gate(False, f"the loops do not start apart ({start.text('start gap')}): nothing to forget") if g.ok else g
    rows = [
        judge(
            head,
            statement,
            f"generations ≥ {since}: FID(n_ini={inis[0]}) − FID(n_ini={inis[-1]}), paired by seed, within ± the "
            "stated effect (95% CI across seeds)",
            start.text("start gap") + "; " + gap.text("late gap"),
            gap,
            effect,
            kind="equal",
            gate=g,
        )
    ]
    for n in inis:
        # two late generations (a 3-generation loop) give a one-step slope: weak, but a drift all the same
        drift = trend(df, metric, since=since, least=2, n_ini=n, real="fresh").scaled(last - 1)
        rows.append(
            judge(
                head,
                f"fresh data loop ({model}), n_ini = {n}: the FID reaches a limit",
                f"late slope (generations ≥ {since}) × (G − 1), per seed, within ± the stated effect (95% CI across "
                "seeds)",
                drift.text("late drift"),
                drift,
                effect,
                kind="equal",
                gate=g,
            )
        )
    return rows
