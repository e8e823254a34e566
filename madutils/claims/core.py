"""What every claim module shares: the row of the claims table, the verdicts, recording a notebook's rows, and the
statistics the criteria use (trends, orderings, z-scores)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry
from ..paths import runs_dir
from ..scales import check_scale

VERDICTS = ("reproduced", "not_reproduced", "not_run")


COLUMNS = ["claim", "notebook", "figure", "statement", "statistic", "value", "verdict", "reason"]


@dataclass
class ClaimResult:
    """One row of the claims table. ``notebook`` is the notebook that records ``claim``, from the registry."""

    claim: str
    figure: str
    statement: str
    statistic: str
    value: str
    verdict: str
    reason: str = ""
    notebook: str = field(init=False)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        self.notebook = registry.claim_notebook(self.claim)


def verdict(ok: bool) -> str:
    return "reproduced" if ok else "not_reproduced"


def record_claims(rows: Iterable[ClaimResult], notebook: str, scale: str, folder: Path | None = None) -> pd.DataFrame:
    """Write a notebook's claim rows to ``<folder>/<notebook>.csv`` (default ``runs/<scale>/meta/claims/``, which
    the gallery collects into ``figures/<scale>/claims.csv``) and return them as a table."""
    check_scale(scale)
    rows = list(rows)
    own = registry.notebook(notebook).claims
    stray = sorted({r.claim for r in rows} - set(own))
    if stray:
        raise ValueError(f"notebook {notebook} records claims {stray}; madutils/registry.py gives it {list(own)}")
    df = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)
    folder = runs_dir(scale) / "meta" / "claims" if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{notebook}.csv", index=False)
    return df


def _z(mean: float, se: float) -> float:
    return float(mean / se) if se > 0 else (0.0 if mean == 0 else float(np.sign(mean) * np.inf))


Z_MARTINGALE = 4.0  # |z| below which a measured conditional mean agrees with its exact value (many settings tested)


Z_EFFECT = 4.0  # z above which an effect (a drift, a difference) counts as shown


TINY = 1e-250


def table_markdown(df: pd.DataFrame, columns: Sequence[str] = ("claim", "statement", "value", "verdict")) -> str:
    """A claims table as Markdown (for the gallery and notebooks)."""
    cols = list(columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [str(row[c]).replace("|", "\\|").replace("\n", " ") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _slope(x, y, se):
    """Weighted least-squares slope of log y on log x and its standard error (se: standard errors of y)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    w = (np.asarray(y, float) / np.asarray(se, float)) ** 2
    xm = np.sum(w * lx) / np.sum(w)
    sxx = np.sum(w * (lx - xm) ** 2)
    slope = np.sum(w * (lx - xm) * (ly - np.sum(w * ly) / np.sum(w))) / sxx
    resid = ly - (np.sum(w * ly) / np.sum(w) + slope * (lx - xm))
    dof = max(len(lx) - 2, 1)
    scale = max(1.0, np.sum(w * resid**2) / dof)  # inflate by the misfit when the points scatter more than their SE
    return float(slope), float(np.sqrt(scale / sxx))


def trend(generations, values, level: float = 0.95) -> tuple[float, float, float]:
    """Least-squares slope of ``values`` on ``generations`` and its two-sided ``level`` confidence interval from the
    regression residuals (Student t). With several seeds, every (generation, seed) point enters."""
    from scipy import stats

    x, y = np.asarray(generations, float), np.asarray(values, float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(np.unique(x)) < 3:
        return float("nan"), float("nan"), float("nan")
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + level / 2, len(x) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def _curve(df: pd.DataFrame, metric: str, **where) -> pd.DataFrame:
    sub = df[df.metric == metric]
    for k, v in where.items():
        sub = sub[np.isclose(sub[k], v)] if isinstance(v, float) else sub[sub[k] == v]
    return sub[["generation", "value", "run"]]


def _fmt_trend(name, s, lo, hi):
    return f"{name} slope {s:+.3g}/gen (95% CI {lo:+.3g} … {hi:+.3g})"


def _later_ordering(df: pd.DataFrame, metric: str, low: dict, high: dict) -> tuple[bool, str]:
    """Is ``metric`` of the runs selected by ``low`` below the runs selected by ``high`` at every generation t ≥ 2
    (means over seeds)?"""
    a = _curve(df, metric, **low).groupby("generation").value.mean()
    b = _curve(df, metric, **high).groupby("generation").value.mean()
    gens = [t for t in a.index if t >= 2 and t in b.index]
    if not gens:
        return False, "no common generations"
    ok = all(a[t] < b[t] for t in gens)
    return ok, ", ".join(f"t={t}: {a[t]:.3g} vs {b[t]:.3g}" for t in gens)


def _fid_rises(df: pd.DataFrame, head: tuple, statement: str, **where) -> ClaimResult:
    """One row: the FID slope of the runs selected by ``where`` has a 95 % CI above 0. ``head`` is (claim,
    figure)."""
    claim, figure = head
    c = _curve(df, "fid", **where)
    s, lo, hi = trend(c.generation, c.value)
    return ClaimResult(
        claim=claim,
        figure=figure,
        statement=statement,
        statistic="FID slope 95% CI above 0",
        value=_fmt_trend("FID", s, lo, hi),
        verdict=verdict(bool(lo > 0)),
        reason="" if np.isfinite(s) else "fewer than 3 generations",
    )
