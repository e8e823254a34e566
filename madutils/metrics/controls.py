"""Metric controls: which degradations of real images the metrics can see.

The DDPM loops of the small scale degrade by blur and by losing their class conditioning; a k-NN precision on
LeNet features can *rise* under such degradations (a blurred digit falls into the wide balls of atypical real
digits). :func:`metric_controls` measures every metric of the image hook on real images that were never part of
the reference set and on three degraded copies of them, against the same reference set, so that a notebook can
say which changes precision, recall, density and coverage detect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTROLS = ("real", "blurred (σ = 2 px)", "two-digit blends", "smoothed noise blobs")


def degraded(images: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """``images`` (N, H, W) uint8 and three degraded copies of the same size: each image blurred with a Gaussian
    of σ = 2 pixels, the pixel mean of two random images, and Gaussian-smoothed white noise (σ = 2 px) with the
    images' mean intensity histogram-matched per image (bright blobs on black, no strokes)."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(images)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W) uint8, got shape {x.shape} and dtype {x.dtype}")
    rng = np.random.default_rng(seed)
    f = x.astype(np.float32)
    blurred = gaussian_filter(f, sigma=(0, 2, 2))
    blurred *= f.max(axis=(1, 2), keepdims=True) / np.maximum(blurred.max(axis=(1, 2), keepdims=True), 1e-6)
    blends = (f + f[rng.permutation(len(f))]) / 2
    noise = gaussian_filter(rng.standard_normal(f.shape).astype(np.float32), sigma=(0, 2, 2))
    # keep the share of bright pixels of each image: the blobs cover as much area as the digit's strokes
    share = (f > 127).mean(axis=(1, 2))
    cut = np.array([np.quantile(n, 1 - s) for n, s in zip(noise, share, strict=True)])
    blobs = np.where(noise > cut[:, None, None], 255.0, 0.0)
    blobs = gaussian_filter(blobs, sigma=(0, 0.7, 0.7))
    out = [f, blurred, blends, blobs]
    return {name: np.clip(v, 0, 255).round().astype(np.uint8) for name, v in zip(CONTROLS, out, strict=True)}


def metric_controls(hook, images: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """FID, precision, recall, density and coverage of ``images`` and of their degraded copies (:func:`degraded`)
    against ``hook``'s reference set, embedded by ``hook``'s features (an
    :class:`~madutils.metrics.hook.ImageMetrics`). One row per control."""
    rows = []
    for name, x in degraded(images, seed).items():
        feats = hook.embed(x)
        rows.append({"control": name} | hook.reference.evaluate(feats))
    return pd.DataFrame(rows).set_index("control")[["fid", "precision", "recall", "density", "coverage"]]
