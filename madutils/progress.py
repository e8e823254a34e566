"""The progress of a ``./reproduce.sh`` run, read from the store while the notebooks compute.

``python -m madutils.progress --scale small --only 02 04 --run-dir runs/small/notebooks/<run>`` plans every loop the
notebooks compute with their default parameters (:func:`madutils.distributed.plan`), then every few seconds counts
the generations stored and prints one line: which notebook of how many is running (``reproduce.sh`` writes it to
``<run-dir>/current``), the loops and generations done of the total, the time elapsed and an estimate of the time
left. The estimate starts from the measured cost of a generation of each model on a 2-core CPU
(:data:`madutils.experiments.GENERATION_SECONDS`) and is rescaled by how fast the generations of this run actually
come. In a terminal the line updates in place; into a log it is written as plain lines, once a minute and whenever
a notebook starts. It only reads: counting a run's ``gen-NNN`` folders takes no lock and checks no file.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .catalog import chosen
from .distributed import build
from .distributed import plan as loops_of
from .experiments import GENERATION_SECONDS
from .paths import runs_dir
from .store import Store
from .utils import check_scale


@dataclass
class Planned:
    """One loop a run computes: where it is stored, how many generations it has and how many were there at the
    start, and the measured seconds of one of its generations on one core (None: unknown)."""

    path: Path
    generations: int
    start: int
    seconds: float | None


def stored_generations(path: Path) -> int:
    """The generations a run folder holds now (its ``gen-NNN`` folders), without reading them."""
    try:
        return sum(1 for p in path.iterdir() if p.name.startswith("gen-") and p.is_dir())
    except OSError:
        return 0


def plan(scale: str, notebooks: list[str]) -> list[Planned]:
    """Every loop that ``notebooks`` compute at ``scale`` with their default parameters, each once."""

    store = Store(runs_dir(scale))
    out: dict[Path, Planned] = {}
    for name, specs in loops_of(notebooks).items():
        exp = build(name, scale, 0, "auto")
        seconds = GENERATION_SECONDS.get((type(exp.family).__name__, scale))
        threads = exp._threads()
        for label, cfg in exp.loops.items():
            if label not in chosen(exp, specs):
                continue
            key = exp.key(cfg, threads)
            path = store.root / key.folder / key.name
            done = stored_generations(path)
            if done < cfg.generations:  # a stored loop of another length hands its generations over
                donor = key.other_length(store)
                done = max(done, min(stored_generations(donor.path), cfg.generations) if donor else 0)
            out[path] = Planned(path, cfg.generations, min(done, cfg.generations), seconds)
    return list(out.values())


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def line(loops: list[Planned], now: dict[Path, int], elapsed: float, current: str, cores: int) -> str:
    """The progress line: the notebook running, loops and generations done of the total, elapsed and left."""
    total = sum(p.generations for p in loops)
    done = sum(min(now[p.path], p.generations) for p in loops)
    finished = sum(now[p.path] >= p.generations for p in loops)
    left = [(p.generations - min(now[p.path], p.generations), p.seconds) for p in loops]
    expected_left = sum(n * (s or 0.0) for n, s in left) / max(1, cores)
    # rescale by this run's pace: the generations computed since the start against their expected cost
    new = [(min(now[p.path], p.generations) - p.start, p.seconds) for p in loops]
    expected_done = sum(n * (s or 0.0) for n, s in new) / max(1, cores)
    pace = elapsed / expected_done if expected_done > 60 and elapsed > 0 else 1.0
    head = f"[{current}] " if current else ""
    text = f"{head}loops {finished}/{len(loops)}, generations {done}/{total} | {_duration(elapsed)} elapsed" + (
        f", about {_duration(expected_left * pace)} left for the loops" if done < total else ""
    )
    return text


def monitor(scale: str, notebooks: list[str], run_dir: Path, interval: float = 5.0, every: float = 60.0) -> None:
    """Print the progress line until ``<run_dir>/done`` exists (``reproduce.sh`` writes it at the end)."""
    loops = plan(scale, notebooks)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    started = time.time()
    tty = sys.stdout.isatty()
    last_text, last_print, last_current = "", 0.0, None
    while not (run_dir / "done").exists():
        current = (run_dir / "current").read_text().strip() if (run_dir / "current").is_file() else ""
        now = {p.path: stored_generations(p.path) for p in loops}
        text = line(loops, now, time.time() - started, current, cores)
        if tty:
            sys.stdout.write("\r" + text[:160].ljust(min(160, max(len(last_text), len(text)))))
            sys.stdout.flush()
        elif current != last_current or time.time() - last_print >= every:
            print(text, flush=True)
            last_print, last_current = time.time(), current
        last_text = text
        time.sleep(interval)
    if tty:
        sys.stdout.write("\n")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m madutils.progress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", required=True, type=check_scale)
    parser.add_argument("--only", nargs="+", required=True, metavar="NN")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    monitor(args.scale, args.only, args.run_dir, args.interval)


if __name__ == "__main__":
    main()
