"""Two GMM loops side by side: the worker processes' thread pools against the cores.

Notebook 05 runs its GMM loops (scikit-learn's ``GaussianMixture``: k-means++ initialisation and EM) two at a time,
one worker process per core with one thread each. scikit-learn's OpenMP pool and SciPy's OpenBLAS load only in
the worker, at its first fit, after the worker has limited the pools already loaded; they used to start with one
thread per core each, so that two workers ran four or more busy threads on two cores. The workers now also set
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` before anything loads
(``madutils.loops.THREAD_VARIABLES``). This times the same two loops, each way in a fresh store, in one
invocation: one after another in this process (every thread), two workers as now, and two workers whose later
pools are left unlimited (the workers as they were), and checks that the modes each loop covers at its last
iteration are the same.

    python benchmarks/bench_gmm_workers.py [--iterations 150]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def _unlimited_later_pools(threads: int, parent: int) -> None:
    """The worker start as it was: the pools loaded at the start limited, those that load later not."""
    from madutils import loops

    loops._start_worker(threads, parent)  # in the worker: the module as it is
    for name in loops.THREAD_VARIABLES:
        os.environ.pop(name, None)


def run(workers: int, iterations: int, before: bool = False) -> tuple[float, list]:
    from madutils import experiments, loops
    from madutils.scales import GMMSizes, sizes
    from madutils.store import Store

    exp = experiments.gmm(sizes(GMMSizes, "small", iterations=iterations, seeds=2))
    start_worker = loops._start_worker
    if before:  # the pool starts its workers with the initializer that run_loops finds here
        loops._start_worker = _unlimited_later_pools
    try:
        with tempfile.TemporaryDirectory() as root:
            t0 = time.perf_counter()
            runs = exp.run(Store(root), workers=workers, progress=False)
            elapsed = time.perf_counter() - t0
            return elapsed, [int(r.generation(iterations).metrics["modes_covered"]) for r in runs.values()]
    finally:
        loops._start_worker = start_worker


def main() -> None:
    from madutils.utils import cpu_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150, help="iterations of each loop")
    args = parser.parse_args()
    cores = cpu_threads()
    serial, a = run(1, args.iterations)
    now, b = run(2, args.iterations)
    before, c = run(2, args.iterations, before=True)
    print(
        f"| two GMM loops × {args.iterations} iterations (`small`) | one after another ({cores} threads) "
        "| 2 workers (now) | 2 workers (later pools unlimited, as before) | before / now | same modes |"
    )
    print("|---|---|---|---|---|---|")
    print(f"| {cores} cores | {serial:.1f} s | {now:.1f} s | {before:.1f} s | {before / now:.2f}x | {a == b == c} |")


if __name__ == "__main__":
    main()
