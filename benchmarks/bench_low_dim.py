"""Precision and recall on 2-D data: the exact low-dimensional path against the generic block path.

The GMM loop of notebook 05 (App. B.2) evaluates precision and recall (k = 5) of 1,000 fitted samples against
2,000 real ones after every one of its iterations. The generic path (float32 distance blocks with exact float64
re-checks) re-checks most decisions on collapsing 2-D data, where many distances tie; the low-dimensional path
computes every distance exactly in float64 at once. Both give identical values (checked here and in
tests/test_metrics.py).

    python benchmarks/bench_low_dim.py
"""

from __future__ import annotations

import time

import numpy as np


def data(collapsed: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from madutils.data import GridSource, grid_modes

    rng = np.random.default_rng(seed)
    real = GridSource().draw(2000, seed=10**6)
    if not collapsed:
        return real, GridSource().draw(1000, seed=seed)
    modes = grid_modes()[[0, 7, 12]]  # three modes left, as after many iterations
    return real, modes[rng.integers(0, 3, 1000)] + 0.02 * rng.standard_normal((1000, 2))


def median_time(fn, repeats: int = 5):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def main() -> None:
    from madutils.metrics import ReferenceSet, prd

    print("| data (2-D, 2,000 real × 1,000 fake) | block path | low-dimensional path | speed-up | P, R (same) |")
    print("|---|---|---|---|---|")
    for collapsed in (False, True):
        real, fake = data(collapsed)
        low_dim = prd.LOW_DIM
        ref_low = ReferenceSet(real, with_fid=False)
        low, t_low = median_time(lambda ref=ref_low, f=fake: ref.precision_recall(f))
        prd.LOW_DIM = 0
        try:
            ref_block = ReferenceSet(real, with_fid=False)
            block, t_block = median_time(lambda ref=ref_block, f=fake: ref.precision_recall(f))
        finally:
            prd.LOW_DIM = low_dim
        assert low == block, (low, block)
        name = "three modes left" if collapsed else "25 modes"
        print(
            f"| {name} | {1e3 * t_block:.1f} ms | {1e3 * t_low:.1f} ms | {t_block / t_low:.1f}x | "
            f"{low[0]:.3f}, {low[1]:.3f} |"
        )


if __name__ == "__main__":
    main()
