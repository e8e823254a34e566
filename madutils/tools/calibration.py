"""Calibration of the trend and ordering criteria on null simulations (docs/design.md: "every criterion is
calibrated").

Under the null hypothesis a self-consuming loop does not drift: its metric curves are driftless random walks, with
measurement noise on top, and two loop configurations behave alike. :func:`walks` builds such a tidy table with the
seeds and generations of a scale (the same columns as an experiment's :meth:`~madutils.experiments.Runs.table`);
:func:`rates` feeds many of them through the claim functions themselves and returns, per row, the share judged
``reproduced``: at most 5 % under the null (``tests/test_claims_calibration.py``), and the power of each row
against a drift of a given size per generation, in units of the walk's step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..claims import (
    c2_fully_synthetic_unbiased,
    c3_fully_synthetic_biased,
    c4_augmentation,
    c5_fresh_images,
    c9_gmm_modes,
    c11_flow_tails,
    c12_stylegan,
)
from ..claims.images import PER_GEN, spread
from ..scales import DDPMSizes, FlowSizes, GMMSizes, StyleGANSizes, WGANSizes, sizes

# Each metric's walk: start, step sd per generation, measurement sd, bounds. Precision and recall start well
# above the gate's 0.2; the loops' n_s (for the binomial noise floor) is 1,000.
WALKS = {
    "fid": (100.0, 10.0, 2.0, (0.0, np.inf)),
    "fid_se": (2.0, 0.0, 0.0, (0.0, np.inf)),
    "precision": (0.7, 0.02, 0.014, (0.0, 1.0)),
    "recall": (0.5, 0.02, 0.016, (0.0, 1.0)),
    "label_accuracy": (0.8, 0.02, 0.014, (0.0, 1.0)),
    "hf_share": (0.1, 0.005, 0.001, (0.0, 1.0)),
    "tail_mass": (0.05, 0.003, 0.003, (0.0, 1.0)),
    "modes_covered": (15.0, 0.5, 0.0, (0.0, 25.0)),
    "total_variance": (8.0, 0.3, 0.0, (0.0, np.inf)),
    "modal_variance": (0.01, 0.0005, 0.0, (0.0, np.inf)),
}


def walks(
    loops: dict[str, dict],
    generations: int,
    seeds: int,
    rng: np.random.Generator,
    drift: dict[str, dict[str, float]] | None = None,
    n_s: int = 1000,
    shift: dict[str, dict[str, float]] | None = None,
) -> pd.DataFrame:
    """A tidy table of driftless random walks (plus ``drift[label][metric]`` per generation, in units of the
    metric's step, and ``shift[label][metric]`` per generation in the metric's own units) for every loop
    ``label -> configuration columns`` and seed. Generation 1 of every loop of one
    seed is shared, as in the experiments (the loops of one seed start from the same trained model). Beyond 10
    generations the steps shrink by √(10 / generations), so that a long loop (the GMM's 1,000 iterations) wanders
    as far as a 10-generation one instead of piling up at the bounds (clipping would bias a driftless walk)."""
    drift, shift = drift or {}, shift or {}
    shrink = np.sqrt(10 / max(generations, 10))
    t = np.arange(1, generations + 1)
    cols: dict[str, list] = {"generation": [], "metric": [], "value": [], "seed": [], "run": []}
    cfg_cols: dict[str, list] = {k: [] for cfg in loops.values() for k in cfg}
    for s in range(seeds):
        first = {m: w[0] + w[1] * rng.standard_normal() for m, w in WALKS.items()}
        for label, cfg in loops.items():
            for m, (_, step, noise, (lo, hi)) in WALKS.items():
                inc = shrink * step * (rng.standard_normal(generations - 1) + drift.get(label, {}).get(m, 0.0))
                inc = inc + shift.get(label, {}).get(m, 0.0)
                truth = first[m] + np.concatenate([[0.0], np.cumsum(inc)])
                cols["value"].append(np.clip(truth + noise * rng.standard_normal(generations), lo, hi))
                cols["generation"].append(t)
                cols["metric"].append(np.full(generations, m, dtype=object))
                cols["seed"].append(np.full(generations, s))
                cols["run"].append(np.full(generations, f"{label}/{s}", dtype=object))
                for k in cfg_cols:
                    cfg_cols[k].append(np.full(generations, cfg[k]))
    df = pd.DataFrame({k: np.concatenate(v) for k, v in (cols | cfg_cols).items()})
    return df.assign(n_s=n_s, n_eval=0)


IMAGE_LOOPS = {
    "fs1": dict(lam=1.0, real="none", n_ini=1000),
    "fs05": dict(lam=0.5, real="none", n_ini=1000),
    "aug1": dict(lam=1.0, real="fixed", n_ini=1000),
    "aug05": dict(lam=0.5, real="fixed", n_ini=1000),
    "fresh100": dict(lam=1.0, real="fresh", n_ini=100),
    "fresh1000": dict(lam=1.0, real="fresh", n_ini=1000),
}


def ddpm_rows(df: pd.DataFrame) -> list:
    """The rows of the DDPM's fully synthetic loops (C2, C3) and fresh data loops (C5) on one simulated table."""
    loops = df[df.real != "fresh"]
    return (
        c2_fully_synthetic_unbiased(loops) + c3_fully_synthetic_biased(loops) + c5_fresh_images(df[df.real == "fresh"])
    )


def augmentation_rows(df: pd.DataFrame) -> list:
    """The rows of the DDPM's synthetic augmentation loops (C4), against its fully synthetic loops."""
    return c4_augmentation(df[df.real != "fresh"])


def stylegan_rows(df: pd.DataFrame) -> list:
    return c12_stylegan(df[df.real != "fresh"], model="StyleGAN2", biased_lam=0.5)


def wgan_rows(df: pd.DataFrame) -> list:
    """C10 is C2's criterion on the WGAN-GP."""
    return c2_fully_synthetic_unbiased(df[df.real != "fresh"], figure="fig13", model="WGAN-GP on MNIST", claim="C10")


def image_rows(df: pd.DataFrame) -> list:
    """The image criteria of the DDPM and StyleGAN2 (C2–C5, C12) on one simulated table: their null check at once."""
    return ddpm_rows(df) + augmentation_rows(df) + stylegan_rows(df)


def flow_rows(df: pd.DataFrame) -> list:
    return c11_flow_tails(df[df.real == "none"])


def gmm_rows(df: pd.DataFrame) -> list:
    return c9_gmm_modes(df[(df.real == "none") & (df.lam == 1.0)])


def rates(
    rows: Callable[[pd.DataFrame], list],
    *,
    generations: int,
    seeds: int,
    sims: int = 200,
    seed: int = 0,
    drift: dict[str, dict[str, float]] | None = None,
    shift: dict[str, dict[str, float]] | None = None,
) -> pd.DataFrame:
    """The share of ``sims`` simulated tables for which each row of ``rows(table)`` says ``reproduced``,
    ``not_reproduced`` and ``uninformative``, by row (claim, statement)."""
    rng = np.random.default_rng(seed)
    counts: dict[tuple[str, str, str], list[int]] = {}
    for _ in range(sims):
        for r in rows(walks(IMAGE_LOOPS, generations, seeds, rng, drift, shift=shift)):
            if r.verdict == "not_run":  # a λ this scale does not run: nothing is judged
                continue
            c = counts.setdefault((r.claim, r.statement, r.kind), [0, 0, 0])
            c[0] += r.verdict == "reproduced"
            c[1] += r.verdict == "not_reproduced"
            c[2] += r.verdict == "uninformative"
    return pd.DataFrame(
        [
            dict(
                claim=k[0],
                statement=k[1],
                kind=k[2],
                reproduced=v[0] / sims,
                not_reproduced=v[1] / sims,
                uninformative=v[2] / sims,
            )
            for k, v in counts.items()
        ]
    )


def stated_effects(generations: int) -> dict[str, dict[str, float]]:
    """A drift per generation, in the metrics' own units, that makes every trend and ordering row's statistic equal
    to its stated effect (:mod:`.images`, :mod:`.appendix`) on the walks of :data:`WALKS` (FID and the
    high-frequency share start at 100 and 0.1, the tail mass at 0.05): the power of a row is the share of such
    tables it judges ``reproduced``. Rows of the kind "holds" are measured without drift (their claimed case)."""
    fid, hf, tail = WALKS["fid"][0], WALKS["hf_share"][0], WALKS["tail_mass"][0]
    late = (generations // 2 + 1 + generations) / 2 - 1  # C11: the late generations' mean distance from generation 1
    lost_tail = -0.5 * tail / max(late, 1)  # C11: half of the start lost by the late generations (a level)
    faster_tail = tail * (lost_tail / tail - 1 / 32)  # C11: an extra half of its start over 16 generations
    k = spread(generations)  # the image rows' per-generation effects over a loop longer than 10 generations
    return {
        "fs1": dict(fid=0.05 * k * fid, precision=-0.01 * k, recall=-0.01 * k, label_accuracy=-0.01 * k,
                    hf_share=0.05 * k * hf, tail_mass=lost_tail, modes_covered=-1 / max(generations - 1, 1)),
        "fs05": dict(fid=0.05 * k * fid, precision=0.01 * k, recall=-0.02 * k, tail_mass=faster_tail),
        "aug1": dict(fid=0.025 * k * fid, precision=-0.005 * k, recall=-0.005 * k),
        "aug05": dict(fid=0.025 * k * fid, precision=-0.005 * k + 0.04 / generations, recall=-0.015 * k),
    }  # fmt: skip


def paper_direction(size: float) -> dict[str, dict[str, float]]:
    """A drift in the direction of every row's claim, ``size`` steps of the walk per generation: at λ = 1 FID and
    the high-frequency share up, precision, recall, tail mass and modes down, recall following the modes (the
    total variance does not); at λ < 1 recall and tail mass down twice as fast and precision up; the augmentation
    loops at half the rate. (The fresh loops stay driftless: C5's start gap is a difference of n_ini, not a
    drift.)"""
    return {
        "fs1": dict(fid=size, precision=-size, recall=-size, hf_share=size, tail_mass=-size, modes_covered=-size),
        "fs05": dict(fid=size, precision=size / 2, recall=-2 * size, tail_mass=-2 * size),
        "aug1": dict(fid=size / 2, precision=-size / 2, recall=-size / 2),
        "aug05": dict(fid=size / 2, precision=size / 2, recall=-size),
    }


# (generations, seeds) of every loop a trend or ordering criterion reads, per scale (madutils/scales.py)
def configurations(scale: str) -> dict[str, tuple[Callable[[pd.DataFrame], list], int, int]]:
    d, w, f, g = (sizes(k, scale) for k in (DDPMSizes, WGANSizes, FlowSizes, GMMSizes))
    sg = sizes(StyleGANSizes, scale)
    return {
        "DDPM (C2, C3, C5)": (ddpm_rows, d.generations, d.seeds),
        "DDPM augmentation (C4)": (augmentation_rows, d.aug_generations, d.seeds),
        "StyleGAN2 (C12)": (stylegan_rows, min(sg.generations.values()), sg.seeds),
        "WGAN-GP (C10)": (wgan_rows, w.generations, w.seeds),
        "flow (C11)": (flow_rows, f.generations, f.seeds),
        "GMM (C9)": (gmm_rows, g.iterations, g.seeds),
    }


def holds_null(generations: int) -> dict[str, dict[str, float]]:
    """The null of the "holds" rows: their claimed case is no change, so their null is a change of the stated effect
    against them (:func:`madutils.claims.images.spread` spreads it over a loop longer than 10 generations)."""
    d = -PER_GEN * spread(generations)
    return {"fs05": dict(precision=d, label_accuracy=d)}


def per_row(rows, generations: int, seeds: int, sims: int, power: bool = True) -> pd.DataFrame:
    """Per row: the false-positive rate and (with ``power``) the power at the stated effect, each the share of
    simulated tables the row judges ``reproduced``. For a row that claims a change ("direction"), the null is
    driftless walks and the power is taken on walks that drift by the stated effect (:func:`stated_effects`); for a
    row that claims no change of the stated size ("holds"), the null is a change of that size against it
    (:func:`holds_null`) and the power is taken on driftless walks."""
    key = ["claim", "statement", "kind"]

    def share(name: str, seed: int, **kw) -> pd.DataFrame:
        table = rates(rows, generations=generations, seeds=seeds, sims=sims, seed=seed, **kw)
        return table[key + ["reproduced"]].rename(columns={"reproduced": name})

    df = share("null", 0)
    holds = df.kind == "holds"
    df = (
        df.merge(share("against", 2, shift=holds_null(generations)), on=key)
        if holds.any()
        else df.assign(against=np.nan)
    )
    df["false_positives"] = np.where(holds, df.against, df.null)
    if power:
        df = df.merge(share("stated", 1, shift=stated_effects(generations)), on=key)
        df["power"] = np.where(holds, df.null, df.stated)
    columns = key + ["false_positives"] + (["power"] if power else [])
    return df[columns][df.claim != "C5"].reset_index(drop=True)  # C5's start gap is no drift to simulate


def main(argv=None) -> None:
    """Print, per scale and experiment, every trend and ordering row's false-positive rate on driftless walks and
    its power at its stated effect (Markdown)."""
    import argparse
    import sys
    import time

    parser = argparse.ArgumentParser(prog="python -m madutils.tools.calibration", description=main.__doc__)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--sims", type=int, default=400, help="simulated tables per row and case (default 400)")
    args = parser.parse_args(argv)
    print("| experiment | generations × seeds | claim | statement | false positives | power at the stated effect |")
    print("|---|---|---|---|---|---|")
    chosen = configurations(args.scale)
    started = time.perf_counter()
    for i, (name, (rows, gens, seeds)) in enumerate(chosen.items(), 1):
        print(
            f"calibrating {i}/{len(chosen)}: {name}, {gens} generations × {seeds} seeds, {args.sims} simulations "
            f"({time.perf_counter() - started:.0f} s so far)",
            file=sys.stderr,
            flush=True,
        )
        for r in per_row(rows, gens, seeds, args.sims).itertuples():
            print(
                f"| {name} | {gens} × {seeds} | {r.claim} | {r.statement} | {r.false_positives:.3f} | {r.power:.2f} |",
                flush=True,
            )
    print(f"calibrated in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
