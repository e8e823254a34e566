"""What every notebook does first and last: one call to set the scale, seed, theme and device up, the figure and
claims writers bound to that notebook, and the environment footer."""

from __future__ import annotations

import ast
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from . import claims as _claims
from . import plots, prerequisites, registry
from .paths import figures_dir, project_root, runs_dir
from .prerequisites import Report
from .store import Store
from .utils import check_int, check_lam, check_scale, cpu_threads, resolve_device, seed_everything


def record_claims(
    rows: Iterable[_claims.ClaimResult], notebook: str, scale: str, folder: Path | None = None
) -> pd.DataFrame:
    """Write a notebook's claim rows to ``<folder>/<notebook>.csv`` (default ``runs/<scale>/meta/claims/``, which
    the gallery collects into ``figures/<scale>/claims.csv``) and return them as a table."""
    check_scale(scale)
    rows = list(rows)
    own = registry.notebook(notebook).claims
    stray = sorted({r.claim for r in rows} - set(own))
    if stray:
        raise ValueError(f"notebook {notebook} records claims {stray}; madutils/registry.py gives it {list(own)}")
    df = pd.DataFrame([asdict(r) for r in rows], columns=_claims.COLUMNS)
    folder = runs_dir(scale) / "meta" / "claims" if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{notebook}.csv", index=False)
    return df


