"""The experiments with loops, each defined once (docs/design.md, "Layers"): its name, its sizes class, how it is
built from those sizes, and which of its loops each notebook computes with its default parameters, selected by
structure (:func:`madutils.loops.matches`: the loop kind with its paper's name, λ, n_ini, ...).

The notebooks select their loops here (:meth:`Entry.select`), and :mod:`madutils.distributed` (the torchrun
fan-out) and :mod:`madutils.progress` (the progress line of ``./reproduce.sh``) plan from the same table, so a
notebook's choice of loops is written once::

    entry = catalog.entry("ddpm")
    ddpm = entry.build(sizes(DDPMSizes, "small", lams=[1.0, 0.7]), seed=0, device="cpu")
    loops = entry.select(ddpm, "03")  # the augmentation loops and the fully synthetic loop at λ = 1

The Gaussian Monte Carlo experiments (notebooks 01 and 04) are in the same table, with ``fanout=False``: they
simulate every trial at once on the CPU and are not handed to the fan-out. Each entry also estimates the disk its
stored results take and the host memory at its peak from its sizes (:mod:`madutils.prerequisites` adds them up
per notebook), and names its store folders (a test checks them against what the builder writes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from . import experiments
from .controls import fresh_controls
from .experiments import Experiment, ddpm_fresh_loops, ddpm_loops
from .loops import loop_kind, matches
from .scales import (
    DDPMSizes,
    FlowSizes,
    FreshGaussianSizes,
    GaussianMartingaleSizes,
    GMMSizes,
    StyleGANSizes,
    WGANSizes,
    sizes,
)
from .utils import check_scale

ALL: tuple[dict, ...] = ({},)  # every loop of an experiment
FULLY = dict(kind="fully synthetic")
AUGMENTED = dict(kind="synthetic augmentation")


def chosen(experiment: Experiment, specs: tuple[dict, ...]) -> list[str]:
    """The labels of the loops of ``experiment`` that any of ``specs`` selects (:func:`madutils.loops.matches`)."""
    return [label for label, cfg in experiment.loops.items() if any(matches(cfg, **spec) for spec in specs)]


def _none(sz: Any) -> float:
    return 0.0


@dataclass(frozen=True)
class Entry:
    """One experiment: ``make(sizes, seed, device)`` builds it from its ``sizes_class``; ``notebooks`` maps each
    notebook that computes some of its loops to their selections (a loop is computed when any selection matches
    it); ``folders``: where the store keeps its results (``runs/<scale>/<folder>/``); ``disk`` and ``memory``:
    the bytes its stored results take and the host memory at its peak, from its sizes; ``deep``: it trains neural
    networks (a GPU at the paper scale); ``fanout``: the torchrun fan-out and the progress line compute and count
    its loops; ``ddp``: its loops can train with DistributedDataParallel (:mod:`madutils.distributed`)."""

    name: str
    sizes_class: type
    make: Callable[[Any, int, str], Any]
    notebooks: dict[str, tuple[dict, ...]] = field(default_factory=dict)
    folders: tuple[str, ...] = ()
    disk: Callable[[Any], float] = _none
    memory: Callable[[Any], float] = _none
    deep: bool = False
    fanout: bool = True
    ddp: bool = False

    def build(self, sz: Any = None, seed: int = 0, device: str = "auto", scale: str | None = None) -> Experiment:
        """The experiment with sizes ``sz`` (or the default sizes of ``scale``)."""
        if sz is None:
            if scale is None:
                raise ValueError(f"experiment {self.name!r}: pass its sizes or a scale")
            sz = sizes(self.sizes_class, check_scale(scale))
        return self.make(sz, seed, device)

    def labels(self, experiment: Experiment, notebook: str | None = None) -> list[str]:
        """The labels of the loops of ``experiment`` that ``notebook`` computes (all of them without a notebook)."""
        return chosen(experiment, self.notebooks.get(notebook, ()) if notebook is not None else ALL)

    def select(self, experiment: Experiment, notebook: str) -> Experiment:
        """``experiment`` with only the loops that ``notebook`` computes; an error when it computes none."""
        chosen = self.labels(experiment, notebook)
        if not chosen:
            raise ValueError(f"notebook {notebook} computes no loop of experiment {self.name!r} (madutils/catalog.py)")
        return replace(experiment, loops={label: experiment.loops[label] for label in chosen})  # keeps its width


def _control(name: str) -> Callable[[DDPMSizes, int, str], Experiment]:
    def make(sz: DDPMSizes, seed: int, device: str) -> Experiment:
        return fresh_controls(sz, max(sz.fresh_inis), seed=seed, device=device)[name]

    return make


# -- what each experiment stores and holds, from its sizes -----------------------------------------------------------

MNIST_SAMPLE = 28 * 28 + 8  # one stored MNIST sample: uint8 pixels and its label


def _loop_bytes(cfg, sample_bytes: int) -> float:
    """The synthetic data a loop stores: every generation's output (its n_out = max(n_s, n_eval) samples)."""
    return float(cfg.generations * max(cfg.n_out, 1)) * sample_bytes


