"""C2–C4 and C12: the fully synthetic and synthetic augmentation loops of image models (§3.2–4; the DDPM on MNIST,
StyleGAN2; the same functions serve the WGAN-GP of App. B.1 as C10).

Every row reads the tidy table of an experiment's runs (columns generation, metric, value, lam, real, seed, ...),
judges trends by per-seed slopes and orderings by per-seed differences (:mod:`.core`), and is ``uninformative``
when generation 1 of a loop it reads fails the validity gate (:func:`.core.gate`)."""

from __future__ import annotations

import pandas as pd

from .core import ClaimResult, difference, gate, judged, rises, trend

PRECISION_TOL = 0.05  # "precision holds": it loses less than this over the loop (upper end of the interval)

FS = "none"  # the real part of a fully synthetic loop
AUG = "fixed"  # ... of a synthetic augmentation loop


def _loop(lam: float, real: str = FS) -> dict:
    return dict(lam=float(lam), real=real)


def c2_fully_synthetic_unbiased(
    df: pd.DataFrame, figure: str = "fig04", model: str = "DDPM on MNIST", claim: str = "C2"
) -> list[ClaimResult]:
    """C2 (Fig. 4): fully synthetic loop at λ = 1: FID rises, precision and recall fall. Per metric: the interval
    across seeds of the per-seed slopes over generations excludes 0 in the claimed direction."""
    g = gate(df, _loop(1.0))
    return [
        rises(
            df,
            (claim, figure),
            f"fully synthetic loop, λ = 1 ({model}): {metric} {'rises' if sign > 0 else 'falls'} over generations",
            metric,
            sign,
            g,
            **_loop(1.0),
        )
        for metric, sign in (("fid", +1), ("precision", -1), ("recall", -1))
    ]


def c3_fully_synthetic_biased(
    df: pd.DataFrame, figure: str = "fig06", model: str = "DDPM on MNIST", claim: str = "C3"
) -> list[ClaimResult]:
    """C3 (Fig. 6, 16): fully synthetic loop with λ < 1, for every λ < 1 in ``df``:

    * precision holds: the change of precision over the loop (per-seed slope × (generations − 1)) loses less than
      ``PRECISION_TOL`` (upper end of its interval), and precision over generations ≥ 2 lies above the λ = 1 run's
      (paired difference, interval above 0);
    * recall falls (slope interval below 0) and lies below the λ = 1 run's (difference interval below 0);
    * FID rises (slope interval above 0)."""
    rows = []
    for lam in sorted(v for v in df[df.real == FS].lam.unique() if v < 1):
        here = _loop(lam)
        g = gate(df, here, _loop(1.0))
        span = max(1, df[(df.real == FS) & (df.lam == lam)].generation.max() - 1)
        change = trend(df, "precision", **here).scaled(span)
        above = difference(df, "precision", _loop(1.0), here)
        rows.append(
            judged(
                (claim, figure),
                f"fully synthetic loop, λ = {lam:g} ({model}): precision holds, above λ = 1",
                f"change of precision over the loop > −{PRECISION_TOL:g} (95% CI across seeds), and precision(λ = "
                f"{lam:g}) − precision(λ = 1) over generations ≥ 2 above 0 (95% CI)",
                change.text("precision change") + "; " + above.text(f"precision λ={lam:g} − λ=1"),
                change.lo > -PRECISION_TOL and above.lo > 0,
                change,
                above,
                gate=g,
            )
        )
        rows.append(_recall_below(df, (claim, figure), lam, f"({model}): recall falls, below λ = 1"))
        rows.append(
            rises(df, (claim, figure), f"fully synthetic loop, λ = {lam:g} ({model}): FID rises", "fid", 1, g, **here)
        )
    return rows


def _recall_below(df: pd.DataFrame, head: tuple, lam: float, what: str) -> ClaimResult:
    """The fully synthetic loop at ``lam`` < 1 loses diversity: its recall falls (slope interval below 0) and lies
    below the λ = 1 loop's over generations ≥ 2 (difference interval above 0)."""
    here = _loop(lam)
    falls = trend(df, "recall", **here)
    below = difference(df, "recall", here, _loop(1.0))
    return judged(
        head,
        f"fully synthetic loop, λ = {lam:g} {what}",
        f"recall slope below 0 and recall(λ = 1) − recall(λ = {lam:g}) over generations ≥ 2 above 0 (95% CIs "
        "across seeds)",
        falls.text("recall slope", "/gen") + "; " + below.text(f"recall λ=1 − λ={lam:g}"),
        falls.hi < 0 and below.lo > 0,
        falls,
        below,
        gate=gate(df, here, _loop(1.0)),
    )


