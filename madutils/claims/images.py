"""C2–C4 and C12: the fully synthetic and synthetic augmentation loops of image models (§3.2–4; the DDPM on MNIST,
StyleGAN2; the same functions serve the WGAN-GP of App. B.1 as C10).

Every row reads the tidy table of an experiment's runs (columns generation, metric, value, lam, real, seed, ...),
tests one sentence of the paper as the paper words it, judges a trend by per-seed slopes and an ordering by
per-seed differences (:mod:`.core`), states the smallest effect that counts as the paper's (below, with its
reason), and is ``uninformative`` when generation 1 of a loop it reads fails the validity gate (:func:`.core.gate`).

The stated effects. The paper shows its effects over 10 generations (Fig. 4, 6, 9, 16) and says that precision
and recall "eventually drop to zero": a trend counts as the paper's from a tenth of the [0, 1] range over those 10
generations (0.01 per generation) for precision, recall and label accuracy, and from half of generation 1's FID
over them (0.05 × FID at generation 1 per generation; FID has no fixed range, its scale depends on the features).
The augmentation loop degrades "more slowly": half those sizes. A loop of more than 10 generations (the WGAN-GP's
100 at the paper scale) spreads the same change over its own length (the per-generation sizes times 10 / G): a
[0, 1] metric cannot fall by 0.01 per generation for 100 generations, and a precision that reached 0 halfway would
otherwise pass "does not decay". A level difference between two loops counts from
0.05 in recall and 0.02 in precision (a good generation 1 has precision near 0.9, a tenth of the room left).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .core import (
    ClaimResult,
    Effect,
    difference,
    gate,
    judge,
    relative_effect,
    rises,
    slope_difference,
    trend,
)

FS = "none"  # the real part of a fully synthetic loop
AUG = "fixed"  # ... of a synthetic augmentation loop

PER_GEN = 0.01  # a tenth of the [0, 1] range over the paper's 10 generations
FID_SHARE = 0.05  # half of generation 1's FID over the paper's 10 generations
WHY_SHARE = "a tenth of the [0, 1] range over the paper's 10 generations"
WHY_FID = "half of generation 1's FID over the paper's 10 generations"
SLOWER = "the augmentation loop degrades 'more slowly': half the fully synthetic loop's stated effect"

PAPER_LAMS = {"C3": 0.8, "C4": 0.8}  # the λ of Fig. 7, 27 (C3) and the best mitigation of Fig. 9 (C4)


def _loop(lam: float, real: str = FS) -> dict:
    return dict(lam=float(lam), real=real)


def spread(generations: float) -> float:
    """The factor on a per-generation effect stated over the paper's 10 generations for a loop of ``generations``:
    1 up to 10, 10 / G beyond (the same change over the whole loop)."""
    return 10 / generations if np.isfinite(generations) and generations > 10 else 1.0


def _spread(df: pd.DataFrame) -> tuple[float, str]:
    g = float(df.generation.max()) if len(df) else float("nan")
    factor = spread(g)
    return factor, ("" if factor == 1 else f", spread over this loop's {g:.0f} generations")


def share_effect(df: pd.DataFrame, size: float = PER_GEN, why: str = WHY_SHARE) -> Effect:
    factor, more = _spread(df)
    return Effect(size * factor, why + more, "/gen")


def _relative(df: pd.DataFrame, metric: str, where: dict, share: float, why: str) -> Effect:
    """A ``share`` of the metric's generation-1 value per generation, spread over a loop longer than 10."""
    factor, more = _spread(df)
    return relative_effect(df, metric, share * factor, why + more, **where)


def fid_effect(df: pd.DataFrame, where: dict, share: float = FID_SHARE, why: str = WHY_FID) -> Effect:
    return _relative(df, "fid", where, share, why)


