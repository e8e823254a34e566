"""Build ``figures/<scale>/README.md`` (each figure with the paper's figure number and caption, then the claims
table) and ``figures/<scale>/claims.csv`` from what the notebooks recorded under ``runs/<scale>/meta/``.

Run as ``python -m madutils.gallery --scale small [--timings runs/small/timings.tsv] [--commit SHA]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import pandas as pd

from .claims import COLUMNS, table_markdown
from .paths import figures_dir, runs_dir
from .scales import check_scale

NOTEBOOKS = {
    "01": "01_gaussian_martingale",
    "02": "02_fully_synthetic",
    "03": "03_synthetic_augmentation",
    "04": "04_fresh_data",
    "05": "05_appendix_fully_synthetic",
    "06": "06_stylegan_ffhq",
}


def collect_claims(scale: str) -> pd.DataFrame:
    folder = runs_dir(scale) / "meta" / "claims"
    frames = [pd.read_csv(p, dtype=str).fillna("") for p in sorted(folder.glob("*.csv"))]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def build(scale: str, timings: Path | None = None, commit: str | None = None) -> Path:
    check_scale(scale)
    out = figures_dir(scale)
    out.mkdir(parents=True, exist_ok=True)
    claims = collect_claims(scale)
    claims.to_csv(out / "claims.csv", index=False)
    metas = []
    for p in sorted((runs_dir(scale) / "meta" / "figures").glob("*.json")):
        meta = json.loads(p.read_text())
        if (out / meta["file"]).is_file():
            metas.append(meta)
    lines = [f"# Figures at the `{scale}` scale", ""]
    t = None
    if timings and Path(timings).is_file():
        t = pd.read_csv(
            timings, sep="\t", names=["notebook", "seconds", "status", "commit"], dtype={"notebook": str, "commit": str}
        )
        t["commit"] = t["commit"].fillna(commit or "unknown")
    commits = sorted(set(t.commit)) if t is not None else [commit or "unknown"]
    source = (
        f"from commit `{commits[0]}`"
        if len(commits) == 1
        else "by runs of the commits that the table of wall times names for each notebook"
    )
    lines.append(
        f"Made by `./reproduce.sh --scale {scale}` {source}; gallery built on {_dt.date.today().isoformat()}. "
        "Every figure below is drawn from stored results of the run of its notebook; the claims table is evaluated "
        "from the same results by `madutils/claims.py`."
    )
    lines.append("")
    if t is not None:
        lines += ["## Wall times", "", "| notebook | wall time | status | commit |", "|---|---|---|---|"]
        for _, row in t.iterrows():
            lines.append(f"| {row.notebook} | {float(row.seconds) / 60:.1f} min | {row.status} | `{row.commit}` |")
        lines.append(f"| total | {t.seconds.astype(float).sum() / 60:.1f} min | | |")
        lines.append("")
    lines += ["## Figures", ""]
    for nb_id, nb_name in NOTEBOOKS.items():
        group = [m for m in metas if m["notebook"] == nb_id]
        if not group:
            continue
        lines += [f"### `{nb_name}.ipynb`", ""]
        for m in group:
            title = f"Paper Fig. {m['paper_figure']}" if m.get("paper_figure") else "Not a paper figure"
            lines += [f"**{title}** (`{m['file']}`). {m['caption']}", "", f"![{m['name']}]({m['file']})", ""]
    lines += [
        "## Claims",
        "",
        table_markdown(claims, ("claim", "notebook", "statement", "value", "verdict"))
        if not claims.empty
        else "No claims were evaluated.",
        "",
    ]
    readme = out / "README.md"
    readme.write_text("\n".join(lines))
    return readme


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", required=True)
    parser.add_argument("--timings", type=Path)
    parser.add_argument("--commit")
    args = parser.parse_args(argv)
    print(build(args.scale, args.timings, args.commit))


if __name__ == "__main__":
    main()
