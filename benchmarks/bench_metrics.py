"""FID and precision/recall against the reference implementations, in one invocation.

* Fréchet distance at d = 2048: madutils.metrics.frechet_distance against pytorch-fid's
  calculate_frechet_distance (target: >= 10x faster, same value).
* Precision and recall (k = 5) at 10,000 x 10,000 features of width 2048: madutils.metrics.precision_recall
  against the prdc package (target: >= 3x faster, same values).
* Peak memory at 70,000 x 70,000 (the paper's FFHQ size), in a fresh process (target: < 3 GB; prdc would hold
  three 70,000 x 70,000 float64 distance matrices, 39 GB each). With --big only (several minutes on a CPU).
* On a GPU (when one is present), the 70,000 x 70,000 case on it.

    python benchmarks/bench_metrics.py [--big]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np


def features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Inception-like features: non-negative, correlated, float32 (made in chunks: no large temporaries)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(64, d)).astype(np.float32) / 8
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 4096):
        m = min(n, s + 4096) - s
        block = rng.normal(size=(m, d)).astype(np.float32) + rng.normal(size=(m, 64)).astype(np.float32) @ mix
        out[s : s + m] = np.abs(block + shift) * 0.5
    return out


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_fid(d: int = 2048) -> list[str]:
    from pytorch_fid.fid_score import calculate_frechet_distance

    from madutils.metrics import frechet_distance, gaussian_stats

    m1, s1 = gaussian_stats(features(10000, d, 1))
    m2, s2 = gaussian_stats(features(10000, d, 2, shift=0.05))
    frechet_distance(m1, s1, m2, s2)  # warm-up
    runs = [timed(lambda: frechet_distance(m1, s1, m2, s2)) for _ in range(3)]
    ours, t_ours = runs[0][0], float(np.median([t for _, t in runs]))
    ref, t_ref = timed(lambda: calculate_frechet_distance(m1, s1, m2, s2))
    return [
        f"| Fréchet distance, d = {d} (madutils: median of 3) | {t_ref:.2f} s | {t_ours:.2f} s | "
        f"{t_ref / t_ours:.1f}x | "
        f"{ref:.6f} vs {ours:.6f} (rel. diff {abs(ours - ref) / ref:.1e}) |"
    ]


def bench_prd(n: int = 10000, d: int = 2048) -> list[str]:
    from prdc import compute_prdc

    from madutils.metrics import precision_recall

    real, fake = features(n, d, 3), features(n, d, 4, shift=0.05)
    with contextlib.redirect_stdout(io.StringIO()):
        ref, t_ref = timed(lambda: compute_prdc(real, fake, nearest_k=5))
    (p, r), t_ours = timed(lambda: precision_recall(real, fake, k=5))
    same = "same" if (p, r) == (ref["precision"], ref["recall"]) else "DIFFERENT"
    return [
        f"| precision & recall, {n:,} × {n:,}, d = {d} | {t_ref:.1f} s | {t_ours:.1f} s | {t_ref / t_ours:.1f}x | "
        f"P {ref['precision']:.4f} / {p:.4f}, R {ref['recall']:.4f} / {r:.4f} ({same}) |"
    ]


CHILD = """
import json, resource, time, numpy as np, torch, sys
sys.path.insert(0, {here!r})
from bench_metrics import features
from madutils.metrics import precision_recall
n, d, device = {n}, {d}, {device!r}
real, fake = features(n, d, 5), features(n, d, 6, shift=0.05)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
t = time.perf_counter()
p, r = precision_recall(real, fake, k=5, device=device)
out = dict(seconds=time.perf_counter() - t, precision=p, recall=r,
           peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           features_gb=(real.nbytes + fake.nbytes) / 2**30)
if device == "cuda":
    out["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30
print(json.dumps(out))
"""


def bench_big(n: int = 70000, d: int = 2048, device: str = "cpu") -> list[str]:
    code = CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), n=n, d=d, device=device)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return [f"| precision & recall, {n:,} × {n:,} on {device} | failed: {proc.stderr.strip()[-300:]} |"]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    prdc_gb = 3 * n * n * 8 / 2**30
    extra = f", GPU peak {res['peak_gpu_gb']:.2f} GB" if "peak_gpu_gb" in res else ""
    return [
        f"| precision & recall, {n:,} × {n:,}, d = {d}, {device} | prdc: three {n:,}² float64 matrices = "
        f"{prdc_gb:.0f} GB (not run) | {res['seconds']:.0f} s, peak RSS {res['peak_rss_gb']:.2f} GB (features "
        f"{res['features_gb']:.2f} GB){extra} | | P {res['precision']:.4f}, R {res['recall']:.4f} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", action="store_true", help="also the 70,000 x 70,000 memory run (minutes)")
    args = parser.parse_args()
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, GPU: {gpu}"
    )
    print()
    print("| case | reference | madutils | speed-up | values (reference / madutils) |")
    print("|---|---|---|---|---|")
    for line in bench_fid() + bench_prd():
        print(line, flush=True)
    if args.big:
        for line in bench_big(device="cpu"):
            print(line, flush=True)
    if torch.cuda.is_available():
        for line in bench_big(device="cuda"):
            print(line, flush=True)
    print(f"\n(max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB)")


if __name__ == "__main__":
    main()
