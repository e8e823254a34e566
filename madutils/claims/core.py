"""What every claim module shares: the row of the claims table, the verdicts, the validity gate, recording a
notebook's rows, and the statistics the criteria use.

How a trend or an ordering is judged (docs/design.md, "How a claim is judged"). The generations of one self-consuming
loop form a random walk, so a least-squares interval over the generations of a single seed is far too narrow.
Every statistic here is therefore computed **per seed** (each seed is an independent loop) and its interval is a
Student-t interval **across seeds** (seeds − 1 degrees of freedom). The across-seed variance is floored by the
metric's own measurement noise where that is known (binomial for precision, recall, coverage and tail mass on the
evaluated samples; the bootstrap standard error for FID that the image hook stores as ``fid_se``), so that a few
seeds that happen to agree cannot make an interval narrower than the measurement allows. With one seed no interval
exists and the row is ``uninformative``. Every row states the smallest effect that counts as the paper's
(:class:`Effect`) and is judged by :func:`decide` on three verdicts: the interval excludes 0 on the claimed side
(``reproduced``), excludes the stated effect (``not_reproduced``), or holds both (``uninformative``, underpowered,
with its power). ``madutils.tools.calibration`` feeds driftless random walks through these functions and shows
that they say ``reproduced`` for at most 5 % of them (a test), and reports each row's power at its stated effect.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import registry

VERDICTS = ("reproduced", "not_reproduced", "uninformative", "not_run")


COLUMNS = [
    "claim",
    "notebook",
    "figure",
    "statement",
    "statistic",
    "value",
    "effect",
    "power",
    "seeds",
    "gate",
    "verdict",
    "reason",
]

LEVEL = 0.95  # two-sided level of every interval; a one-directional claim is a one-sided test at 2.5 %

GATE_RECALL = 0.2  # generation 1 of an image loop must cover at least this share of the real reference set ...
GATE_LABELS = 0.5  # ... and, for a conditional model, LeNet must read at least this share of its digits as labelled

BINOMIAL = frozenset({"precision", "recall", "coverage", "tail_mass", "label_accuracy"})


@dataclass
class ClaimResult:
    """One row of the claims table. ``notebook`` is the notebook that records ``claim``, from the registry;
    ``seeds`` the number of independent seeds (or Monte Carlo trials) behind the statistic; ``gate`` the
    validity gate's numbers for image loops ("" where no gate applies)."""

    claim: str
    figure: str
    statement: str
    statistic: str
    value: str
    verdict: str
    reason: str = ""
    seeds: int = 0
    gate: str = ""
    effect: str = ""  # the smallest effect that counts as the paper's, with its reason (fixed before results)
    power: float = float("nan")  # the chance that the criterion says `reproduced` when the true effect is that size
    kind: str = "direction"  # how the row is judged (decide); not a column of the claims table
    notebook: str = field(init=False)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        self.notebook = registry.claim_notebook(self.claim)


def verdict(ok: bool) -> str:
    return "reproduced" if ok else "not_reproduced"


def _z(mean: float, se: float) -> float:
    return float(mean / se) if se > 0 else (0.0 if mean == 0 else float(np.sign(mean) * np.inf))


Z_MARTINGALE = 4.0  # |z| below which a measured conditional mean agrees with its exact value (many settings tested)


Z_EFFECT = 4.0  # z above which an effect (a drift, a difference) counts as shown


TINY = 1e-250


# a one-letter symbol with a subscript, as the statements write them (Σ_{t-1}, μ_0, n_s), and not inside a word
# (hf_share, n_ini) or already inside $…$
_SUBSCRIPT = re.compile(r"(?<![\w\\$])([A-Za-zΑ-Ωα-ω])_(\{[^{}|$]*\}|[A-Za-z0-9](?![\w]))")


def math_markdown(text: str) -> str:
    """``text`` with its subscripted symbols typeset as inline mathematics (``Σ_{t-1}`` → ``$Σ_{t-1}$``), so that
    Jupyter, the book and GitHub render them instead of showing the raw underscores."""
    return _SUBSCRIPT.sub(r"$\1_\2$", text)


