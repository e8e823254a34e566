"""The MAD audit of a model of one's own: does it go MAD, how fast, and how much fresh real data keeps it sane?

    python -m madutils.audit --family mymodels:KDE --data points.npy --scale small --out audit/
    python -m madutils.audit --family mymodels:KDE --kwargs '{"bandwidth": 0.1}' --data grid --lams 1 0.8

The family is any class with the protocol of the loop engine (``fit(data, seed) -> model`` and ``sample(model, n,
lam, seed) -> data``, a frozen dataclass or a ``key()``, its model plain data), named by an import path; the data
an ``.npy`` array of samples (rows), a folder of images, or one of the project's sources (``grid``, ``rosenbrock``,
``gaussian-<d>``, ``mnist``); the metrics the project's (``auto``: precision and recall with k = 5 and the Fréchet
distance of Gaussian fits for vectors, LeNet-5's FID, precision and recall for 28 × 28 one-channel images) or a
hook made by a class or function, named by import path, from the held-out reference samples (its ``directions``,
e.g. ``{"my_metric": -1}``, say which way a metric of its own gets worse). On them it runs the paper's three
loops with the engine and store of the notebooks (resumable; the cost is announced before work, and a progress
bar shows it):

* the fully synthetic loop at λ = 1 and at the given λ values,
* the synthetic augmentation loop (the whole generation-1 set kept, as many synthetic samples added),
* the fresh data loop at several fresh real fractions f (n_r = f n, n_s = (1 − f) n: the same training size),

each with several seeds, and writes a report (``report.md``, a self-contained ``report.html`` and ``report.json``
with every number). Each metric of each loop is judged by the project's three verdicts on the per-seed *share of its
generation-1 value lost* by the second half of the generations (a level, so a metric that reaches its floor early
cannot read as a slow loss), with a stated tolerance (10 % by default) and the power of the test: *degrades* (the
loss is above 0), and for the fresh data loops *stays within the tolerance* (the loss is below it). The
recommendation is the smallest tried fresh fraction from which every judged metric stays within the tolerance, with
the fractions around it as its uncertainty, or that none does.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .claims.core import Effect, Interval, across_seeds, decide, power
from .experiments import Experiment, _duration
from .loops import LOOP_NAMES, LoopConfig, check_finite, data_length
from .scales import AuditSizes, sizes

# the direction in which a metric gets worse (+1: it rises, −1: it falls); a hook may add its own (``directions``)
WORSE = {
    "precision": -1,
    "recall": -1,
    "density": -1,
    "coverage": -1,
    "label_accuracy": -1,
    "modes_covered": -1,
    "tail_mass": -1,
    "fid": +1,
    "frechet": +1,
    "w2": +1,
}
# the level compared with generation 1 is the mean of the second half of the generations (as notebook 05's share of
# the tail mass lost): late enough to show a loss, long enough to average the noise of one generation
MIN_GENERATIONS = 3


class AuditError(ValueError):
    """The audit cannot run as asked: the message names the parameter and says what to change."""


# -- what is audited ------------------------------------------------------------------------------------------------


def load_object(spec: str, what: str) -> Any:
    """A class or function by import path: ``package.module:Name``, ``package.module.Name`` or ``file.py:Name``."""
    if ":" in spec:
        module, name = spec.rsplit(":", 1)
    elif "." in spec:
        module, name = spec.rsplit(".", 1)
    else:
        raise AuditError(f"{what} {spec!r} is not an import path; write module:Name (e.g. mymodels:KDE)")
    try:
        if module.endswith(".py"):
            path = Path(module).resolve()
            spec_ = importlib.util.spec_from_file_location(path.stem, path)
            if spec_ is None or not path.is_file():
                raise ImportError(f"no file {path}")
            mod = importlib.util.module_from_spec(spec_)
            sys.modules[path.stem] = mod
            spec_.loader.exec_module(mod)
        else:
            mod = importlib.import_module(module)
    except ImportError as exc:
        raise AuditError(f"{what} {spec!r}: cannot import {module} ({exc}); is it on PYTHONPATH?") from None
    try:
        return getattr(mod, name)
    except AttributeError:
        raise AuditError(f"{what} {spec!r}: {module} has no {name}") from None


def check_family(family: Any, data: Any, n: int, lam: float = 1.0) -> float:
    """Refuse, before any loop runs, a family that breaks the protocol: no ``fit`` or ``sample``, a ``sample`` that
    does not return ``n`` samples shaped like the data, or samples that are not finite. One small fit tells; then
    one fit on ``data`` and a sample of ``n`` are timed. Returns those seconds (a generation without its metrics)."""
    name = getattr(family, "name", type(family).__name__)
    for method in ("fit", "sample"):
        if not callable(getattr(family, method, None)):
            raise AuditError(f"the family {name!r} has no {method}(); the protocol is fit(data, seed) -> model and "
                             "sample(model, n, lam, seed) -> data")  # fmt: skip
    probe = data[: max(10, min(n, 200))] if not isinstance(data, tuple) else tuple(a[: min(n, 200)] for a in data)
    try:
        model = family.fit(probe, 0)
    except Exception as exc:
        raise AuditError(f"the family {name!r} failed to fit {data_length(probe)} of the samples: "
                         f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
    for k in (7, 13):
        try:
            out = family.sample(model, k, lam, 1)
        except Exception as exc:
            raise AuditError(f"the family {name!r} failed to sample: {type(exc).__name__}: {exc}") from exc
        if data_length(out) != k:
            raise AuditError(f"the family {name!r} returned {data_length(out)} samples when asked for n = {k}; "
                             "sample(model, n, lam, seed) must return exactly n")  # fmt: skip
        a, b = (out[0], data[0]) if isinstance(data, tuple) else (out, data)
        if np.shape(a)[1:] != np.shape(b)[1:]:
            raise AuditError(f"the family {name!r} returned samples of shape {np.shape(a)[1:]}, the data have "
                             f"{np.shape(b)[1:]}")  # fmt: skip
        try:
            check_finite(out, f"the family {name!r} (its samples)")
        except ValueError as exc:
            raise AuditError(str(exc)) from None
    started = time.perf_counter()
    family.sample(family.fit(data, 0), n, lam, 2)
    return time.perf_counter() - started


@dataclass(frozen=True)
class ArraySource:
    """Real samples from an array (rows): ``draw(n, seed)`` takes n rows without replacement, chosen by the seed.
    Its key is the array's digest, so other data never reuse its runs."""

    data: np.ndarray = field(repr=False)
    name: str = "array"

    def key(self) -> dict:
        digest = hashlib.sha256(np.ascontiguousarray(self.data).tobytes()).hexdigest()[:16]
        return {"array": digest, "shape": list(self.data.shape), "dtype": str(self.data.dtype), "name": self.name}

    def draw(self, n: int, seed: int) -> np.ndarray:
        if n > len(self.data):
            raise AuditError(f"{n} samples asked of a data set of {len(self.data)}: lower --n or give more data")
        return self.data[np.random.default_rng(seed).choice(len(self.data), size=n, replace=False)]


