"""The paper's claims C1–C12 (docs/design.md) as functions of stored results.

Each function returns :class:`ClaimResult` rows, one sentence of the paper each: the measured statistic with its
uncertainty, the smallest effect that counts as the paper's (``effect``, with its reason) and a verdict whose
criterion is fixed here, before any result is seen, and is the same at every scale. A criterion compares an effect
with its own noise: a z-score over independent Monte Carlo trials, or an interval across seeds of per-seed
statistics (slopes, differences between two runs) floored by the metric's measurement noise (:mod:`.core`); it
never depends on hand-picked generations. Image rows pass a validity gate on generation 1 first. Verdicts
(:func:`.core.decide`): ``reproduced`` (the interval excludes 0 on the claimed side), ``not_reproduced`` (it
excludes the stated effect: the data contradict the claim, or show it smaller than stated), ``uninformative``
(it holds both, "underpowered" with the power at the stated effect; or the gate failed, or no interval exists) and
``not_run`` (missing data or hardware, or a λ this scale does not run). :mod:`madutils.tools.calibration` reports,
per trend and ordering row, its false-positive rate on null walks (at most 5 %, a test) and its power at the stated
effect.

One module per paper section: ``gaussian`` (C1), ``images`` (C2–C4, C10, C12), ``fresh`` (C5–C8), ``appendix``
(C9, C11); ``core`` holds the row, the verdicts and the shared statistics.
"""

from .appendix import c9_gmm_modes, c11_flow_tails
from .core import (
    COLUMNS,
    GATE_LABELS,
    GATE_RECALL,
    VERDICTS,
    ClaimResult,
    Gate,
    Interval,
    across_seeds,
    difference,
    gate,
    table_markdown,
    trend,
    verdict,
)
from .fresh import c5_fresh_images, c5_limit_independent_of_start, c6_phase_transition, c7_memory, c8_dataset_size
from .gaussian import c1_gaussian_martingale, log_drift
from .images import c2_fully_synthetic_unbiased, c3_fully_synthetic_biased, c4_augmentation, c12_not_run, c12_stylegan

__all__ = [
    "COLUMNS",
    "GATE_LABELS",
    "GATE_RECALL",
    "Gate",
    "Interval",
    "across_seeds",
    "difference",
    "gate",
    "ClaimResult",
    "VERDICTS",
    "c11_flow_tails",
    "c12_not_run",
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
    "table_markdown",
    "trend",
    "verdict",
]