def table_markdown(df: pd.DataFrame, columns: Sequence[str] = ("claim", "statement", "value", "verdict")) -> str:
    """A claims table as Markdown (for the gallery and notebooks), its subscripted symbols as mathematics."""
    cols = list(columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [math_markdown(str(row[c])).replace("|", "\\|").replace("\n", " ") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _slope(x, y, se):
    """Weighted least-squares slope of log y on log x and its standard error (se: standard errors of y)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    w = (np.asarray(y, float) / np.asarray(se, float)) ** 2
    xm = np.sum(w * lx) / np.sum(w)
    sxx = np.sum(w * (lx - xm) ** 2)
    slope = np.sum(w * (lx - xm) * (ly - np.sum(w * ly) / np.sum(w))) / sxx
    resid = ly - (np.sum(w * ly) / np.sum(w) + slope * (lx - xm))
    dof = max(len(lx) - 2, 1)
    scale = max(1.0, np.sum(w * resid**2) / dof)  # inflate by the misfit when the points scatter more than their SE
    return float(slope), float(np.sqrt(scale / sxx))


# -- selecting curves ---------------------------------------------------------------------------------------------


def _mask(df: pd.DataFrame, metric: str, since: int | None = None, until: int | None = None, **where) -> np.ndarray:
    keep = df.metric.to_numpy() == metric
    for k, v in where.items():
        col = df[k].to_numpy()
        keep &= np.isclose(col.astype(float), v) if isinstance(v, float) else col == v
    gen = df.generation.to_numpy()
    if since is not None:
        keep &= gen >= since
    if until is not None:
        keep &= gen <= until
    return keep


def per_seed(df: pd.DataFrame, metric: str, since: int | None = None, until: int | None = None, **where):
    """``metric`` of the runs selected by ``where`` as a table generation × seed (one column per seed; the mean
    where a seed has several values at one generation)."""
    keep = _mask(df, metric, since, until, **where)
    if not keep.any():
        return pd.DataFrame()
    gen = df.generation.to_numpy()[keep]
    seed = df["seed"].to_numpy()[keep] if "seed" in df else np.zeros(keep.sum(), int)
    value = df.value.to_numpy(float)[keep]
    gens, gi = np.unique(gen, return_inverse=True)
    seeds, si = np.unique(seed, return_inverse=True)
    total = np.zeros((len(gens), len(seeds)))
    count = np.zeros_like(total)
    np.add.at(total, (gi, si), value)
    np.add.at(count, (gi, si), 1)
    with np.errstate(invalid="ignore"):
        return pd.DataFrame(total / count, index=pd.Index(gens, name="generation"), columns=seeds)


def point_variance(df: pd.DataFrame, metric: str, since=None, until=None, **where) -> float:
    """The measurement variance of one value of ``metric`` (mean over the selected points): binomial
    p(1 − p)/n for shares measured on n evaluated samples (n = the loop's ``n_eval`` or else ``n_s``), the
    squared bootstrap standard error ``fid_se`` for FID, 0 where the noise is not known."""
    if metric == "fid":
        se = per_seed(df, "fid_se", since, until, **where)
        return float(np.nanmean(se.to_numpy() ** 2)) if se.size else 0.0
    if metric not in BINOMIAL:
        return 0.0
    keep = _mask(df, metric, since, until, **where)
    if not keep.any() or "n_s" not in df:
        return 0.0
    n = df.n_s.to_numpy()[keep]
    if "n_eval" in df:
        n = np.where(df.n_eval.to_numpy()[keep] > 0, df.n_eval.to_numpy()[keep], n)
    if "n_ini" in df:
        n = np.where(n > 0, n, df.n_ini.to_numpy()[keep])
    p = np.clip(df.value.to_numpy(float)[keep], 0, 1)
    return float(np.mean(p * (1 - p) / np.maximum(n, 1)))


# -- intervals across seeds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A statistic estimated across seeds: the mean of the per-seed values, its two-sided ``LEVEL`` interval
    (Student t, seeds − 1 degrees of freedom) and the number of seeds. With fewer than two seeds the interval is
    NaN and the statistic cannot decide anything."""

    estimate: float
    lo: float
    hi: float
    seeds: int
    dropped: tuple = ()  # seeds left out: a value missing or not finite (named in the row's reason)

    @property
    def informative(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi))

    def scaled(self, factor: float) -> Interval:
        a, b = sorted((self.lo * factor, self.hi * factor))
        return Interval(self.estimate * factor, a, b, self.seeds, self.dropped)

    def text(self, name: str, unit: str = "") -> str:
        if not self.informative:
            return f"{name} {self.estimate:+.3g}{unit} ({self.seeds} seed{'s' if self.seeds != 1 else ''}: no interval)"
        return f"{name} {self.estimate:+.3g}{unit} (95% CI {self.lo:+.3g} … {self.hi:+.3g}, {self.seeds} seeds)"


@functools.lru_cache(maxsize=256)
def _t(level: float, dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, dof))


def across_seeds(values, noise_var: float = 0.0, level: float = LEVEL, seeds=None) -> Interval:
    """Student-t interval of the mean of independent per-seed ``values``; their variance is floored at
    ``noise_var`` (the variance one seed's value has from measurement noise alone). Values that are missing or not
    finite are left out; with ``seeds`` (the seed of each value) the interval names them (``dropped``)."""
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    dropped = tuple(np.asarray(seeds)[~ok].tolist()) if seeds is not None else ()
    v = v[ok]
    m = len(v)
    if m == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, dropped)
    if m < 2:
        return Interval(float(v[0]), float("nan"), float("nan"), 1, dropped)
    var = max(float(v.var(ddof=1)), float(noise_var))
    half = _t(level, m - 1) * np.sqrt(var / m)
    mean = float(v.mean())
    return Interval(mean, mean - half, mean + half, m, dropped)


