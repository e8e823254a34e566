"""One switch for every size: ``smoke`` (seconds, for tests; numbers mean nothing), ``small`` (the default of
``./reproduce.sh``: every figure on a 2-core CPU, sized so that the paper's qualitative claims show) and ``paper``
(the paper's sizes, for GPUs).

Each notebook reads its sizes with ``sizes("01", scale)``; the notebook states why the small sizes were chosen.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

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
}


def sizes(notebook: str, scale: str) -> MappingProxyType:
    """The sizes of one notebook at one scale (read-only)."""
    check_scale(scale)
    try:
        table = _SIZES[notebook]
    except KeyError:
        raise ValueError(f"no sizes for notebook {notebook!r}; known: {sorted(_SIZES)}") from None
    return MappingProxyType(dict(table[scale]))