def _monte_carlo_bytes(loops: int, trials: int, generations: int) -> tuple[float, float]:
    """Disk and peak memory of a Gaussian Monte Carlo: four float32 arrays of trials × generations per loop stored;
    one loop's four float64 arrays while it is simulated and about six such arrays of temporaries while the claims
    read it (stored results are memory-mapped, so the other loops are not held)."""
    return loops * 4 * trials * generations * 4.0, 6 * trials * generations * 8.0


def _martingale(sz: GaussianMartingaleSizes) -> tuple[float, float]:
    return _monte_carlo_bytes(len(sz.lams) * len(sz.n_ss), sz.trials, sz.generations)


def _fresh_start(sz: FreshGaussianSizes) -> tuple[float, float]:
    st = sz.start
    return _monte_carlo_bytes(len(st.lams) * len(st.n_inis), st.trials, st.generations)


def _ddpm_memory(d: DDPMSizes) -> float:
    """The training set as uint8 and float32 and one generation's output (small)."""
    return max(d.n * 2, d.fresh_n * 2 + max(d.fresh_inis)) * 28 * 28 * 6.0


def _stylegan_generator_bytes(s: StyleGANSizes) -> float:
    """float32 bytes of StyleGAN2's generator: about 4 · Σ (3 × 3 × c_in × c_out) over the two convolutions of each
    resolution, plus the mapping network (an estimate from the channel widths; the synthesis dominates)."""
    import math

    res = [2**k for k in range(2, int(math.log2(s.resolution)) + 1)]
    ch = [min(s.family.channel_base // r, s.family.channel_max) for r in res]
    conv = sum(2 * 9 * c * c for c in ch)
    mapping = s.family.mapping_layers * s.family.w_dim * s.family.w_dim
    return 4.0 * (conv + mapping)


def _stylegan_disk(s: StyleGANSizes) -> float:
    """Every generation's n samples (the augmentation loop's pool stores each generation's own n) and one float32
    copy of the generator per generation."""
    pixels = (3 if s.data == "ffhq" else 1) * s.resolution**2
    return s.seeds * sum(s.generations.values()) * (s.n * pixels + _stylegan_generator_bytes(s))


def _stylegan_memory(s: StyleGANSizes) -> float:
    """The augmentation loop with its growing pool: at generation g the real set, the g − 1 earlier outputs and the
    training set concatenated from them, 2g · n images (the training set is dropped before sampling)."""
    pixels = (3 if s.data == "ffhq" else 1) * s.resolution**2
    g = max(gens for (kind, _), gens in s.generations.items() if loop_kind(kind) == "fixed")
    return (2 + 2 * (g - 1)) * s.n * pixels


def _control_disk(d: DDPMSizes) -> float:
    return d.control_seeds * d.control_generations * d.fresh_eval * MNIST_SAMPLE


ENTRIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "gaussian_martingale",
            GaussianMartingaleSizes,
            lambda sz, seed, device: experiments.gaussian_martingale(sz, seed)[0],
            {"01": ALL},
            ("gaussian-martingale",),
            disk=lambda sz: _martingale(sz)[0],
            memory=lambda sz: _martingale(sz)[1],
            fanout=False,
        ),
        Entry(
            "gaussian_picture",
            GaussianMartingaleSizes,
            lambda sz, seed, device: experiments.gaussian_picture(sz, *experiments.gaussian_martingale(sz)[1:], seed),
            {"01": ALL},
            ("gaussian-2d",),
            fanout=False,
        ),
        Entry(
            "fresh_start",
            FreshGaussianSizes,
            lambda sz, seed, device: experiments.fresh_start(sz, seed),
            {"04": ALL},
            ("gaussian-fresh-ninit",),
            disk=lambda sz: _fresh_start(sz)[0],
            memory=lambda sz: _fresh_start(sz)[1],
            fanout=False,
        ),
        Entry(
            "fresh_analysis",
            FreshGaussianSizes,
            lambda sz, seed, device: experiments.fresh_analysis(sz, seed),
            {"04": ALL},
            ("gaussian-calibration", "gaussian-fresh-limit"),
            fanout=False,
        ),
        Entry(
            "ddpm",
            DDPMSizes,
            experiments.ddpm,
            {"02": (FULLY,), "03": (AUGMENTED, FULLY | dict(lam=1.0))},
            ("ddpm-mnist",),
            disk=lambda d: sum(_loop_bytes(c, MNIST_SAMPLE) for c in ddpm_loops(d).values()),
            memory=_ddpm_memory,
            deep=True,
        ),
        Entry(
            "ddpm_fresh",
            DDPMSizes,
            experiments.ddpm_fresh,
            {"04": ALL},
            ("ddpm-mnist",),
            disk=lambda d: sum(_loop_bytes(c, MNIST_SAMPLE) for c in ddpm_fresh_loops(d).values()),
            memory=_ddpm_memory,
            deep=True,
        ),
        # the fresh data loop's controls (madutils.controls), from the largest n_ini
        Entry(
            "ddpm_fresh_only",
            DDPMSizes,
            _control("fresh only"),
            {"04": ALL},
            ("ddpm-mnist",),
            disk=_control_disk,
            memory=_ddpm_memory,
            deep=True,
        ),
        Entry(
            "ddpm_real_as_synthetic",
            DDPMSizes,
            _control("real as synthetic"),
            {"04": ALL},
            ("ddpm-mnist",),
            disk=_control_disk,
            memory=_ddpm_memory,
            deep=True,
        ),
        Entry(
            "stylegan",
            StyleGANSizes,
            experiments.stylegan,
            {"02": (FULLY,), "03": (AUGMENTED, FULLY | dict(lam=1.0)), "06": ALL},
            ("stylegan",),
            disk=_stylegan_disk,
            memory=_stylegan_memory,
            deep=True,
            ddp=True,
        ),
        Entry(
            "gmm",
            GMMSizes,
            lambda sz, seed, device: experiments.gmm(sz, seed),
            {"05": ALL},
            ("gmm-grid",),
            disk=lambda g: g.seeds * g.iterations * g.n * 16 * 2.0,  # samples and the fitted mixture (about as large)
        ),
        Entry(
            "wgan",
            WGANSizes,
            experiments.wgan,
            {"05": ALL},
            ("wgan-mnist",),
            disk=lambda w: w.seeds * w.generations * w.n * float(MNIST_SAMPLE),
            memory=lambda w: w.n * 28 * 28 * 6.0,
            deep=True,
        ),
        Entry(
            "flow",
            FlowSizes,
            lambda sz, seed, device: experiments.flow(sz, seed),
            {"05": ALL},
            ("flow-rosenbrock",),
            disk=lambda f: f.seeds * len(f.lams) * f.generations * f.n * 16.0,
        ),
    )
}


def entry(name: str) -> Entry:
    """The experiment ``name``; an error lists them."""
    try:
        return ENTRIES[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; the experiments are {', '.join(ENTRIES)}") from None


def notebook_entries(notebook: str) -> list[Entry]:
    """The experiments that ``notebook`` computes, in the table's order."""
    return [e for e in ENTRIES.values() if notebook in e.notebooks]


def notebook_loops(notebook: str) -> dict[str, tuple[dict, ...]]:
    """The experiments with loops for the fan-out that ``notebook`` computes, each with its loop selections, in the
    table's order."""
    return {e.name: e.notebooks[notebook] for e in notebook_entries(notebook) if e.fanout}


def fanout() -> tuple[str, ...]:
    """The experiments whose loops the torchrun fan-out computes."""
    return tuple(name for name, e in ENTRIES.items() if e.fanout)