def seed_slopes(
    df: pd.DataFrame, metric: str, since: int | None = None, until: int | None = None, least: int = 3, **where
):
    """Each seed's least-squares slope of ``metric`` over its generations (a Series by seed, NaN for a seed with a
    generation missing or not finite; empty with fewer than ``least`` generations, 3 unless a criterion reads a
    two-point step) and Σ(t − t̄)² of those generations."""
    y = per_seed(df, metric, since, until, **where)
    if len(y.index) < max(least, 2):
        return pd.Series(dtype=float), 0.0
    xc = y.index.to_numpy(float) - y.index.to_numpy(float).mean()
    sxx = float(np.sum(xc**2))
    v = y.to_numpy()
    whole = np.isfinite(v).all(axis=0)
    slopes = np.full(v.shape[1], np.nan)
    slopes[whole] = xc @ v[:, whole] / sxx
    return pd.Series(slopes, index=y.columns), sxx


def trend(
    df: pd.DataFrame, metric: str, since: int | None = None, until: int | None = None, least: int = 3, **where
) -> Interval:
    """The change of ``metric`` per generation in the runs selected by ``where``: each seed's least-squares slope
    over its generations (``since``/``until`` restrict them), with an interval across seeds whose variance is
    floored by the measurement noise of a slope, σ²/Σ(t − t̄)². Needs ``least`` generations (3 unless given) and 2
    seeds."""
    slopes, sxx = seed_slopes(df, metric, since, until, least, **where)
    if not len(slopes):
        return Interval(float("nan"), float("nan"), float("nan"), per_seed(df, metric, **where).shape[1])
    noise = point_variance(df, metric, since, until, **where) / sxx
    return across_seeds(slopes.to_numpy(), noise, seeds=slopes.index.to_numpy())


