"""A measure of high-frequency artifacts in images (not a paper metric).

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