def load_data(spec: str, reference: int) -> tuple[Any, np.ndarray, str]:
    """The real source, the held-out reference samples the metrics compare with, and a description.

    An array or an image folder is split once (a fixed shuffle): ``reference`` rows are held out, the rest is
    what the loops train on. A named source draws both (the reference with a seed the loops never use)."""
    from .data import GaussianSource, GridSource, MnistImages, RosenbrockSource

    named = {"grid": GridSource(), "rosenbrock": RosenbrockSource()}
    if spec in named:
        src = named[spec]
        return src, src.draw(reference, 10**6), f"the project's {spec} source"
    if spec.startswith("gaussian-") and spec[9:].isdigit():
        d = int(spec[9:])
        src = GaussianSource.standard(d)
        return src, src.draw(reference, 10**6), f"N(0, I_{d})"
    if spec == "mnist":
        src = MnistImages()
        return src, src.draw(reference, 10**6), "MNIST training images"
    path = Path(spec)
    if path.is_dir():
        data = _images(path)
    elif path.suffix == ".npy" and path.is_file():
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise AuditError(f"--data {path}: not an array of numbers ({exc})") from None
    else:
        raise AuditError(
            f"--data {spec!r} is neither an .npy file, a folder of images nor a source of the project (grid, "
            "rosenbrock, gaussian-<d>, mnist)"
        )
    if data.ndim < 2 or data.dtype.kind not in "biuf":
        raise AuditError(f"--data {path}: an array of samples along axis 0 is needed, got shape {data.shape} "
                         f"({data.dtype}); a 1-D array is one sample per value: reshape it to (n, 1)")  # fmt: skip
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise AuditError(f"--data {path}: {int((~np.isfinite(data)).sum())} values are NaN or inf")
    order = np.random.default_rng(0).permutation(len(data))
    if len(data) < 2 * reference:
        reference = len(data) // 3
    held, pool = data[order[:reference]], data[order[reference:]]
    return ArraySource(pool, path.stem), held, f"{path.name}: {len(pool)} samples to train on, {reference} held out"