def difference(
    df: pd.DataFrame, metric: str, low: dict, high: dict, since: int = 2, until: int | None = None
) -> Interval:
    """``metric`` of the runs ``high`` minus the runs ``low``: per seed, the mean over the generations ≥ ``since``
    that both have. Seeds present in both are paired (the loops of one seed share their generation 1) and the
    interval is taken over the per-seed differences; otherwise the two groups are compared with the smaller group's
    degrees of freedom. Either way the variance is floored by the measurement noise of the two means."""
    a = per_seed(df, metric, since, until, **low)
    b = per_seed(df, metric, since, until, **high)
    gens = a.index.intersection(b.index)
    if not len(gens):
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    a, b = a.loc[gens].mean(), b.loc[gens].mean()
    noise = (point_variance(df, metric, since, until, **low) + point_variance(df, metric, since, until, **high)) / len(
        gens
    )
    if set(a.index) == set(b.index):
        return across_seeds((b - a[b.index]).to_numpy(), noise, seeds=b.index.to_numpy())
    m = min(len(a), len(b))
    est = float(b.mean() - a.mean())
    if m < 2:
        return Interval(est, float("nan"), float("nan"), m)
    se = np.sqrt(max(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b), noise / m))
    half = _t(LEVEL, m - 1) * se
    return Interval(est, est - half, est + half, m)


# -- the validity gate --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """Whether generation 1 of every loop a row reads is good enough for the row to speak (``ok``), and its
    numbers (``text``, "" when no gate applies)."""

    ok: bool = True
    text: str = ""


def gate(df: pd.DataFrame, *loops: dict) -> Gate:
    """The validity gate of an image claim, the same at every scale: generation 1 of every seed of every loop in
    ``loops`` (selections as in :func:`per_seed`) must have recall ≥ ``GATE_RECALL`` and, for a conditional model
    (a ``label_accuracy`` metric), label accuracy ≥ ``GATE_LABELS``. Without a recall metric no gate applies."""
    recall, labels = [], []
    for where in loops:
        for metric, out in (("recall", recall), ("label_accuracy", labels)):
            y = per_seed(df, metric, **where)
            if y.size:
                out.extend(y.iloc[0].dropna().tolist())
    if not recall:
        return Gate()
    ok = min(recall) >= GATE_RECALL and (not labels or min(labels) >= GATE_LABELS)
    text = f"generation 1: recall {_span(recall)} (≥ {GATE_RECALL:g})"
    if labels:
        text += f", label accuracy {_span(labels)} (≥ {GATE_LABELS:g})"
    return Gate(ok, text + (": pass" if ok else ": fail"))


def _span(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if np.isclose(lo, hi, atol=5e-3) else f"{lo:.2f}–{hi:.2f}"


# -- the stated effect and the three verdicts ----------------------------------------------------------------------


def z_power(effect: float, se: float, z: float = Z_EFFECT) -> float:
    """The power of a Monte Carlo criterion "z > ``z``" when the true effect is ``effect`` and its standard error
    ``se`` (normal approximation over many independent trials)."""
    import math

    if not (np.isfinite(se) and se > 0):
        return float("nan")
    return 0.5 * math.erfc((z - effect / se) / math.sqrt(2))  # the normal upper tail beyond z − effect / se


@dataclass(frozen=True)
class Effect:
    """The smallest effect that counts as the paper's for one row, fixed in code before any result is seen: its
    ``size`` (> 0) in the statistic's units, the ``unit`` to print, and ``why`` that size."""

    size: float
    why: str
    unit: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.size) and self.size > 0):
            raise ValueError(f"a stated effect must be a positive number, got {self.size!r} ({self.why})")

    def text(self) -> str:
        return f"δ = {self.size:.3g}{self.unit}: {self.why}"


KINDS = ("direction", "holds", "equal")


