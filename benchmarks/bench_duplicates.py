"""Precision and recall of a collapsed generation: many exact copies of a few images.

Self-consuming loops collapse onto a few images, so a late generation's features hold many exact duplicates. The
k-NN radius of such a point is exactly 0 as soon as it has k copies, and no other point can lower it; and a point
near a group of copies has many candidates tied at its radius. The block path used to settle every such row by an
exact float64 scan over every point of the set. It now keeps a radius of exactly 0 as it is, and settles the other
rows by one float32 product per block that selects the few points that can lie within the radius, measured
exactly. Both give identical radii (checked here and in tests/test_metrics.py).

    python benchmarks/bench_duplicates.py [--n 4000] [--d 2048]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def collapsed(n: int, d: int, seed: int = 0) -> np.ndarray:
    """n features of which half are tenfold copies of n / 20 distinct points, the rest distinct."""
    rng = np.random.default_rng(seed)
    copies = np.repeat(rng.standard_normal((n // 20, d)), 10, axis=0)
    x = np.concatenate([copies, rng.standard_normal((n - len(copies), d))]).astype(np.float32)
    return x[rng.permutation(n)]


def main() -> None:
    import torch

    from madutils.metrics import prd

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--d", type=int, default=2048)
    args = parser.parse_args()
    x = collapsed(args.n, args.d)
    s = prd._Set.make(x, x.mean(axis=0, dtype=np.float64), torch.device("cpu"))
    times, radii = {}, {}
    for name, full in (("scan every point", True), ("select, then measure", False)):
        start = time.perf_counter()
        radii[name] = prd._radii_sq(s, 5, prd.DEFAULT_BLOCK, full_scan_zero=full)
        times[name] = time.perf_counter() - start
    same = bool(torch.equal(radii["scan every point"], radii["select, then measure"]))
    assert same, "the two paths disagree"
    print(f"# k-NN radii (k = 5) of {args.n:,} features in d = {args.d}, half of them tenfold copies")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print()
    print("| n × d | exact scan of every point | select, then measure | speed-up | identical radii |")
    print("|---|---|---|---|---|")
    a, b = times["scan every point"], times["select, then measure"]
    print(f"| {args.n:,} × {args.d} | {a:.2f} s | {b:.2f} s | {a / b:.1f}x | {same} |")


if __name__ == "__main__":
    main()