def _images(folder: Path) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    if not files:
        raise AuditError(f"--data {folder}: no .png or .jpg images in the folder")
    arrays = [np.asarray(Image.open(p)) for p in files]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise AuditError(f"--data {folder}: the images differ in size ({sorted(shapes)[:3]}); resize them first")
    x = np.stack(arrays)
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # (N, C, H, W)


@dataclass
class SampleMetrics:
    """The audit's hook for samples that are vectors: precision and recall (k = 5, equal set sizes) against the
    held-out reference, and the Fréchet distance between Gaussian fits of the samples and of the reference (the
    W2 distance of the fits; FID is the same distance on Inception features)."""

    reference: np.ndarray
    k: int = 5

    def __post_init__(self) -> None:
        from .metrics.prd import ReferenceSet

        self.reference = np.asarray(self.reference, dtype=np.float64).reshape(len(self.reference), -1)
        self._ref = ReferenceSet(self.reference, k=self.k, with_fid=False)
        self._mu, self._cov = self.reference.mean(0), np.atleast_2d(np.cov(self.reference, rowvar=False))

    @property
    def min_samples(self) -> int:
        return self.k + 1

    def key(self) -> dict:
        return {"sample_metrics": self._ref.key()}

    def __call__(self, model, output, t: int) -> dict:
        from .gaussian import w2

        x = np.asarray(output, dtype=np.float64).reshape(len(output), -1)
        pr = self._ref.prdc_equal(x)
        fd = float(w2(x.mean(0), np.atleast_2d(np.cov(x, rowvar=False)), self._mu, self._cov))
        return {"precision": pr["precision"], "recall": pr["recall"], "frechet": fd}


def load_metrics(spec: str, reference: np.ndarray) -> Any:
    if spec == "auto":
        if reference.ndim == 4 and reference.shape[1] == 1:
            return _lenet_metrics(reference)
        if reference.ndim > 2 and reference.shape[1] != 1:
            raise AuditError("--metrics auto measures vectors and 1-channel images; for these data name a hook")
        return SampleMetrics(reference)
    if spec == "samples":
        return SampleMetrics(reference)
    make = load_object(spec, "--metrics")  # a class or function that makes the hook from the reference samples
    if not callable(make):
        raise AuditError(f"--metrics {spec!r} names no class or function")
    return make(reference)


def _lenet_metrics(reference: np.ndarray):
    from .metrics.features import LeNetFeatures
    from .metrics.hook import ImageMetrics
    from .metrics.prd import ReferenceSet

    if reference.shape[-2:] != (28, 28):
        raise AuditError(f"LeNet-5's metrics take 28 × 28 images, these are {reference.shape[-2:]}; name a hook")
    lenet = LeNetFeatures()
    return ImageMetrics(lenet, ReferenceSet(lenet(reference.astype(np.uint8))), keep_images=0)


# -- the loops --------------------------------------------------------------------------------------------------------


def loops(sz: AuditSizes, lams: Sequence[float]) -> dict[tuple, LoopConfig]:
    """The audit's loops, labelled (kind, λ, fresh fraction, seed): the fully synthetic loop at λ = 1 and at
    ``lams``, the synthetic augmentation loop (the n generation-1 samples kept, n synthetic added) and the fresh
    data loop at each fraction f (n_r = f n and n_s = n − n_r: the same training size). Every loop evaluates n
    samples a generation."""
    n, g = sz.n, sz.generations
    out: dict[tuple, LoopConfig] = {}
    for s in range(sz.seeds):
        for lam in sorted({1.0, *map(float, lams)}, reverse=True):
            out[("none", lam, 0.0, s)] = LoopConfig(g, n, n, lam=lam, n_eval=n, seed=s)
        out[("fixed", 1.0, 0.0, s)] = LoopConfig(g, n, n, real="fixed", n_r=n, n_eval=n, seed=s)
        for f in sz.fractions:
            n_r = max(1, round(f * n))
            out[("fresh", 1.0, float(f), s)] = LoopConfig(g, n, n - n_r, real="fresh", n_r=n_r, n_eval=n, seed=s)
    return out


