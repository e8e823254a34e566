"""The experiments with loops, each defined once (docs/design.md, "Layers"): its name, its sizes class, how it is
built from those sizes, and which of its loops each notebook computes with its default parameters, selected by
structure (:func:`madutils.loops.matches`: the loop kind with its paper's name, λ, n_ini, ...).

The notebooks select their loops here (:meth:`Entry.select`), and :mod:`madutils.distributed` (the torchrun
fan-out) and :mod:`madutils.progress` (the progress line of ``./reproduce.sh``) plan from the same table, so a
notebook's choice of loops is written once::

    entry = catalog.entry("ddpm")
    ddpm = entry.build(sizes(DDPMSizes, "small", lams=[1.0, 0.7]), seed=0, device="cpu")
    loops = entry.select(ddpm, "03")  # the augmentation loops and the fully synthetic loop at λ = 1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from . import experiments
from .controls import fresh_controls
from .experiments import Experiment
from .loops import matches
from .scales import DDPMSizes, FlowSizes, GMMSizes, StyleGANSizes, WGANSizes, sizes
from .utils import check_scale

ALL: tuple[dict, ...] = ({},)  # every loop of an experiment
FULLY = dict(kind="fully synthetic")
AUGMENTED = dict(kind="synthetic augmentation")


def chosen(experiment: Experiment, specs: tuple[dict, ...]) -> list[str]:
    """The labels of the loops of ``experiment`` that any of ``specs`` selects (:func:`madutils.loops.matches`)."""
    return [label for label, cfg in experiment.loops.items() if any(matches(cfg, **spec) for spec in specs)]


@dataclass(frozen=True)
class Entry:
    """One experiment with loops: ``make(sizes, seed, device)`` builds it from its ``sizes_class``; ``notebooks``
    maps each notebook that computes some of its loops to their selections (a loop is computed when any selection
    matches it); ``ddp``: its loops can train with DistributedDataParallel (:mod:`madutils.distributed`)."""

    name: str
    sizes_class: type
    make: Callable[[Any, int, str], Experiment]
    notebooks: dict[str, tuple[dict, ...]] = field(default_factory=dict)
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


ENTRIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("ddpm", DDPMSizes, experiments.ddpm, {"02": (FULLY,), "03": (AUGMENTED, FULLY | dict(lam=1.0))}),
        Entry("ddpm_fresh", DDPMSizes, experiments.ddpm_fresh, {"04": ALL}),
        # the fresh data loop's controls (madutils.controls), from the largest n_ini
        Entry("ddpm_fresh_only", DDPMSizes, _control("fresh only"), {"04": ALL}),
        Entry("ddpm_real_as_synthetic", DDPMSizes, _control("real as synthetic"), {"04": ALL}),
        Entry(
            "stylegan",
            StyleGANSizes,
            experiments.stylegan,
            {"02": (FULLY,), "03": (AUGMENTED, FULLY | dict(lam=1.0)), "06": ALL},
            ddp=True,
        ),
        Entry("gmm", GMMSizes, lambda sz, seed, device: experiments.gmm(sz, seed), {"05": ALL}),
        Entry("wgan", WGANSizes, experiments.wgan, {"05": ALL}),
        Entry("flow", FlowSizes, lambda sz, seed, device: experiments.flow(sz, seed), {"05": ALL}),
    )
}


def entry(name: str) -> Entry:
    """The experiment ``name``; an error lists them."""
    try:
        return ENTRIES[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; the experiments with loops are {', '.join(ENTRIES)}") from None


def notebook_loops(notebook: str) -> dict[str, tuple[dict, ...]]:
    """The experiments that ``notebook`` computes, each with its loop selections, in the table's order."""
    return {e.name: e.notebooks[notebook] for e in ENTRIES.values() if notebook in e.notebooks}
