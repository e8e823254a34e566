"""Measures of image artifacts (not paper metrics): high-frequency power and grey backgrounds.

The paper shows StyleGAN2's cross-hatching artifacts growing over the generations of a fully synthetic loop
(Fig. 1, App. C) but does not measure them. Cross-hatching is a periodic pattern at high spatial frequency, so the
share of an image set's spectral power above a cut-off frequency tracks it: the power spectrum |FFT|² of every
image (mean removed per image and channel) is averaged over the set, and the power at radial frequencies above
``cutoff`` × Nyquist is divided by the total.
"""

from __future__ import annotations

import numpy as np


def high_frequency_share(images: np.ndarray, cutoff: float = 0.5, batch: int = 1024) -> float:
    """Share of the mean power spectrum of ``images`` (uint8 or float, ``(N, [C,] H, W)``) at radial frequencies
    above ``cutoff`` times the Nyquist frequency."""
    x = np.asarray(images)
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ValueError(f"images must be a non-empty (N, [C,] H, W) array, got shape {x.shape}")
    if not 0 < cutoff < np.sqrt(2):
        raise ValueError(f"cutoff = {cutoff} must lie in (0, √2) (a fraction of the Nyquist frequency)")
    h, w = x.shape[-2:]
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    high = np.hypot(fy, fx) / 0.5 > cutoff
    power = np.zeros((h, w))
    for s in range(0, len(x), batch):
        b = x[s : s + batch].astype(np.float64)
        b = b - b.mean(axis=(-2, -1), keepdims=True)
        p = np.abs(np.fft.fft2(b)) ** 2
        power += p.reshape(-1, h, w).sum(axis=0)
    total = power.sum()
    return float(power[high].sum() / total) if total > 0 else 0.0


def grey_background_share(images: np.ndarray, border: int = 3, level: float = 25.0) -> float:
    """Share of ``images`` (uint8, ``(N, [1,] H, W)``, black background) whose mean over a ``border`` pixels wide
    frame exceeds ``level`` (of 255): digits drawn on a grey background instead of black, an artifact of some DDPM
    loops. MNIST digits leave the frame black: none of the 10,000 test digits exceeds 25."""
    x = np.asarray(images)
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError(f"images must have one channel, got shape {x.shape}")
        x = x[:, 0]
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"images must be a non-empty (N, [1,] H, W) array, got shape {x.shape}")
    h, w = x.shape[-2:]
    if not 0 < border < min(h, w) / 2:
        raise ValueError(f"border = {border} must be between 1 and half the image size {h}×{w}")
    frame = np.ones((h, w), bool)
    frame[border:-border, border:-border] = False
    return float((x[:, frame].astype(np.float64).mean(axis=1) > level).mean())
