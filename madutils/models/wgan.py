"""WGAN-GP on MNIST in the fully synthetic loop (App. B.1, Fig. 13).

Wasserstein GAN with gradient penalty (Gulrajani et al. 2017): the critic minimises D(fake) − D(real) +
10 · (‖∇D(x̂)‖ − 1)² on random interpolates x̂, five critic steps per generator step, Adam(2e-4, β = (0.5, 0.9)).
The networks are the usual small DCGAN-style pair for 28 × 28 digits: a generator of transposed convolutions with
batch norm, a convolutional critic without normalisation (the penalty is per sample), both with a channel width
``width`` (the paper does not state its architecture). The model is unconditional: a generation's data are images
only. λ is a latent temperature, z ~ N(0, λ I) (the appendix runs λ = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn

from ..plain import storable
from ..utils import check_int, check_lam, resolve_device
from .base import NOT_KEY, TorchFamily


def _images(data) -> np.ndarray:
    x = data[0] if isinstance(data, tuple) else data
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"WGAN training images must be uint8 of shape (N, 1, H, W), got {x.dtype} {x.shape}")
    return x


class Generator(nn.Module):
    """DCGAN-style: z → 4w × 7 × 7 → 2w × 14 × 14 → 1 × 28 × 28 (transposed convolutions, batch norm, tanh)."""

    def __init__(self, z_dim: int, width: int, shape: tuple[int, ...]):
        super().__init__()
        if tuple(shape) != (1, 28, 28):
            raise ValueError(f"the WGAN-GP generator makes 1 × 28 × 28 images (MNIST), not {tuple(shape)}")
        self.width = width
        self.project = nn.Sequential(nn.Linear(z_dim, 4 * width * 49), nn.BatchNorm1d(4 * width * 49), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, 1, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(-1, 4 * self.width, 7, 7))


class Critic(nn.Module):
    """DCGAN-style, without normalisation (the gradient penalty is per sample): 28 → 14 → 7 → 4 → a score."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(4 * width * 16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@storable
@dataclass
class WGANModel:
    config: dict
    state: dict
    critic_losses: list = field(default_factory=list)


@dataclass(frozen=True)
class WGANFamily(TorchFamily):
    """WGAN-GP as a model family for :func:`madutils.loops.run_loop`: ``steps`` generator steps (each after
    ``n_critic`` critic steps) of batch ``batch_size``. On a GPU the training set stays on the device and every
    random draw is made there; ``compile`` compiles the generator and the critic's plain passes with
    ``torch.compile`` (not the gradient-penalty pass, whose double backward it cannot compile). ``device``,
    ``compile`` and ``progress`` are not part of the key."""

    ARCHITECTURE: ClassVar[str] = "dcgan"

    width: int = 64
    z_dim: int = 64
    steps: int = 2000
    n_critic: int = 5
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    gp: float = 10.0
    name: str = "wgan-gp"
    device: str = field(default="auto", metadata=NOT_KEY)
    compile: bool = field(default=False, metadata=NOT_KEY)
    progress: bool = field(default=True, metadata=NOT_KEY)

    def __post_init__(self) -> None:
        check_int(self.width, "width", 2)
        check_int(self.steps, "steps", 1)
        check_int(self.n_critic, "n_critic", 1)

    def key_extra(self) -> dict:
        # the architecture is part of the key: runs of the earlier multilayer perceptrons are never served for it
        return {"architecture": self.ARCHITECTURE}

    def fit(self, data, seed: int) -> WGANModel:
        from tqdm.auto import tqdm

        x = _images(data)
        shape = x.shape[1:]
        device = resolve_device(self.device)
        torch.manual_seed(seed % 2**63)
        gen = torch.Generator(device).manual_seed(seed % 2**63)  # draws on the device: no copies per step
        real = torch.from_numpy(x).to(device).float().div_(127.5).sub_(1.0)
        g, d = Generator(self.z_dim, self.width, shape).to(device), Critic(self.width).to(device)
        fast = self.compile and device.startswith("cuda")
        g_fast, d_fast = (torch.compile(g), torch.compile(d)) if fast else (g, d)
        opt_g = torch.optim.Adam(g.parameters(), lr=self.lr, betas=self.betas, foreach=True)
        opt_d = torch.optim.Adam(d.parameters(), lr=self.lr, betas=self.betas, foreach=True)
        losses = []
        bar = tqdm(
            range(self.steps), desc=f"training WGAN-GP ({len(x)} images)", disable=not self.progress, leave=False
        )
        for step in bar:
            for _ in range(self.n_critic):
                xr = real[torch.randint(0, len(real), (self.batch_size,), generator=gen, device=device)]
                z = torch.randn((self.batch_size, self.z_dim), generator=gen, device=device)
                with torch.no_grad():
                    xf = g_fast(z)
                eps = torch.rand((self.batch_size, 1, 1, 1), generator=gen, device=device)
                xh = (eps * xr + (1 - eps) * xf).requires_grad_(True)
                grad = torch.autograd.grad(d(xh).sum(), xh, create_graph=True)[0]
                penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
                scores = d_fast(torch.cat([xf, xr])).flatten()  # one pass for both halves
                loss_d = scores[: len(xf)].mean() - scores[len(xf) :].mean() + self.gp * penalty
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            z = torch.randn((self.batch_size, self.z_dim), generator=gen, device=device)
            d.requires_grad_(False)  # the generator step needs no gradients of the critic's weights
            loss_g = -d_fast(g_fast(z)).mean()
            # reading a loss synchronises a GPU: every 100 steps and at the last (a NaN stays NaN until then)
            if step % 100 == 0 or step == self.steps - 1:
                critic, generator = float(loss_d.detach()), float(loss_g.detach())
                if not (math.isfinite(critic) and math.isfinite(generator)):
                    raise FloatingPointError(f"WGAN-GP training diverged by step {step} (critic loss {critic})")
                if step % 100 == 0:
                    losses.append(critic)
                    bar.set_postfix(critic=f"{critic:.3f}")
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            d.requires_grad_(True)
        config = {"z_dim": self.z_dim, "width": self.width, "shape": tuple(shape)}
        return WGANModel(config, {k: v.detach().cpu().clone() for k, v in g.state_dict().items()}, losses)

    @torch.no_grad()
    def sample(self, model: WGANModel, n: int, lam: float, seed: int) -> np.ndarray:
        lam = check_lam(lam)
        n = check_int(n, "n", 0)
        shape = model.config["shape"]
        g = Generator(model.config["z_dim"], model.config["width"], shape)
        g.load_state_dict(model.state)
        g.eval()
        gen = torch.Generator().manual_seed(seed % 2**63)
        out = []
        for s in range(0, n, 2000):
            z = torch.randn((min(2000, n - s), model.config["z_dim"]), generator=gen) * lam**0.5
            out.append(((g(z).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())
        return np.concatenate(out) if out else np.zeros((0, *shape), np.uint8)