def loop_name(kind: str, lam: float, fraction: float) -> str:
    text = f"{LOOP_NAMES[kind]}, λ = {lam:g}"
    return text + (f", fresh fraction {fraction:g}" if kind == "fresh" else "")


# -- judging ----------------------------------------------------------------------------------------------------------


def loss_interval(table: pd.DataFrame, metric: str, worse: int) -> tuple[Interval, float, float]:
    """The per-seed share of its generation-1 value that ``metric`` has lost (in its direction of getting worse)
    by the mean of the second half of its generations, with its interval across seeds; and the mean generation-1
    and late values."""
    y = table[table.metric == metric].pivot_table(index="generation", columns="seed", values="value")
    first, late = y.iloc[0], y[y.index > y.index.max() / 2].mean()
    scale = first.abs().where(first.abs() > 1e-12)
    shares = worse * (late - first) / scale
    return across_seeds(shares.to_numpy(), seeds=shares.index.to_numpy()), float(first.mean()), float(late.mean())


@dataclass
class Row:
    """One metric of one loop: its levels, the share lost with its interval, and the verdicts."""

    loop: str
    kind: str
    lam: float
    fraction: float
    metric: str
    first: float
    late: float
    loss: float
    lo: float
    hi: float
    seeds: int
    degrades: str
    degrades_power: float
    within: str
    within_power: float


def judge_rows(table: pd.DataFrame, tolerance: float, worse: dict[str, int]) -> list[Row]:
    rows = []
    effect = Effect(tolerance, f"a loss of {tolerance:.0%} of the generation-1 value")
    for (kind, lam, fraction), part in table.groupby(["real", "lam", "fraction"], sort=False):
        for metric in [m for m in part.metric.unique() if m in worse]:
            iv, first, late = loss_interval(part, metric, worse[metric])
            if not iv.informative:
                deg = within = "uninformative"
                p_deg = p_within = float("nan")
            else:
                deg, _ = decide(iv, effect, +1, "direction")
                gain = iv.scaled(-1.0)  # "stays within": no loss of the stated size
                within, _ = decide(gain, effect, +1, "holds")
                p_deg, p_within = power(iv, tolerance, "direction"), power(gain, tolerance, "holds")
            rows.append(Row(loop_name(kind, lam, fraction), kind, float(lam), float(fraction), metric, first, late,
                            iv.estimate, iv.lo, iv.hi, iv.seeds, deg, p_deg, within, p_within))  # fmt: skip
    return rows


def recommend(rows: list[Row], fractions: Sequence[float]) -> dict:
    """The smallest tried fresh fraction from which every metric that the run could judge stays within the
    tolerance (``within`` reproduced at it and at every larger fraction), the largest fraction below it, and the
    verdict at each fraction. A metric whose ``within`` is ``uninformative`` at every fraction (its seeds cannot
    tell, e.g. a noisy distance) does not decide; it is named in ``undecided_metrics``, for more seeds."""
    fresh = [r for r in rows if r.kind == "fresh"]
    metrics = list(dict.fromkeys(r.metric for r in fresh))
    undecided = [m for m in metrics if all(r.within == "uninformative" for r in fresh if r.metric == m)]
    verdicts = {}
    for f in sorted(fractions):
        fr = [r for r in fresh if math.isclose(r.fraction, f) and r.metric not in undecided]
        if not fr:
            continue
        if all(r.within == "reproduced" for r in fr):
            verdicts[f] = "within"
        elif any(r.within == "not_reproduced" for r in fr):
            verdicts[f] = "beyond"
        else:
            verdicts[f] = "undecided"
    passing = None
    for f in sorted(verdicts, reverse=True):
        if verdicts[f] != "within":
            break
        passing = f
    below = max((f for f in verdicts if passing is None or f < passing), default=None)
    return {
        "fraction": passing,
        "below": below,
        "verdicts": {str(k): v for k, v in verdicts.items()},
        "undecided_metrics": undecided,
    }


