"""The autophagous loop engine: one engine for every loop of the paper (§2.1–2.3, Fig. 3).

Generation 1 trains a model G^1 on ``n_ini`` real samples. Generation t ≥ 2 trains a fresh model on
D^t = (real part, synthetic part):

* real part (``real``): ``"none"`` (the fully synthetic loop), ``"fixed"`` (the first ``n_r`` samples of the
  generation-1 set, the same every generation: the synthetic augmentation loop) or ``"fresh"`` (``n_r`` new real
  samples every generation: the fresh data loop);
* synthetic part: ``n_s`` samples drawn with sampling bias λ (``lam``) from the last ``memory`` = K models (K = 1:
  the previous model; K > 1: each sample from one of the last K models chosen uniformly at random, App. G exp. 1),
  or with ``accumulate=True`` a pool that keeps the ``n_s`` synthetic samples of every earlier generation (the
  StyleGAN augmentation loop of §4.1, n_s^t = (t − 1) n_s).

A model family is a small protocol (``fit(data, seed) -> model``, ``sample(model, n, lam, seed) -> data``); data are
NumPy arrays of samples along axis 0, or tuples of such arrays (images and labels). After each generation the
engine draws the generation's synthetic output (``max(n_s, n_eval)`` samples with bias λ), calls the evaluation
hook, and stores the generation atomically; a rerun resumes after the last complete generation. Independent loops
can run side by side, one process per core (:func:`run_loops`).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from . import plain
from .store import Generation, MemoryRun, Run, Store, StoreError
from .utils import (
    agree,
    barrier,
    canonical,
    check_int,
    check_lam,
    code_digest,
    config_key,
    cpu_threads,
    derive_seed,
    reach_digest,
    resolve_device,
)

LOOP_KINDS = ("none", "fixed", "fresh")
# the paper's names of the loop kinds (§2.2): the one translation between a configuration's `real` and what labels,
# figures and selections say
LOOP_NAMES = {"none": "fully synthetic", "fixed": "synthetic augmentation", "fresh": "fresh data"}


def loop_kind(kind: str) -> str:
    """A loop kind (``"none"``, ``"fixed"``, ``"fresh"``) from itself or from its name in the paper
    (:data:`LOOP_NAMES`)."""
    if kind in LOOP_KINDS:
        return kind
    for real, name in LOOP_NAMES.items():
        if kind == name:
            return real
    known = ", ".join(f"{name!r} ({real!r})" for real, name in LOOP_NAMES.items())
    raise ValueError(f"unknown loop kind {kind!r}; the kinds are {known}")


def loop_label(cfg: LoopConfig, lam: bool = True) -> str:
    """How a loop is shown: its kind's name in the paper and its λ (``"fully synthetic λ=0.5"``)."""
    return LOOP_NAMES[cfg.real] + (f" λ={cfg.lam:g}" if lam else "")


def matches(cfg: LoopConfig, kind: str | None = None, **fields: Any) -> bool:
    """Whether a loop is of ``kind`` (a kind or its name) and has every other field as given (``lam=0.5``,
    ``n_ini=100``, ``seed=1``; floats compared to round-off)."""
    if kind is not None and cfg.real != loop_kind(kind):
        return False
    for name, want in fields.items():
        have = getattr(cfg, name)
        if isinstance(have, float) or isinstance(want, float):
            if not np.isclose(float(have), float(want)):
                return False
        elif have != want:
            return False
    return True


Data = Any  # np.ndarray or tuple of np.ndarray with a common first axis


class Family(Protocol):
    """A model family: how to train a model on data and how to sample from it with bias λ."""

    name: str

    def fit(self, data: Data, seed: int) -> Any: ...

    def sample(self, model: Any, n: int, lam: float, seed: int) -> Data: ...


class RealSource(Protocol):
    """The reference distribution P_r: ``draw(n, seed)`` returns ``n`` real samples."""

    def draw(self, n: int, seed: int) -> Data: ...


class LoopError(RuntimeError):
    """A generation failed; the message says which, where the stored generations are, and how to resume."""


