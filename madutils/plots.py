"""One style for every figure: a seaborn theme, fixed colours for λ values and loop kinds, the paper's
three-panel layout (FID, precision, recall against generation), and ``save_figure``, the one writer.

Figures are drawn from stored results (tidy tables), never from variables that only exist in a live kernel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from . import registry
from .paths import figures_dir, runs_dir
from .utils import check_scale

# λ = 1 (unbiased) is always the same dark blue; biased values run through warm colours, the stronger the bias
# the lighter/redder, so that a λ keeps its colour in every figure of the collection.
_LAM_CMAP = matplotlib.colormaps["plasma"]
LOOP_COLORS = {"none": "#c0392b", "fixed": "#e67e22", "fresh": "#27ae60"}
METRIC_LABELS = {
    "fid": "FID",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "label_accuracy": "label accuracy",
    "w2": r"$W_2$ distance",
    "tail_mass": r"tail mass $P(|x_1| > 2)$",
}
FIGURE_NAME = re.compile(r"^(fig\d{2}[a-z]?|nb\d{2})_[a-z0-9_]+$")


def theme() -> None:
    """The collection's seaborn theme (call once per notebook; ``setup_notebook`` does)."""
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        font_scale=0.95,
        rc={
            "figure.dpi": 100,
            "savefig.dpi": 130,
            "axes.titlesize": 11,
            "legend.fontsize": 9,
            "figure.autolayout": False,
        },
    )


def lam_color(lam: float):
    """The colour of a sampling bias λ ∈ (0, 1]: λ = 1 is dark blue, smaller λ lighter and warmer."""
    lam = float(lam)
    # a power below 1/2 spreads the values used most (0.9–1, e.g. 0.99, 0.95, 0.9 of Fig. 31) over the colour
    # map; λ ≤ 0.4 all take the last colour
    return _LAM_CMAP(0.86 * min(1.0, (max(0.0, 1.0 - lam) / 0.6) ** 0.35))


def lam_palette(lams: Sequence[float]) -> dict[float, tuple]:
    return {float(lam): lam_color(lam) for lam in lams}


def metric_panels(
    df: pd.DataFrame,
    metrics: Sequence[str] = ("fid", "precision", "recall"),
    hue: str = "lam",
    style: str | None = None,
    palette: dict | None = None,
    axes=None,
    label: str | None = None,
    errorbar=("pi", 100),
):
    """The layout of Fig. 4, 6, 8, 9, 13, 16: one panel per metric against generation, one line per ``hue``.

    ``df`` is a tidy table with columns ``generation``, ``metric``, ``value`` and the ``hue``/``style`` columns;
    several rows per (generation, hue) (seeds) are drawn as their mean with a band over their range (min to max).
    """
    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 3.3), constrained_layout=True)
    axes = np.atleast_1d(axes)
    if palette is None and hue == "lam":
        palette = lam_palette(sorted(df[hue].unique()))
    for ax, metric in zip(axes, metrics, strict=True):
        sub = df[df.metric == metric]
        if sub.empty:
            ax.set_visible(False)
            continue
        sns.lineplot(
            data=sub,
            x="generation",
            y="value",
            hue=hue,
            style=style,
            palette=palette,
            marker="o",
            markersize=4,
            errorbar=errorbar,
            ax=ax,
            legend=ax is axes[-1],
        )
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.set_xlabel(r"generation $t$")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole numbers
        if metric in ("precision", "recall", "coverage", "label_accuracy"):
            ax.set_ylim(-0.02, 1.02)
    if label:
        axes[0].figure.suptitle(label)
    leg = axes[-1].get_legend()
    if leg is not None:
        leg.set_title("λ" if hue == "lam" else hue)
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return axes