def c2_fully_synthetic_unbiased(
    df: pd.DataFrame, figure: str = "fig04", model: str = "DDPM on MNIST", claim: str = "C2"
) -> list[ClaimResult]:
    """C2 (Fig. 4, 5): fully synthetic loop at λ = 1: FID rises, precision and recall fall (per-seed slopes), and,
    for a conditional model, the modes drift and merge: LeNet reads fewer samples as their digit (label accuracy
    falls; Fig. 5's t-SNE shows the merging)."""
    here = _loop(1.0)
    g = gate(df, here)
    rows = [
        rises(df, (claim, figure), f"fully synthetic loop, λ = 1 ({model}): FID rises over generations", "fid", +1, g,
              fid_effect(df, here), **here),
        rises(df, (claim, figure), f"fully synthetic loop, λ = 1 ({model}): precision falls over generations",
              "precision", -1, g, share_effect(df), **here),
        rises(df, (claim, figure), f"fully synthetic loop, λ = 1 ({model}): recall falls over generations", "recall",
              -1, g, share_effect(df), **here),
    ]  # fmt: skip
    if (df.metric == "label_accuracy").any():
        rows.append(
            rises(
                df,
                (claim, "fig05"),
                f"fully synthetic loop, λ = 1 ({model}): the modes drift and merge (LeNet reads fewer samples as "
                "their digit)",
                "label_accuracy",
                -1,
                g,
                share_effect(df),
                **here,
            )
        )
    return rows


def c3_fully_synthetic_biased(
    df: pd.DataFrame, figure: str = "fig06", model: str = "DDPM on MNIST", claim: str = "C3"
) -> list[ClaimResult]:
    """C3 (Fig. 6, 7, 16, 27): fully synthetic loop with λ < 1, for every λ < 1 in ``df``, one row per sentence of
    §3.4: precision "does not decay with each generation" (the slope does not fall by the stated effect) and
    "increases" (slope above 0); recall falls and "decays significantly faster" than at λ = 1 (the per-seed slope
    difference, paired by seed, below 0); FID rises; and the modes shrink onto few images inside the support
    (Fig. 7): LeNet still reads the digits as labelled (label accuracy does not fall). When the paper's λ = 0.8 is
    not among the runs, a ``not_run`` row names the parameter that runs it."""
    rows = []
    for lam in sorted(v for v in df[df.real == FS].lam.unique() if v < 1):
        here = _loop(lam)
        g = gate(df, here, _loop(1.0))
        head = (claim, figure)
        name = f"fully synthetic loop, λ = {lam:g} ({model})"
        precision = trend(df, "precision", **here)
        statistic = "per-seed least-squares slope over generations; 95% CI across seeds (floored by measurement noise)"
        rows.append(
            judge(head, f"{name}: precision does not decay", statistic, precision.text("precision slope", "/gen"),
                  precision, share_effect(df), +1, "holds", gate=g)
        )  # fmt: skip
        rows.append(
            judge(head, f"{name}: precision increases over generations", statistic,
                  precision.text("precision slope", "/gen"), precision, share_effect(df), +1, gate=g)
        )  # fmt: skip
        rows.append(
            rises(df, head, f"{name}: recall falls over generations", "recall", -1, g, share_effect(df), **here)
        )
        faster = slope_difference(df, "recall", _loop(1.0), here)
        rows.append(
            judge(
                head,
                f"{name}: recall decays faster than at λ = 1",
                f"recall slope at λ = {lam:g} minus at λ = 1, paired by seed; 95% CI across seeds",
                faster.text(f"recall slope λ={lam:g} − λ=1", "/gen"),
                faster,
                share_effect(df),
                -1,
                gate=g,
            )
        )
        rows.append(rises(df, head, f"{name}: FID rises over generations", "fid", +1, g, fid_effect(df, here), **here))
        if (df.metric == "label_accuracy").any():
            labels = trend(df, "label_accuracy", **here)
            rows.append(
                judge(
                    (claim, "fig07"),
                    f"{name}: the modes shrink onto few images inside the support (LeNet still reads the digits as "
                    "labelled: label accuracy does not fall)",
                    statistic,
                    labels.text("label accuracy slope", "/gen"),
                    labels,
                    share_effect(df),
                    +1,
                    "holds",
                    gate=g,
                )
            )
    if claim == "C3" and PAPER_LAMS["C3"] not in set(df[df.real == FS].lam.unique()):
        rows.append(not_run_lam(claim, "fig07", "fully synthetic loop", PAPER_LAMS["C3"], model, "lams"))
    return rows