# -- running and reporting -------------------------------------------------------------------------------------------


@dataclass
class AuditReport:
    """What an audit found: its settings, the tidy table of every loop, the judged rows and the recommendation."""

    settings: dict
    table: pd.DataFrame
    rows: list[Row]
    recommendation: dict

    def to_json(self) -> dict:
        return {
            "settings": self.settings,
            "rows": [vars(r) for r in self.rows],
            "recommendation": self.recommendation,
            "curves": self.curves().to_dict(orient="records"),
        }

    def curves(self) -> pd.DataFrame:
        """Each metric of each loop over the generations: the mean over seeds and its range."""
        keys = ["real", "lam", "fraction", "metric", "generation"]
        g = self.table.groupby(keys).value
        return pd.concat([g.mean().rename("mean"), g.min().rename("min"), g.max().rename("max")], axis=1).reset_index()

    def summary(self) -> str:
        rec, tol = self.recommendation, self.settings["tolerance"]
        if rec["fraction"] is not None:
            text = (f"With at least {rec['fraction']:g} of each generation's training data fresh and real, every "
                    f"judged metric stayed within {tol:.0%} of its generation-1 value over "
                    f"{self.settings['generations']} generations")  # fmt: skip
            text += (f" (at {rec['below']:g} it did not, or the seeds could not tell)." if rec["below"] is not None
                     else " (the smallest fraction tried).")  # fmt: skip
        elif rec["verdicts"]:
            text = (f"None of the fresh fractions tried ({', '.join(rec['verdicts'])}) kept every judged metric "
                    f"within {tol:.0%} of its generation-1 value: try larger fractions, or more seeds where the "
                    "verdicts are undecided.")  # fmt: skip
        else:
            text = "No metric could be judged at any fresh fraction: more seeds or generations are needed."
        if rec.get("undecided_metrics"):
            names = ", ".join(rec["undecided_metrics"])
            text += (f" Left out of the recommendation: {names}, which the {self.settings['seeds']} seeds could not "
                     "judge at any fraction (more seeds narrow its interval).")  # fmt: skip
        return text

    def markdown(self, figure: str = "") -> str:
        s = self.settings
        lines = [
            f"# MAD audit of {s['family']}",
            "",
            f"Data: {s['data']}. Metrics: {', '.join(s['metrics'])}. {s['seeds']} seeds × {s['generations']} "
            f"generations of {s['n']} samples (scale `{s['scale']}`); tolerance {s['tolerance']:.0%} of each "
            "metric's generation-1 value.",
            "",
            f"**{self.summary()}**",
            "",
        ]
        if figure:
            lines += [figure, ""]
        lines += [
            "| loop | metric | generation 1 | last | share lost (95 % CI) | degrades | stays within tolerance |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            ci = f"{r.loss:+.2f} ({r.lo:+.2f} … {r.hi:+.2f})" if np.isfinite(r.lo) else f"{r.loss:+.2f} (no interval)"
            deg = f"{r.degrades} (power {r.degrades_power:.2f})"
            within = f"{r.within} (power {r.within_power:.2f})" if r.kind == "fresh" else "—"
            lines.append(f"| {r.loop} | {r.metric} | {r.first:.3g} | {r.late:.3g} | {ci} | {deg} | {within} |")
        lines += [
            "",
            "How to read it: *share lost* is, per seed, how much of its generation-1 value a metric lost (in the "
            "direction in which it gets worse) by the mean of the second half of the generations, with a Student-t "
            "interval across seeds. *degrades* is `reproduced` when that interval lies above 0, `not_reproduced` when "
            "it lies below the tolerance (any loss is smaller than it), `uninformative` when it holds both (the "
            "power says how likely a loss of the tolerance would have been shown). *stays within tolerance* is "
            "`reproduced` when the interval lies below the tolerance. An `uninformative` verdict asks for more seeds "
            "(`--seeds`) or generations (`--generations`).",
        ]
        return "\n".join(lines) + "\n"

    def figure(self):
        import matplotlib.pyplot as plt

        curves = self.curves()
        metrics = list(dict.fromkeys(r.metric for r in self.rows))
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), constrained_layout=True,
                                 squeeze=False)  # fmt: skip
        loops_ = curves[["real", "lam", "fraction"]].drop_duplicates().itertuples(index=False)
        colors = plt.get_cmap("viridis")
        for i, (kind, lam, fraction) in enumerate(loops_):
            style = {"none": "-", "fixed": "--", "fresh": ":"}[kind]
            color = "black" if kind == "none" and lam == 1 else colors(i / 8 % 1)
            for ax, m in zip(axes[0], metrics, strict=True):
                c = curves[(curves.real == kind) & (curves.lam == lam) & (curves.fraction == fraction)
                           & (curves.metric == m)]  # fmt: skip
                ax.plot(c.generation, c["mean"], style, color=color, label=loop_name(kind, lam, fraction))
                ax.fill_between(c.generation, c["min"], c["max"], color=color, alpha=0.12, lw=0)
                ax.set_title(m)
                ax.set_xlabel("generation")
                ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"MAD audit of {self.settings['family']}: mean over seeds, band = range of the seeds")
        return fig

    def write(self, out: Path) -> dict[str, Path]:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        out.mkdir(parents=True, exist_ok=True)
        fig = self.figure()
        png = out / "report.png"
        fig.savefig(png, dpi=110)
        plt.close(fig)
        (out / "report.json").write_text(json.dumps(self.to_json(), indent=1, default=float) + "\n")
        (out / "report.md").write_text(self.markdown("![the metrics over the generations](report.png)"))
        img = base64.b64encode(png.read_bytes()).decode()
        (out / "report.html").write_text(_html(self.markdown(f'<img src="data:image/png;base64,{img}" width="100%">')))
        return {k: out / f"report.{k}" for k in ("md", "html", "json", "png")}