def save_figure(
    fig, name: str, *, scale: str, notebook: str, caption: str, folder: Path | None = None, record: bool = True
) -> Path:
    """Write ``<folder>/<name>.png`` (default ``figures/<scale>/``) and, with ``record``, its gallery entry; fail
    loudly when it cannot.

    ``name`` must be registered for ``notebook`` in :mod:`madutils.registry`, which also gives the paper's figure
    number: ``fig04_fully_synthetic_fid_precision_recall``, or for a figure that the paper does not have, the
    notebook number (``nb01_trace_collapse``).
    """
    check_scale(scale)
    if not FIGURE_NAME.match(name):
        raise ValueError(f"figure name {name!r} must look like 'fig04_some_slug' or 'nb01_some_slug'")
    entry = registry.figure(notebook, name)
    out = figures_dir(scale) if folder is None else Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, bbox_inches="tight", dpi=matplotlib.rcParams["savefig.dpi"])
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"figure {path} was not written")
    if not record:
        return path
    meta_dir = runs_dir(scale) / "meta" / "figures"
    meta_dir.mkdir(parents=True, exist_ok=True)
    meta = {"name": name, "file": path.name, "notebook": notebook, "caption": caption, "paper_figure": entry.paper}
    (meta_dir / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return path


def image_grid(images: np.ndarray, nrow: int) -> np.ndarray:
    """Tile images ``(n, c, h, w)`` or ``(n, h, w)`` (uint8 or floats in [0, 1]) into one array for ``imshow``."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    n, c, h, w = x.shape
    ncol = int(np.ceil(n / nrow))
    pad = np.zeros((nrow * ncol - n, c, h, w), dtype=x.dtype)
    x = np.concatenate([x, pad]).reshape(nrow, ncol, c, h, w)
    grid = x.transpose(0, 3, 1, 4, 2).reshape(nrow * h, ncol * w, c)
    return grid[..., 0] if c == 1 else grid


def gaussian_ellipse(mu, cov, k: float = 2.0, n: int = 100) -> np.ndarray:
    """Points ``(n, 2)`` of the k-standard-deviation ellipse of a 2-D Gaussian (degenerate covariances allowed)."""
    w, v = np.linalg.eigh(np.asarray(cov, dtype=float))
    a = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(a), np.sin(a)], axis=1)
    return np.asarray(mu, dtype=float)[None, :] + (circle * k * np.sqrt(np.clip(w, 0, None))) @ v.T


DIGIT_COLORS = matplotlib.colormaps["tab10"]


def tsne_panels(real_xy, real_labels, synthetic: dict, title: str = ""):
    """The layout of Fig. 5 and 7: one panel per generation; real points (grey) and the generation's synthetic
    points coloured by their digit, all in one joint t-SNE map. ``synthetic`` maps a panel title to (xy, labels)."""
    n = len(synthetic) + 1
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n, 3.0), sharex=True, sharey=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    axes[0].scatter(real_xy[:, 0], real_xy[:, 1], c=[DIGIT_COLORS(int(d)) for d in real_labels], s=5)
    axes[0].set_title("real")
    for ax, (name, (xy, labels)) in zip(axes[1:], synthetic.items(), strict=True):
        ax.scatter(real_xy[:, 0], real_xy[:, 1], color="0.85", s=4)
        ax.scatter(xy[:, 0], xy[:, 1], c=[DIGIT_COLORS(int(d)) for d in labels], s=5)
        ax.set_title(name)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", ls="", color=DIGIT_COLORS(d), label=str(d)) for d in range(10)]
    axes[-1].legend(
        handles=handles, title="digit", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8
    )
    if title:
        fig.suptitle(title)
    return fig


def generation_grids(grids: dict, ncol: int = 20, title: str = ""):
    """The layout of Fig. 26 and 27 (and the StyleGAN grids): one row of samples per generation."""
    rows = list(grids)
    first = np.asarray(grids[rows[0]])
    h, w = first.shape[-2:]
    inch = min(0.55 / 28, 20 / (ncol * w))  # per pixel: MNIST digits at 0.55 in, wide rows capped at 20 in
    fig, axes = plt.subplots(
        len(rows),
        1,
        figsize=(ncol * w * inch, len(rows) * h * inch * 1.13 + 0.4),
        constrained_layout=True,
        squeeze=False,
    )
    for ax, name in zip(axes[:, 0], rows, strict=True):
        imgs = np.asarray(grids[name])[:ncol]
        grid = image_grid(imgs, nrow=1)
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(str(name), rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return fig


def _log_edges(values) -> np.ndarray:
    """Cell edges between log-spaced grid values (for a pcolormesh of a log-spaced grid)."""
    v = np.log(np.asarray(values, float))
    mid = (v[1:] + v[:-1]) / 2
    return np.exp(np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]]))


def admissible_region(ess: pd.DataFrame, thresholds: pd.DataFrame, lam: float, d: int):
    """Fig. 11: log2(n_e / n_r) of the Gaussian fresh data loop over (n_r, n_s) at bias ``lam`` (blue: admissible,
    n_e ≥ n_r), with the threshold n_s* and the diagonal n_s = n_r. ``ess`` and ``thresholds`` are the tables of
    :meth:`madutils.fresh.FreshAnalysis.grid`."""
    from matplotlib.colors import TwoSlopeNorm

    sub = ess[(ess.lam == lam) & (ess.n_s > 0)]
    ratio_grid = sub.pivot_table(index=sub.n_s / sub.n_r, columns="n_r", values="ratio")
    x_edges, r_edges = _log_edges(ratio_grid.columns), _log_edges(ratio_grid.index)
    X, R = np.meshgrid(x_edges, r_edges)
    log_ratio = np.log2(ratio_grid.to_numpy())
    fig, ax = plt.subplots(figsize=(5.6, 4.3), constrained_layout=True)
    norm = TwoSlopeNorm(0.0, vmin=min(-1e-3, np.nanmin(log_ratio)), vmax=max(1e-3, np.nanmax(log_ratio)))
    mesh = ax.pcolormesh(X, R * X, log_ratio, cmap="RdBu", norm=norm)
    thr = thresholds[(thresholds.lam == lam)].sort_values("n_r")
    ax.plot(thr.n_r, thr.threshold, color="black", lw=2, marker="o", label="threshold n_s*")
    ax.plot(x_edges, x_edges, color="black", ls="--", lw=1, label="n_s = n_r")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"fresh real samples $n_r$")
    ax.set_ylabel(r"synthetic samples $n_s$")
    ax.set_title(rf"$n_e / n_r$, $\lambda = {lam:g}$, $d = {d}$")
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(r"$\log_2(n_e / n_r)$")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def threshold_curves(thresholds: pd.DataFrame, lams: Sequence[float], top: float):
    """Fig. 12: the admissible threshold n_s* against n_r for every λ (band: its interval), with censored
    thresholds (beyond either end of the n_s grid) drawn as hollow triangles at the grid's end: bounds, never
    values, with legend entries that say so; ``top`` is the y-axis' upper limit."""
    fig, ax = plt.subplots(figsize=(5.6, 4.3), constrained_layout=True)
    for lam in sorted(lams):
        t = thresholds[thresholds.lam == lam].sort_values("n_r")
        c = lam_color(lam)
        known = t[t.censored == ""]
        if not known.empty:  # one legend entry per λ: its threshold curve, or its markers when every point is censored
            ax.plot(known.n_r, known.threshold, color=c, marker="o", lw=1.8, label=rf"$\lambda = {lam:g}$")
            ax.fill_between(known.n_r, known.low, known.high, color=c, alpha=0.25, lw=0)
        if known.empty and (t.censored != "").any():  # its colour in the legend even without a curve
            ax.plot([], [], color=c, lw=1.8, label=rf"$\lambda = {lam:g}$")
        for marker, kind in (("^", "above"), ("v", "below")):
            cen = t[t.censored == kind]  # hollow arrows at the grid's end: bounds, not values
            ax.scatter(cen.n_r, cen.threshold, marker=marker, s=70, facecolor="none", edgecolor=c, lw=1.5, zorder=3)
    ax.scatter([], [], marker="^", s=70, facecolor="none", edgecolor="black",
               label="censored: beyond the grid's largest $n_s$ (not a value)")  # fmt: skip
    ax.scatter([], [], marker="v", s=70, facecolor="none", edgecolor="black",
               label="censored: below its smallest $n_s$ (not a value)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1, top)
    ax.set_xlabel(r"fresh real samples $n_r$")
    ax.set_ylabel(r"admissible threshold $n_s^*$")
    ax.legend(fontsize=8)
    return fig