def power(iv: Interval, effect: float, kind: str = "direction") -> float:
    """The chance that a row's criterion says ``reproduced`` when the true statistic is at the stated effect
    (``direction``: +effect in the claimed direction; ``holds`` and ``equal``: no change at all), for an interval
    of the same width and degrees of freedom as ``iv`` (noncentral t). NaN when ``iv`` has no width."""
    from scipy import stats

    if not iv.informative or iv.seeds < 2:
        return float("nan")
    dof = iv.seeds - 1
    t = _t(LEVEL, dof)
    se = (iv.hi - iv.lo) / (2 * t)
    if se <= 0:
        return 1.0
    if kind == "equal":  # the whole interval inside ±effect when the truth is 0
        return float(max(0.0, 2 * stats.t.cdf(effect / se - t, dof) - 1))
    return float(stats.nct.sf(t, dof, effect / se))


def decide(iv: Interval, effect: Effect, sign: int = 1, kind: str = "direction") -> tuple[str, str]:
    """The verdict of one row and its reason (docs/design.md, "How a claim is judged"), on the interval ``iv`` of a
    statistic whose claimed direction is ``sign``:

    * ``direction`` (the statistic is positive, times ``sign``): ``reproduced`` when the interval excludes 0 on the
      claimed side; ``not_reproduced`` when it excludes the stated effect, lying wholly below it on the claimed side
      (the data contradict the claim, or show an effect smaller than what counts as the paper's);
    * ``holds`` (no change of the stated size against the claimed side, "precision does not decay"):
      ``reproduced`` when the interval excludes a change of −effect, ``not_reproduced`` when it lies wholly beyond;
    * ``equal`` (the statistic is within ±effect of 0, "the gap closes"): ``reproduced`` when the interval lies
      inside ±effect, ``not_reproduced`` when it lies wholly outside.

    Otherwise ``uninformative``: the interval holds both answers, and the reason says "underpowered" with the power
    at the stated effect (:func:`power`)."""
    if kind not in KINDS:
        raise ValueError(f"kind = {kind!r}; use one of {KINDS}")
    if sign not in (1, -1):
        raise ValueError(f"sign = {sign!r}; use +1 or -1")
    lo, hi = (iv.lo, iv.hi) if sign > 0 else (-iv.hi, -iv.lo)
    d = effect.size
    if kind == "direction":
        if hi < d:
            why = "the data contradict the claim" if hi < 0 else "the effect is smaller than the stated one"
            return "not_reproduced", f"the interval lies below the stated effect δ = {d:.3g}: {why}"
        if lo > 0:
            return "reproduced", ""
    elif kind == "holds":
        if hi < -d:
            return "not_reproduced", f"the interval lies beyond a change of −δ = {-d:.3g} against the claim"
        if lo > -d:
            return "reproduced", ""
    else:
        if lo > d or hi < -d:
            return "not_reproduced", f"the interval lies outside ±δ = {d:.3g}"
        if -d < lo and hi < d:
            return "reproduced", ""
    p = power(iv, d, kind)
    return "uninformative", f"underpowered: the interval holds both answers; power {p:.2f} at the stated effect"


