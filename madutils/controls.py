"""Controls of the DDPM fresh data loop (§5, Fig. 10 right; notebook 04).

The fresh data loop trains generation t on n_r new real images plus n_s samples of generation t − 1. With
n_s = n_r the Gaussian theory of §5 relaxes to its limit within a few generations, yet the `small` DDPM loops
kept rising. Each control below changes one thing and keeps everything else (sizes, seeds, training effort,
storage, evaluation), so that a drift is traced either to self-consumption or to a defect of the pipeline:

* **fresh only** (a): n_s = 0, every generation trains on n_r fresh real images with the same effort rule. No
  synthetic image ever enters: its FID must stay flat within noise.
* **real in place of synthetic** (b): the "synthetic" part of D^t is n_s *real* images (class-balanced like the
  model's samples), written and read back through exactly the path of a generation's synthetic output (stored
  uint8 arrays and labels, taken, concatenated, normalised by the family). Only the images' origin differs
  from the fresh data loop: flat too, unless the path itself is at fault. Each generation is measured on the
  model's own samples (:class:`ModelSamples`).
* **sampler** (c): the stored models of the fresh data loop sampled with the full T-step ancestral chain against
  the respaced steps the loop uses (:func:`sampler_control`): FID and the share of digits on a grey background.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .data import MnistSource
from .experiments import Experiment, Runs, _ddpm_experiment, ddpm_fresh, with_seeds
from .loops import LoopConfig, describe
from .metrics import grey_background_share, mnist_metrics
from .paths import runs_dir
from .scales import DDPMSizes, sizes
from .store import Store
from .utils import check_int, check_scale, derive_seed


@dataclass(frozen=True)
class RealOutput:
    """A model family for control (b): it trains exactly as ``base`` does, but what it hands the loop as its
    "synthetic output" are real images of ``source``, class-balanced and in random order like ``base``'s samples
    (n/10 per digit). The loop stores, reads back and trains on them exactly as it would on samples."""

    base: Any
    source: Any
    name: str = "real-output"

    thread_dependent: ClassVar[bool] = True

    @property
    def device(self) -> str:
        return self.base.device

    def key(self) -> dict:
        return {"real_output": describe(self.base), "source": describe(self.source)}

    def quiet(self) -> RealOutput:
        """Without the progress bars of ``base`` (worker processes report through their parent's bar)."""
        quiet = getattr(self.base, "quiet", None)
        return replace(self, base=quiet()) if callable(quiet) else self

    def trained_on(self, n: int) -> Any:
        """Generation 1 trains on real images only, exactly as ``base`` does: the shared generation-1 model."""
        trained_on = getattr(self.base, "trained_on", None)
        return trained_on(n) if callable(trained_on) else self.base

    def fit(self, data, seed: int):
        return self.base.fit(data, seed)

    def sample(self, model, n: int, lam: float, seed: int):
        n = check_int(n, "n", 0)
        pool_images, pool_labels = self.source.draw(min(20 * max(n, 10), 60000), seed)
        quota = [n // 10 + (d < n % 10) for d in range(10)]
        idx = np.concatenate([np.flatnonzero(pool_labels == d)[: quota[d]] for d in range(10)])
        if len(idx) != n:
            raise ValueError(f"the real source gave too few images of some digit for {n} class-balanced images")
        idx = idx[np.random.default_rng(seed).permutation(len(idx))]
        return pool_images[idx], np.asarray(pool_labels[idx], dtype=np.int64)


@dataclass(frozen=True)
class ModelSamples:
    """An evaluation hook for controls whose output is not the model's own (control b): ``hook`` measures ``n``
    new samples of the model (``family.sample`` with bias ``lam``, seeded by the generation) instead."""

    hook: Any
    family: Any
    n: int
    lam: float = 1.0

    def key(self) -> dict:
        return {"hook": describe(self.hook), "family": describe(self.family), "n": self.n, "lam": self.lam}

    def __call__(self, model, output, t: int) -> dict:
        return self.hook(model, self.family.sample(model, self.n, self.lam, derive_seed(0, t, "control-sample")), t)


def fresh_control_loops(sz: DDPMSizes, n_ini: int, seeds: int, generations: int, seed: int = 0) -> dict:
    """The loops of controls (a) and (b) from ``n_ini``: the sizes of the fresh data loop, ``seeds`` seeds."""
    fresh_only = LoopConfig(generations, n_ini, 0, real="fresh", n_r=sz.fresh_n, n_eval=sz.fresh_eval, seed=seed)
    as_synthetic = LoopConfig(generations, n_ini, sz.fresh_n, real="fresh", n_r=sz.fresh_n, seed=seed)
    return {
        "fresh only": with_seeds({f"fresh only n_ini={n_ini}": fresh_only}, seed, seeds),
        "real as synthetic": with_seeds({f"real as synthetic n_ini={n_ini}": as_synthetic}, seed, seeds),
    }


def fresh_controls(
    sz: DDPMSizes,
    n_ini: int,
    seeds: int | None = None,
    generations: int | None = None,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Experiment]:
    """Controls (a) "fresh only" and (b) "real as synthetic" of the DDPM fresh data loop from ``n_ini`` (see the
    module), with the fresh data loop's family (its effort rule), source and metrics, stored beside its runs, with
    ``seeds`` and ``generations`` (default: the sizes' ``control_seeds`` and ``control_generations``). Their
    generation 1 is the fresh data loop's own (the same key)."""

    seeds = seeds or sz.control_seeds
    generations = generations or sz.control_generations
    loops = fresh_control_loops(sz, n_ini, seeds, generations, seed)
    family = replace(sz.family, effort_images=sz.n)
    only = _ddpm_experiment(sz, family, loops["fresh only"], device)
    base = only.family
    synth = replace(
        only,
        family=RealOutput(base, MnistSource()),
        hook=ModelSamples(only.hook, base.quiet(), sz.fresh_eval),  # its sampling shows no bar of its own
        loops=loops["real as synthetic"],
    )
    return {"fresh only": only, "real as synthetic": synth}


def sampler_control(
    store: Store, runs: Runs, family: Any, generations: tuple[int, ...], n: int, steps: int | None = None
) -> pd.DataFrame:
    """Control (c): the stored models of ``runs`` at ``generations`` sampled again with ``steps`` ancestral steps
    (``None``: the full T-step chain) and with the loop's own respaced steps, ``n`` samples each at λ = 1 with one
    seed per generation; FID (whole reference), precision and recall (equal sizes) and the share of digits on a
    grey background. Each measurement is computed once and stored. One row per loop × generation × sampler."""

    hook = mnist_metrics(keep_images=0, device=family.device)
    rows = []
    for label, run in runs.items():
        for t in generations:
            for sampler in (family.sample_steps, steps):
                fam = replace(family, sample_steps=sampler, progress=False)
                config = {"run": run.run.key, "generation": t, "n": n, "family": describe(fam), "hook": describe(hook)}

                def measure(run=run, t=t, fam=fam) -> dict:
                    images, labels = fam.sample(run.model(t), n, 1.0, derive_seed(0, t, "sampler-control"))
                    out = hook(None, (images, labels), t)
                    out["grey_background"] = grey_background_share(images)
                    return {k: np.asarray(v, np.float64) for k, v in out.items() if np.ndim(v) == 0}

                stored = store.cached_arrays("ddpm-sampler-control", config, measure)
                row = {"loop": label, "seed": run.cfg.seed, "n_ini": run.cfg.n_ini, "generation": t}
                row |= {"steps": sampler or family.T} | {k: float(v) for k, v in stored.items()}
                rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    """``python -m madutils.controls``: compute the DDPM fresh data loops and their controls at one scale and print
    what they measured (every result is stored, so notebook 04 and a second call read them)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m madutils.controls", description=main.__doc__)
    parser.add_argument("--scale", default="small", type=check_scale)
    parser.add_argument("--seeds", type=int, default=None, help="seeds of every loop (default: the controls')")
    parser.add_argument("--generations", type=int, default=None, help="generations (default: the scale's)")
    parser.add_argument("--n-ini", type=int, default=None, help="n_ini of the controls (default: the largest)")
    parser.add_argument("--sampler-n-ini", type=int, default=None, help="control (c) on these loops only")
    parser.add_argument("--sampler-n", type=int, default=500, help="samples per model of control (c)")
    parser.add_argument("--part", choices=("loops", "controls", "sampler", "all"), default="all")
    args = parser.parse_args(argv)
    base = sizes(DDPMSizes, args.scale)
    sz = sizes(DDPMSizes, args.scale, seeds=args.seeds or base.control_seeds, fresh_generations=args.generations)
    store = Store(runs_dir(args.scale))

    def show(name: str, runs: Runs) -> None:
        table = runs.table()
        table = table[table.metric.isin(["fid", "precision", "recall"])]
        table = table.pivot_table(index=["loop", "generation"], columns="metric")
        print(f"\n{name}\n{table.value.round(3).to_string()}", flush=True)

    fresh = ddpm_fresh(sz)
    if args.part in ("loops", "all"):
        show("fresh data loops", fresh.run(store, progress=False))
    n_ini = args.n_ini or max(sz.fresh_inis)
    if args.part in ("controls", "all"):
        for name, experiment in fresh_controls(sz, n_ini, generations=args.generations).items():
            show(f"control: {name}", experiment.run(store, progress=False))
    if args.part in ("sampler", "all"):
        chosen = fresh.where(n_ini=args.sampler_n_ini) if args.sampler_n_ini else fresh
        runs = chosen.run(store, progress=False)
        last = (1, sz.fresh_generations)
        table = sampler_control(store, runs, fresh.family, last, args.sampler_n)
        print("\ncontrol: sampler\n" + table.round(3).to_string(), flush=True)


if __name__ == "__main__":
    main()