def _html(markdown: str) -> str:
    """A self-contained page (no script, no style sheet or font fetched) from the report's simple Markdown."""
    import html as h

    body, table = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-"):
                table.append(cells)
            continue
        if table:
            head, *rest = table
            body.append("<table><tr>" + "".join(f"<th>{h.escape(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{h.escape(c)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</table>")  # fmt: skip
            table = []
        if line.startswith("# "):
            body.append(f"<h1>{h.escape(line[2:])}</h1>")
        elif line.startswith("<img"):
            body.append(line)
        elif line.startswith("**"):
            body.append(f"<p><strong>{h.escape(line.strip('*'))}</strong></p>")
        elif line:
            body.append(f"<p>{h.escape(line)}</p>")
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 6px}")  # fmt: skip
    return f"<!doctype html><meta charset='utf-8'><title>MAD audit</title><style>{style}</style>{''.join(body)}\n"


def audit(
    family: Any,
    data: str,
    *,
    metrics: str = "auto",
    scale: str = "smoke",
    lams: Sequence[float] = (),
    fractions: Sequence[float] | None = None,
    seeds: int | None = None,
    generations: int | None = None,
    n: int | None = None,
    tolerance: float = 0.1,
    store=None,
    workers: int | str = "auto",
    progress: bool = True,
) -> AuditReport:
    """Run the audit of ``family`` (an instance) on ``data`` (see :func:`load_data`) and judge it; loops are stored
    in ``store`` (default: the scale's store, folder ``audit-<family name>``) and read back on a rerun."""
    from .paths import runs_dir
    from .store import Store
    from .utils import check_lam

    if not 0 < tolerance < 1:
        raise AuditError(f"--tolerance {tolerance}: a share of the generation-1 value between 0 and 1, e.g. 0.1")
    lams = [check_lam(lam) for lam in lams]
    sz = sizes(AuditSizes, scale, seeds=seeds, generations=generations, n=n, fractions=fractions)
    if sz.seeds < 2:
        raise AuditError(f"--seeds {sz.seeds}: an interval across seeds needs at least 2")
    if sz.generations < MIN_GENERATIONS:
        raise AuditError(f"--generations {sz.generations}: at least {MIN_GENERATIONS} are needed")
    bad = [f for f in sz.fractions if not 0 < f < 1]
    if bad:
        raise AuditError(f"--fractions {bad}: each fresh fraction must lie strictly between 0 and 1")
    source, reference, described = load_data(data, sz.reference)
    hook = load_metrics(metrics, reference)
    first = source.draw(sz.n, 0)
    seconds = check_family(family, first, sz.n, min([1.0, *lams]))
    name = getattr(family, "name", type(family).__name__)
    experiment = Experiment(f"audit-{name}", family, source, hook, loops(sz, lams), data=described, announced=False)
    store = store if store is not None else Store(runs_dir(scale))
    if progress:
        todo = _not_stored(experiment, store)
        line = f"MAD audit of {name}: {len(experiment.loops)} loops, all stored (read back)"
        if todo:
            line = (f"MAD audit of {name}: {len(experiment.loops)} loops, {todo} generations not stored yet; one fit "
                    f"and sample of {sz.n} took {seconds:.2g} s here, so about {_duration(todo * seconds)} on one "
                    "core besides the metrics")  # fmt: skip
        print(line, file=sys.stderr, flush=True)
    runs = experiment.run(store, workers=workers, progress=progress, desc=f"MAD audit of {name}")
    frames = []
    for (_kind, _lam, fraction, s), run in runs.items():
        frames.append(run.metrics().assign(fraction=fraction, seed=s))
    table = pd.concat(frames, ignore_index=True)
    worse = WORSE | dict(getattr(hook, "directions", {}) or {})
    rows = judge_rows(table, tolerance, worse)
    if not rows:
        raise AuditError(f"the metrics {sorted(table.metric.unique())} have no known direction of getting worse; "
                         "give the hook a directions dict, e.g. {'my_metric': -1} for a metric that falls")  # fmt: skip
    settings = {
        "family": f"{type(family).__module__}.{type(family).__qualname__} ({name})",
        "data": described,
        "metrics": sorted({r.metric for r in rows}),
        "scale": scale,
        "seeds": sz.seeds,
        "generations": sz.generations,
        "n": sz.n,
        "fractions": list(sz.fractions),
        "lams": sorted({1.0, *lams}, reverse=True),
        "tolerance": tolerance,
    }
    return AuditReport(settings, table, rows, recommend(rows, sz.fractions))


