"""The experiment layer: an experiment is a model family, a real source, an evaluation hook and a set of named
loop configurations (with their seeds). It runs them (side by side where that pays, :func:`~madutils.loops.run_loops`)
and returns its runs; every table, figure and claim is built from the runs it returns, never by filtering the
store.

Each experiment of the paper is defined once here and shared by the notebooks that draw it: the conditional DDPM
(notebooks 02, 03, 04), StyleGAN2 (02, 03, 06), WGAN-GP, the GMM and the flow (05), and the Gaussian experiments
(01, 04), whose Monte Carlo runs many trials of a loop at once (:class:`GaussianMonteCarlo`). Each builder takes
the experiment's sizes (:func:`madutils.scales.sizes`, with a notebook's typed parameters merged over them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from . import fresh
from .data import FFHQSource, GaussianSource, GridSource, MnistImages, MnistSource, RosenbrockSource
from .loops import (
    LoopConfig,
    LoopRun,
    RunKey,
    first_key,
    loop_kind,
    loop_label,
    loop_workers,
    matches,
    run_loops,
)
from .metrics import ModeMetrics, TailMetrics, ffhq_metrics, mnist_metrics
from .models.gaussian import GaussianFamily
from .models.gmm import GMMFamily
from .montecarlo import simulate, summarize_trials
from .scales import (
    DDPMSizes,
    FlowSizes,
    FreshGaussianSizes,
    GaussianMartingaleSizes,
    GMMSizes,
    StyleGANSizes,
    WGANSizes,
)
from .store import LOG_FLOAT32, Store
from .utils import check_int, cpu_threads


class _ByLabel(Mapping):
    """What an experiment returns, by loop label in the experiment's order; a missing label names those there are."""

    def __init__(self, items: Mapping):
        self._runs = dict(items)

    def __getitem__(self, label: Any) -> Any:
        try:
            return self._runs[label]
        except KeyError:
            raise KeyError(f"no loop {label!r} in these runs; they are {list(self._runs)}") from None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)


class Runs(_ByLabel):
    """The runs of an experiment, by loop label, in the experiment's order."""

    def where(self, kind: str | None = None, **fields: Any) -> Runs:
        """The runs whose loops are of ``kind`` (its name in the paper, e.g. ``"fully synthetic"``, or ``"none"``,
        ``"fixed"``, ``"fresh"``) and have the given fields (``lam=0.5``, ``seed=0``, ``n_ini=100``)."""
        return Runs({label: run for label, run in self._runs.items() if matches(run.cfg, kind, **fields)})

    def one(self, kind: str | None = None, **fields: Any) -> LoopRun:
        """The one run that :meth:`where` selects, or an error that says how many it found."""
        found = self.where(kind, **fields)
        if len(found) != 1:
            raise KeyError(f"{len(found)} runs match kind={kind!r}, {fields}; the runs are {list(self._runs)}")
        return next(iter(found.values()))

    def table(self) -> pd.DataFrame:
        """The tidy table of these runs: one row per loop × generation × metric, with the loop's label (column
        ``loop``) and configuration (``lam``, ``real``, ``n_s``, ``seed``, ...) as columns."""
        frames = [run.metrics().assign(loop=label) for label, run in self._runs.items()]
        if not frames:
            return pd.DataFrame(columns=["loop", "generation", "metric", "value"])
        return pd.concat(frames, ignore_index=True)


