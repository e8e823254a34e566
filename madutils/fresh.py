"""The fresh data loop of §5 in the Gaussian case: its limit WD(n_r, n_s, λ) (eq. 3), the calibration curve and
effective sample size n_e (eq. 4), and the admissible threshold of the phase transition (§5.3, Fig. 11, 12).

These functions compute; they do not store. Caching is the caller's: :func:`fresh_limits` takes a ``cache``
callable (the experiment layer passes the store's).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .loops import LoopConfig
from .montecarlo import simulate
from .utils import check_int, check_lam


def _warn(msg: str) -> None:
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


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
    loop = LoopConfig(
        generations=generations, n_ini=n_r + n_s, n_s=n_s, real="fresh", n_r=n_r, lam=lam, memory=memory, seed=seed
    )
    res = simulate(loop, d, trials)
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
        loop = LoopConfig(generations=1, n_ini=int(n), n_s=0, seed=seed + i)
        w = simulate(loop, d, trials, method=method).w2[:, 0]
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


Cache = Callable[[dict, Callable[[], dict]], dict]


def fresh_limits(
    points: list[dict],
    d: int,
    *,
    trials: int = 100,
    seed: int = 0,
    cache: Cache | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """WD(n_r, n_s, λ) (eq. 3) for many points ``{"n_r", "n_s", "lam"[, "memory"]}``, one row each (columns
    ``wd``, ``wd_se``, ``converged`` and ``trials`` besides the point's own). ``cache(config, compute)`` returns
    the arrays of ``compute()`` for ``config``, computed once (e.g. :meth:`madutils.store.Store.cached_arrays`), so
    an interrupted grid resumes."""
    from tqdm.auto import tqdm

    rows = []
    for p in tqdm(points, desc="fresh data loop limits", disable=not progress, leave=False):
        point = dict(n_r=int(p["n_r"]), n_s=int(p["n_s"]), lam=float(p["lam"]), memory=int(p.get("memory", 1)))
        config = point | dict(d=d, trials=trials, seed=seed)

        def compute(point=point):
            lim = fresh_limit(
                point["n_r"], point["n_s"], point["lam"], d, trials=trials, memory=point["memory"], seed=seed
            )
            return {"wd": np.array(lim.wd), "wd_se": np.array(lim.se), "converged": np.array(lim.converged)}

        values = cache(config, compute) if cache is not None else compute()
        rows.append(p | point | {k: float(v) for k, v in values.items()} | {"trials": trials})
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