def _not_stored(experiment: Experiment, store) -> int:
    todo = 0
    for cfg in experiment.loops.values():
        run = experiment.key(cfg).existing(store)
        todo += cfg.generations - (run.completed() if run is not None else 0)
    return todo


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m madutils.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True, help="import path of the family class, e.g. mymodels:KDE")
    parser.add_argument("--kwargs", default="{}", help="JSON of the family's arguments, e.g. '{\"bandwidth\": 0.1}'")
    parser.add_argument("--data", required=True, help=".npy array, image folder, or grid|rosenbrock|gaussian-<d>|mnist")
    parser.add_argument("--metrics", default="auto", help="auto, samples, or the import path of a hook")
    parser.add_argument("--scale", default="smoke", help="smoke, small or paper: the sizes below by default")
    parser.add_argument("--lams", type=float, nargs="*", default=[], help="sampling biases besides λ = 1")
    parser.add_argument("--fractions", type=float, nargs="*", help="fresh real fractions of the fresh data loops")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--generations", type=int)
    parser.add_argument("--n", type=int, help="samples each generation trains on")
    parser.add_argument("--tolerance", type=float, default=0.1, help="share of the generation-1 value (default 0.1)")
    parser.add_argument("--out", type=Path, default=Path("runs") / "audit", help="folder of the report")
    args = parser.parse_args(argv)
    try:
        kwargs = json.loads(args.kwargs)
        cls = load_object(args.family, "--family")
        try:
            family = cls(**kwargs) if isinstance(cls, type) else cls
        except TypeError as exc:
            raise AuditError(f"--kwargs {args.kwargs}: {cls.__name__} does not take them ({exc})") from None
        report = audit(family, args.data, metrics=args.metrics, scale=args.scale, lams=args.lams,
                       fractions=args.fractions, seeds=args.seeds, generations=args.generations, n=args.n,
                       tolerance=args.tolerance)  # fmt: skip
    except (AuditError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = report.write(args.out)
    print(report.summary())
    print(f"report: {paths['md']} and {paths['html']} (every number in {paths['json']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
