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

from . import registry
from .data import FFHQ_HELP, DatasetError, ffhq_path
from .experiments import ddpm_fresh_loops, ddpm_loops
from .loops import loop_kind
from .metrics.features import INCEPTION_FILE, inception_weights_path
from .paths import runs_dir
from .scales import (
    DDPMSizes,
    FlowSizes,
    FreshGaussianSizes,
    GaussianMartingaleSizes,
    GMMSizes,
    StyleGANSizes,
    WGANSizes,
    sizes,
)
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


def _loop_bytes(cfg, sample_bytes: int) -> float:
    """The synthetic data a loop stores: every generation's output (its n_out = max(n_s, n_eval) samples)."""
    return float(cfg.generations * max(cfg.n_out, 1)) * sample_bytes


def estimated_disk_gb(notebook: str, scale: str) -> float:
    """The disk that notebook ``notebook``'s stored results take at ``scale`` (decimal GB), from its sizes: the
    Monte Carlo arrays of the Gaussian experiments (four float32 arrays of trials × generations per loop), every
    generation's synthetic data of the image loops (uint8 images, one byte per pixel and channel) and, for StyleGAN2,
    one float32 copy of the generator per generation. Shared loops count in every notebook that reads them."""

    total = 0.0
    uses = registry.notebook(notebook).experiments
    if "gaussian_martingale" in uses:
        sz = sizes(GaussianMartingaleSizes, scale)
        total += len(sz.lams) * len(sz.n_ss) * 4 * sz.trials * sz.generations * 4
    if "fresh_gaussian" in uses:
        st = sizes(FreshGaussianSizes, scale).start
        total += len(st.lams) * len(st.n_inis) * 4 * st.trials * st.generations * 4
    if "ddpm" in uses:
        d = sizes(DDPMSizes, scale)
        loops = ddpm_loops(d) | ddpm_fresh_loops(d)
        total += sum(_loop_bytes(c, 28 * 28 + 8) for c in loops.values())
    if "stylegan" in uses:
        s = sizes(StyleGANSizes, scale)
        pixels = (3 if s.data == "ffhq" else 1) * s.resolution**2
        gens = sum(s.generations.values())
        total += s.seeds * gens * (s.n * pixels + _stylegan_generator_bytes(s))
        # the augmentation loop's pool: each generation stores its own n samples (counted above)
    if "wgan" in uses:
        w = sizes(WGANSizes, scale)
        total += w.seeds * w.generations * w.n * (28 * 28 + 8)
    if "gmm" in uses:
        g = sizes(GMMSizes, scale)
        total += g.seeds * g.iterations * g.n * 16 * 2  # samples and the fitted mixture (about as large)
    if "flow" in uses:
        f = sizes(FlowSizes, scale)
        total += f.seeds * len(f.lams) * f.generations * f.n * 16
    return total / GB


BASE_MEMORY_GB = 2.0  # Python, PyTorch, the notebook kernel and the feature networks


def estimated_memory_gb(notebook: str, scale: str) -> float:
    """The peak host memory (decimal GB) of notebook ``notebook`` at ``scale``, from its sizes: its largest loop
    at a time, plus :data:`BASE_MEMORY_GB`.

    * Gaussian Monte Carlo (01, 04): one loop's four trials × generations float64 arrays while it is simulated,
      and about six such arrays of temporaries while the claims read one loop (stored results are memory-mapped,
      so the other loops are not held).
    * StyleGAN2 augmentation loop with its growing pool: at generation g the real set, the g − 1 earlier outputs
      and the training set concatenated from them, 2g · n images (the training set is dropped before sampling).
    * DDPM and WGAN-GP: the training set as uint8 and float32 and one generation's output (small).
    The test ``tests/test_prerequisites.py`` measures the Gaussian case at reduced sizes."""

    uses = registry.notebook(notebook).experiments
    peaks = [0.0]
    if "gaussian_martingale" in uses:
        sz = sizes(GaussianMartingaleSizes, scale)
        peaks.append(6 * sz.trials * sz.generations * 8)
    if "fresh_gaussian" in uses:
        st = sizes(FreshGaussianSizes, scale).start
        peaks.append(6 * st.trials * st.generations * 8)
    if "stylegan" in uses:
        sg = sizes(StyleGANSizes, scale)
        pixels = (3 if sg.data == "ffhq" else 1) * sg.resolution**2
        g = max(gens for (kind, _), gens in sg.generations.items() if loop_kind(kind) == "fixed")
        peaks.append((2 + 2 * (g - 1)) * sg.n * pixels)
    if "ddpm" in uses:
        d = sizes(DDPMSizes, scale)
        peaks.append(max(d.n * 2, d.fresh_n * 2 + max(d.fresh_inis)) * 28 * 28 * 6)
    if "wgan" in uses:
        w = sizes(WGANSizes, scale)
        peaks.append(w.n * 28 * 28 * 6)
    return BASE_MEMORY_GB + max(peaks) / GB


def _host_memory_gb() -> float | None:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not on Linux
        return None


def _stylegan_generator_bytes(s) -> float:
    """float32 bytes of StyleGAN2's generator: about 4 · Σ (3 × 3 × c_in × c_out) over the two convolutions of each
    resolution, plus the mapping network (an estimate from the channel widths; the synthesis dominates)."""
    import math

    res = [2**k for k in range(2, int(math.log2(s.resolution)) + 1)]
    ch = [min(s.family.channel_base // r, s.family.channel_max) for r in res]
    conv = sum(2 * 9 * c * c for c in ch)
    mapping = s.family.mapping_layers * s.family.w_dim * s.family.w_dim
    return 4.0 * (conv + mapping)


def check(notebook: str, scale: str, device: str = "auto", runs: Path | None = None) -> Report:
    """The prerequisites of ``notebook`` at ``scale``: raises :class:`PrerequisiteError` when the notebook cannot
    start (at ``paper`` scale: deep models without a usable GPU, too little free disk), else returns a
    :class:`Report` whose ``missing`` names the parts that cannot run (StyleGAN2 without FFHQ or the Inception
    weights). Below ``paper`` scale nothing is required beyond MNIST (prepared on first use)."""

    check_scale(scale)
    nb = registry.notebook(notebook)
    report = Report(notebook, scale)
    if scale != "paper":
        return report
    blocking = []
    deep = {"ddpm", "stylegan", "wgan"} & set(nb.experiments)
    if deep and str(device) != "cpu":
        import torch

        if not torch.cuda.is_available():
            blocking.append(
                f"a usable GPU: notebook {notebook} trains {', '.join(sorted(deep))} models at the paper scale, which "
                "takes days of GPU time (weeks on a CPU), and PyTorch sees no CUDA device (check `nvidia-smi` and "
                "that your PyTorch build matches the driver; README, 'Installing PyTorch'). To run it on the CPU "
                "anyway, pass device='cpu'."
            )
    if "stylegan" in nb.experiments:
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