@dataclass(frozen=True)
class LoopConfig:
    """One autophagous loop (§2.2, §5.1). Symbols as in the paper: ``n_ini`` = n_r^1, ``n_r``, ``n_s``, ``lam`` = λ."""

    generations: int
    n_ini: int
    n_s: int
    real: str = "none"
    n_r: int = 0
    lam: float = 1.0
    memory: int = 1
    accumulate: bool = False
    n_eval: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.real not in LOOP_KINDS:
            raise ValueError(f"real = {self.real!r} is not a loop kind; choose one of {LOOP_KINDS}")
        check_int(self.generations, "generations", 1)
        check_int(self.n_ini, "n_ini", 1)
        check_int(self.n_r, "n_r", 0)
        check_int(self.n_s, "n_s", 0)
        check_int(self.n_eval, "n_eval", 0)
        check_int(self.memory, "memory", 1)
        check_int(self.seed, "seed", 0)
        object.__setattr__(self, "lam", check_lam(self.lam))
        if not isinstance(self.accumulate, (bool, np.bool_)):
            raise ValueError(f"accumulate = {self.accumulate!r} must be True or False")
        object.__setattr__(self, "accumulate", bool(self.accumulate))
        if self.memory > self.generations:
            raise ValueError(
                f"memory = {self.memory} is more than the {self.generations} generations: no generation has that "
                f"many earlier models; use memory <= {self.generations}"
            )
        if self.real == "fresh" and self.n_r == 0:
            raise ValueError("n_r = 0 in a fresh data loop: it needs n_r >= 1 new real samples every generation")
        if self.real == "fixed" and not 1 <= self.n_r <= self.n_ini:
            raise ValueError(
                f"n_r = {self.n_r} for a fixed real set must lie in [1, n_ini = {self.n_ini}]: the fixed set is "
                "the first n_r samples of the generation-1 training set"
            )
        if self.real == "none" and self.n_r:
            raise ValueError(f"n_r = {self.n_r} with real = 'none': the fully synthetic loop has no real part")
        if self.accumulate and self.memory > 1:
            raise ValueError(
                "accumulate=True keeps every earlier synthetic sample; it cannot be combined with memory > 1"
            )
        if self.generations > 1 and self.n_s == 0 and self.real == "none":
            raise ValueError("n_s = 0 in a fully synthetic loop leaves generation 2 without training data")

    @property
    def n_out(self) -> int:
        """Samples drawn from each generation's model (its synthetic output, also what is evaluated)."""
        return max(self.n_s, self.n_eval)

    def composition(self, t: int, rng: np.random.Generator | None = None, trials: int | None = None) -> list[Part]:
        """The parts of D^t: where each block of training samples of generation ``t`` comes from.

        With ``memory`` = K > 1 each synthetic sample comes from one of the last K models chosen uniformly at
        random: ``rng`` draws the multinomial counts (default: a generator derived from the seed and ``t``). With
        ``trials`` (the batched Monte Carlo, :mod:`madutils.montecarlo`) the counts are drawn for that many
        independent trials at once and each such part's ``count`` is an array of per-trial counts.
        """
        if t == 1:
            return [Part("initial", self.n_ini, 1)]
        parts = []
        if self.real == "fixed":
            parts.append(Part("fixed", self.n_r, 1))
        elif self.real == "fresh":
            parts.append(Part("fresh", self.n_r, t))
        recent = list(range(max(1, t - self.memory), t))
        if self.accumulate:
            parts.extend(Part("output", self.n_s, j) for j in range(1, t))
        elif self.n_s and len(recent) == 1:
            parts.append(Part("output", self.n_s, t - 1))
        elif self.n_s:
            rng = rng if rng is not None else np.random.default_rng(derive_seed(self.seed, t, "mix"))
            p = np.full(len(recent), 1.0 / len(recent))
            if trials is None:
                counts = rng.multinomial(self.n_s, p)
                parts.extend(Part("model", int(c), j) for j, c in zip(recent, counts, strict=True) if c)
            else:
                counts = rng.multinomial(self.n_s, p, size=trials)
                parts.extend(Part("model", counts[:, i], j) for i, j in enumerate(recent))
        return parts


class Part(NamedTuple):
    """A block of D^t: ``source`` is ``initial`` (the generation-1 real set), ``fixed``, ``fresh``, ``output`` (the
    stored synthetic output of generation ``generation``) or ``model`` (new samples from that generation's model)."""

    source: str
    count: int
    generation: int


# -- data helpers (arrays or tuples of arrays along axis 0) ---------------------------------------------------------


def data_length(data: Data) -> int:
    return len(data[0]) if isinstance(data, tuple) else len(data)


def data_take(data: Data, n: int) -> Data:
    return tuple(a[:n] for a in data) if isinstance(data, tuple) else data[:n]


def data_concat(parts: Sequence[Data]) -> Data:
    parts = [p for p in parts if p is not None and data_length(p) > 0]
    if not parts:
        raise ValueError("empty training set")
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))
    return np.concatenate(parts)


def _pack(data: Data) -> dict[str, np.ndarray]:
    if isinstance(data, tuple):
        return {f"output_{i}": np.asarray(a) for i, a in enumerate(data)}
    return {"output": np.asarray(data)}


def _unpack(gen: Generation) -> Data:
    if gen.has("output"):
        return gen.array("output")
    cols, i = [], 0
    while gen.has(f"output_{i}"):
        cols.append(gen.array(f"output_{i}"))
        i += 1
    if not cols:
        raise LoopError(f"generation {gen.folder} stored no synthetic output; delete it to recompute")
    return tuple(cols)


