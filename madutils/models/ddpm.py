"""Conditional DDPM on MNIST with classifier-free guidance: the paper's main model (§3.2, §4.1, §5.1).

* DDPM (Ho et al. 2020): ε-prediction, loss ‖ε − ε_θ(x_t, t, c)‖², linear β schedule, ancestral sampling with
  the posterior variance σ_t² = β̃_t (Ho et al. find it equivalent to β_t). The paper uses T = 500; a smaller T
  rescales the β range by 500 / T so that the total noise Σ β_t (and ᾱ_T) stays comparable.
* Classifier-free guidance (Ho & Salimans 2021): the label is replaced by a "no label" token with probability 0.1
  in training; sampling uses ε = (1 + w) ε(x, c) − w ε(x, ∅), both terms from one doubled batch. The paper's bias
  is λ = 1 / (1 + w), i.e. w = 1/λ − 1: λ = 1 is plain conditional sampling, smaller λ follows the guidance harder
  (§2.3).
* A small conditional U-Net whose width is a parameter (optionally on 2 × 2 patches, residual blocks with
  GroupNorm; the time and label embeddings scale and shift the normalised activations of every block, adaptive
  GroupNorm as in Dhariwal & Nichol 2021, or are added to them), an EMA of the weights for sampling.
* A generation's synthetic dataset is class-balanced (n/10 samples per digit, in random order) and keeps its labels.

Speed: ``channels_last`` everywhere (much faster convolutions for small U-Nets on CPU), and on GPU bf16 autocast,
``cudnn.benchmark``, random numbers drawn on the device, the training data moved there once and the loss read back
only every 50 steps (no synchronisation per step), and optionally ``torch.compile``. On CPU the random streams and
results are those of earlier versions. The device is chosen automatically and is not part of a run's
configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..plain import storable
from ..utils import check_int, check_lam, resolve_device
from .base import NOT_KEY, TorchFamily, key_unless

NULL_LABEL = 10
PAPER_T = 500
PAPER_BETAS = (1e-4, 0.02)


def beta_schedule(T: int) -> torch.Tensor:
    """Linear β_1..β_T. For T ≠ 500 the range (1e-4, 0.02) of the paper's T = 500 is scaled by 500 / T (capped
    below 1), which keeps Σ β_t, and so the noise level at t = T, comparable."""
    T = check_int(T, "T", 2)
    scale = PAPER_T / T
    lo, hi = PAPER_BETAS[0] * scale, min(PAPER_BETAS[1] * scale, 0.999)
    return torch.linspace(lo, hi, T, dtype=torch.float64)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def _groups(c: int) -> int:
    return math.gcd(c, 8) or 1


CONDITIONING = ("scale-shift", "add")


class ResBlock(nn.Module):
    """GroupNorm–SiLU–conv twice, with a skip. The time-and-label embedding ``e`` either scales and shifts the
    normalised activations of the second convolution ("scale-shift": adaptive GroupNorm, h = GN(h)(1 + s) + b, as
    in Dhariwal & Nichol 2021) or is added to them ("add", as in Ho et al. 2020)."""

    def __init__(self, c_in: int, c_out: int, emb: int, conditioning: str = "scale-shift"):
        super().__init__()
        self.scale_shift = conditioning == "scale-shift"
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * c_out if self.scale_shift else c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.scale_shift:
            s, b = self.emb(e)[:, :, None, None].chunk(2, dim=1)
            h = self.norm2(h) * (1 + s) + b
        else:
            h = self.norm2(h + self.emb(e)[:, :, None, None])
        return self.conv2(F.silu(h)) + self.skip(x)


def _generator(seed: int, device: str) -> torch.Generator:
    """The random stream of a training or sampling run, on its device (on a GPU: noise drawn where it is used, and
    ``cudnn.benchmark`` picks the fastest convolutions for the fixed shapes of the loop)."""
    if str(device).startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    return torch.Generator(device=device).manual_seed(seed % 2**63)


class ConditionalUNet(nn.Module):
    """ε_θ(x_t, t, c) for 1 × H × W images: a U-Net with ``width`` channels at the top level and 2·width one level
    down. With ``patch`` = 2 the image is first folded into 2 × 2 patches (pixel unshuffle, 4 channels at H/2 × W/2)
    and unfolded at the end (``patch`` = 4: 4 × 4 patches): four (sixteen) times fewer positions for the
    convolutions, which is what makes training on a CPU affordable. Time (sinusoidal) and label embeddings enter
    every residual block (``conditioning``: see :class:`ResBlock`); label ``NULL_LABEL`` (10) means "no label"
    (classifier-free guidance)."""

    def __init__(self, width: int = 32, patch: int = 2, emb: int | None = None, conditioning: str = "scale-shift"):
        super().__init__()
        w = check_int(width, "width", 4)
        if patch not in (1, 2, 4):
            raise ValueError(f"patch = {patch}; use 1 (pixels), 2 or 4 (2 × 2 or 4 × 4 patches)")
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning = {conditioning!r}; use one of {CONDITIONING}")
        emb = emb or 4 * w
        self.width, self.patch = w, patch
        self.time = nn.Sequential(nn.Linear(w, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label = nn.Embedding(NULL_LABEL + 1, emb)
        self.inc = nn.Conv2d(patch * patch, w, 3, padding=1)
        self.down1 = ResBlock(w, w, emb, conditioning)
        self.down2 = ResBlock(w, 2 * w, emb, conditioning)
        self.mid1 = ResBlock(2 * w, 2 * w, emb, conditioning)
        self.mid2 = ResBlock(2 * w, 2 * w, emb, conditioning)
        self.up1 = ResBlock(3 * w, w, emb, conditioning)
        self.out = nn.Sequential(nn.GroupNorm(_groups(w), w), nn.SiLU(), nn.Conv2d(w, patch * patch, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        e = F.silu(self.time(timestep_embedding(t, self.width)) + self.label(c))
        h = self.inc(F.pixel_unshuffle(x, self.patch) if self.patch > 1 else x)
        h1 = self.down1(h, e)
        h2 = self.down2(F.avg_pool2d(h1, 2), e)
        m = self.mid2(self.mid1(h2, e), e)
        u = self.up1(torch.cat([F.interpolate(m, size=h1.shape[-2:], mode="nearest"), h1], 1), e)
        out = self.out(u)
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out


def images_to_model(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, 1, H, W) in [0, 255] → float32 in [-1, 1]."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"DDPM training images must be uint8 of shape (N, 1, H, W), got {x.dtype} {x.shape}")
    return torch.from_numpy(x).float().div_(127.5).sub_(1.0)


def model_to_images(x: torch.Tensor) -> np.ndarray:
    """float in [-1, 1] → uint8 in [0, 255] (what a saved image holds)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


