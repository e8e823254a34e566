"""The order in which ``run_loops`` hands loops to its workers.

The loops of one seed share their trained generation 1 (the λ = 1 and λ = 0.5 fully synthetic loops of notebook
02, the StyleGAN2 loops of 02 and 03), and an experiment lists them one after the other. Taken in that order, two
workers start on the two loops of seed 0: one trains the shared generation 1 and the other waits for it.
``run_loops`` now hands them out spread apart (``madutils.loops.spread_shared_starts``), so the workers train the
generation 1 of two seeds side by side. This benchmark times both orders on loops whose every training takes a
fixed ``--pause`` seconds (a Gaussian fit with a sleep), so that the numbers measure the schedule, not the
machine: 3 seeds × 2 λ × ``--generations`` generations, two workers, each order in a fresh store, in one
invocation. It checks that both orders store the same results.

    python benchmarks/bench_loop_order.py [--pause 2] [--generations 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass

from madutils.models.gaussian import GaussianFamily


@dataclass(frozen=True)
class PausingGaussianFamily(GaussianFamily):
    """A Gaussian fit that takes ``pause`` seconds: a training of fixed length."""

    pause: float = 2.0

    def fit(self, data, seed):
        time.sleep(self.pause)
        return super().fit(data, seed)


def run(spread: bool, pause: float, generations: int) -> tuple[float, list]:
    import madutils.loops as loops
    from madutils.data import GaussianSource
    from madutils.loops import LoopConfig, run_loops
    from madutils.store import Store

    configs = [LoopConfig(generations, 50, 50, lam=lam, seed=s) for s in range(3) for lam in (1.0, 0.5)]
    original = loops.spread_shared_starts
    if not spread:
        loops.spread_shared_starts = lambda keys: list(range(len(keys)))  # the experiment's own order
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            runs = run_loops(
                PausingGaussianFamily(pause=pause),
                configs,
                GaussianSource.standard(2),
                store=Store(tmp),
                workers=2,
                progress=False,
            )
            seconds = time.perf_counter() - start
            values = [run.metrics().value.tolist() for run in runs]
    finally:
        loops.spread_shared_starts = original
    return seconds, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds per training")
    parser.add_argument("--generations", type=int, default=5, help="generations per loop")
    args = parser.parse_args()
    given, a = run(False, args.pause, args.generations)
    spread, b = run(True, args.pause, args.generations)
    trainings = 3 + 6 * (args.generations - 1)
    print(
        f"6 loops (3 seeds × λ ∈ {{1, 0.5}}) × {args.generations} generations, {trainings} trainings of "
        f"{args.pause:g} s, 2 workers"
    )
    print("| order | wall time | speed-up | same results |")
    print("|---|---|---|---|")
    print(f"| the experiment's (λ = 1, λ = 0.5 of each seed in turn) | {given:.1f} s | | |")
    print(f"| spread (`spread_shared_starts`) | {spread:.1f} s | {given / spread:.2f}x | {a == b} |")
    print(f"(the shortest possible: {trainings} trainings / 2 workers = {trainings * args.pause / 2:.0f} s)")


if __name__ == "__main__":
    main()
