"""One switch for every size: ``smoke`` (seconds, for tests; numbers mean nothing), ``small`` (the default of
``./reproduce.sh``: every figure on a 2-core CPU, sized so that the paper's qualitative claims show) and ``paper``
(the paper's sizes, for GPUs).

The sizes of each experiment are a frozen dataclass, one instance per scale: ``sizes(DDPMSizes, "small")``; a
notebook's typed parameters are merged over them (``sizes(DDPMSizes, scale, lams=lams)``). The model families' own
settings are the family dataclasses themselves (their device is set when the experiment is built). Each notebook
states why its `small` sizes were chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, TypeVar

import numpy as np

from .models.ddpm import DDPMFamily
from .models.flow import FlowFamily
from .models.stylegan import StyleGANFamily
from .models.wgan import WGANFamily
from .utils import SCALES, check_int, check_scale  # noqa: F401  (the scale names live in utils, which needs no torch)

# -- §3.1, App. A: the Gaussian fully synthetic loop (notebook 01, C1) -------------------------------------------


@dataclass(frozen=True)
class GaussianMartingaleSizes:
    """Monte Carlo of the fully synthetic Gaussian loop in d dimensions for every (λ, n_s), and one loop in 2-D
    drawn as a picture."""

    d: int
    trials: int
    generations: int
    lams: tuple[float, ...]
    n_ss: tuple[int, ...]
    picture_generations: int
    picture_n_s: int


# -- §5, App. G: the fresh data loop on Gaussians (notebook 04, C5–C8) -------------------------------------------


@dataclass(frozen=True)
class FreshStartSizes:
    """Fig. 10 (left): the fresh data loop from several n_ini."""

    d: int
    n_r: int
    n_s: int
    n_inis: tuple[int, ...]
    lams: tuple[float, ...]
    generations: int
    trials: int


@dataclass(frozen=True)
class CalibrationSizes:
    """The calibration curve E[W2(G(n), P_r)] of eq. (4)."""

    points: int
    trials: int
    n_max: int


@dataclass(frozen=True)
class FreshGridSizes:
    """Fig. 11, 12: n_e / n_r on a grid of (λ, n_r, n_s = ratio · n_r)."""

    d: int
    lams: tuple[float, ...]
    n_rs: tuple[int, ...]
    ratios: tuple[float, ...]
    trials: int


@dataclass(frozen=True)
class FreshMemorySizes:
    """Fig. 30: sampling from the last K models."""

    d: int
    n_r: int
    n_s: int
    ks: tuple[int, ...]
    trials: int


@dataclass(frozen=True)
class FreshDatasetSizes:
    """Fig. 31: the limit W2 against the dataset size n with a real fraction p."""

    d: int
    ps: tuple[float, ...]
    lams: tuple[float, ...]
    p_bias: float
    ns: tuple[int, ...]
    trials: int


@dataclass(frozen=True)
class FreshGaussianSizes:
    start: FreshStartSizes
    calibration: CalibrationSizes
    grid: FreshGridSizes
    memory: FreshMemorySizes
    dataset: FreshDatasetSizes


# -- the conditional DDPM on MNIST (§3.2–3.4, §4, §5; notebooks 02, 03, 04: C2–C5) -------------------------------


@dataclass(frozen=True)
class DDPMSizes:
    """One entry for the three notebooks, so that their loops share the family and the trained generation 1."""

    family: DDPMFamily
    n: int
    generations: int
    lams: tuple[float, ...]
    lams_aug: tuple[float, ...]
    aug_generations: int
    fresh_n: int
    fresh_inis: tuple[int, ...]
    fresh_generations: int
    tsne_points: int
    tsne_generations: tuple[int, ...]
    grid_generations: tuple[int, ...]
    seeds: int = 1
    fresh_eval: int = 1000  # samples each generation of a fresh data loop is measured on (at least fresh_n)
    control_seeds: int = 2  # seeds of the fresh data loop's controls (madutils.controls), from the largest n_ini
    control_generations: int = 5  # their generations


# -- StyleGAN2 with truncation λ (§3.2–4.1, C12; notebooks 02, 03, 06) -------------------------------------------


@dataclass(frozen=True)
class StyleGANSizes:
    """``generations`` maps each loop, (kind, λ) with the kind named as in the paper, to its number of generations:
    fully synthetic at λ = 1 and 0.7, synthetic augmentation with a growing pool at λ = 1."""

    data: str
    resolution: int
    family: StyleGANFamily
    n: int
    generations: dict[tuple[str, float], int] = field(hash=False)
    keep_images: int
    grid: int
    seeds: int = 1


# -- App. B: WGAN-GP (C10), 25-mode GMM (C9), normalizing flow (C11); notebook 05 ----------------------------------


@dataclass(frozen=True)
class WGANSizes:
    family: WGANFamily
    n: int
    generations: int
    seeds: int = 1


@dataclass(frozen=True)
class GMMSizes:
    n: int
    iterations: int
    seeds: int
    shown: tuple[int, ...]
    reference: int


@dataclass(frozen=True)
class FlowSizes:
    family: FlowFamily
    n: int
    generations: int
    lams: tuple[float, ...]
    reference: int
    seeds: int = 1


# -- notebooks without a claim of their own: the explorer (00) and a model written in a notebook (07) --------------


@dataclass(frozen=True)
class ExplorerSizes:
    """Notebook 00: the Gaussian loops on sliders."""

    trials: int  # Monte Carlo trials of a redraw (fewer, at least 10, for a large d and many generations)


@dataclass(frozen=True)
class KDESizes:
    """Notebook 07: a kernel density estimate in the fully synthetic loop on the 25-mode grid of App. B.2, one loop
    per λ and seed (two seeds)."""

    generations: int
    n: int  # samples per generation
    lams: tuple[float, ...] = (1.0, 0.8)
    reference: int = 2000  # points of the 25-mode reference of the mode statistics (as GMMSizes.reference)


@dataclass(frozen=True)
class AuditSizes:
    """The MAD audit of a user's model (``python -m madutils.audit``): every loop with ``seeds`` seeds of
    ``generations`` generations, each training on ``n`` samples; the fresh data loops at the fresh real
    ``fractions`` of those n (n_r = f n, n_s = (1 − f) n)."""

    generations: int
    n: int  # samples each generation trains on (n_ini, and n_r + n_s of the later generations)
    seeds: int
    fractions: tuple[float, ...]
    reference: int  # held-out real samples the metrics compare against


def _log_grid(lo: float, hi: float) -> tuple[int, ...]:
    return tuple(int(10**e) for e in np.arange(lo, hi + 0.01, 0.5))


_SIZES: dict[type, dict[str, object]] = {
    GaussianMartingaleSizes: {
        "smoke": GaussianMartingaleSizes(
            d=2,
            trials=200,
            generations=60,
            lams=(1.0, 0.95, 0.8),
            n_ss=(10, 100),
            picture_generations=20,
            picture_n_s=20,
        ),
        "small": GaussianMartingaleSizes(
            d=2,
            # "E[W2] grows" at λ = 1, n_s = 10 (its weakest setting): power 0.19 at 4,000 trials, 0.47 at 16,000;
            # that run's standard error (0.0285 against δ = 0.112) puts 0.8 at 24,400 trials and 0.88 at 28,000
            trials=28000,
            generations=1000,
            lams=(1.0, 0.95, 0.8),
            n_ss=(10, 100, 1000),
            picture_generations=300,
            picture_n_s=25,
        ),
        "paper": GaussianMartingaleSizes(
            d=2,
            trials=28000,  # at least small's trials
            generations=5000,
            lams=(1.0, 0.99, 0.95, 0.8),
            n_ss=(10, 100, 1000, 10000),
            picture_generations=1000,
            picture_n_s=25,
        ),
    },
    FreshGaussianSizes: {
        "smoke": FreshGaussianSizes(
            start=FreshStartSizes(
                d=10, n_r=100, n_s=900, n_inis=(200, 1000, 10000), lams=(1.0, 0.9), generations=12, trials=30
            ),
            calibration=CalibrationSizes(points=24, trials=300, n_max=10**5),
            grid=FreshGridSizes(d=5, lams=(0.7, 0.9, 1.0), n_rs=(10, 100), ratios=(0.5, 4, 16), trials=12),
            memory=FreshMemorySizes(d=5, n_r=100, n_s=1000, ks=(1, 2, 4), trials=12),
            dataset=FreshDatasetSizes(
                d=5, ps=(1.0, 0.5), lams=(1.0, 0.9), p_bias=0.5, ns=(100, 1000, 10000), trials=12
            ),
        ),
        "small": FreshGaussianSizes(
            start=FreshStartSizes(
                d=100, n_r=100, n_s=900, n_inis=(200, 1000, 10000), lams=(1.0, 0.9), generations=60, trials=100
            ),
            calibration=CalibrationSizes(points=48, trials=2000, n_max=10**6),
            grid=FreshGridSizes(
                d=20,
                lams=(0.5, 0.7, 0.9, 1.0),
                n_rs=(20, 50, 100, 200, 500, 1000, 2000),
                ratios=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
                trials=40,
            ),
            memory=FreshMemorySizes(d=20, n_r=1000, n_s=10000, ks=(1, 2, 3, 4, 6, 8, 10), trials=100),
            dataset=FreshDatasetSizes(
                d=20, ps=(1.0, 0.75, 0.5, 0.25), lams=(1.0, 0.99, 0.95, 0.9), p_bias=0.5, ns=_log_grid(2, 8), trials=40
            ),
        ),
        "paper": FreshGaussianSizes(
            start=FreshStartSizes(
                d=100, n_r=100, n_s=900, n_inis=(200, 1000, 10000), lams=(1.0, 0.9), generations=100, trials=500
            ),
            calibration=CalibrationSizes(points=64, trials=4000, n_max=10**7),
            grid=FreshGridSizes(
                d=100,
                lams=(0.5, 0.7, 0.9, 1.0),
                n_rs=(100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000),
                ratios=(0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 100),
                trials=100,
            ),
            memory=FreshMemorySizes(d=100, n_r=1000, n_s=10000, ks=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), trials=200),
            dataset=FreshDatasetSizes(
                d=100,
                ps=(1.0, 0.75, 0.5, 0.25),
                lams=(1.0, 0.99, 0.95, 0.9),
                p_bias=0.5,
                ns=_log_grid(2, 9),
                trials=100,
            ),
        ),
    },
    DDPMSizes: {
        "smoke": DDPMSizes(
            DDPMFamily(width=8, patch=4, T=500, steps=15, batch_size=32, lr=2e-3, ema=0.99, sample_steps=4),
            n=200,
            generations=3,
            lams=(1.0, 0.8, 0.5),
            lams_aug=(1.0, 0.5),
            aug_generations=3,
            fresh_n=100,
            fresh_inis=(50, 200),
            fresh_generations=3,
            fresh_eval=100,
            tsne_points=60,
            tsne_generations=(1, 3),
            grid_generations=(1, 2, 3),
            seeds=2,
            control_generations=2,
        ),
        "small": DDPMSizes(
            # 2,000 steps: 1,000 steps gave generation 1 an FID of 240 against 94 (seed 0, docs/notes.md)
            DDPMFamily(width=32, patch=2, T=500, steps=2000, batch_size=32, lr=2e-3, ema=0.99, sample_steps=20),
            n=1000,
            # 3 generations of every loop (docs/notes.md, "The budget of the main job"): the seeds stay at 3, the
            # curves give way; on the stored 5-generation runs, 3 seeds at half the generations kept every verdict
            generations=3,
            lams=(1.0, 0.5),
            lams_aug=(1.0, 0.5),
            aug_generations=3,
            fresh_n=500,
            fresh_inis=(100, 1000),
            # by generation 3 the fresh loop's FID has more than doubled (94 -> 224, seed 0) while the fresh-only
            # control stays near 128: three generations show the divergence and what causes it
            fresh_generations=3,
            tsne_points=300,
            tsne_generations=(1, 3),
            grid_generations=(1, 2, 3),
            seeds=3,
            control_generations=3,
        ),
        "paper": DDPMSizes(
            DDPMFamily(width=64, patch=1, T=500, steps=20000, batch_size=128, lr=2e-4, ema=0.9995, sample_steps=None),
            n=60000,
            generations=10,
            lams=(1.0, 0.9, 0.8, 0.7, 0.5),
            lams_aug=(1.0, 0.9, 0.8, 0.7, 0.5),
            aug_generations=10,
            fresh_n=2000,
            fresh_inis=(200, 2000, 60000),
            fresh_generations=10,
            tsne_points=2000,
            tsne_generations=(1, 4, 7, 10),
            grid_generations=(1, 2, 4, 6, 8, 10),
            seeds=3,
            control_generations=10,
        ),
    },
    StyleGANSizes: {
        "smoke": StyleGANSizes(
            data="mnist",
            resolution=32,
            family=StyleGANFamily(
                channel_base=128, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2, steps=4, batch_size=8
            ),
            n=64,
            generations={("fully synthetic", 1.0): 2, ("fully synthetic", 0.7): 2, ("synthetic augmentation", 1.0): 2},
            keep_images=40,
            grid=12,
            seeds=2,
        ),
        "small": StyleGANSizes(
            data="mnist",
            resolution=32,
            family=StyleGANFamily(
                channel_base=256,
                channel_max=32,
                z_dim=64,
                w_dim=64,
                mapping_layers=2,
                steps=1000,
                batch_size=32,
                lr=0.0025,
                r1_gamma=1.0,
                ema=0.99,
            ),
            n=2000,
            # 2 seeds x 2 generations per loop: generation 1 fails the validity gate at this size, so the rows stay
            # uninformative whatever the length; two generations show the truncation, the growing pool and the
            # same-latent grids (paper scale judges C12)
            generations={("fully synthetic", 1.0): 2, ("fully synthetic", 0.7): 2, ("synthetic augmentation", 1.0): 2},
            keep_images=100,
            grid=20,
            seeds=2,
        ),
        "paper": StyleGANSizes(
            data="ffhq",
            resolution=128,
            family=StyleGANFamily(
                channel_base=32768,
                channel_max=512,
                z_dim=512,
                w_dim=512,
                mapping_layers=8,
                steps=70000,
                batch_size=32,
                lr=0.0025,
                r1_gamma=1.0,
                ema=0.999,
                checkpoint_every=2500,
            ),
            n=70000,
            generations={("fully synthetic", 1.0): 9, ("fully synthetic", 0.7): 5, ("synthetic augmentation", 1.0): 5},
            keep_images=64,
            grid=16,
            seeds=2,
        ),
    },
    WGANSizes: {
        "smoke": WGANSizes(WGANFamily(width=4, steps=10, batch_size=32), n=300, generations=3, seeds=2),
        # 6 generations of about 75 s (two at a time): the curve gives way before the seeds (docs/notes.md)
        "small": WGANSizes(WGANFamily(width=8, steps=600, lr=1e-3), n=2000, generations=6, seeds=3),
        "paper": WGANSizes(WGANFamily(width=64, steps=20000), n=60000, generations=100, seeds=3),
    },
    GMMSizes: {
        "smoke": GMMSizes(n=300, iterations=12, seeds=2, shown=(1, 6, 12), reference=500),
        # 32 seeds: the 24-seed run gave a per-seed standard deviation of 0.35 of C9's correlation difference
        # (power 0.77 at its stated effect δ = 0.2); by that spread 32 seeds give about 0.89 (docs/notes.md,
        # "Judging the claims")
        "small": GMMSizes(n=1000, iterations=1000, seeds=32, shown=(1, 100, 1000), reference=2000),
        "paper": GMMSizes(n=1000, iterations=2000, seeds=32, shown=(1, 200, 2000), reference=2000),  # seeds as `small`
    },
    FlowSizes: {
        "smoke": FlowSizes(
            FlowFamily(epochs=2, hidden=16, n_layers=4), n=500, generations=3, lams=(1.0, 0.8), reference=500, seeds=2
        ),
        # 16 seeds: the 5-seed run's share of tail mass lost at λ = 1 had a per-seed standard deviation of 0.59
        # (power 0.31 at its stated effect δ = 0.5); by that spread 13 seeds give about 0.81 and 16 about 0.89
        # (noncentral t; docs/notes.md, "Judging the claims")
        "small": FlowSizes(FlowFamily(), n=5000, generations=16, lams=(1.0, 0.8), reference=5000, seeds=16),
        "paper": FlowSizes(FlowFamily(), n=10000, generations=16, lams=(1.0, 0.8), reference=10000, seeds=16),
    },
    ExplorerSizes: {  # a redraw within about a second for the default loop on one core
        "smoke": ExplorerSizes(trials=50),
        "small": ExplorerSizes(trials=300),
        "paper": ExplorerSizes(trials=1000),
    },
    KDESizes: {  # seconds at smoke, about a minute at small
        "smoke": KDESizes(generations=4, n=300),
        "small": KDESizes(generations=30, n=1000),
        "paper": KDESizes(generations=100, n=2000),
    },
    AuditSizes: {  # a 2-D family that fits in milliseconds: seconds at smoke, about a minute at small
        "smoke": AuditSizes(generations=4, n=200, seeds=3, fractions=(0.25, 0.5), reference=500),
        # 5 seeds: a t interval across seeds with 4 degrees of freedom; 8 generations show a loss that takes time
        "small": AuditSizes(generations=8, n=1000, seeds=5, fractions=(0.1, 0.25, 0.5, 0.75), reference=2000),
        "paper": AuditSizes(generations=20, n=5000, seeds=8, fractions=(0.05, 0.1, 0.25, 0.5, 0.75), reference=5000),
    },
}

S = TypeVar("S")


def sizes(kind: type[S], scale: str, **overrides: Any) -> S:
    """The sizes of one experiment at one scale, e.g. ``sizes(DDPMSizes, "small")``, with ``overrides`` of its
    fields merged over them (the typed parameters of a notebook: ``sizes(DDPMSizes, "small", lams=[1.0, 0.7])``).

    An override of ``None`` keeps the scale's value; a nested sizes field takes a dict of its own overrides
    (``start={"n_r": 50}``); lists become tuples. An unknown name is an error that lists the fields. The run key
    follows the loops' configurations, so an override never reuses the runs of other sizes."""
    check_scale(scale)
    try:
        base = _SIZES[kind][scale]
    except (KeyError, TypeError):
        known = ", ".join(k.__name__ for k in _SIZES)
        raise ValueError(f"no sizes for {kind!r}; known: {known}") from None
    return _merge(base, overrides)  # type: ignore[return-value]


def _merge(base: Any, overrides: dict[str, Any]) -> Any:
    names = {f.name: f for f in fields(base)}
    changes = {}
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in names:
            known = ", ".join(names)
            raise ValueError(f"{type(base).__name__} has no size {name!r}; its sizes are {known} (madutils/scales.py)")
        current = getattr(base, name)
        if is_dataclass(current) and isinstance(value, dict):
            value = _merge(current, value)
        elif isinstance(current, tuple):
            value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
            if current and all(isinstance(v, float) for v in current):
                value = tuple(float(v) for v in value)
        elif isinstance(current, int) and not isinstance(current, bool):
            value = check_int(value, name, 1)
        elif isinstance(current, float):
            value = float(value)
        changes[name] = value
    return replace(base, **changes) if changes else base
