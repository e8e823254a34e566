"""Several DDPM loops at once: ``run_loops`` with one process per core against the same loops one after another.

The small U-Net of the `small` scale keeps two cores only partly busy when one process trains it with two
threads (its convolutions are too small to split well), so two loops in two one-thread processes finish sooner
than the same two loops run one after another. This runs two short fully synthetic DDPM loops (λ = 1 and 0.5,
two more generations each after the shared generation 1) both ways, in fresh stores, and prints the wall
times and the last generation's FIDs (equal up to the round-off of a different thread count, which training
can amplify).

    python benchmarks/bench_parallel_loops.py [--steps 300] [--n 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time


def run(workers: int, steps: int, n: int) -> tuple[float, list]:
    from dataclasses import replace

    from madutils.data import MnistSource
    from madutils.loops import LoopConfig, run_loops
    from madutils.metrics import mnist_metrics
    from madutils.scales import DDPMSizes, sizes
    from madutils.store import Store

    sz = sizes(DDPMSizes, "small")
    family = replace(sz.family, steps=steps, device="cpu", progress=False)
    cfgs = [LoopConfig(generations=3, n_ini=n, n_s=n, lam=lam) for lam in (1.0, 0.5)]
    hook = mnist_metrics(keep_images=0, device="cpu")
    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        # generation 1 (shared) first, so that both timings cover the same four trainings of generations 2 and 3
        run_loops(
            family,
            [LoopConfig(generations=1, n_ini=n, n_s=n)],
            MnistSource(),
            store=store,
            folder="b",
            evaluate=hook,
            workers=1,
            progress=False,
        )
        start = time.perf_counter()
        runs = run_loops(
            family, cfgs, MnistSource(), store=store, folder="b", evaluate=hook, workers=workers, progress=False
        )
        elapsed = time.perf_counter() - start
        return elapsed, [float(r.generation(3).metrics["fid"]) for r in runs]


def main() -> None:
    from madutils.utils import cpu_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per generation")
    parser.add_argument("--n", type=int, default=500, help="images per generation")
    args = parser.parse_args()
    cores = cpu_threads()
    serial, a = run(1, args.steps, args.n)
    parallel, b = run(cores, args.steps, args.n)
    fids = lambda f: ", ".join(f"{v:.1f}" for v in f)  # noqa: E731
    print(
        f"| two DDPM loops × 2 generations ({args.steps} steps, {args.n} images) | one after another "
        f"({cores} threads) | {cores} processes at once | speed-up | FID at t = 3 (λ = 1, 0.5) |"
    )
    print("|---|---|---|---|---|")
    print(f"| {cores} cores | {serial:.1f} s | {parallel:.1f} s | {serial / parallel:.2f}x | {fids(a)} vs {fids(b)} |")


if __name__ == "__main__":
    main()
