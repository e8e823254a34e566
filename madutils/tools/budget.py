"""What fewer seeds or fewer generations would have decided: the claims of the stored deep-model and flow loops
judged again on parts of their runs, the first G generations of every choice of k of the seeds.

A scale's sizes trade time against the verdicts they can support. The time of a loop is close to proportional to
its seeds × generations (every generation trains a model), and what a cut costs is seen here on real results
rather than on simulations: a row that is ``reproduced`` on 3 seeds and on none of the 2-seed subsets needs the
third seed. Nothing is computed: every loop must be stored (an error says which notebook to run first).

    python -m madutils.tools.budget --scale small
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from .. import catalog, experiments
from ..claims import (
    c2_fully_synthetic_unbiased,
    c3_fully_synthetic_biased,
    c4_augmentation,
    c5_fresh_images,
    c11_flow_tails,
)
from ..claims.core import ClaimResult, table_markdown
from ..paths import runs_dir
from ..scales import DDPMSizes, FlowSizes, WGANSizes, sizes
from ..store import Store


def part(df: pd.DataFrame, seeds: Sequence[int], generations: int) -> pd.DataFrame:
    """The rows of a tidy table of runs that belong to ``seeds`` and to generations 1..``generations``."""
    return df[df.seed.isin(list(seeds)) & (df.generation <= generations)]


def rejudge(
    df: pd.DataFrame, rows: Callable[[pd.DataFrame], list[ClaimResult]], seeds: int, generations: int
) -> pd.DataFrame:
    """Every row of ``rows`` judged on the first ``generations`` generations of each choice of ``seeds`` of the
    table's seeds: one line per row and choice (columns claim, statement, seeds, generations, chosen, verdict)."""
    have = sorted(int(s) for s in df.seed.unique())
    if not 1 <= seeds <= len(have):
        raise ValueError(f"seeds = {seeds}: the table has {len(have)} seeds ({have})")
    if not 1 <= generations <= int(df.generation.max()):
        raise ValueError(f"generations = {generations}: the table has generations 1..{int(df.generation.max())}")
    out = []
    for chosen in itertools.combinations(have, seeds):
        for r in rows(part(df, chosen, generations)):
            out.append(
                dict(
                    claim=r.claim,
                    statement=r.statement,
                    seeds=seeds,
                    generations=generations,
                    chosen=",".join(map(str, chosen)),
                    verdict=r.verdict,
                )
            )
    return pd.DataFrame(out)


def summary(judged: pd.DataFrame) -> pd.DataFrame:
    """Per row and (seeds, generations): the share of the seed choices that judge it ``reproduced``, as
    "reproduced in m of n" strings, one column per (seeds, generations)."""
    counts = judged.assign(hit=judged.verdict == "reproduced").groupby(
        ["claim", "statement", "seeds", "generations"], sort=False
    )
    cell = counts.hit.agg(lambda h: f"{int(h.sum())} of {len(h)}")
    table = cell.unstack(["seeds", "generations"])
    table.columns = [f"{s} seeds × {g} gen" for s, g in table.columns]
    return table


@dataclass(frozen=True)
class Case:
    """One group of loops and the claim rows that read them."""

    name: str
    table: Callable[[], pd.DataFrame]  # the stored table of the loops
    rows: Callable[[pd.DataFrame], list[ClaimResult]]
    generations: int
    seeds: int


def options(generations: int, seeds: int) -> list[tuple[int, int]]:
    """The (seeds, generations) judged: all of them, and one seed fewer (at least 2, the least an interval needs);
    all, three quarters and half of the generations (at least 3, the least a trend needs)."""
    gens = sorted({g for g in (generations, math.ceil(0.75 * generations), math.ceil(0.5 * generations)) if g >= 3})
    ks = sorted({k for k in (seeds, seeds - 1) if k >= 2})
    return [(k, g) for k in reversed(ks) for g in reversed(gens)]


def cases(scale: str) -> list[Case]:
    """The loops of notebooks 02–05 whose verdicts depend on seeds and generations of trained models."""
    d, w, f = sizes(DDPMSizes, scale), sizes(WGANSizes, scale), sizes(FlowSizes, scale)

    def store() -> Store:
        return Store(runs_dir(scale))

    def ddpm(notebook: str) -> Callable[[], pd.DataFrame]:
        def table() -> pd.DataFrame:  # the loops of the notebook, as madutils/catalog.py selects them
            entry = catalog.entry("ddpm")
            return entry.select(entry.build(d, 0, "cpu"), notebook).stored(store()).table()

        return table

    def augmentation(df: pd.DataFrame) -> list[ClaimResult]:
        return c4_augmentation(df[df.generation <= d.aug_generations])

    return [
        Case(
            "DDPM fully synthetic (C2, C3; notebook 02)",
            ddpm("02"),
            lambda df: c2_fully_synthetic_unbiased(df) + c3_fully_synthetic_biased(df),
            d.generations,
            d.seeds,
        ),
        Case(
            "DDPM augmentation (C4; notebook 03)",
            ddpm("03"),
            augmentation,
            d.aug_generations,
            d.seeds,
        ),
        Case(
            "DDPM fresh data (C5; notebook 04)",
            lambda: experiments.ddpm_fresh(d, 0, "cpu").stored(store()).table(),
            c5_fresh_images,
            d.fresh_generations,
            d.seeds,
        ),
        Case(
            "WGAN-GP (C10; notebook 05)",
            lambda: experiments.wgan(w, 0, "cpu").stored(store()).table(),
            lambda df: c2_fully_synthetic_unbiased(df, figure="fig13", model="WGAN-GP on MNIST", claim="C10"),
            w.generations,
            w.seeds,
        ),
        Case(
            "flow (C11; notebook 05)",
            lambda: experiments.flow(f, 0).stored(store()).table(),
            c11_flow_tails,
            f.generations,
            f.seeds,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Print, for each group of loops, every claim row's verdict on parts of its stored runs (Markdown)."""
    import argparse
    import sys
    import time

    parser = argparse.ArgumentParser(prog="python -m madutils.tools.budget", description=main.__doc__)
    parser.add_argument("--scale", default="small")
    args = parser.parse_args(argv)
    chosen, started = cases(args.scale), time.perf_counter()
    for i, case in enumerate(chosen, 1):
        print(
            f"judging {i}/{len(chosen)}: {case.name} ({time.perf_counter() - started:.0f} s so far)",
            file=sys.stderr,
            flush=True,
        )
        df = case.table()
        judged = pd.concat([rejudge(df, case.rows, k, g) for k, g in options(case.generations, case.seeds)])
        table = summary(judged).reset_index().drop(columns="claim")
        print(f"\n### {case.name}\n")
        print("Seed choices that judge each row `reproduced`:\n")
        print(table_markdown(table, table.columns), flush=True)
    print(f"judged in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