@dataclass
class Experiment:
    """A family, a real source, an evaluation hook and named loop configurations, stored under
    ``runs/<scale>/<folder>/``."""

    folder: str
    family: Any
    source: Any
    hook: Any
    loops: dict[str, LoopConfig]
    store_models: bool = False
    data: str = ""  # the training data, for figure titles
    width: int = 0  # the loops of the whole experiment; a selection computes with the same threads per loop
    announced: bool = True  # run() prints what is not stored yet and its cost first (announce); False: the caller does

    def __post_init__(self) -> None:
        self.width = self.width or len(self.loops)

    def where(self, kind: str | None = None, **fields: Any) -> Experiment:
        """The same experiment with only the loops of ``kind`` (a name of the paper, e.g. ``"fully synthetic"``)
        that have the given fields (``lam=1.0``, ``n_ini=100``), every seed of each; an error when none matches.
        It keeps the experiment's width, so a selection computes with the same threads (the same run keys)."""
        chosen = {label: cfg for label, cfg in self.loops.items() if matches(cfg, kind, **fields)}
        if not chosen:
            raise ValueError(f"no loop of {self.folder} has kind={kind!r}, {fields}; its loops are {list(self.loops)}")
        return replace(self, loops=chosen)

    def run(
        self,
        store: Store,
        *,
        workers: int | str = "auto",
        progress: bool = True,
        desc: str = "",
        group: tuple[int, int] | None = None,
    ) -> Runs:
        """Run (or read from the store) every loop of this experiment and return the runs.

        The loops share the cores as the loops of the whole experiment would (:func:`loop_workers` of ``width``
        loops), also when only a selection runs: the thread count is part of the run key of PyTorch families,
        so every notebook that reads a shared loop finds the same run. Before anything is computed it prints what is
        not stored yet and an estimate of its time on this machine (:func:`announce`). ``group`` = (rank, world):
        every process of a ``torch.distributed`` group computes each loop together (:func:`run_loop`)."""
        if progress and self.announced:
            announce(self, store, workers)
        loops = run_loops(
            self.family,
            list(self.loops.values()),
            self.source,
            store=store,
            folder=self.folder,
            evaluate=self.hook,
            store_models=self.store_models,
            workers=workers,
            threads=self._threads(),
            progress=progress,
            desc=desc or f"{self.folder}: {len(self.loops)} loops",
            group=group,
        )
        return Runs(dict(zip(self.loops, loops, strict=True)))

    def stored(self, store: Store) -> Runs:
        """The runs of this experiment as the store holds them, computing nothing: an error names the first loop
        that is not stored with all its generations (for tools that only read, such as
        :mod:`madutils.tools.budget`)."""

        runs = {}
        for label, cfg in self.loops.items():
            run = self.key(cfg).existing(store)
            done = run.completed() if run is not None else 0
            if done < cfg.generations:
                where = run.path if run is not None else f"{store.root / self.folder}/<{label}>"
                raise ValueError(
                    f"loop {label!r} of {self.folder} has {done} of its {cfg.generations} generations stored "
                    f"({where}); run its notebook (./reproduce.sh --only NN) first"
                )
            runs[label] = LoopRun(run, cfg)
        return Runs(runs)

    def key(self, cfg: LoopConfig, threads: int | None = None) -> RunKey:
        """The run key of loop ``cfg`` of this experiment (with the threads the whole experiment's loops get)."""
        return RunKey.of(self.folder, self.family, cfg, self.source, self.hook, threads or self._threads())

    def _threads(self) -> int:
        # the loops share the cores as the whole experiment's would: the thread count is part of the run key

        return max(1, cpu_threads() // loop_workers(self.family, self.width))


# Seconds one generation of a loop takes on one core of a 2-core CPU (x86-64, no GPU), measured at each scale's
# sizes with two loops side by side, as the notebooks run them: training, sampling and the metrics (docs/notes.md,
# "The budget of the main job"). A rough guide for the estimate printed before work; a busy machine is slower (an
# earlier, contended measurement gave a DDPM generation 330 s).
GENERATION_SECONDS = {
    ("DDPMFamily", "smoke"): 2,
    ("DDPMFamily", "small"): 150,  # 2,000 steps, 1,000 samples of 20 steps, LeNet metrics
    ("StyleGANFamily", "smoke"): 3,
    ("StyleGANFamily", "small"): 120,
    ("WGANFamily", "smoke"): 2,
    ("WGANFamily", "small"): 75,
    ("FlowFamily", "smoke"): 1,
    ("FlowFamily", "small"): 5,
    ("GMMFamily", "smoke"): 0.05,
    ("GMMFamily", "small"): 0.1,
}


def announce(experiment: Experiment, store: Store, workers: int | str = "auto") -> tuple[int, float | None]:
    """Print how many generations of ``experiment`` are not stored yet and, where this machine's cost of a
    generation is known (:data:`GENERATION_SECONDS`, scaled by the cores in use), about how long they take; with
    nothing to compute, print nothing. Returns (generations to compute, estimated seconds or None)."""

    threads = experiment._threads()
    todo, firsts = 0, set()
    for cfg in experiment.loops.values():
        key = experiment.key(cfg, threads)
        run = key.existing(store)
        done = run.completed() if run is not None else 0
        donor = key.other_length(store) if done < cfg.generations else None
        if donor is not None:  # the same loop stored with another length: its generations are taken over
            done = max(done, min(donor.completed(), cfg.generations))
        if done == 0 and first_key(cfg) in firsts:  # generation 1 is shared with a loop counted already
            done = 1
        firsts.add(first_key(cfg))
        todo += max(0, cfg.generations - done)
    if not todo:
        return 0, None
    scale = store.root.name
    family = getattr(experiment.family, "base", experiment.family)  # a control trains as the family it wraps
    per_generation = GENERATION_SECONDS.get((type(family).__name__, scale))
    kind = getattr(experiment.family, "name", type(experiment.family).__name__)
    line = f"{experiment.folder}: {todo} {kind} generation{'s' if todo > 1 else ''} not stored yet"
    seconds = None
    if per_generation is not None:
        parallel = min(loop_workers(experiment.family, len(experiment.loops), workers), cpu_threads()) or 1
        seconds = todo * per_generation / parallel
        line += f", about {_duration(seconds)} on this machine ({parallel} at a time; a 2-core CPU's costs)"
    if scale != "smoke":
        line += '; scale = "smoke" runs the notebook in about a minute'
    print(line, flush=True)
    return todo, seconds


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


SEED_MARK = " · seed "


def with_seeds(loops: dict[str, LoopConfig], seed: int, seeds: int) -> dict[str, LoopConfig]:
    """Every loop once per seed ``seed, seed + 1, …, seed + seeds − 1``: the first keeps its label, the others are
    labelled ``"<label> · seed <s>"``. The loops of one seed share their generation 1 where their n_ini agrees."""
    check_int(seeds, "seeds", 1)
    out = {}
    for i in range(seeds):
        for label, cfg in loops.items():
            out[label if i == 0 else f"{label}{SEED_MARK}{seed + i}"] = replace(cfg, seed=seed + i)
    return out


# -- the image experiments ----------------------------------------------------------------------------------------


def _lam(lam: float) -> str:
    return f"λ={lam:g}"


def labelled(configs: Sequence[LoopConfig], seed: int, seeds: int, label=loop_label) -> dict[str, LoopConfig]:
    """The loops ``configs`` labelled for display (default: their kind's name in the paper and λ,
    :func:`madutils.loops.loop_label`), each once per seed (:func:`with_seeds`)."""
    return with_seeds({label(cfg): cfg for cfg in configs}, seed, seeds)


def ddpm_loops(sz: DDPMSizes, seed: int = 0) -> dict[str, LoopConfig]:
    """The loops of :func:`ddpm`, every one with its seeds (without building the metric hook)."""
    n = sz.n
    configs = [LoopConfig(sz.generations, n, n, lam=lam, seed=seed) for lam in sz.lams]
    configs += [LoopConfig(sz.aug_generations, n, n, real="fixed", n_r=n, lam=lam, seed=seed) for lam in sz.lams_aug]
    return labelled(configs, seed, sz.seeds)


def ddpm_fresh_loops(sz: DDPMSizes, seed: int = 0) -> dict[str, LoopConfig]:
    """The loops of :func:`ddpm_fresh`, every one with its seeds: n_r = n_s = ``fresh_n``, each generation's
    metrics on ``fresh_eval`` samples (the first n_s of them train the next generation)."""
    configs = [
        LoopConfig(
            sz.fresh_generations, n_ini, sz.fresh_n, real="fresh", n_r=sz.fresh_n, n_eval=sz.fresh_eval, seed=seed
        )
        for n_ini in sz.fresh_inis
    ]
    configs = [replace(cfg, seed=seed) for cfg in configs]
    return labelled(configs, seed, sz.seeds, lambda cfg: f"{loop_label(cfg, lam=False)} n_ini={cfg.n_ini}")


def _ddpm_experiment(
    sz: DDPMSizes, family, loops: dict[str, LoopConfig], device: str, store_models: bool = False
) -> Experiment:

    hook = mnist_metrics(keep_features=sz.tsne_points, keep_images=100, device=device)
    family = replace(family, device=device)
    return Experiment("ddpm-mnist", family, MnistSource(), hook, loops, store_models=store_models, data="MNIST")


def ddpm(sz: DDPMSizes, seed: int = 0, device: str = "auto") -> Experiment:
    """The conditional DDPM on MNIST (§3.2–4; notebooks 02 and 03): the fully synthetic loops of every λ and the
    synthetic augmentation loops (a fixed real set of n images) (:func:`ddpm_loops`). All start from the same
    trained generation 1 where their seed agrees."""
    return _ddpm_experiment(sz, sz.family, ddpm_loops(sz, seed), device)


def ddpm_fresh(sz: DDPMSizes, seed: int = 0, device: str = "auto") -> Experiment:
    """The fresh data loops of the conditional DDPM on MNIST (§5, Fig. 10 right; notebook 04) from every n_ini
    (:func:`ddpm_fresh_loops`). Their training effort follows the size of the training set (the family's
    ``effort_images`` is ``n``): a generation 1 on n_ini < n images trains half the steps for a tenth of the
    images, so a small n_ini neither memorises its images nor stays untrained. Every generation's model is stored,
    for the sampler control (:func:`madutils.controls.sampler_control`)."""
    family = replace(sz.family, effort_images=sz.n)
    return _ddpm_experiment(sz, family, ddpm_fresh_loops(sz, seed), device, store_models=True)


def stylegan(sz: StyleGANSizes, seed: int = 0, device: str = "auto") -> Experiment:
    """StyleGAN2 with truncation λ (§3.2–4.1, C12; notebooks 02, 03, 06): the fully synthetic loop at λ = 1 and
    0.7, and the augmentation loop with the fixed real set and a pool of all earlier synthetic samples,
    n_s^t = (t − 1)·n. Every generation's model is stored, for the grids of notebook 06.

    ``paper`` trains on FFHQ at 128 × 128 with Inception features; ``small`` and ``smoke`` on MNIST zero-padded to
    32 × 32 with LeNet features against the MNIST test set, the only image data reachable offline."""
    n = sz.n
    configs = []
    for (kind, lam), generations in sz.generations.items():
        real = loop_kind(kind)
        if real == "none":
            configs.append(LoopConfig(generations, n, n, lam=lam, seed=seed))
        elif real == "fixed":
            configs.append(LoopConfig(generations, n, n, real="fixed", n_r=n, lam=lam, accumulate=True, seed=seed))
        else:
            raise ValueError(
                f"StyleGAN loop ({kind!r}, {lam}): its loops are fully synthetic or synthetic augmentation"
            )
    if sz.data == "ffhq":
        source = FFHQSource(resolution=sz.resolution)
        hook = ffhq_metrics(resolution=sz.resolution, keep_images=sz.keep_images, device=device)
        data = f"FFHQ {sz.resolution}"
    else:
        source = MnistImages(size=sz.resolution)
        hook = mnist_metrics(keep_images=sz.keep_images, device=device, size=sz.resolution, spectrum=True)
        data = f"MNIST {sz.resolution}×{sz.resolution}"
    family = replace(sz.family, device=device)
    loops = labelled(configs, seed, sz.seeds)
    return Experiment("stylegan", family, source, hook, loops, store_models=True, data=data)


def wgan(sz: WGANSizes, seed: int = 0, device: str = "auto") -> Experiment:
    """WGAN-GP on MNIST in the fully synthetic loop (App. B.1, C10; notebook 05)."""

    loops = with_seeds({_lam(1.0): LoopConfig(sz.generations, sz.n, sz.n, seed=seed)}, seed, sz.seeds)
    hook = mnist_metrics(keep_features=0, keep_images=40, device=device)
    return Experiment("wgan-mnist", replace(sz.family, device=device), MnistSource(), hook, loops, data="MNIST")


def gmm(sz: GMMSizes, seed: int = 0) -> Experiment:
    """The 25-mode Gaussian mixture in the fully synthetic loop, one loop per seed ``seed, …, seed + seeds − 1``
    (App. B.2, C9; notebook 05)."""

    loops = {f"seed {s}": LoopConfig(sz.iterations, sz.n, sz.n, seed=s) for s in range(seed, seed + sz.seeds)}
    hook = ModeMetrics(GridSource().draw(sz.reference, seed=10**6))
    return Experiment("gmm-grid", GMMFamily(), GridSource(), hook, loops, store_models=True, data="25-mode grid")


def flow(sz: FlowSizes, seed: int = 0) -> Experiment:
    """The normalizing flow on the 2-D Rosenbrock density, one loop per λ (App. B.4, C11; notebook 05)."""

    loops = {_lam(lam): LoopConfig(sz.generations, sz.n, sz.n, lam=lam, seed=seed) for lam in sz.lams}
    loops = with_seeds(loops, seed, sz.seeds)
    hook = TailMetrics(RosenbrockSource().draw(sz.reference, seed=10**6))
    return Experiment("flow-rosenbrock", sz.family, RosenbrockSource(), hook, loops, data="Rosenbrock")


# -- the Gaussian experiments ---------------------------------------------------------------------------------------


class MonteCarloRuns(_ByLabel):
    """The loops of a Gaussian Monte Carlo experiment, by label (e.g. (λ, n_s)): per loop its arrays ``w2``,
    ``trace``, ``mean_dist`` and ``step_sq`` (trials × generations, see :class:`~madutils.montecarlo.SimResult`),
    read from the store one at a time on each access. :meth:`table` has the shape of :meth:`Runs.table`."""

    def __init__(self, loops: dict[Any, LoopConfig], arrays: Mapping[Any, Mapping[str, np.ndarray]]):
        super().__init__(arrays)
        self.loops = dict(loops)

    def where(self, kind: str | None = None, **fields: Any) -> MonteCarloRuns:
        """The loops of ``kind`` with the given fields (``lam=0.9``, ``n_s=100``), as :meth:`Runs.where`."""
        chosen = [label for label, cfg in self.loops.items() if matches(cfg, kind, **fields)]
        return MonteCarloRuns({k: self.loops[k] for k in chosen}, {k: self[k] for k in chosen})

    def table(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """The tidy table of these loops, as :meth:`Runs.table`: one row per loop × generation × metric, with
        ``value`` the mean over trials (and its ``sem``, ``median``, ``q05``, ``q95``: :func:`summarize_trials`),
        the loop's label (``loop``) and its configuration (``lam``, ``n_ini``, ``n_s``, ...) as columns;
        ``metrics`` keeps only these arrays."""
        frames = []
        for label, cfg in self.loops.items():
            name = f"{loop_label(cfg)} · n_ini={cfg.n_ini} · n_s={cfg.n_s}"
            frames.append(summarize_trials(self[label], metrics, loop=name, **asdict(cfg)))
        return pd.concat(frames, ignore_index=True)


@dataclass
class GaussianMonteCarlo:
    """Named Gaussian loops, each simulated over ``trials`` independent trials at once (:func:`simulate`) in
    d dimensions against P_r = N(μ_0, diag(var0)); every loop's arrays (trials × generations) are stored once, as
    float32 logarithms (the store's codec :data:`~madutils.store.LOG_FLOAT32`)."""

    folder: str
    d: int
    trials: int
    loops: dict[Any, LoopConfig]
    var0: tuple[float, ...] | None = None

    def run(self, store: Store) -> MonteCarloRuns:
        """Simulate (or read from the store) every loop and return the runs."""
        from tqdm.auto import tqdm

        var0 = None if self.var0 is None else np.asarray(self.var0)
        out = {}
        for label, cfg in tqdm(self.loops.items(), desc=f"{self.folder}: Monte Carlo", unit="loop", leave=False):
            config = dict(loop=cfg, d=self.d, trials=self.trials, var0=self.var0, method="exact")
            out[label] = store.cached_arrays(
                self.folder,
                config,
                lambda cfg=cfg: simulate(cfg, self.d, self.trials, var0=var0).arrays(),
                codec=LOG_FLOAT32,
            )
        return MonteCarloRuns(self.loops, out)


def gaussian_martingale(
    sz: GaussianMartingaleSizes, seed: int = 0
) -> tuple[GaussianMonteCarlo, np.ndarray, np.ndarray]:
    """The fully synthetic Gaussian loop for every (λ, n_s) with n_ini = n_s (§3.1, App. A, C1; notebook 01),
    against P_r = N(μ_0, diag(var0)) with μ_0 from 2 to −1 and variances from 1 to 0.25. Returns the experiment and
    (μ_0, var0)."""
    mu0, var0 = np.linspace(2.0, -1.0, sz.d), np.linspace(1.0, 0.25, sz.d)
    loops = {(lam, n_s): LoopConfig(sz.generations, n_s, n_s, lam=lam, seed=seed) for lam in sz.lams for n_s in sz.n_ss}
    return GaussianMonteCarlo("gaussian-martingale", sz.d, sz.trials, loops, tuple(var0.tolist())), mu0, var0


def gaussian_picture(sz: GaussianMartingaleSizes, mu0: np.ndarray, var0: np.ndarray, seed: int = 0) -> Experiment:
    """One fully synthetic Gaussian loop in 2-D for the first and last λ of notebook 01, drawn as a picture."""

    source = GaussianSource.from_arrays(mu0[:2], np.diag(var0[:2]))
    n = sz.picture_n_s
    loops = {
        _lam(lam): LoopConfig(sz.picture_generations, n, n, lam=lam, seed=seed) for lam in sz.lams[:: len(sz.lams) - 1]
    }
    return Experiment("gaussian-2d", GaussianFamily(), source, None, loops, store_models=True, data="2-D Gaussian")


def fresh_start(sizes: FreshGaussianSizes, seed: int = 0) -> GaussianMonteCarlo:
    """The Gaussian fresh data loop from several n_ini, unbiased and biased (§5.2, Fig. 10 left, C5)."""
    sz = sizes.start
    loops = {
        (lam, n_ini): LoopConfig(sz.generations, n_ini, sz.n_s, real="fresh", n_r=sz.n_r, lam=lam, seed=seed)
        for lam in sz.lams
        for n_ini in sz.n_inis
    }
    return GaussianMonteCarlo("gaussian-fresh-ninit", sz.d, sz.trials, loops)


_POINT = ("lam", "n_r", "n_s", "memory", "p", "n", "trials")  # the columns that say which configuration a row is


@dataclass(frozen=True)
class FreshResults:
    """What the effective-sample-size analysis of the Gaussian fresh data loop computes: n_e / n_r on the
    (λ, n_r, n_s) grid (``ess``, Fig. 11), the admissible thresholds n_s* (``thresholds``, Fig. 12), n_e / n_r
    against the memory K (``memory``, Fig. 30) and the limit W2 against the dataset size n (``by_p`` for several
    real fractions p at λ = 1, ``by_lam`` for several λ; Fig. 31)."""

    ess: pd.DataFrame
    thresholds: pd.DataFrame
    memory: pd.DataFrame
    by_p: pd.DataFrame
    by_lam: pd.DataFrame

    def table(self) -> pd.DataFrame:
        """Every part in one tidy table, as :meth:`Runs.table`: one row per point × metric (``wd``, ``ratio``,
        ``threshold``, ...) with its ``value``, the part's name (column ``loop``: ``grid``, ``threshold``,
        ``memory``, ``dataset p``, ``dataset λ``) and the point's configuration (``lam``, ``n_r``, ``n_s``, ...)
        and flags (``converged``, ``censored``) as columns."""
        parts = {"grid": self.ess, "threshold": self.thresholds, "memory": self.memory}
        parts |= {"dataset p": self.by_p, "dataset λ": self.by_lam}
        frames = []
        for name, df in parts.items():
            numeric = df.select_dtypes("number").columns
            ids = [c for c in df.columns if c in _POINT or c not in numeric]
            long = df.melt(id_vars=ids, value_vars=[c for c in numeric if c not in ids], var_name="metric")
            frames.append(long.assign(loop=name))
        return pd.concat(frames, ignore_index=True)


@dataclass
class FreshAnalysis:
    """The effective-sample-size experiments of the Gaussian fresh data loop (§5.3, App. G; Fig. 11, 12, 30, 31;
    C6–C8): each grid point's limit is computed once and stored."""

    sizes: FreshGaussianSizes
    seed: int = 0
    _calibrations: dict = field(default_factory=dict, repr=False)

    def run(self, store: Store) -> FreshResults:
        """Every part of the analysis (computed once, then read from the store)."""
        ess, thresholds = self.grid(store)
        return FreshResults(ess, thresholds, self.memory(store), *self.dataset_size(store))

    def _cache(self, store: Store, folder: str) -> Callable:
        return lambda config, compute: store.cached_arrays(folder, config, compute)

    def calibration(self, store: Store, d: int) -> fresh.Calibration:
        """The calibration curve of eq. (4) in d dimensions."""
        if d not in self._calibrations:
            c = self.sizes.calibration
            cfg = dict(d=d, points=c.points, trials=c.trials, n_max=c.n_max, seed=self.seed)
            arrays = store.cached_arrays("gaussian-calibration", cfg, lambda: fresh.calibrate(**cfg).arrays())
            self._calibrations[d] = fresh.Calibration.from_arrays(arrays)
        return self._calibrations[d]

    def grid(self, store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
        """n_e / n_r on the (λ, n_r, n_s) grid (Fig. 11) and the admissible thresholds (Fig. 12)."""
        g = self.sizes.grid
        points = [
            dict(n_r=n_r, n_s=int(round(r * n_r)), lam=lam) for lam in g.lams for n_r in g.n_rs for r in (0, *g.ratios)
        ]
        limits = fresh.fresh_limits(
            points, g.d, trials=g.trials, seed=self.seed, cache=self._cache(store, "gaussian-fresh-limit")
        )
        ess = fresh.effective_sample_sizes(limits, self.calibration(store, g.d))
        return ess, fresh.admissible_thresholds(ess)

    def memory(self, store: Store) -> pd.DataFrame:
        """n_e / n_r when sampling from the last K models (Fig. 30)."""
        m = self.sizes.memory
        points = [dict(n_r=m.n_r, n_s=m.n_s, lam=1.0, memory=k) for k in m.ks]
        limits = fresh.fresh_limits(
            points, m.d, trials=m.trials, seed=self.seed, cache=self._cache(store, "gaussian-fresh-limit")
        )
        return fresh.effective_sample_sizes(limits, self.calibration(store, m.d))

    def dataset_size(self, store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The limit W2 against the dataset size n, for several real fractions p at λ = 1 and several λ at p_bias
        (Fig. 31)."""
        s = self.sizes.dataset
        by_p = [dict(n_r=max(1, round(p * n)), n_s=round((1 - p) * n), lam=1.0, p=p, n=n) for p in s.ps for n in s.ns]
        by_lam = [
            dict(n_r=max(1, round(s.p_bias * n)), n_s=round((1 - s.p_bias) * n), lam=lam, p=s.p_bias, n=n)
            for lam in s.lams
            for n in s.ns
        ]
        cache = self._cache(store, "gaussian-fresh-limit")
        return (
            fresh.fresh_limits(by_p, s.d, trials=s.trials, seed=self.seed, cache=cache),
            fresh.fresh_limits(by_lam, s.d, trials=s.trials, seed=self.seed, cache=cache),
        )


def fresh_analysis(sizes: FreshGaussianSizes, seed: int = 0) -> FreshAnalysis:
    return FreshAnalysis(sizes, seed)
