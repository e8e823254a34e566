"""The cost of one paper-scale generation of the image models, measured on this machine's device.

For the conditional DDPM (MNIST, ``madutils.scales`` entry "ddpm", paper) and StyleGAN2 (FFHQ 128 × 128, entry
"stylegan", paper): the time of a training step (from two short trainings of ``--steps`` and 2 × ``--steps`` steps,
so that set-up and compilation cancel; "≤" marks an upper bound where they do not) and of sampling one image
(from ``--images`` samples), on random data of the right shape; then the training time of one generation (the
paper scale's steps), the sampling time of its n synthetic images, and the total of every loop of the paper scale.
Nothing is stored; the printed table goes into the README.

    python benchmarks/bench_generation_cost.py [--device cuda] [--steps 20] [--images 256] [--only ddpm|stylegan]

``--scale smoke`` runs the same measurement on the tiny smoke-scale models (a check of the script on a CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np


def timed(fn) -> float:
    import torch

    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(family, data, steps: int, images: int, lam: float) -> tuple[float, float, bool]:
    """Seconds per training step and per sampled image, and whether the step time is only an upper bound (when
    the longer training is not clearly longer, set-up dominates: its time per step is reported instead)."""
    short = dataclasses.replace(family, steps=steps, progress=False)
    long = dataclasses.replace(family, steps=2 * steps, progress=False)
    timed(lambda: short.fit(data, seed=0))  # warm-up (cuDNN autotuning, compilation)
    t1 = timed(lambda: short.fit(data, seed=1))
    t2 = timed(lambda: long.fit(data, seed=1))
    model = short.fit(data, seed=2)
    short.sample(model, images, lam, seed=0)  # warm-up at the timed batch size: no recompilation inside the timing
    ts = timed(lambda: short.sample(model, images, lam, seed=1))
    bound = t2 < 1.2 * t1
    return (t2 / (2 * steps) if bound else (t2 - t1) / steps), ts / images, bound


def loops_total(per_generation: float, generations: dict | int, loops: int = 1) -> tuple[float, int]:
    """Total seconds of every loop, counting the shared generation 1 once."""
    counts = list(generations.values()) if isinstance(generations, dict) else [generations] * loops
    trainings = 1 + sum(g - 1 for g in counts)
    return per_generation * trainings, trainings


def main() -> None:
    from dataclasses import replace

    from madutils.scales import DDPMSizes, StyleGANSizes, sizes
    from madutils.utils import resolve_device

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--only", choices=("ddpm", "stylegan"))
    parser.add_argument("--scale", default="paper", choices=("smoke", "small", "paper"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    rows = []
    if args.only in (None, "ddpm"):
        sz = sizes(DDPMSizes, args.scale)
        fam = replace(sz.family, device=device, compile=device.startswith("cuda"))
        n = 4096
        data = (rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), np.arange(n) % 10)
        step, image, bound = measure(fam, data, args.steps, args.images, lam=0.5)
        train, sample = step * fam.steps, image * sz.n
        total, k = loops_total(
            train + sample, sz.generations, loops=len(sz.lams) + len(sz.lams_aug)
        )  # fully synthetic and augmentation loops of notebooks 02 and 03
        rows.append(("DDPM, MNIST 28 × 28", fam.steps, step, bound, image, sz.n, train, sample, total, k))
    if args.only in (None, "stylegan"):
        sz = sizes(StyleGANSizes, args.scale)
        fam = replace(sz.family, device=device)
        r = sz.resolution
        data = rng.integers(0, 256, (512, 3 if sz.data == "ffhq" else 1, r, r), dtype=np.uint8)
        step, image, bound = measure(fam, data, args.steps, args.images, lam=0.7)
        train, sample = step * fam.steps, image * sz.n
        total, k = loops_total(train + sample, sz.generations)
        rows.append((f"StyleGAN2, {sz.data} {r} × {r}", fam.steps, step, bound, image, sz.n, train, sample, total, k))
    print(f"device: {device}, scale: {args.scale}")
    print("| model | steps / generation | s / step | ms / image | n | training (h) | sampling (h) | all loops |")
    print("|---|---|---|---|---|---|---|---|")
    for name, steps, step, bound, image, n, train, sample, total, k in rows:
        print(
            f"| {name} | {steps:,} | {'≤ ' if bound else ''}{step:.3g} | {1e3 * image:.3g} | {n:,} | "
            f"{train / 3600:.2f} | "
            f"{sample / 3600:.2f} | {total / 3600:.1f} h ({k} trainings) |"
        )


if __name__ == "__main__":
    main()