# -- Monte Carlo rows: many independent trials, several settings judged at once -----------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting of a Monte Carlo row: its statistic's ``estimate`` and standard error ``se`` over independent
    trials, the stated ``effect`` there (in the statistic's units) and a ``name`` for the reason. ``kind`` and
    ``sign`` override the row's for a setting that tests another part of the statement (a plateau beside a
    difference)."""

    name: str
    estimate: float
    se: float
    effect: float
    kind: str = ""
    sign: int = 0


def mc_power(effect: float, se: float, kind: str = "direction") -> float:
    """The power of a Monte Carlo setting judged on the interval estimate ± ``Z_EFFECT`` · se (:func:`mc_decide`)
    when the truth is at the stated effect (``direction``), or at no change (``holds``, ``equal``)."""
    p = z_power(effect, se)
    return float(max(0.0, 2 * p - 1)) if kind == "equal" else p


def mc_decide(settings: Sequence[Setting], sign: int = 1, kind: str = "direction") -> tuple[str, str, float]:
    """The verdict, reason and power of a Monte Carlo row that holds in every setting: each setting's interval
    estimate ± ``Z_EFFECT`` · se (z = 4: many settings are tested at once) is judged by :func:`decide` against
    its own stated effect; the row is ``reproduced`` when every setting is, ``not_reproduced`` when any is (named),
    and otherwise ``uninformative`` (underpowered, with the power of the weakest setting). Its power is that of
    the weakest setting."""
    if not settings:
        return "not_run", "no settings", float("nan")
    verdicts, powers = [], []
    for st in settings:
        iv = Interval(st.estimate, st.estimate - Z_EFFECT * st.se, st.estimate + Z_EFFECT * st.se, 2)
        k, sg = st.kind or kind, st.sign or sign
        if not (np.isfinite(st.estimate) and np.isfinite(st.se)):
            verdicts.append(("uninformative", st, "no estimate"))
        else:
            v, why = decide(iv, Effect(st.effect, st.name), sg, k)
            verdicts.append((v, st, why))
        powers.append(mc_power(st.effect, st.se, k) if np.isfinite(st.se) else float("nan"))
    power_ = float(np.nanmin(powers)) if np.isfinite(powers).any() else float("nan")
    against = [(st, why) for v, st, why in verdicts if v == "not_reproduced"]
    if against:
        return "not_reproduced", "; ".join(f"{st.name}: {why}" for st, why in against), power_
    if all(v == "reproduced" for v, _, _ in verdicts):
        return "reproduced", "", power_
    weak = [st.name for v, st, _ in verdicts if v != "reproduced"]
    return (
        "uninformative",
        f"underpowered: the interval (±{Z_EFFECT:g} SE) holds both answers at {', '.join(weak)}; power {power_:.2f} "
        "at the stated effect",
        power_,
    )


def mc_row(
    head: tuple[str, str],
    statement: str,
    statistic: str,
    value: str,
    settings: Sequence[Setting],
    effect: str,
    sign: int = 1,
    kind: str = "direction",
    trials: int = 0,
    untestable: str = "",
) -> ClaimResult:
    """One Monte Carlo row judged by :func:`mc_decide`; ``effect`` states the smallest effect that counts, with its
    reason (fixed in code before any result is seen). ``untestable`` names a precondition of the test that the
    data miss (curves that do not start apart, too few thresholds to fit): the row is then ``uninformative`` with
    that reason, unless the data already contradict the claim (``not_reproduced`` stands)."""
    v, reason, p = mc_decide(settings, sign, kind)
    if untestable and v != "not_reproduced":
        v, reason = "uninformative", untestable
    claim, figure = head
    return ClaimResult(
        claim, figure, statement, statistic, value, v, reason, seeds=trials, effect=effect, power=round(p, 3), kind=kind
    )


def judge(
    head: tuple[str, str],
    statement: str,
    statistic: str,
    value: str,
    iv: Interval,
    effect: Effect,
    sign: int = 1,
    kind: str = "direction",
    gate: Gate = Gate(),  # noqa: B008  (immutable)
    seeds: int | None = None,
) -> ClaimResult:
    """One row judged by :func:`decide` on ``iv``: ``uninformative`` when the gate fails or no interval exists
    (one seed, too few generations); seeds left out are named in the reason."""
    claim, figure = head
    n = seeds if seeds is not None else iv.seeds
    reason = ""
    if not gate.ok:
        v, reason = "uninformative", f"generation 1 fails the validity gate ({gate.text})"
    elif not iv.informative:
        v, reason = "uninformative", "no interval across seeds (needs at least 2 seeds and 3 generations)"
    else:
        v, reason = decide(iv, effect, sign, kind)
    if iv.dropped:
        names = ", ".join(map(str, iv.dropped))
        note = f"seed{'s' if len(iv.dropped) > 1 else ''} {names} left out (values missing or not finite)"
        reason = f"{reason}; {note}" if reason else note
    return ClaimResult(
        claim,
        figure,
        statement,
        statistic,
        value,
        v,
        reason,
        seeds=n,
        gate=gate.text,
        effect=effect.text(),
        power=round(power(iv, effect.size, kind), 3),
        kind=kind,
    )


def slope_difference(df: pd.DataFrame, metric: str, base: dict, other: dict, since=None, until=None) -> Interval:
    """The per-generation slope of ``metric`` in the runs ``other`` minus that in the runs ``base``, paired by seed
    (the loops of one seed share their generation 1): how much faster ``other`` moves. Its variance is floored by
    the measurement noise of the two slopes."""
    a, sxx = seed_slopes(df, metric, since, until, **base)
    b, _ = seed_slopes(df, metric, since, until, **other)
    seeds = a.index.intersection(b.index)
    if not len(seeds):
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    noise = (point_variance(df, metric, since, until, **base) + point_variance(df, metric, since, until, **other)) / sxx
    return across_seeds((b[seeds] - a[seeds]).to_numpy(), noise, seeds=seeds.to_numpy())


def first_generation(df: pd.DataFrame, metric: str, **where) -> float:
    """The mean over seeds of ``metric`` at generation 1 of the runs ``where`` (NaN when none is stored)."""
    y = per_seed(df, metric, **where)
    return float(np.nanmean(y.iloc[0].to_numpy())) if y.size else float("nan")


def relative_effect(df: pd.DataFrame, metric: str, share: float, why: str, unit: str = "/gen", **where) -> Effect:
    """An effect stated as a ``share`` of ``metric`` at generation 1 of the runs ``where`` (for an unbounded metric
    such as FID, whose scale depends on the features); 1 when nothing is stored (a row that is not run)."""
    base = first_generation(df, metric, **where)
    size = share * base if np.isfinite(base) and base > 0 else 1.0
    return Effect(size, f"{share:.3g} × its generation-1 value ({base:.3g}): {why}", unit)


def rises(
    df: pd.DataFrame, head: tuple, statement: str, metric: str, sign: int, gate: Gate, effect: Effect, **where
) -> ClaimResult:
    """One row: ``metric`` of the runs ``where`` rises (``sign`` = +1) or falls (−1) over the generations, judged on
    the interval across seeds of the per-seed slopes against 0 and the stated ``effect`` (:func:`decide`)."""
    s = trend(df, metric, **where)
    return judge(
        head,
        statement,
        "per-seed least-squares slope over generations; 95% CI across seeds (floored by measurement noise)",
        s.text(f"{metric} slope", "/gen"),
        s,
        effect,
        sign,
        gate=gate,
    )


SET_SIZE_METRICS = ("precision", "recall", "density", "coverage")


def on_whole_reference(df: pd.DataFrame, metrics: Sequence[str] = SET_SIZE_METRICS) -> pd.DataFrame:
    """The tidy table with ``precision``, ``recall``, ... measured against the whole reference set (the image hook
    records them as ``precision_full`` etc.) in place of the equal-size values the claims read: the same criteria
    then show what the set sizes change (notebook 02)."""
    full = [f"{m}_full" for m in metrics]
    swapped = df[df.metric.isin(full)].assign(metric=lambda d: d.metric.str.removesuffix("_full"))
    return pd.concat([df[~df.metric.isin(metrics) & ~df.metric.isin(full)], swapped], ignore_index=True)


def set_size_table(df: pd.DataFrame, rows, metrics: Sequence[str] = ("precision", "recall")) -> pd.DataFrame:
    """The rows of ``rows(table)`` that read ``metrics``, judged on equal set sizes (the claims' own) and on the
    whole reference (:func:`on_whole_reference`), side by side."""
    equal, whole = rows(df), rows(on_whole_reference(df))
    out = [
        {
            "claim": a.claim,
            "statement": a.statement,
            "equal sizes": f"{a.verdict}: {a.value}",
            "whole reference": f"{b.verdict}: {b.value}",
        }
        for a, b in zip(equal, whole, strict=True)
        if any(m in a.statement for m in metrics)
    ]
    return pd.DataFrame(out, columns=["claim", "statement", "equal sizes", "whole reference"])
