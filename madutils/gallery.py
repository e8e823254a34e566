"""Build ``figures/<scale>/README.md`` (each figure with the paper's figure number and caption, then the claims
table) and ``figures/<scale>/claims.csv`` from what the notebooks recorded under ``runs/<scale>/meta/``.

Run as ``python -m madutils.gallery --scale small [--timings runs/small/timings.tsv] [--commit SHA]``.
``--forget NN`` removes what notebook NN recorded (its figures, their gallery entries and its claims), so that a
failed rerun of it leaves nothing stale that looks current; ``./reproduce.sh`` calls it before each notebook.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import pandas as pd

from .claims import COLUMNS, table_markdown
from .paths import figures_dir, runs_dir
from .registry import NOTEBOOKS
from .utils import check_scale


def collect_claims(scale: str) -> pd.DataFrame:
    folder = runs_dir(scale) / "meta" / "claims"
    frames = [pd.read_csv(p, dtype=str).fillna("") for p in sorted(folder.glob("*.csv"))]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    # rows recorded before a column existed (seeds, gate) get it empty
    return pd.concat(frames, ignore_index=True).reindex(columns=COLUMNS).fillna("")


def forget(scale: str, nb_id: str) -> list[Path]:
    """Remove what notebook ``nb_id`` recorded at ``scale``: its claims rows, its figures' gallery entries and the
    figure files themselves. Returns the removed paths."""
    check_scale(scale)
    if nb_id not in NOTEBOOKS:
        raise ValueError(f"no notebook {nb_id!r}; the notebooks are {', '.join(NOTEBOOKS)}")
    removed = []
    recorded = [
        runs_dir(scale) / "meta" / kind / f"{nb_id}.{ext}" for kind, ext in (("claims", "csv"), ("parameters", "json"))
    ]
    paths = [p for p in recorded if p.is_file()]
    for meta_path in sorted((runs_dir(scale) / "meta" / "figures").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("notebook") == nb_id:
            paths += [meta_path, figures_dir(scale) / meta["file"]]
    paths += [figures_dir(scale) / f"{f.name}.png" for f in NOTEBOOKS[nb_id].figures]
    for path in paths:
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def build(scale: str, timings: Path | None = None, commit: str | None = None) -> Path:
    check_scale(scale)
    out = figures_dir(scale)
    out.mkdir(parents=True, exist_ok=True)
    failed: set[str] = set()
    t = None
    if timings and Path(timings).is_file():
        t = pd.read_csv(
            timings, sep="\t", names=["notebook", "seconds", "status", "commit"], dtype={"notebook": str, "commit": str}
        )
        t["commit"] = t["commit"].fillna(commit or "unknown")
        failed = {name[:2] for name in t.notebook[t.status != "ok"]}
    claims = collect_claims(scale)
    claims = claims[~claims.notebook.isin(failed)]
    claims.to_csv(out / "claims.csv", index=False)
    metas = []
    for p in sorted((runs_dir(scale) / "meta" / "figures").glob("*.json")):
        meta = json.loads(p.read_text())
        if (out / meta["file"]).is_file():
            metas.append(meta)
    lines = [f"# Figures at the `{scale}` scale", ""]
    commits = sorted(set(t.commit)) if t is not None else [commit or "unknown"]
    source = (
        f"from commit `{commits[0]}`"
        if len(commits) == 1
        else "by runs of the commits that the table of wall times names for each notebook"
    )
    lines.append(
        f"Made by `./reproduce.sh --scale {scale}` {source}; gallery built on {_dt.date.today().isoformat()}. "
        "Every figure below is drawn from stored results of the run of its notebook; the claims table is evaluated "
        "from the same results by `madutils/claims/`."
    )
    lines.append("")
    if t is not None:
        lines += [
            "## Wall times",
            "",
            "The time of each notebook's last run. A notebook whose loops were already in the store (computed by an "
            "earlier run or by `python -m madutils.distributed`) only reads them, so the sum is not the time of a run "
            "from an empty store unless every notebook ran from one.",
            "",
            "| notebook | wall time | status | commit |",
            "|---|---|---|---|",
        ]
        for _, row in t.iterrows():
            lines.append(f"| {row.notebook} | {float(row.seconds) / 60:.1f} min | {row.status} | `{row.commit}` |")
        lines.append(f"| sum | {t.seconds.astype(float).sum() / 60:.1f} min | | |")
        lines.append("")
        full = full_run(scale)
        if full:
            minutes = float(full["seconds"]) / 60
            cores = int(full["cores"])
            lines += [
                f"The last run of every notebook in one `./reproduce.sh` (commit `{full['commit']}`) started from "
                + ("**an empty store**" if full["store"] == "empty" else "a store that already held results")
                + f" and took **{minutes:.1f} min** on {cores} cores ({minutes * cores:.0f} core-minutes).",
                "",
            ]
    lines += ["## Figures", ""]
    for nb_id, nb in NOTEBOOKS.items():
        if nb_id in failed:
            lines += [
                f"### `{nb.file}`",
                "",
                "**This notebook failed in its last run**: no figures or claims of it "
                "are shown; see its log under `runs/` and rerun it.",
                "",
            ]
            continue
        group = [m for m in metas if m["notebook"] == nb_id]
        if not group:
            continue
        lines += [f"### `{nb.file}`", ""]
        params = runs_dir(scale) / "meta" / "parameters" / f"{nb_id}.json"
        changed = json.loads(params.read_text()) if params.is_file() else {}
        if changed:
            shown = ", ".join(f"`{k} = {v}`" for k, v in changed.items())
            lines += [f"Run with parameters changed from the `{scale}` sizes: {shown}.", ""]
        for m in group:
            title = f"Paper Fig. {m['paper_figure']}" if m.get("paper_figure") else "Not a paper figure"
            lines += [f"**{title}** (`{m['file']}`). {m['caption']}", "", f"![{m['name']}]({m['file']})", ""]
    lines += [
        "## Claims",
        "",
        table_markdown(claims, ("claim", "notebook", "statement", "value", "effect", "power", "seeds", "verdict"))
        if not claims.empty
        else "No claims were evaluated.",
        "",
    ]
    readme = out / "README.md"
    readme.write_text("\n".join(lines))
    return readme


def full_run(scale: str) -> dict[str, str] | None:
    """The record ``./reproduce.sh`` keeps of its last run of every notebook: its seconds, cores, commit and whether
    the store started empty (None when there is none)."""
    path = runs_dir(scale) / "last-full-run.tsv"
    if not path.is_file():
        return None
    record = dict(line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)
    return record if {"seconds", "cores", "store", "commit"} <= set(record) else None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", required=True)
    parser.add_argument("--timings", type=Path)
    parser.add_argument("--commit")
    parser.add_argument("--forget", metavar="NN", help="remove the figures and claims that notebook NN recorded")
    args = parser.parse_args(argv)
    if args.forget:
        for path in forget(args.scale, args.forget):
            print(f"removed {path}")
        return
    print(build(args.scale, args.timings, args.commit))


if __name__ == "__main__":
    main()
