"""Evaluation hooks of the 2-D loops of App. B: the mode statistics of the 25-mode mixture (Fig. 14, 15) and the
tails of the Rosenbrock density (Fig. 17), each with precision and recall against a fixed real sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import MODE_STD, grid_modes
from .prd import ReferenceSet


def mode_statistics(samples: np.ndarray, std: float = MODE_STD) -> dict[str, float]:
    """Diversity measures of Fig. 15 and the mode count of Fig. 14, for samples of a 25-mode model.

    ``total_variance``: trace of the sample covariance. ``modal_variance``: each sample is assigned to its nearest
    true mode; the trace of the covariance of each mode's samples, averaged over the 25 modes (a mode with fewer
    than two samples contributes 0). ``modes_covered``: modes with at least 1 % of the samples expected per mode
    within 3 standard deviations of the centre. ``high_quality``: fraction of samples within 3 standard deviations
    of some centre."""
    x = np.asarray(samples, dtype=np.float64)
    modes = grid_modes()
    d = np.linalg.norm(x[:, None, :] - modes[None], axis=2)
    nearest = d.argmin(axis=1)
    close = d.min(axis=1) <= 3 * std
    per_mode = []
    covered = 0
    for k in range(len(modes)):
        xs = x[nearest == k]
        per_mode.append(float(np.trace(np.cov(xs, rowvar=False))) if len(xs) >= 2 else 0.0)
        covered += int(np.sum(close & (nearest == k)) >= max(1, 0.01 * len(x) / len(modes)))
    return {
        "total_variance": float(np.trace(np.cov(x, rowvar=False))),
        "modal_variance": float(np.mean(per_mode)),
        "modes_covered": float(covered),
        "high_quality": float(close.mean()),
    }


@dataclass
class ModeMetrics:
    """Evaluation hook for the 2-D loops: the diversity measures of Fig. 15 (:func:`mode_statistics`) and precision
    and recall (k = 5) against a fixed set of real samples, on equal set sizes
    (:meth:`~madutils.metrics.prd.ReferenceSet.prdc_equal`)."""

    reference: np.ndarray
    k: int = 5

    def __post_init__(self) -> None:
        self._ref = ReferenceSet(np.asarray(self.reference, dtype=np.float64), k=self.k, with_fid=False)

    @property
    def min_samples(self) -> int:
        return self.k + 1

    def key(self) -> dict:
        return {"mode_metrics": self._ref.key(), "equal_sizes": True}

    def __call__(self, model, output, t: int) -> dict:
        pr = self._ref.prdc_equal(output)
        p, r = pr["precision"], pr["recall"]
        return mode_statistics(output) | {"precision": p, "recall": r}


@dataclass
class TailMetrics:
    """Evaluation hook for the Rosenbrock loop: how much of the tails is left. ``tail_mass`` is the fraction of
    samples with |x1| > 2 (4.55 % under the reference), ``x1_std`` the spread of x1 (1 under the reference),
    ``x2_q99`` the 99th percentile of x2 (the reference's long upper tail), and precision and recall (k = 5)
    against a fixed set of real samples, on equal set sizes."""

    reference: np.ndarray
    k: int = 5

    def __post_init__(self) -> None:
        self._ref = ReferenceSet(np.asarray(self.reference, dtype=np.float64), k=self.k, with_fid=False)

    @property
    def min_samples(self) -> int:
        return self.k + 1

    def key(self) -> dict:
        return {"tail_metrics": self._ref.key(), "equal_sizes": True}

    def __call__(self, model, output, t: int) -> dict:
        x = np.asarray(output)
        pr = self._ref.prdc_equal(x)
        p, r = pr["precision"], pr["recall"]
        return {
            "tail_mass": float(np.mean(np.abs(x[:, 0]) > 2)),
            "x1_std": float(x[:, 0].std()),
            "x2_q99": float(np.quantile(x[:, 1], 0.99)),
            "precision": p,
            "recall": r,
        }
