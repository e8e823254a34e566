"""Loops that do not divide evenly among the cores: one process per loop against one process per core.

Notebook 05 runs three WGAN-GP loops (3 seeds) on two cores. With one worker per core, two loops run side by side
and the third runs alone afterwards, one core idle for a third of the time. With one worker per loop, the three
share the two cores and finish together. ``run_loops`` now starts one worker per loop when the loops do not divide
evenly among the cores (:func:`madutils.loops.loop_workers`). This times both on ``--loops`` short WGAN-GP loops
(MNIST, ``--steps`` generator steps per generation, ``--generations`` generations), each way in a fresh store and
in one invocation, with one thread per process either way (the same run keys), and checks that both store the
same results.

    python benchmarks/bench_uneven_loops.py [--loops 3] [--steps 40] [--generations 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time


def run(workers: int, loops: int, steps: int, generations: int) -> tuple[float, list]:
    from madutils.data import MnistSource
    from madutils.loops import LoopConfig, run_loops
    from madutils.models.wgan import WGANFamily
    from madutils.store import Store

    family = WGANFamily(width=8, steps=steps, lr=1e-3, device="cpu", progress=False)
    configs = [LoopConfig(generations, 500, 500, seed=s) for s in range(loops)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        runs = run_loops(family, configs, MnistSource(), store=Store(tmp), workers=workers, threads=1, progress=False)
        seconds = time.perf_counter() - start
        outputs = [
            {name: a.tobytes() for name, a in run.generation(t).arrays().items()}
            for run in runs
            for t in range(1, generations + 1)
        ]
    return seconds, outputs


def main() -> None:
    from madutils.utils import cpu_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="generator steps per generation")
    parser.add_argument("--generations", type=int, default=2)
    args = parser.parse_args()
    cores = cpu_threads()
    if args.loops % cores == 0 or args.loops < cores:
        raise SystemExit(f"--loops {args.loops} divides evenly among {cores} cores: nothing to compare")
    per_core, a = run(cores, args.loops, args.steps, args.generations)
    per_loop, b = run(args.loops, args.loops, args.steps, args.generations)
    assert a == b, "one worker per loop stored other results than one worker per core"
    print(
        f"| {args.loops} WGAN-GP loops × {args.generations} generations ({args.steps} steps) | one worker per core "
        f"({cores}) | one worker per loop ({args.loops}) | speed-up | same results |"
    )
    print("|---|---|---|---|---|")
    print(f"| {cores} cores | {per_core:.1f} s | {per_loop:.1f} s | {per_core / per_loop:.2f}x | yes |")


if __name__ == "__main__":
    main()
