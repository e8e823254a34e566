"""The paper's claims C1–C12 (DESIGN.md) as functions of stored results.

Each function returns :class:`ClaimResult` rows: the measured statistic with its uncertainty and a verdict whose
criterion is fixed here, before any result is seen, and is the same at every scale. A criterion compares an effect
with its own noise (a z-score, a confidence interval over trials or seeds, an ordering that must hold at every later
generation); it never depends on hand-picked generations. ``not_run`` is only for missing data or hardware.

One module per paper section: ``gaussian`` (C1), ``images`` (C2–C4, C10, C12), ``fresh`` (C5–C8), ``appendix``
(C9, C11); ``core`` holds the row, the verdicts and the shared statistics.
"""

from .appendix import c9_gmm_modes, c11_flow_tails
from .core import COLUMNS, VERDICTS, ClaimResult, record_claims, table_markdown, trend, verdict
from .fresh import c5_fresh_images, c5_limit_independent_of_start, c6_phase_transition, c7_memory, c8_dataset_size
from .gaussian import c1_gaussian_martingale, log_drift
from .images import c2_fully_synthetic_unbiased, c3_fully_synthetic_biased, c4_augmentation, c12_stylegan

__all__ = [
    "COLUMNS",
    "ClaimResult",
    "VERDICTS",
    "c11_flow_tails",
    "c12_stylegan",
    "c1_gaussian_martingale",
    "c2_fully_synthetic_unbiased",
    "c3_fully_synthetic_biased",
    "c4_augmentation",
    "c5_fresh_images",
    "c5_limit_independent_of_start",
    "c6_phase_transition",
    "c7_memory",
    "c8_dataset_size",
    "c9_gmm_modes",
    "log_drift",
    "record_claims",
    "table_markdown",
    "trend",
    "verdict",
]