@storable
@dataclass
class DDPMModel:
    """A trained generation: the EMA weights (on CPU), the configuration and the training history."""

    config: dict
    state: dict
    losses: list = field(default_factory=list)

    def network(self, device: str) -> ConditionalUNet:
        net = ConditionalUNet(
            self.config["width"], self.config["patch"], conditioning=self.config.get("conditioning", "add")
        )
        net.load_state_dict(self.state)
        net = net.to(device).eval()
        return net.to(memory_format=torch.channels_last)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


@dataclass(frozen=True)
class DDPMFamily(TorchFamily):
    """The conditional DDPM as a model family for :func:`madutils.loops.run_loop`.

    ``steps`` optimiser steps of batch ``batch_size`` (AdamW, learning rate ``lr`` with a short warm-up and cosine
    decay, EMA ``ema``) train a fresh network every generation. With ``effort_images``, ``steps`` are the effort
    for that many images and a smaller training set gets half the steps for a tenth of the images,
    ``steps · 2^log10(n / effort_images)`` (rounded up; :meth:`steps_for`), so that it neither memorises its
    images, as the full effort would, nor stays undertrained, as effort in proportion to n (or to √n) leaves it
    (docs/notes.md); larger sets get ``steps``.
    ``sample_steps`` ≤ T ancestral steps are used when sampling (T: the full DDPM chain; fewer: evenly spaced
    timesteps with the DDPM posterior between them, as in the respacing of Nichol & Dhariwal 2021).
    ``conditioning`` is how the time and label embeddings enter the U-Net ("scale-shift", the default, or "add";
    see :class:`ResBlock`). ``compile`` and ``progress`` do not change results and are left out of the family's
    key; the device kind and the CPU thread count, which change them by round-off, enter the run key through
    :func:`madutils.loops.compute_key`.
    """

    width: int = 32
    patch: int = 2
    conditioning: str = "scale-shift"
    T: int = PAPER_T
    steps: int = 5000
    batch_size: int = 128
    lr: float = 2e-3
    ema: float = 0.999
    p_uncond: float = 0.1
    sample_steps: int | None = None
    sample_batch: int = field(default=500, metadata=NOT_KEY)
    effort_images: int | None = field(default=None, metadata=key_unless(None))
    name: str = "ddpm"
    device: str = field(default="auto", metadata=NOT_KEY)
    compile: bool = field(default=False, metadata=NOT_KEY)
    progress: bool = field(default=True, metadata=NOT_KEY)

    def __post_init__(self) -> None:
        check_int(self.width, "width", 4)
        if self.conditioning not in CONDITIONING:
            raise ValueError(f"conditioning = {self.conditioning!r}; use one of {CONDITIONING}")
        check_int(self.T, "T", 2)
        check_int(self.steps, "steps", 1)
        check_int(self.batch_size, "batch_size", 1)
        if not 0.0 <= self.p_uncond < 1.0:
            raise ValueError(f"p_uncond = {self.p_uncond} must lie in [0, 1) (the paper: 0.1)")
        if self.sample_steps is not None and not 1 <= self.sample_steps <= self.T:
            raise ValueError(f"sample_steps = {self.sample_steps} must lie in [1, T = {self.T}]")
        if not (0 < self.lr < 1):
            raise ValueError(f"lr = {self.lr} is not a usable learning rate")
        if self.effort_images is not None:
            check_int(self.effort_images, "effort_images", 1)

    def steps_for(self, n: int) -> int:
        """The optimiser steps for a training set of ``n`` images (see ``effort_images``)."""
        if self.effort_images is None or n >= self.effort_images:
            return self.steps
        return max(1, math.ceil(self.steps * 2.0 ** math.log10(n / self.effort_images)))

    def trained_on(self, n: int) -> DDPMFamily:
        """This family as it trains ``n`` images: without ``effort_images`` where that does not change the steps,
        so that a loop's generation 1 on as many images is shared with the loops of the plain family
        (:func:`madutils.loops.first_family`)."""
        if self.effort_images is not None and n >= self.effort_images:
            return replace(self, effort_images=None)
        return self

    # -- training --------------------------------------------------------------------------------------------

    def fit(self, data, seed: int) -> DDPMModel:
        images, labels = data
        x0 = images_to_model(images)
        h, w = x0.shape[-2:]
        if h % self.patch or w % self.patch or h // self.patch < 2 or w // self.patch < 2:
            raise ValueError(
                f"image size {h}×{w} must be a multiple of the patch size {self.patch} (at least 2 patches)"
            )
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if len(y) != len(x0) or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise ValueError("labels must be digits 0..9, one per image")
        device = resolve_device(self.device)
        gen = _generator(seed, device)
        torch.manual_seed(seed % 2**63)
        net = ConditionalUNet(self.width, self.patch, conditioning=self.conditioning).to(device)
        cpu = device == "cpu"
        net = net.to(memory_format=torch.channels_last)
        x0, y = x0.to(device), y.to(device)  # once: no host-to-device copy per step
        ema = ConditionalUNet(self.width, self.patch, conditioning=self.conditioning).to(device)
        ema.load_state_dict(net.state_dict())
        ema.requires_grad_(False)
        train_net = torch.compile(net) if (self.compile and not cpu) else net
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=0.0)
        steps = self.steps_for(len(x0))
        warm = max(1, steps // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
        )
        abar = torch.cumprod(1 - beta_schedule(self.T), 0).float().to(device)
        losses = []
        bar = _progress(steps, f"training DDPM (width {self.width}, {len(x0)} images)", self.progress)
        for step in range(steps):
            # random numbers come from a generator on the training device (no host-side draws and copies per step)
            idx = torch.randint(0, len(x0), (self.batch_size,), generator=gen, device=device)
            xb, yb = x0[idx], y[idx]
            drop = torch.rand(len(yb), generator=gen, device=device) < self.p_uncond
            yb = torch.where(drop, torch.full_like(yb, NULL_LABEL), yb)
            t = torch.randint(0, self.T, (len(xb),), generator=gen, device=device)
            noise = torch.randn(xb.shape, generator=gen, device=device)
            a = abar[t][:, None, None, None]
            xt = (a.sqrt() * xb + (1 - a).sqrt() * noise).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=not cpu):
                pred = train_net(xt, t, yb)
            loss = F.mse_loss(pred.float(), noise)
            losses.append(loss.detach())
            # reading the loss synchronises a GPU: only every 50 steps and at the last (a NaN stays NaN until then)
            if step % 50 == 0 or step == steps - 1:
                recent = torch.stack(losses[-50:]).float()
                if not bool(torch.isfinite(recent).all()):
                    bar.close()
                    raise FloatingPointError(
                        f"DDPM training diverged: a loss of {recent.tolist()[-1]} by step {step}; lower lr (now "
                        f"{self.lr})"
                    )
                bar.set_postfix(loss=f"{recent.mean().item():.4f}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            decay = min(self.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                    pe.lerp_(p, 1 - decay)
            bar.update()
        bar.close()
        state = {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}
        config = {
            "width": self.width,
            "patch": self.patch,
            "conditioning": self.conditioning,
            "T": self.T,
            "image_size": (h, w),
        }
        history = torch.stack(losses).double().cpu().numpy() if losses else np.zeros(0)
        return DDPMModel(config, state, [float(np.mean(history[i : i + 100])) for i in range(0, len(history), 100)])

    # -- sampling --------------------------------------------------------------------------------------------

    def sample(self, model: DDPMModel, n: int, lam: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` class-balanced samples with bias λ (guidance w = 1/λ − 1), in random order, as uint8 images and
        their labels."""
        lam = check_lam(lam)
        n = check_int(n, "n", 0)
        rng = np.random.default_rng(seed)
        labels = np.concatenate([np.full(n // 10 + (d < n % 10), d) for d in range(10)])
        labels = labels[rng.permutation(len(labels))].astype(np.int64)
        device = resolve_device(self.device)
        net = model.network(device)
        if self.compile and device != "cpu":
            net = torch.compile(net)
        gen = _generator(seed, device)
        h, w = model.config["image_size"]
        out = []
        bar = _progress(n, f"sampling DDPM (λ={lam:g})", self.progress)
        for s in range(0, n, self.sample_batch):
            yb = torch.as_tensor(labels[s : s + self.sample_batch], device=device)
            out.append(self._sample_batch(net, yb, 1.0 / lam - 1.0, gen, device, (h, w)))
            bar.update(len(yb))
        bar.close()
        images = np.concatenate(out) if out else np.zeros((0, 1, h, w), np.uint8)
        return images, labels

    def timesteps(self) -> list[int]:
        """The timesteps visited when sampling (0-based, decreasing)."""
        k = self.sample_steps or self.T
        return sorted({int(round(v)) for v in np.linspace(self.T - 1, 0, k)}, reverse=True)

    @torch.no_grad()
    def _sample_batch(self, net, y, w: float, gen, device, size) -> np.ndarray:
        abar_full = torch.cumprod(1 - beta_schedule(self.T), 0)
        ts = self.timesteps()
        x = torch.randn((len(y), 1, *size), generator=gen, device=device)
        cpu = device == "cpu"
        guided = w != 0.0
        y_in = torch.cat([y, torch.full_like(y, NULL_LABEL)]) if guided else y
        for i, t in enumerate(ts):
            a_t = abar_full[t]
            a_prev = abar_full[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, dtype=torch.float64)
            beta = 1 - a_t / a_prev  # the β of the (respaced) step t → previous visited step
            x_in = (torch.cat([x, x]) if guided else x).contiguous(memory_format=torch.channels_last)
            tt = torch.full((len(x_in),), t, device=device, dtype=torch.long)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=not cpu):
                eps = net(x_in, tt, y_in).float()
            if guided:
                eps = (1 + w) * eps[: len(y)] - w * eps[len(y) :]
            mean = (x - beta.float() / (1 - a_t).sqrt().float() * eps) / (1 - beta).sqrt().float()
            if i + 1 < len(ts):
                sigma = (beta * (1 - a_prev) / (1 - a_t)).sqrt().float()  # posterior σ (β̃); equals √β at T steps
                x = mean + sigma * torch.randn(x.shape, generator=gen, device=device)
            else:
                x = mean
        return model_to_images(x)