class UndescribableError(TypeError):
    """A family, source or hook that cannot say everything that changes its results, so no run key can be made."""


def describe(obj: Any) -> Any:
    """What goes into a run key for a family, source or hook: its ``key()``, else its dataclass fields, and its code.

    Code is part of the identity: an object whose class is defined outside this package (in a notebook or a
    script) adds the digest of its class's code (:func:`~madutils.utils.code_digest`: its syntax tree, so comments
    and formatting do not count) and of what its methods reach in that notebook or script
    (:func:`~madutils.utils.reach_digest`: helper functions and classes, module-level values), so that an edited
    model is never answered with the old one's results. The
    package's own classes add their ``CODE_VERSION`` when it is above 1; a test ties each version to the syntax
    tree of its module (``tests/test_code_versions.py``), so an edit cannot keep the old key unnoticed.

    Anything else (a function, a lambda, a plain object) is refused: its name alone would give two different
    objects the same key (``Shifted(0)`` and ``Shifted(100)``, two lambdas), and the second would be served the
    first one's results.
    """
    if obj is None:
        return None
    if hasattr(obj, "key") and callable(obj.key):
        return _with_code(obj, canonical(obj.key()))
    if is_dataclass(obj) and not isinstance(obj, type):
        return _with_code(obj, canonical(obj))
    name = getattr(obj, "__qualname__", type(obj).__qualname__)
    raise UndescribableError(
        f"{name} cannot describe itself for a run key: make it a (frozen) dataclass whose fields are everything "
        "that changes its results, or give it a key() method that returns them; a function or lambda used as an "
        "evaluation hook can become a dataclass with a __call__ method"
    )


def _with_code(obj: Any, described: Any) -> Any:
    cls = type(obj)
    if cls.__module__.split(".")[0] == "madutils":
        version = getattr(cls, "CODE_VERSION", 1)
        if version == 1:  # the classes stored before versions existed keep their keys
            return described
        mark = {"__version__": version}
    else:
        mark = {"__code__": code_digest(cls)}
        reaches = reach_digest(cls)
        if reaches is not None:  # helpers and module values its methods read, in the notebook or module
            mark["__reaches__"] = reaches
    return described | mark if isinstance(described, dict) else {"described": described} | mark


def first_family(family: Any, cfg: LoopConfig) -> Any:
    """The family's part of the key of a shared generation-1 model: the family as it trains the n_ini real
    images (its ``trained_on(n)``, when it has one), so that families that differ only in settings that do not
    touch this training share it (the fresh data loops' DDPM, whose effort follows the size of its training set,
    trains n_ini = n images exactly as the fully synthetic loops' DDPM does)."""
    trained_on = getattr(family, "trained_on", None)
    return describe(trained_on(cfg.n_ini) if callable(trained_on) else family)


def compute_key(family: Any, threads: int) -> dict | None:
    """The part of a run key that says where a family computes, for families whose results depend on it
    (``thread_dependent``: PyTorch models, whose CPU kernels split sums differently with the thread count):
    the device kind and, on a CPU, the number of threads."""
    if not getattr(family, "thread_dependent", False):
        return None

    device = resolve_device(getattr(family, "device", "cpu")).split(":")[0]
    return {"device": device, "threads": int(threads)} if device == "cpu" else {"device": device}


# -- the engine -----------------------------------------------------------------------------------------------------


@dataclass
class LoopRun:
    """A finished (or resumed) loop: the store's run plus convenience accessors."""

    run: Run | MemoryRun
    cfg: LoopConfig

    def metrics(self) -> pd.DataFrame:
        """Tidy metrics of this run (one row per generation × metric) with the loop's configuration as columns."""
        df = self.run.metrics()
        for k, v in asdict(self.cfg).items():
            df[k] = v
        df["run"] = self.run.key
        return df

    def generation(self, t: int):
        return self.run.generation(t)

    def output(self, t: int) -> Data:
        return _unpack(self.run.generation(t))

    def model(self, t: int):
        return self.run.generation(t).model()


Evaluator = Callable[[Any, Data, int], dict]


def check_evaluable(cfg: LoopConfig, evaluate: Evaluator | None) -> None:
    """Refuse, before anything trains, a loop whose generations have fewer samples than its evaluation hook needs
    (the hook's ``min_samples``: k + 1 for k-NN precision and recall)."""
    need = getattr(evaluate, "min_samples", 0) if evaluate is not None else 0
    if need and cfg.n_out < need:
        name = "n_eval" if cfg.n_eval >= cfg.n_s else "n_s"
        raise ValueError(
            f"each generation of this loop draws {cfg.n_out} samples ({name} = {cfg.n_out}), but its evaluation "
            f"hook {type(evaluate).__name__} needs at least {need}; raise the number of samples (in a notebook: "
            "the parameter n, or the scale's sizes)"
        )


