"""One switch for every size: ``smoke`` (seconds, for tests; numbers mean nothing), ``small`` (the default of
``./reproduce.sh``: every figure on a 2-core CPU, sized so that the paper's qualitative claims show) and ``paper``
(the paper's sizes, for GPUs).

Each notebook reads its sizes with ``sizes("01", scale)``; the notebook states why the small sizes were chosen.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

SCALES = ("smoke", "small", "paper")


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)} (MAD_SCALE or --scale)")
    return scale


_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    # §3.1, App. A: Gaussian fully synthetic loop (claim C1).
    "01": {
        "smoke": dict(
            d=2,
            trials=200,
            generations=60,
            lams=(1.0, 0.95, 0.8),
            n_ss=(10, 100),
            picture_generations=20,
            picture_n_s=20,
        ),
        "small": dict(
            d=2,
            trials=4000,
            generations=1000,
            lams=(1.0, 0.95, 0.8),
            n_ss=(10, 100, 1000),
            picture_generations=300,
            picture_n_s=25,
        ),
        "paper": dict(
            d=2,
            trials=20000,
            generations=5000,
            lams=(1.0, 0.99, 0.95, 0.8),
            n_ss=(10, 100, 1000, 10000),
            picture_generations=1000,
            picture_n_s=25,
        ),
    },
    # §5, App. G: the fresh data loop. Gaussian parts (C5–C8); the DDPM part of Fig. 10 is under "ddpm".
    "04": {
        "smoke": dict(
            fig10=dict(d=10, n_r=100, n_s=900, n_inis=(200, 1000, 10000), lams=(1.0, 0.9), generations=12, trials=30),
            calibration=dict(points=24, trials=300, n_max=10**5),
            grid=dict(d=5, lams=(0.7, 0.9, 1.0), n_rs=(10, 100), ratios=(0.5, 4, 16), trials=12),
            memory=dict(d=5, n_r=100, n_s=1000, ks=(1, 2, 4), trials=12),
            size=dict(d=5, ps=(1.0, 0.5), lams=(1.0, 0.9), p_bias=0.5, ns=(100, 1000, 10000), trials=12),
        ),
        "small": dict(
            fig10=dict(d=100, n_r=100, n_s=900, n_inis=(200, 1000, 10000), lams=(1.0, 0.9), generations=60, trials=100),
            calibration=dict(points=48, trials=2000, n_max=10**6),
            grid=dict(
                d=20,
                lams=(0.5, 0.7, 0.9, 1.0),
                n_rs=(20, 50, 100, 200, 500, 1000, 2000),
                ratios=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
                trials=40,
            ),
            memory=dict(d=20, n_r=1000, n_s=10000, ks=(1, 2, 3, 4, 6, 8, 10), trials=100),
            size=dict(
                d=20,
                ps=(1.0, 0.75, 0.5, 0.25),
                lams=(1.0, 0.99, 0.95, 0.9),
                p_bias=0.5,
                ns=tuple(int(10**e) for e in np.arange(2, 8.01, 0.5)),
                trials=40,
            ),
        ),
        "paper": dict(
            fig10=dict(
                d=100, n_r=100, n_s=900, n_inis=(200, 1000, 10000), lams=(1.0, 0.9), generations=100, trials=500
            ),
            calibration=dict(points=64, trials=4000, n_max=10**7),
            grid=dict(
                d=100,
                lams=(0.5, 0.7, 0.9, 1.0),
                n_rs=(100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000),
                ratios=(0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 100),
                trials=100,
            ),
            memory=dict(d=100, n_r=1000, n_s=10000, ks=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), trials=200),
            size=dict(
                d=100,
                ps=(1.0, 0.75, 0.5, 0.25),
                lams=(1.0, 0.99, 0.95, 0.9),
                p_bias=0.5,
                ns=tuple(int(10**e) for e in np.arange(2, 9.01, 0.5)),
                trials=100,
            ),
        ),
    },
    # The conditional DDPM on MNIST (§3.2–3.4, §4, §5; notebooks 02, 03 and the DDPM part of 04). One entry for
    # the three notebooks, so that their loops share the same family and the same trained generation 1.
    "ddpm": {
        "smoke": dict(
            family=dict(width=8, patch=4, T=500, steps=15, batch_size=32, lr=2e-3, ema=0.99, sample_steps=4),
            n=200,
            generations=3,
            lams=(1.0, 0.8, 0.5),
            lams_aug=(1.0, 0.5),
            aug_generations=3,
            fresh_n=100,
            fresh_inis=(50, 200),
            fresh_generations=3,
            tsne_points=60,
            tsne_generations=(1, 3),
            grid_generations=(1, 2, 3),
        ),
        "small": dict(
            family=dict(width=32, patch=2, T=500, steps=2000, batch_size=32, lr=2e-3, ema=0.99, sample_steps=20),
            n=1000,
            generations=5,
            lams=(1.0, 0.5),
            lams_aug=(1.0, 0.5),
            aug_generations=4,
            fresh_n=500,
            fresh_inis=(100, 1000),
            fresh_generations=5,
            tsne_points=300,
            tsne_generations=(1, 3, 5),
            grid_generations=(1, 2, 3, 4, 5),
        ),
        "paper": dict(
            family=dict(width=64, patch=1, T=500, steps=20000, batch_size=128, lr=2e-4, ema=0.9995, sample_steps=None),
            n=60000,
            generations=10,
            lams=(1.0, 0.9, 0.8, 0.7, 0.5),
            lams_aug=(1.0, 0.9, 0.8, 0.7, 0.5),
            aug_generations=10,
            fresh_n=2000,
            fresh_inis=(200, 2000, 60000),
            fresh_generations=10,
            tsne_points=2000,
            tsne_generations=(1, 4, 7, 10),
            grid_generations=(1, 2, 4, 6, 8, 10),
        ),
    },
    # StyleGAN2 with truncation λ (§3.2–4.1, C12; notebooks 02, 03, 06 through madutils.stylegan_loops). The keys
    # of "generations" are the loops: fully synthetic at λ = 1 and 0.7, augmentation (growing pool) at λ = 1.
    "stylegan": {
        "smoke": dict(
            data="mnist",
            resolution=32,
            family=dict(channel_base=128, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2, steps=4, batch_size=8),
            n=64,
            generations={"fully synthetic λ=1": 3, "fully synthetic λ=0.7": 3, "augmentation λ=1": 3},
            keep_images=40,
            grid=12,
        ),
        "small": dict(
            data="mnist",
            resolution=32,
            family=dict(
                channel_base=256,
                channel_max=32,
                z_dim=64,
                w_dim=64,
                mapping_layers=2,
                steps=1000,
                batch_size=32,
                lr=0.0025,
                r1_gamma=1.0,
                ema=0.99,
            ),
            n=10000,
            generations={"fully synthetic λ=1": 4, "fully synthetic λ=0.7": 4, "augmentation λ=1": 4},
            keep_images=100,
            grid=20,
        ),
        "paper": dict(
            data="ffhq",
            resolution=128,
            family=dict(
                channel_base=32768,
                channel_max=512,
                z_dim=512,
                w_dim=512,
                mapping_layers=8,
                steps=70000,
                batch_size=32,
                lr=0.0025,
                r1_gamma=1.0,
                ema=0.999,
            ),
            n=70000,
            generations={"fully synthetic λ=1": 9, "fully synthetic λ=0.7": 5, "augmentation λ=1": 5},
            keep_images=64,
            grid=16,
        ),
    },
    # App. B: WGAN-GP on MNIST (C10), 25-mode GMM (C9), normalizing flow on Rosenbrock (C11).
    "05": {
        "smoke": dict(
            wgan=dict(family=dict(width=16, steps=10, batch_size=32), n=300, generations=3),
            gmm=dict(n=300, iterations=12, seeds=(0, 1), shown=(1, 6, 12), reference=500),
            flow=dict(
                family=dict(epochs=2, hidden=16, n_layers=4), n=500, generations=3, lams=(1.0, 0.8), reference=500
            ),
        ),
        "small": dict(
            wgan=dict(family=dict(width=128, steps=1200), n=10000, generations=6),
            gmm=dict(n=1000, iterations=1000, seeds=(0, 1), shown=(1, 100, 1000), reference=2000),
            flow=dict(family=dict(), n=5000, generations=16, lams=(1.0, 0.8), reference=5000),
        ),
        "paper": dict(
            wgan=dict(family=dict(width=256, steps=20000), n=60000, generations=100),
            gmm=dict(n=1000, iterations=2000, seeds=(0, 1, 2), shown=(1, 200, 2000), reference=2000),
            flow=dict(family=dict(), n=10000, generations=16, lams=(1.0, 0.8), reference=10000),
        ),
    },
}


def sizes(notebook: str, scale: str) -> MappingProxyType:
    """The sizes of one notebook at one scale (read-only)."""
    check_scale(scale)
    try:
        table = _SIZES[notebook]
    except KeyError:
        raise ValueError(f"no sizes for notebook {notebook!r}; known: {sorted(_SIZES)}") from None
    return MappingProxyType(dict(table[scale]))