@dataclass
class NotebookContext:
    notebook: str
    scale: str
    seed: int
    device: str
    store: Store
    publish: bool = False
    started: float = field(default_factory=time.time)
    prerequisites: Report | None = None

    def can_run(self, part: str) -> bool:
        """Whether a part of this notebook (``"stylegan"``) has what it needs (:mod:`madutils.prerequisites`);
        when not, :meth:`missing` says why."""
        return self.prerequisites is None or self.prerequisites.can_run(part)

    def missing(self, part: str) -> str:
        return "" if self.prerequisites is None else self.prerequisites.reason(part)

    @property
    def output_folder(self):
        """Where this run's figures and claims go: ``figures/<scale>/`` (and the gallery's records) when
        ``./reproduce.sh`` runs the notebook (``MAD_PUBLISH=1``), else ``runs/<scale>/by-hand/``, so that a run by
        hand never overwrites the committed figures."""
        return figures_dir(self.scale) if self.publish else runs_dir(self.scale) / "by-hand"

    def save_figure(self, fig, name: str, caption: str):
        """``plots.save_figure`` for this notebook and scale (the paper figure number comes from the registry)."""
        if self.publish:
            return plots.save_figure(fig, name, scale=self.scale, notebook=self.notebook, caption=caption)
        return plots.save_figure(
            fig,
            name,
            scale=self.scale,
            notebook=self.notebook,
            caption=caption,
            folder=self.output_folder,
            record=False,
        )

    def record_parameters(self, overrides: dict) -> dict:
        """The typed parameters this run changed from the scale's sizes (those that are not ``None``, nested dicts
        flattened), recorded for the gallery when ``./reproduce.sh`` runs the notebook; returns them."""

        def flat(d, prefix=""):
            for k, v in d.items():
                if isinstance(v, dict):
                    yield from flat(v, f"{prefix}{k}.")
                elif v is not None:
                    yield f"{prefix}{k}", list(v) if isinstance(v, tuple) else v

        changed = dict(flat(overrides))
        if self.publish:
            folder = runs_dir(self.scale) / "meta" / "parameters"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{self.notebook}.json").write_text(json.dumps(changed, indent=1, default=str) + "\n")
        if changed:
            print("parameters changed from the scale's sizes:", ", ".join(f"{k} = {v}" for k, v in changed.items()))
        return changed

    def record_claims(self, rows: Iterable[_claims.ClaimResult]) -> pd.DataFrame:
        folder = None if self.publish else self.output_folder / "claims"
        return record_claims(rows, self.notebook, self.scale, folder=folder)

    def footer(self) -> str:
        """Versions, device and wall time, for the last cell."""
        import numpy
        import torch

        try:
            commit = (
                subprocess.run(
                    ["git", "rev-parse", "--short", "HEAD"],
                    cwd=project_root(),
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout.strip()
                or "unknown"
            )
        except (OSError, subprocess.SubprocessError):
            commit = "unknown"
        lines = [
            f"notebook {self.notebook}, scale {self.scale}, seed {self.seed}, commit {commit}",
            f"python {platform.python_version()}, numpy {numpy.__version__}, torch {torch.__version__}, "
            f"device {self.device} ({torch.get_num_threads()} CPU threads)",
            f"wall time {time.time() - self.started:.0f} s",
        ]
        return "\n".join(lines)


# -- the parameters cell ------------------------------------------------------------------------------------------


class ParameterError(ValueError):
    """A notebook parameter that cannot be used (unknown, of the wrong type, or out of range); the message names it."""


def _declared(source: str) -> dict[str, str] | None:
    """The typed assignments ``name: type = value`` of a parameters cell (name → annotation), or ``None`` when
    ``source`` is not a parameters cell (every parameters cell declares ``scale: str``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found = {
        node.target.id: ast.unparse(node.annotation)
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    return found if "scale" in found else None


def _assigned(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]


def _scalar(name: str, kind: str, value):
    how = f"pass it as a number, e.g. -p {name} 3" if kind != "str" else f"pass it as text, e.g. -p {name} smoke"
    if kind == "str":
        if not isinstance(value, str):
            raise ParameterError(f"parameter {name} = {value!r} must be text; {how}")
        return value
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ParameterError(f"parameter {name} = {value!r} is not a number; {how}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"parameter {name} = {value!r} is not a number; {how}")
    if kind == "int":
        if float(value) != int(value):
            raise ParameterError(f"parameter {name} = {value!r} must be a whole number; {how}")
        return int(value)
    return float(value)


def coerce_parameter(name: str, annotation: str, value):
    """A parameter's value as its declared type (``int``, ``float``, ``str``, ``list[float]``, ``list[int]``):
    text from the command line (``papermill -p lams "[1.0, 0.7]"``) is parsed, a single number becomes a list of
    one; ``None`` keeps the scale's value. λ values (parameters named ``lams`` or ``*_lams``) must lie in (0, 1].
    Anything else is a :class:`ParameterError` that names the parameter and says how to pass it."""
    if value is None:
        return None
    kind = annotation.replace(" ", "").removesuffix("|None")
    if kind.startswith(("list[", "tuple[")):
        item = kind[kind.index("[") + 1 : -1]
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                raise ParameterError(
                    f'parameter {name} = {value!r} is not a list; pass it as -p {name} "[1.0, 0.7]" or '
                    f'-y "{name}: [1.0, 0.7]"'
                ) from None
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise ParameterError(f"parameter {name} is an empty list; give at least one value (None: the scale's)")
        values = [_scalar(name, item, v) for v in values]
        if name == "lams" or name.endswith("_lams"):
            for v in values:
                try:
                    check_lam(v, name)
                except ValueError as exc:
                    raise ParameterError(f"parameter {exc}") from None
        return values
    if kind in ("int", "float", "str"):
        return _scalar(name, kind, value)
    return value


def check_parameters(namespace: dict | None = None) -> dict[str, object]:
    """Check the values of a notebook's parameters cell before any work, in the kernel that ran it: a parameter
    that papermill injected but the cell does not declare stops the run (``-p lamz 0.5``); every declared one is
    converted to its declared type (:func:`coerce_parameter`) in ``namespace`` (the notebook's globals; default:
    the running IPython kernel's). The cells the kernel ran (IPython's ``In``) say which names the parameters cell
    declares (its latest run) and which papermill injected after it (a cell that starts with ``# Parameters``).
    Returns the checked values; outside IPython, or without a parameters cell, it does nothing."""
    if namespace is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with the notebooks extra
            return {}
        shell = get_ipython()
        if shell is None:
            return {}
        namespace = shell.user_ns
    declared: dict[str, str] | None = None
    injected: list[str] = []
    for source in namespace.get("In") or []:
        cell = _declared(source)
        if cell is not None:
            declared, injected = cell, []
        elif declared is not None and source.lstrip().startswith("# Parameters"):
            injected += _assigned(source)
    if declared is None:
        return {}
    unknown = sorted(set(injected) - set(declared))
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: this notebook's parameters are "
            f"{', '.join(declared)} (papermill --help-notebook lists them); nothing was run"
        )
    checked = {}
    for name, annotation in declared.items():
        if name in namespace:
            namespace[name] = checked[name] = coerce_parameter(name, annotation, namespace[name])
    return checked


def setup_notebook(notebook: str, scale: str, seed: int = 0, device: str = "auto") -> NotebookContext:
    """Check the parameters (:func:`check_parameters`), validate the notebook id, scale and seed, check the
    notebook's prerequisites (at the ``paper`` scale: :func:`madutils.prerequisites.check`), seed everything, apply
    the theme, choose the device and open the scale's store."""
    checked = check_parameters()
    scale, seed, device = checked.get("scale", scale), checked.get("seed", seed), checked.get("device", device)
    registry.notebook(notebook)
    check_scale(scale)
    check_int(seed, "seed", 0)
    seed_everything(seed)
    plots.theme()
    import torch

    torch.set_num_threads(cpu_threads())
    os.environ.setdefault("MAD_SCALE", scale)
    publish = os.environ.get("MAD_PUBLISH") == "1"
    report = prerequisites.check(notebook, scale, device)  # at the paper scale: stops now, not after hours of work
    ctx = NotebookContext(
        notebook, scale, seed, resolve_device(device), Store(runs_dir(scale)), publish, prerequisites=report
    )
    for part, why in report.missing.items():
        print(f"the {part} part of this notebook will not run: {why}")
    if not publish:
        print(f"figures and claims of this run go to {ctx.output_folder} (only ./reproduce.sh writes figures/{scale}/)")
    return ctx


def first_to_last(table: pd.DataFrame, by: str, metrics: Iterable[str], label: str = "") -> str:
    """Markdown bullets for a notebook's Summary: for every value of column ``by`` (e.g. ``lam``), each metric at
    the first and the last stored generation, read from a tidy table of runs (mean over the runs of a group)."""
    lines = []
    for key, group in table.groupby(by, sort=False):
        last = int(group.generation.max())
        parts = []
        for metric in metrics:
            sub = group[group.metric == metric].groupby("generation").value.mean()
            if len(sub):
                parts.append(f"{metric} {sub.iloc[0]:.3g} → {sub.iloc[-1]:.3g}")
        name = f"{label}{key:g}" if isinstance(key, float) else f"{label}{key}"
        lines.append(f"* {name}: " + ", ".join(parts) + f" (generations 1 → {last})")
    return "\n".join(lines)


def verdict_summary(claims_table: pd.DataFrame, scale: str) -> str:
    """One Markdown line: how many claim rows of this notebook could be judged at ``scale`` (not ``uninformative``
    or ``not_run``), how many of those reproduced, and which did not."""
    counts = claims_table.verdict.value_counts()
    judged = counts.get("reproduced", 0) + counts.get("not_reproduced", 0)
    line = (
        f"* Claims at the `{scale}` scale: {len(claims_table)} rows, {judged} informative, of which "
        f"{counts.get('reproduced', 0)} reproduced"
    )
    missed = claims_table[claims_table.verdict != "reproduced"]
    if len(missed):
        line += "; not: " + "; ".join(f"{r.claim} ({r.statement}: {r.verdict})" for r in missed.itertuples())
    return line + "."


def _run_in_order_hint(shell, etype, value, tb, tb_offset=None):
    """IPython's handler of a NameError in a notebook: the usual traceback, then what to do, since the name is
    almost always defined by a cell above that has not run (the parameters cell defines ``scale`` and ``seed``)."""
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    name = getattr(value, "name", None) or "this name"
    print(
        f"\n{name!r} is defined by a cell above this one that has not run in this kernel (scale and seed: the "
        "parameters cell, the first code cell). Run the cells from the top, in order: Run > Run All Above Selected "
        "Cell, then this cell (or Run > Run All Cells).",
        flush=True,
    )


def _install_run_in_order_hint() -> None:
    """In a notebook's kernel (IPython), explain a NameError (a cell run before the cells above it) from the moment
    a notebook imports this module, which each one does in its first cell after the parameters."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebooks extra
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "set_custom_exc") and not getattr(shell, "custom_exceptions", ()):
        shell.set_custom_exc((NameError,), _run_in_order_hint)


_install_run_in_order_hint()