def _slows(df: pd.DataFrame, head: tuple, model: str, g) -> ClaimResult:
    slower = difference(df, "fid", _loop(1.0, AUG), _loop(1.0, FS))
    return judged(
        head,
        f"λ = 1 ({model}): the fixed real set slows the degradation",
        "FID(fully synthetic) − FID(augmentation) over generations ≥ 2 above 0 (95% CI across seeds)",
        slower.text("FID fully synthetic − augmentation"),
        slower.lo > 0,
        slower,
        gate=g,
    )


def c4_augmentation(
    df: pd.DataFrame, figure: str = "fig09", model: str = "DDPM on MNIST", claim: str = "C4"
) -> list[ClaimResult]:
    """C4 (Fig. 8, 9): synthetic augmentation loop (fixed real set + synthetic). ``df`` holds the augmentation runs
    (real = "fixed") and the fully synthetic runs (real = "none"). FID still rises for every λ (slope interval
    above 0); at λ = 1 the fixed set slows it (FID of the fully synthetic loop minus the augmentation loop over
    generations ≥ 2, interval above 0); for every λ < 1, recall is lower and precision higher than in the λ = 1
    augmentation loop (both differences' intervals on the claimed side of 0)."""
    rows = []
    augs = sorted(df[df.real == AUG].lam.unique(), reverse=True)
    for lam in augs:
        g = gate(df, _loop(lam, AUG))
        rows.append(
            rises(
                df,
                (claim, figure),
                f"augmentation loop, λ = {lam:g} ({model}): FID still rises",
                "fid",
                1,
                g,
                **_loop(lam, AUG),
            )
        )
    if ((df.real == FS) & (df.lam == 1.0)).any():
        rows.append(_slows(df, (claim, figure), model, gate(df, _loop(1.0, AUG), _loop(1.0))))
    for lam in (v for v in augs if v < 1):
        here, ref = _loop(lam, AUG), _loop(1.0, AUG)
        rec = difference(df, "recall", here, ref)
        prec = difference(df, "precision", ref, here)
        rows.append(
            judged(
                (claim, figure),
                f"augmentation loop ({model}): λ = {lam:g} trades recall for precision",
                f"over generations ≥ 2: recall(λ = 1) − recall(λ = {lam:g}) > 0 and precision(λ = {lam:g}) − "
                "precision(λ = 1) > 0 (95% CIs across seeds)",
                rec.text(f"recall λ=1 − λ={lam:g}") + "; " + prec.text(f"precision λ={lam:g} − λ=1"),
                rec.lo > 0 and prec.lo > 0,
                rec,
                prec,
                gate=gate(df, here, ref),
            )
        )
    return rows


def c12_stylegan(df: pd.DataFrame, model: str, biased_lam: float = 0.7) -> list[ClaimResult]:
    """C12 (Fig. 1, 4, 6, 8, App. C, D, F): StyleGAN2 in the fully synthetic loop (λ = 1 and ``biased_lam``) and in
    the augmentation loop with a growing synthetic pool (λ = 1).

    * λ = 1: FID rises, precision and recall fall (the criteria of C2);
    * λ = ``biased_lam``: recall falls and lies below the λ = 1 recall (as in C3);
    * augmentation: FID still rises, and the fixed real set slows it (as in C4);
    * artifacts amplify at λ = 1: the share of high-frequency power of the samples (``hf_share``,
      :mod:`madutils.metrics.spectrum`) rises (slope interval above 0).

    One rule at every scale: the gate decides whether generation 1 is good enough for a row to speak."""
    rows = c2_fully_synthetic_unbiased(df, figure="fig04b", model=model, claim="C12")
    rows.append(
        _recall_below(df, ("C12", "fig06b"), biased_lam, f"({model}): diversity collapses (recall falls, below λ = 1)")
    )
    g = gate(df, _loop(1.0, AUG))
    rows.append(
        rises(
            df, ("C12", "fig08"), f"augmentation loop, λ = 1 ({model}): FID still rises", "fid", 1, g, **_loop(1.0, AUG)
        )
    )
    rows.append(_slows(df, ("C12", "fig08"), model, gate(df, _loop(1.0, AUG), _loop(1.0))))
    rows.append(
        rises(
            df,
            ("C12", "fig01"),
            f"fully synthetic loop, λ = 1 ({model}): artifacts amplify (high-frequency power share rises)",
            "hf_share",
            1,
            gate(df, _loop(1.0)),
            **_loop(1.0),
        )
    )
    return rows


def c12_not_run(model: str, reason: str, biased_lam: float = 0.7) -> list[ClaimResult]:
    """The rows of :func:`c12_stylegan`, each ``not_run`` with ``reason`` (FFHQ or the Inception weights missing)."""
    from dataclasses import replace

    empty = pd.DataFrame(columns=["generation", "metric", "value", "lam", "real", "seed"])
    return [replace(r, verdict="not_run", reason=reason, value="") for r in c12_stylegan(empty, model, biased_lam)]