def not_run_lam(claim: str, figure: str, loop: str, lam: float, model: str, parameter: str) -> ClaimResult:
    """A ``not_run`` row for a λ the paper uses that this scale does not run."""
    return ClaimResult(
        claim,
        figure,
        f"{loop}, λ = {lam:g} ({model}): the paper's λ for this figure",
        "as for the other λ",
        "",
        "not_run",
        f"λ = {lam:g} is not run at this scale; the notebook parameter {parameter} (e.g. {parameter} = "
        f"[1.0, {lam:g}, 0.5]) runs it, at the cost of its loops' trainings",
    )


def _slows(df: pd.DataFrame, head: tuple, model: str, g) -> ClaimResult:
    faster = slope_difference(df, "fid", _loop(1.0, AUG), _loop(1.0, FS))
    return judge(
        head,
        f"λ = 1 ({model}): the fixed real set slows the degradation (FID rises more slowly than in the fully "
        "synthetic loop)",
        "FID slope of the fully synthetic loop minus that of the augmentation loop, paired by seed; 95% CI across "
        "seeds",
        faster.text("FID slope fully synthetic − augmentation", "/gen"),
        faster,
        fid_effect(df, _loop(1.0, AUG), FID_SHARE / 2, SLOWER),
        +1,
        gate=g,
    )


def c4_augmentation(
    df: pd.DataFrame, figure: str = "fig09", model: str = "DDPM on MNIST", claim: str = "C4"
) -> list[ClaimResult]:
    """C4 (Fig. 8, 9): synthetic augmentation loop (fixed real set + synthetic). ``df`` holds the augmentation runs
    (real = "fixed") and the fully synthetic runs (real = "none"). One row per sentence of §4: FID still rises for
    every λ; at λ = 1 precision and recall still decrease, and the fixed set slows the rise of FID (slopes, paired
    by seed); for every λ < 1 precision "can increase" (precision above the λ = 1 loop's over generations ≥ 2)
    "but only at the cost of accelerated losses" of recall (recall slope minus the λ = 1 loop's below 0)."""
    rows = []
    augs = sorted(df[df.real == AUG].lam.unique(), reverse=True)
    for lam in augs:
        here = _loop(lam, AUG)
        rows.append(
            rises(df, (claim, figure), f"augmentation loop, λ = {lam:g} ({model}): FID still rises", "fid", 1,
                  gate(df, here), fid_effect(df, here, FID_SHARE / 2, SLOWER), **here)
        )  # fmt: skip
    if 1.0 in augs:
        here = _loop(1.0, AUG)
        for metric in ("precision", "recall"):
            rows.append(
                rises(df, (claim, figure), f"augmentation loop, λ = 1 ({model}): {metric} still falls", metric, -1,
                      gate(df, here), share_effect(df, PER_GEN / 2, SLOWER), **here)
            )  # fmt: skip
    if ((df.real == FS) & (df.lam == 1.0)).any() and 1.0 in augs:
        rows.append(_slows(df, (claim, figure), model, gate(df, _loop(1.0, AUG), _loop(1.0))))
    for lam in (v for v in augs if v < 1):
        here, ref = _loop(lam, AUG), _loop(1.0, AUG)
        g = gate(df, here, ref)
        higher = difference(df, "precision", ref, here)
        rows.append(
            judge(
                (claim, figure),
                f"augmentation loop, λ = {lam:g} ({model}): precision can increase (above λ = 1)",
                f"precision(λ = {lam:g}) − precision(λ = 1) over generations ≥ 2, paired by seed; 95% CI",
                higher.text(f"precision λ={lam:g} − λ=1"),
                higher,
                Effect(0.02, "a good generation 1 has precision near 0.9: a tenth of the room left"),
                +1,
                gate=g,
            )
        )
        faster = slope_difference(df, "recall", ref, here)
        rows.append(
            judge(
                (claim, figure),
                f"augmentation loop, λ = {lam:g} ({model}): at the cost of accelerated losses of recall",
                f"recall slope at λ = {lam:g} minus at λ = 1, paired by seed; 95% CI across seeds",
                faster.text(f"recall slope λ={lam:g} − λ=1", "/gen"),
                faster,
                share_effect(df),
                -1,
                gate=g,
            )
        )
    if claim == "C4" and augs and PAPER_LAMS["C4"] not in augs:
        rows.append(not_run_lam(claim, figure, "augmentation loop", PAPER_LAMS["C4"], model, "lams_aug"))
    return rows