def check_finite(data: Any, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` when a value of ``data`` (an array, a tuple of arrays or a dict of
    values) is not a number or an array of numbers (a text such as ``"nan"`` included), or holds NaN or
    infinity."""
    items = data.items() if isinstance(data, dict) else enumerate(data if isinstance(data, tuple) else (data,))
    for name, value in items:
        where = f"{name!r}" if isinstance(name, str) else f"array {name}"
        a = np.asarray(value)
        if a.dtype.kind not in "biufc":
            raise ValueError(
                f"{what} returned {type(value).__name__} {value!r:.40} for {where}: return numbers or arrays of numbers"
            )
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad = int(a.size - np.isfinite(a).sum())
            raise ValueError(f"{what} returned non-finite values ({bad} of {a.size} in {where} are NaN or inf)")


def run_config(family: Family, cfg: LoopConfig, source: RealSource, evaluate: Evaluator | None, threads: int) -> dict:
    """What a run is keyed by in the store: everything that changes its results."""
    config = {"loop": cfg, "family": describe(family), "source": describe(source), "evaluate": describe(evaluate)}
    compute = compute_key(family, threads)
    return config | ({"compute": compute} if compute else {})


@dataclass(frozen=True)
class RunKey:
    """The identity of one loop's run: the store ``folder`` and everything that changes its results
    (:func:`run_config`). The engine, :meth:`madutils.experiments.Experiment.stored`, the cost announcement and the
    progress line all find a run through it; the store sees only a folder and a configuration, and asks the key
    which stored configurations are the same loop with another number of generations (:meth:`other_length`)."""

    folder: str
    config: dict
    generations: int

    @classmethod
    def of(
        cls, folder: str, family: Any, cfg: LoopConfig, source: Any, evaluate: Evaluator | None, threads: int
    ) -> RunKey:
        return cls(folder, run_config(family, cfg, source, evaluate, threads), cfg.generations)

    @property
    def name(self) -> str:
        """The run folder's name: the hash of the canonical configuration."""
        return config_key(canonical(self.config))

    @property
    def loop_name(self) -> str:
        """The name of the lock that every run of this loop holds whatever its number of generations: two
        processes that compute the same loop to different lengths take turns, and the second takes over what
        the first stored (:meth:`other_length`) instead of computing the same generations again."""
        loop = canonical(self.config)
        loop["loop"]["generations"] = None
        return f"loop-{config_key(loop)}"

    def open(self, store: Store) -> Run:
        """The run in ``store`` (its folder created on first use; a stored other configuration is an error)."""
        return store.run(self.folder, self.config, self.loop_name)

    def existing(self, store: Store) -> Run | None:
        """The run in ``store`` if it was created, without creating it."""
        return store.existing(self.folder, self.config, self.loop_name)

    def other_length(self, store: Store) -> Run | None:
        """The most complete stored run of the same loop with another number of generations (None when there is
        none). Generation t of a loop depends on its seed and t, never on the loop's length, so such a run holds
        exactly the generations this one would compute (see :func:`run_loop`)."""
        mine = json.loads(json.dumps(canonical(self.config)))  # as config.json holds it

        def same_loop(other: dict) -> bool:
            loop = other.get("loop")
            if not isinstance(loop, dict) or loop.get("generations") in (None, self.generations):
                return False
            return other | {"loop": loop | {"generations": self.generations}} == mine

        return store.most_complete(self.folder, same_loop)


def _set_threads(threads: int) -> int:
    """Set PyTorch's CPU threads; returns the previous count."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but the Gaussian loops do not need it
        return threads
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    return before


def run_loop(
    family: Family,
    cfg: LoopConfig,
    source: RealSource,
    *,
    store: Store | None = None,
    folder: str = "loop",
    evaluate: Evaluator | None = None,
    store_models: bool = False,
    share_first: bool = True,
    threads: int | None = None,
    progress: bool = True,
    desc: str | None = None,
    group: tuple[int, int] | None = None,
) -> LoopRun:
    """Run (or resume) one autophagous loop and return its stored results.

    ``evaluate(model, output, t)`` is called after each generation with the model G^t and its synthetic output
    (``cfg.n_out`` samples drawn with bias λ); scalar values it returns are stored as metrics, arrays as
    generation arrays (features for t-SNE, sample grids).

    With a store, the run folder (under ``runs/<scale>/<folder>/``) is keyed by the hash of everything that changes
    the results (:class:`RunKey`: loop, family, real source, evaluation hook and, for PyTorch families, the
    device and ``threads``, default :func:`~madutils.utils.cpu_threads`); each generation is written atomically,
    and a rerun resumes after the last complete generation. The run is computed under its lock: a second process
    asking for it waits, then reads what the first stored. The generation-1 model depends only on the family, the
    real data and the seed, so with ``share_first`` it is trained once and shared by every loop that starts from
    the same real data (whatever its λ or loop kind).

    ``group`` = (rank, world) computes the loop collectively in a ``torch.distributed`` group of several processes
    (the torchrun fan-out, :mod:`madutils.distributed`, passes it for a family that trains with
    DistributedDataParallel): every process of the group calls this function for the same loop, they train and
    sample together (the family's ``in_group(group)``, e.g. :meth:`StyleGANFamily.in_group`), and rank 0 alone
    holds the lock, evaluates and writes; the others keep every output in memory.
    """

    threads = cpu_threads() if threads is None else check_int(threads, "threads", 1)
    check_evaluable(cfg, evaluate)
    if group is not None:  # the multi-process mode, passed explicitly; the collective copy has the same run key
        if not hasattr(family, "in_group"):
            raise ValueError(
                f"family {getattr(family, 'name', family)!r} cannot compute a loop collectively in a "
                "torch.distributed group (it has no in_group); run its loops one per process instead"
            )
        family = family.in_group(group)
    key = RunKey.of(folder, family, cfg, source, evaluate, threads)
    run = key.open(store) if store is not None else MemoryRun(canonical(key.config))
    if agree(run.completed() >= cfg.generations, group):
        return LoopRun(run, cfg)
    before = _set_threads(threads) if "compute" in key.config else None
    writer = group is None or group[0] == 0
    try:
        with run.lock() if writer else contextlib.nullcontext():
            if store is not None and writer:
                run.remove_temporary()  # under the lock: only killed writers leave them
                _adopt_generations(key, store, run)
            Engine(family, cfg, source, run, key, store, evaluate, store_models, share_first, group).compute(
                progress, desc
            )
    finally:
        if before is not None:
            _set_threads(before)
    return LoopRun(run, cfg)


def _check_output(family: Any, output: Data) -> None:
    """A generation's synthetic output must be finite, or pass the family's own ``check_output`` (a family whose
    samples may hold NaN or inf on purpose declares what is valid there); otherwise nothing is stored."""
    own = getattr(family, "check_output", None)
    if callable(own):
        own(output)
    else:
        check_finite(output, f"the family {getattr(family, 'name', type(family).__name__)!r} (its samples)")


def _adopt_generations(key: RunKey, store: Store, run) -> None:
    """Take over the stored generations of the same loop run with another number of generations, up to
    ``key.generations``: a longer loop then computes only its new generations, a shorter one none. Every draw of
    generation t (real data, mixture counts, training, sampling) is seeded by the loop's seed and t, and the
    evaluation by t, so those generations are exactly what this run would compute."""
    done = run.completed()
    if done >= key.generations:
        return
    donor = key.other_length(store)
    if donor is None:
        return
    taken = run.adopt(donor, key.generations)
    if taken:
        print(
            f"{key.folder}: generations {done + 1}..{done + taken} taken from the stored run {donor.path} (the same "
            f"loop with {donor.config['loop']['generations']} generations)",
            file=sys.stderr,
            flush=True,
        )


SHARED_FIRST = "shared-first-generation"  # the store folder of the generation-1 models that loops share


class Engine:
    """Computes the generations of one loop that are not stored yet (the caller holds the run's lock): each
    generation's training set is put together from its parts (:meth:`LoopConfig.composition`), the family fits
    it and samples, the hook evaluates, and the generation is written. It keeps in memory only what later
    generations still need (the models of the memory window, the outputs of an accumulating loop).

    In a ``group`` = (rank, world) every process trains and samples (with the family's collective copy,
    ``family.in_group(group)``, that :func:`run_loop` hands it); rank 0 alone evaluates and writes."""

    def __init__(
        self,
        family: Any,
        cfg: LoopConfig,
        source: RealSource,
        run: Run | MemoryRun,
        key: RunKey,
        store: Store | None,
        evaluate: Evaluator | None = None,
        store_models: bool = False,
        share_first: bool = True,
        group: tuple[int, int] | None = None,
    ):
        self.family, self.cfg, self.source, self.run, self.key = family, cfg, source, run, key
        self.store, self.evaluate, self.share_first, self.group = store, evaluate, share_first, group
        self.keep_models = store_models or cfg.memory > 1
        self.writer = group is None or group[0] == 0  # in a group, rank 0 evaluates and writes; all train and sample
        self.outputs: dict[int, Data] = {}
        self.models: dict[int, Any] = {}
        self.finished: list = []  # checkpoints of trainings whose generation is not stored yet
        self._first_real: Data | None = None
        shared = {k: v for k, v in key.config.items() if k in ("family", "source", "compute")}
        self.shared_first = shared | {"family": first_family(family, cfg), "n_ini": cfg.n_ini, "seed": cfg.seed}

    # -- the parts of a training set --------------------------------------------------------------------------------

    def real_first(self) -> Data:
        """The n_ini real samples of generation 1 (drawn once)."""
        if self._first_real is None:
            cfg = self.cfg
            self._first_real = self.source.draw(cfg.n_ini, derive_seed(cfg.seed, 1, "real"))
            if data_length(self._first_real) != cfg.n_ini:
                got = data_length(self._first_real)
                raise LoopError(f"the real source returned {got} samples, {cfg.n_ini} asked for")
        return self._first_real

    def output_of(self, j: int) -> Data:
        if j not in self.outputs:
            self.outputs[j] = _unpack(self.run.generation(j))
        return self.outputs[j]

    def model_of(self, j: int) -> Any:
        if j not in self.models:
            self.models[j] = self.run.generation(j).model()
        return self.models[j]

    def materialize(self, part: Part, t: int) -> Data:
        cfg = self.cfg
        if part.source == "initial":
            return self.real_first()
        if part.source == "fixed":
            return data_take(self.real_first(), part.count)
        if part.source == "fresh":
            return self.source.draw(part.count, derive_seed(cfg.seed, t, "real"))
        if part.source == "output":
            return data_take(self.output_of(part.generation), part.count)
        seed = derive_seed(cfg.seed, t, "sample-from", part.generation)
        return self.family.sample(self.model_of(part.generation), part.count, cfg.lam, seed)

    # -- training -----------------------------------------------------------------------------------------------

    def fit(self, data: Data, seed: int, checkpoint_folder: str, checkpoint_name: str) -> Any:
        """The family's fit; a family whose fit takes a checkpoint (StyleGAN2) saves its training state there as it
        goes, cleared once the generation is stored."""
        if self.store is None or "checkpoint" not in inspect.signature(self.family.fit).parameters:
            return self.family.fit(data, seed)
        checkpoint = self.store.checkpoint(checkpoint_folder, checkpoint_name)
        model = self.family.fit(data, seed, checkpoint=checkpoint)
        if self.writer:
            self.finished.append(checkpoint)
        return model

    def fit_first(self) -> Any:
        seed = derive_seed(self.cfg.seed, 1, "fit")
        return self.checked(self.fit(self.real_first(), seed, SHARED_FIRST, config_key(self.shared_first)))

    def checked(self, model: Any) -> Any:
        """A model that is to be stored, after checking that it is plain data without NaN or infinity
        (:func:`madutils.plain.check`; the error names the family and where in the model)."""
        plain.check(model, f"the model of the family {getattr(self.family, 'name', type(self.family).__name__)!r}")
        return model

    def shared_first_model(self) -> Any:
        """Generation 1, trained once for every loop that starts from the same real data (stored apart)."""
        store = self.store
        if self.group is None:
            return store.cached_object(SHARED_FIRST, self.shared_first, self.fit_first)
        # in a group: all train it together unless rank 0 finds it stored; rank 0 stores what they trained
        if agree(store.has_cached(SHARED_FIRST, self.shared_first), self.group):
            return store.cached_object(SHARED_FIRST, self.shared_first, self.fit_first)
        model = self.fit_first()
        if self.writer:
            store.cached_object(SHARED_FIRST, self.shared_first, lambda: model)
        return model

    # -- one generation, then all -------------------------------------------------------------------------------

    def generation(self, t: int) -> tuple[Any, Data | None, dict]:
        """Generation t: its model, its synthetic output and what the hook measured on them."""
        cfg, family, folder = self.cfg, self.family, self.key.folder
        if t == 1 and self.share_first and self.store is not None:
            model = self.shared_first_model()
        else:
            data = data_concat([self.materialize(p, t) for p in cfg.composition(t)])
            model = self.fit(data, derive_seed(cfg.seed, t, "fit"), folder, f"{self.run.key}-gen-{t:03d}")
            del data  # the training set is not needed for sampling and evaluation
        if self.keep_models and self.store is not None:
            self.checked(model)  # stored with the generation: plain data, finite
        output = family.sample(model, cfg.n_out, cfg.lam, derive_seed(cfg.seed, t, "sample")) if cfg.n_out else None
        if output is not None:
            _check_output(family, output)
        result = self.evaluate(model, output, t) if self.evaluate is not None and self.writer else {}
        check_finite(result, f"the evaluation hook {type(self.evaluate).__name__}")
        return model, output, result

    def store_generation(self, t: int, model: Any, output: Data | None, result: dict) -> None:
        metrics = {k: v for k, v in result.items() if np.ndim(v) == 0}
        arrays = {k: np.asarray(v) for k, v in result.items() if np.ndim(v) > 0}
        if output is not None:
            arrays.update(_pack(output))
            self.outputs[t] = output
        self.models[t] = model
        if self.writer:
            self.run.write_generation(t, metrics, arrays, model if self.keep_models else None)
        while self.finished:
            self.finished.pop().clear()
        barrier(self.group)  # the generation is stored before any process moves on
        # keep only what later generations can still need
        for j in [j for j in self.models if j <= t - self.cfg.memory]:
            del self.models[j]
        if not self.cfg.accumulate:
            for j in [j for j in self.outputs if j < t]:
                del self.outputs[j]

    def compute(self, progress: bool = True, desc: str | None = None) -> None:
        """Every generation not stored yet, in order; a failure names what is stored and how to resume."""
        from tqdm.auto import tqdm

        cfg, folder = self.cfg, self.key.folder
        done = agree(self.run.completed(), self.group)  # read by rank 0 under the run's lock
        bar = tqdm(
            range(done + 1, cfg.generations + 1),
            desc=desc or f"{folder} λ={cfg.lam:g} {cfg.real}",
            initial=done,
            total=cfg.generations,
            unit="gen",
            disable=not progress,
            leave=False,
        )
        for t in bar:
            try:
                model, output, result = self.generation(t)
            except (KeyboardInterrupt, LoopError):
                raise
            except StoreError as exc:  # a stored input that cannot be used: its own message says what to delete
                raise LoopError(f"generation {t} of {folder} cannot be computed: {exc}") from exc
            except Exception as exc:
                where = f"run {self.run.path}" if self.store is not None else "this run"
                stored = f"Generations 1..{t - 1} of {where} are stored" if t > 1 else f"Nothing of {where} is stored"
                raise LoopError(
                    f"generation {t} of {folder} failed: {type(exc).__name__}: {exc}. {stored}, and nothing of "
                    f"generation {t}; rerunning (after a fix) resumes at generation {t}."
                ) from exc
            self.store_generation(t, model, output, result)
        bar.close()


# -- several loops at once ------------------------------------------------------------------------------------------


def spread_shared_starts(keys: Sequence[Hashable]) -> list[int]:
    """An order (indices into ``keys``) in which loops with the same generation-1 key (:func:`first_key`: they share
    their trained generation 1) come as far apart as possible: the first loop of every key, then the second of
    every key, and so on, each round in the given order. Workers that take loops in this order train different
    generation-1 models side by side instead of one waiting for the other to train the model they share (the
    λ = 1 and λ = 0.5 loops of one seed come one after the other in an experiment)."""
    seen: dict[Hashable, int] = {}
    ranked = []
    for i, key in enumerate(keys):
        ranked.append((seen.get(key, 0), i))
        seen[key] = seen.get(key, 0) + 1
    return [i for _, i in sorted(ranked)]


def first_key(cfg: LoopConfig) -> tuple[int, int]:
    """What decides a loop's generation-1 model within one experiment: its n_ini and seed."""
    return (cfg.n_ini, cfg.seed)


def loop_workers(family: Family, jobs: int, workers: int | str = "auto") -> int:
    """How many loops :func:`run_loops` runs at once: ``workers``, or with ``"auto"`` for a family on the CPU one
    per core (at most ``jobs``), and one per loop when the loops do not divide evenly among the cores (up to four
    loops per core); for a family on a GPU (``family.device``) one.

    Every generation of a loop waits for the one before, so three loops on two cores, one per core, run two side
    by side and then the third alone with a core idle; three processes sharing the two cores finish together
    instead (1.20x sooner for three short WGAN-GP loops, ``benchmarks/bench_uneven_loops.py``). With more loops
    than cores every worker computes with one thread either way, so the run keys do not change."""
    if workers != "auto":
        return check_int(workers, "workers", 1)

    device = getattr(family, "device", "cpu")
    try:
        on_cpu = resolve_device(device) == "cpu"
    except (ImportError, ValueError):
        on_cpu = True
    if not on_cpu:
        return 1
    cores = cpu_threads()
    if jobs <= cores or jobs % cores == 0 or jobs > 4 * cores:
        return max(1, min(jobs, cores))
    return jobs


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _start_worker(threads: int, parent: int) -> None:
    import os
    import threading

    os.environ["MAD_THREADS"] = str(threads)
    # the thread pools of libraries loaded later (scikit-learn's OpenMP and SciPy's OpenBLAS, first loaded by a
    # family's fit) read these when they load; without them each of them took one thread per core in every
    # worker, and two GMM loops side by side took 3.2 times as long (benchmarks/bench_gmm_workers.py)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    _set_threads(threads)
    try:  # the pools already loaded (NumPy's BLAS); threadpoolctl comes with scikit-learn
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover
        pass
    _die_with_parent(parent)

    def watch() -> None:  # a parent killed outright (SIGKILL) runs no clean-up: the workers notice it themselves
        import time

        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mad-parent-watch").start()


def _die_with_parent(parent: int) -> None:
    """On Linux, ask the kernel to send SIGTERM to this worker when its parent dies (the watch thread of
    :func:`_start_worker` covers other systems within a second)."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _quiet(family: Any) -> Any:
    """The family without its own progress bars (``progress`` is not part of any key): bars of worker processes
    reach a notebook as interleaved lines on stderr; the parent's one bar counts their generations instead."""
    quiet = getattr(family, "quiet", None)
    return quiet() if callable(quiet) else family


def _run_in_worker(family, cfg, source, kwargs) -> None:
    run_loop(_quiet(family), cfg, source, progress=False, **kwargs)


def run_loops(
    family: Family,
    configs: Sequence[LoopConfig],
    source: RealSource,
    *,
    store: Store,
    folder: str = "loop",
    evaluate: Evaluator | None = None,
    workers: int | str = "auto",
    threads: int | None = None,
    progress: bool = True,
    desc: str | None = None,
    **kwargs: Any,
) -> list[LoopRun]:
    """Run (or resume) several independent loops of one family and return their :class:`LoopRun` in the order of
    ``configs``; each loop is exactly what :func:`run_loop` makes of it.

    With ``workers`` > 1 (``"auto"``: :func:`loop_workers`) the loops run that many at a time in separate processes,
    each with its share of the cores: the small U-Net of the `small` scale trains 1.4 times as many steps per second
    as two one-thread processes as in one two-thread process (``benchmarks/bench_parallel_loops.py``). The share of
    threads follows from all ``configs``, not from those still pending, so a resumed loop computes with the thread
    count it started with (it is part of the run key of PyTorch families); ``threads`` sets it explicitly. Loops
    that share a generation-1 model wait for the one that trains it (the store's lock). One progress bar, labelled
    ``desc``, counts the stored generations of all loops. If a loop fails, the others still finish and store their
    generations; then the first error is raised. Workers stop when this process dies, also when it is killed.
    """
    if store is None:
        raise ValueError("run_loops needs a store: the loops of separate processes hand their results back through it")

    configs = list(configs)
    for cfg in configs:  # before any training: sizes the hook cannot evaluate are refused now
        check_evaluable(cfg, evaluate)
    n_workers = loop_workers(family, max(1, len(configs)), workers)
    threads = max(1, cpu_threads() // n_workers) if threads is None else check_int(threads, "threads", 1)
    runs = [RunKey.of(folder, family, cfg, source, evaluate, threads).open(store) for cfg in configs]
    pending = [i for i, (cfg, run) in enumerate(zip(configs, runs, strict=True)) if run.completed() < cfg.generations]
    common = dict(store=store, folder=folder, evaluate=evaluate, threads=threads, **kwargs)
    if n_workers <= 1 or len(pending) <= 1:  # run_loop computes with the same `threads`, in this process
        return [run_loop(family, cfg, source, progress=progress, **common) for cfg in configs]

    import multiprocessing
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm.auto import tqdm

    total = sum(cfg.generations for cfg in configs)

    def done() -> int:
        return sum(min(run.completed(), cfg.generations) for cfg, run in zip(configs, runs, strict=True))

    label = desc or f"{folder}: {len(pending)} loops, {n_workers} at a time"
    bar = tqdm(total=total, initial=done(), desc=label, unit="gen", disable=not progress, leave=False)
    errors: list[BaseException] = []
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
    # the processes follow the loops still to compute (a resumed experiment whose stored loops leave an uneven
    # number gets one per loop); their thread count stays that of all the loops
    n_proc = min(loop_workers(family, len(pending), workers), len(pending))
    with ProcessPoolExecutor(
        n_proc, mp_context=context, initializer=_start_worker, initargs=(threads, os.getpid())
    ) as pool:
        queue = pending
        if common.get("share_first", True):
            queue = [pending[j] for j in spread_shared_starts([first_key(configs[i]) for i in pending])]
        left = {pool.submit(_run_in_worker, family, configs[i], source, common) for i in queue}
        try:
            while left:
                finished, left = wait(left, timeout=2.0, return_when=FIRST_COMPLETED)
                errors += [f.exception() for f in finished if f.exception() is not None]
                bar.n = done()
                bar.refresh()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
    if errors:
        raise errors[0]
    return [LoopRun(run, cfg) for cfg, run in zip(configs, runs, strict=True)]
