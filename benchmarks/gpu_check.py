"""The prepared GPU check: one short script (under 10 minutes on one GPU) that measures what the paper-scale estimates
need and writes them as JSON (and a Markdown table on stdout).

Measured, at the paper's sizes (``madutils.scales``, scale ``paper``) unless ``--tiny``:

* DDPM: seconds per training step (bf16 autocast, ``torch.compile`` on CUDA), seconds per guided (λ = 0.5) and
  unguided (λ = 1) sampling call of ``--images`` images, peak GPU memory, and the number of graphs ``torch.compile``
  built (recompiles show as more than one per shape);
* StyleGAN2: seconds per step (one generator and one discriminator step, lazy R1 included) and per sampling call of
  256 images, peak GPU memory; the step again with bf16 autocast (``precision="bf16"``) and, on CUDA, compiled
  (``compile=True``), and the largest pixel difference of bf16-trained samples from the float32-trained ones;
* WGAN-GP: seconds per generator step (with its critic steps), and compiled on CUDA;
* Inception features: images per second on 2,000 images (random weights when the real ones are missing: the speed
  is the same);
* precision/recall/density/coverage of 20,000 × 20,000 features of 2,048 dimensions, TF32 allowed and not (the
  distances always run in full float32: the values must be identical);
* the LeNet metric hook on 60,000 MNIST-sized images;
* and from these, the extrapolated wall time of the DDPM and StyleGAN2 loops of the paper scale on 1 and on 8 GPUs
  (loops, seeds and generations from ``madutils.scales``; 8 GPUs: the independent loops spread evenly).

``--tiny`` runs every part at toy sizes on any device (the test suite runs it on the CPU); its numbers mean nothing.

    python benchmarks/gpu_check.py --out gpu_check.json [--device cuda] [--tiny]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation_cost import loops_total, measure, timed  # noqa: E402


def _peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else 0.0


def _graphs() -> int:
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"].get("unique_graphs", 0))
    except Exception:  # noqa: BLE001  (a private counter; absent in some builds)
        return -1


def ddpm_part(scale: str, device: str, steps: int, images: int, rng) -> dict:
    from madutils.scales import DDPMSizes, sizes

    sz = sizes(DDPMSizes, scale)
    fam = dataclasses.replace(sz.family, device=device, compile=device.startswith("cuda"), progress=False)
    n = 4096 if scale == "paper" else 256
    data = (rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), np.arange(n) % 10)
    _peak_reset(device)
    before = _graphs()
    step, _, bound = measure(fam, data, steps, images, lam=1.0)
    model = dataclasses.replace(fam, steps=steps).fit(data, seed=3)
    fam.sample(model, images, 0.5, seed=0)  # warm-up of the guided shape (twice the batch)
    guided = timed(lambda: fam.sample(model, images, 0.5, seed=1))
    unguided = timed(lambda: fam.sample(model, images, 1.0, seed=1))
    return {
        "train_s_per_step": step,
        "train_step_is_upper_bound": bound,
        "sample_s_guided": guided,
        "sample_s_unguided": unguided,
        "images_per_call": images,
        "peak_gpu_gb": _peak_gb(device),
        "compiled_graphs": (_graphs() - before) if before >= 0 else -1,
        "steps_per_generation": fam.steps,
        "n": sz.n,
    }


def stylegan_part(scale: str, device: str, steps: int, images: int, rng, r1: bool = True) -> dict:
    from madutils.scales import StyleGANSizes, sizes

    sz = sizes(StyleGANSizes, scale)
    fam = dataclasses.replace(sz.family, device=device, progress=False)
    r = sz.resolution
    data = rng.integers(0, 256, (512, 3 if sz.data == "ffhq" else 1, r, r), dtype=np.uint8)
    _peak_reset(device)
    if r1:
        steps = max(steps, fam.r1_interval)  # every timed training includes lazy R1 steps
    step, image, bound = measure(fam, data, steps, images, lam=0.7)
    out = {
        "train_s_per_step": step,
        "train_step_is_upper_bound": bound,
        "sample_s_per_image": image,
        "images_per_call": images,
        "peak_gpu_gb": _peak_gb(device),
        "steps_per_generation": fam.steps,
        "n": sz.n,
    }
    half = dataclasses.replace(fam, precision="bf16")
    out["train_s_per_step_bf16"] = measure(half, data, steps, images, lam=0.7)[0]
    few = dataclasses.replace(fam, steps=steps)  # the same short training in both precisions, the same seed
    a, b = (f.sample(f.fit(data, 0), 64, 1.0, 1) for f in (few, dataclasses.replace(few, precision="bf16")))
    out["bf16_max_pixel_difference"] = int(np.abs(a.astype(int) - b.astype(int)).max())
    if device.startswith("cuda"):
        out["train_s_per_step_compiled"] = measure(dataclasses.replace(fam, compile=True), data, steps, images, 0.7)[0]
    return out


def wgan_part(scale: str, device: str, steps: int, rng) -> dict:
    from madutils.scales import WGANSizes, sizes

    sz = sizes(WGANSizes, scale)
    fam = dataclasses.replace(sz.family, device=device, progress=False)
    data = rng.integers(0, 256, (2048, 1, 28, 28), dtype=np.uint8)
    step, _, bound = measure(fam, data, steps, 16, lam=1.0)
    out = {"train_s_per_step": step, "train_step_is_upper_bound": bound, "steps_per_generation": fam.steps}
    if device.startswith("cuda"):
        out["train_s_per_step_compiled"] = measure(dataclasses.replace(fam, compile=True), data, steps, 16, 1.0)[0]
    return out


def inception_part(device: str, images: int, rng) -> dict:
    from madutils.metrics.features import InceptionFeatures, inception_weights_path

    real = inception_weights_path() is not None
    net = InceptionFeatures(device=device) if real else InceptionFeatures.random_init(device=device)
    x = rng.integers(0, 256, (images, 3, 128, 128), dtype=np.uint8)
    net(x[: min(len(x), 64)])  # warm-up
    seconds = timed(lambda: net(x))
    return {"images": images, "images_per_s": images / seconds, "real_weights": real}


def prd_part(device: str, n: int, d: int, rng) -> dict:
    from madutils.metrics import ReferenceSet

    real = rng.standard_normal((n, d)).astype(np.float32)
    fake = (rng.standard_normal((n, d)) * 1.1).astype(np.float32)
    out = {}
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        start = time.perf_counter()
        ref = ReferenceSet(real, device=device, with_fid=False)
        values = ref.prdc(fake)
        out[f"tf32_{'on' if tf32 else 'off'}"] = {"seconds": time.perf_counter() - start, **values}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    off, on = out["tf32_off"], out["tf32_on"]
    out["identical"] = all(off[k] == on[k] for k in ("precision", "recall", "density", "coverage"))
    out["n"], out["d"] = n, d
    return out


def lenet_part(device: str, images: int, rng) -> dict:
    from madutils.metrics import mnist_metrics

    hook = mnist_metrics(keep_images=0, device=device)
    x = rng.integers(0, 256, (images, 28, 28), dtype=np.uint8)
    labels = np.arange(images) % 10
    seconds = timed(lambda: hook(None, (x, labels), 1))
    return {"images": images, "seconds": seconds}


def extrapolate(result: dict, scale: str) -> dict:
    """Hours of the paper-scale DDPM and StyleGAN2 loops (training + sampling per generation, generation 1 shared
    per seed) on 1 GPU, and on 8 when the independent loops spread evenly."""
    from madutils.scales import DDPMSizes, StyleGANSizes, sizes

    out = {}
    d = sizes(DDPMSizes, scale)
    if "ddpm" in result:
        r = result["ddpm"]
        per_gen = (
            r["train_s_per_step"] * r["steps_per_generation"] + r["sample_s_unguided"] / r["images_per_call"] * r["n"]
        )
        loops = len(d.lams) + len(d.lams_aug) + len(d.fresh_inis)
        total, trainings = loops_total(per_gen, d.generations, loops=loops)
        out["ddpm_hours_1_gpu"] = d.seeds * total / 3600
        units = loops * d.seeds  # independent loops, about equally long
        out["ddpm_hours_8_gpus"] = math.ceil(units / 8) * (total / loops) / 3600
        out["ddpm_trainings_per_seed"] = trainings
    s = sizes(StyleGANSizes, scale)
    if "stylegan" in result:
        r = result["stylegan"]
        per_gen = r["train_s_per_step"] * r["steps_per_generation"] + r["sample_s_per_image"] * r["n"]
        total, trainings = loops_total(per_gen, s.generations)
        longest = max(s.generations.values()) * per_gen  # a loop is sequential in its generations
        out["stylegan_hours_1_gpu"] = s.seeds * total / 3600
        out["stylegan_hours_8_gpus"] = max(longest, s.seeds * total / 8) / 3600
        out["stylegan_trainings_per_seed"] = trainings
    return out


def main(argv=None) -> dict:
    from madutils.utils import resolve_device

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--tiny", action="store_true", help="toy sizes on any device (for tests)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    scale = "smoke" if args.tiny else "paper"
    rng = np.random.default_rng(0)
    steps, images = (2, 4) if args.tiny else (20, 256)
    result: dict = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__,
        "scale": scale,
    }
    parts = {
        "ddpm": lambda: ddpm_part(scale, device, steps, images, rng),
        "stylegan": lambda: stylegan_part(scale, device, steps, images, rng, r1=not args.tiny),
        "wgan": lambda: wgan_part(scale, device, steps, rng),
        "inception": lambda: inception_part(device, 8 if args.tiny else 2000, rng),
        "prdc": lambda: prd_part(device, 300 if args.tiny else 20000, 16 if args.tiny else 2048, rng),
        "lenet_hook": lambda: lenet_part(device, 200 if args.tiny else 60000, rng),
    }
    for name, part in parts.items():
        start = time.perf_counter()
        try:
            result[name] = part()
        except Exception as exc:  # noqa: BLE001  (one failing part must not lose the others' numbers)
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    result["extrapolated"] = extrapolate({k: v for k, v in result.items() if "error" not in v}, scale)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"| part | measured ({result['device']}, torch {result['torch']}, {scale} sizes) |")
    print("|---|---|")
    for name in (*parts, "extrapolated"):
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result[name].items()}
        print(f"| {name} | {json.dumps(shown, ensure_ascii=False)} |")
    return result


if __name__ == "__main__":
    main()
