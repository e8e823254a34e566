"""Exact against sample-based Monte Carlo of the Gaussian fresh data loop (issue: exact >= 20x faster at
n = 10,000, d = 100, and flat in n). Both methods run in this one invocation on the same settings.

    python benchmarks/bench_gaussian_simulate.py [--d 100] [--ns 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from madutils.loops import LoopConfig
from madutils.montecarlo import simulate


def per_generation_per_trial(method: str, d: int, n: int, trials: int, generations: int) -> float:
    n_r = max(1, n // 10)
    loop = dict(n_ini=n, n_s=n - n_r, real="fresh", n_r=n_r, lam=0.9, seed=0)
    simulate(LoopConfig(generations=1, **loop), d, min(trials, 2), method=method)  # warm-up (imports, thread pools)
    start = time.perf_counter()
    simulate(LoopConfig(generations=generations, **loop), d, trials, method=method)
    return (time.perf_counter() - start) / (generations * trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--ns", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    print(f"# exact vs samples: fresh data loop, d = {args.d}, n = n_r + n_s with n_r = n/10, λ = 0.9")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print()
    print("| n | samples (ms / generation / trial) | exact (ms / generation / trial) | speed-up |")
    print("|---|---|---|---|")
    for n in args.ns:
        # enough work to time, bounded for the slow reference
        sample_trials = max(1, min(16, 40000 // n))
        t_samples = per_generation_per_trial("samples", args.d, n, sample_trials, 3)
        t_exact = per_generation_per_trial("exact", args.d, n, 64, 10)
        print(f"| {n:,} | {1e3 * t_samples:.2f} | {1e3 * t_exact:.3f} | {t_samples / t_exact:.0f}x |")


if __name__ == "__main__":
    main()