def c12_stylegan(df: pd.DataFrame, model: str, biased_lam: float = 0.7) -> list[ClaimResult]:
    """C12 (Fig. 1, 4, 6, 8, App. C, D, F): StyleGAN2 in the fully synthetic loop (λ = 1 and ``biased_lam``) and in
    the augmentation loop with a growing synthetic pool (λ = 1).

    * λ = 1: FID rises, precision and recall fall (the rows of C2);
    * λ = ``biased_lam``: recall falls, and faster than at λ = 1 (as in C3);
    * augmentation: FID still rises, and the fixed real set slows it (as in C4);
    * artifacts amplify at λ = 1: the share of high-frequency power of the samples (``hf_share``,
      :mod:`madutils.metrics.spectrum`) rises, by a twentieth of its generation-1 value per generation or more.

    One rule at every scale: the gate decides whether generation 1 is good enough for a row to speak."""
    rows = c2_fully_synthetic_unbiased(df, figure="fig04b", model=model, claim="C12")
    here = _loop(biased_lam)
    g = gate(df, here, _loop(1.0))
    name = f"fully synthetic loop, λ = {biased_lam:g} ({model})"
    rows.append(rises(df, ("C12", "fig06b"), f"{name}: diversity collapses (recall falls)", "recall", -1, g,
                      share_effect(df), **here))  # fmt: skip
    faster = slope_difference(df, "recall", _loop(1.0), here)
    rows.append(
        judge(("C12", "fig06b"), f"{name}: recall decays faster than at λ = 1",
              "recall slope minus at λ = 1, paired by seed; 95% CI across seeds",
              faster.text(f"recall slope λ={biased_lam:g} − λ=1", "/gen"), faster, share_effect(df), -1, gate=g)
    )  # fmt: skip
    aug = _loop(1.0, AUG)
    rows.append(
        rises(df, ("C12", "fig08"), f"augmentation loop, λ = 1 ({model}): FID still rises", "fid", 1, gate(df, aug),
              fid_effect(df, aug, FID_SHARE / 2, SLOWER), **aug)
    )  # fmt: skip
    rows.append(_slows(df, ("C12", "fig08"), model, gate(df, aug, _loop(1.0))))
    rows.append(
        rises(
            df,
            ("C12", "fig01"),
            f"fully synthetic loop, λ = 1 ({model}): artifacts amplify (high-frequency power share rises)",
            "hf_share",
            1,
            gate(df, _loop(1.0)),
            _relative(df, "hf_share", _loop(1.0), 0.05, "half its generation-1 share over 10 generations"),
            **_loop(1.0),
        )
    )
    return rows


def c12_not_run(model: str, reason: str, biased_lam: float = 0.7) -> list[ClaimResult]:
    """The rows of :func:`c12_stylegan`, each ``not_run`` with ``reason`` (FFHQ or the Inception weights missing)."""
    from dataclasses import replace

    empty = pd.DataFrame(columns=["generation", "metric", "value", "lam", "real", "seed"])
    return [
        replace(r, verdict="not_run", reason=reason, value="", power=float("nan"))
        for r in c12_stylegan(empty, model, biased_lam)
    ]
