"""What a notebook needs before it starts, checked at once at the ``paper`` scale (where a late failure would cost
hours of GPU work): a usable GPU for the deep models, FFHQ and the Inception weights for the StyleGAN2 part, and the
free disk space its stored results will take, estimated from its sizes.

A missing requirement of the whole notebook stops it with one message that lists everything missing and where to
put it (:class:`PrerequisiteError`); a missing requirement of one *part* (FFHQ or the Inception weights, which only
the StyleGAN2 loops use) lets the rest run: the notebook asks :meth:`Report.can_run` and records that part's claim
rows as ``not_run`` with the reason.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import catalog, registry
from .data import FFHQ_HELP, DatasetError, ffhq_path
from .metrics.features import INCEPTION_FILE, inception_weights_path
from .paths import runs_dir
from .scales import sizes
from .utils import check_scale

GB = 1e9
DISK_MARGIN = 1.2  # free space asked for: the estimate plus 20 % (temporary files of atomic writes, executed notebooks)


class PrerequisiteError(RuntimeError):
    """A notebook cannot start: the message lists what is missing and what to do."""


@dataclass
class Report:
    """The outcome of :func:`check`: ``missing`` maps a part of the notebook (``"stylegan"``) to why it cannot
    run; ``disk_gb`` is the estimated size of the notebook's stored results, ``memory_gb`` its peak host memory."""

    notebook: str
    scale: str
    missing: dict[str, str] = field(default_factory=dict)
    disk_gb: float = 0.0
    memory_gb: float = 0.0

    def can_run(self, part: str) -> bool:
        return part not in self.missing

    def reason(self, part: str) -> str:
        return self.missing.get(part, "")


def estimated_disk_gb(notebook: str, scale: str) -> float:
    """The disk that notebook ``notebook``'s stored results take at ``scale`` (decimal GB): the sum of the estimates
    of its experiments in :mod:`madutils.catalog`, from their sizes (the Monte Carlo arrays of the Gaussian
    experiments, every generation's synthetic data of the image loops as uint8 images, and for StyleGAN2 one
    float32 copy of the generator per generation). Shared loops count in every notebook that reads them."""
    registry.notebook(notebook)
    return sum(e.disk(sizes(e.sizes_class, scale)) for e in catalog.notebook_entries(notebook)) / GB


BASE_MEMORY_GB = 2.0  # Python, PyTorch, the notebook kernel and the feature networks


def estimated_memory_gb(notebook: str, scale: str) -> float:
    """The peak host memory (decimal GB) of notebook ``notebook`` at ``scale``: its largest experiment's peak (one
    loop at a time, :mod:`madutils.catalog`), plus :data:`BASE_MEMORY_GB`. The test ``tests/test_prerequisites.py``
    measures the Gaussian case at reduced sizes."""
    registry.notebook(notebook)
    peaks = [e.memory(sizes(e.sizes_class, scale)) for e in catalog.notebook_entries(notebook)]
    return BASE_MEMORY_GB + max(peaks, default=0.0) / GB


def _host_memory_gb() -> float | None:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not on Linux
        return None


def check(notebook: str, scale: str, device: str = "auto", runs: Path | None = None) -> Report:
    """The prerequisites of ``notebook`` at ``scale``: raises :class:`PrerequisiteError` when the notebook cannot
    start (at ``paper`` scale: deep models without a usable GPU, too little free disk), else returns a
    :class:`Report` whose ``missing`` names the parts that cannot run (StyleGAN2 without FFHQ or the Inception
    weights). Below ``paper`` scale nothing is required beyond MNIST (prepared on first use)."""

    check_scale(scale)
    registry.notebook(notebook)
    report = Report(notebook, scale)
    if scale != "paper":
        return report
    blocking = []
    entries = catalog.notebook_entries(notebook)
    deep = sorted({e.name.split("_")[0] for e in entries if e.deep})
    if deep and str(device) != "cpu":
        import torch

        if not torch.cuda.is_available():
            blocking.append(
                f"a usable GPU: notebook {notebook} trains {', '.join(sorted(deep))} models at the paper scale, which "
                "takes days of GPU time (weeks on a CPU), and PyTorch sees no CUDA device (check `nvidia-smi` and "
                "that your PyTorch build matches the driver; README, 'Installing PyTorch'). To run it on the CPU "
                "anyway, pass device='cpu'."
            )
    if any(e.name == "stylegan" for e in entries):
        why = []
        try:
            ffhq_path()
        except DatasetError as exc:
            why.append(str(exc))
        if inception_weights_path() is None:
            why.append(
                f"the Inception weights of pytorch-fid ({INCEPTION_FILE}) are not in the data folder or the torch hub "
                "cache: download them once with internet (any pytorch-fid run does) or set MAD_INCEPTION_WEIGHTS"
            )
        if why:
            report.missing["stylegan"] = "; ".join(why) + (f" ({FFHQ_HELP})" if "FFHQ" in why[0] else "")
    report.memory_gb = estimated_memory_gb(notebook, scale)
    total = _host_memory_gb()
    if total is not None and total < report.memory_gb:
        blocking.append(
            f"host memory: notebook {notebook} needs about {report.memory_gb:.0f} GB at its peak at the paper scale "
            f"(estimated from its sizes; README, 'Running at the paper scale'), and this machine has {total:.0f} GB"
        )
    report.disk_gb = estimated_disk_gb(notebook, scale)
    folder = Path(runs) if runs is not None else runs_dir(scale)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / GB
    if free < DISK_MARGIN * report.disk_gb:
        blocking.append(
            f"free disk: notebook {notebook} stores about {report.disk_gb:.0f} GB under {folder} at the paper scale "
            f"(estimated from its sizes, plus 20 %), and {free:.0f} GB are free there; free space or point MAD_ROOT "
            "at a larger disk"
        )
    if blocking:
        raise PrerequisiteError(
            f"notebook {notebook} cannot start at the paper scale; it needs:\n- " + "\n- ".join(blocking)
        )
    return report
