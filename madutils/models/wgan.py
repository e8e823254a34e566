"""WGAN-GP on MNIST in the fully synthetic loop (App. B.1, Fig. 13).

Wasserstein GAN with gradient penalty (Gulrajani et al. 2017): the critic minimises D(fake) − D(real) +
10 · (‖∇D(x̂)‖ − 1)² on random interpolates x̂, five critic steps per generator step, Adam(1e-4, β = (0.5, 0.9)).
The networks are multilayer perceptrons (the critic without normalisation, as the penalty requires) whose width
is a parameter. The model is unconditional: a generation's data are images only. λ is a latent temperature,
z ~ N(0, λ I) (the appendix runs λ = 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn

from ..utils import canonical, check_int, check_lam, resolve_device


def _images(data) -> np.ndarray:
    x = data[0] if isinstance(data, tuple) else data
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"WGAN training images must be uint8 of shape (N, 1, H, W), got {x.dtype} {x.shape}")
    return x


class Generator(nn.Module):
    def __init__(self, z_dim: int, width: int, pixels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, width),
            nn.ReLU(),
            nn.Linear(width, 2 * width),
            nn.ReLU(),
            nn.Linear(2 * width, 4 * width),
            nn.ReLU(),
            nn.Linear(4 * width, pixels),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Critic(nn.Module):
    def __init__(self, width: int, pixels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(pixels, 4 * width),
            nn.LeakyReLU(0.2),
            nn.Linear(4 * width, 2 * width),
            nn.LeakyReLU(0.2),
            nn.Linear(2 * width, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class WGANModel:
    config: dict
    state: dict
    critic_losses: list = field(default_factory=list)


@dataclass(frozen=True)
class WGANFamily:
    """WGAN-GP as a model family for :func:`madutils.loops.run_loop`: ``steps`` generator steps (each after
    ``n_critic`` critic steps) of batch ``batch_size``."""

    thread_dependent: ClassVar[bool] = True  # results change with the CPU thread count: part of the run key

    width: int = 256
    z_dim: int = 64
    steps: int = 2000
    n_critic: int = 5
    batch_size: int = 64
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    gp: float = 10.0
    name: str = "wgan-gp"
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        check_int(self.width, "width", 8)
        check_int(self.steps, "steps", 1)
        check_int(self.n_critic, "n_critic", 1)

    def key(self) -> dict:
        d = asdict(self)
        d.pop("device")
        d.pop("progress")
        return canonical(d)

    def fit(self, data, seed: int) -> WGANModel:
        from tqdm.auto import tqdm

        x = _images(data)
        shape = x.shape[1:]
        pixels = int(np.prod(shape))
        device = resolve_device(self.device)
        torch.manual_seed(seed % 2**63)
        gen = torch.Generator().manual_seed(seed % 2**63)
        real = torch.from_numpy(x).float().div_(127.5).sub_(1.0).flatten(1)
        g, d = Generator(self.z_dim, self.width, pixels).to(device), Critic(self.width, pixels).to(device)
        opt_g = torch.optim.Adam(g.parameters(), lr=self.lr, betas=self.betas, foreach=True)
        opt_d = torch.optim.Adam(d.parameters(), lr=self.lr, betas=self.betas, foreach=True)
        losses = []
        bar = tqdm(
            range(self.steps), desc=f"training WGAN-GP ({len(x)} images)", disable=not self.progress, leave=False
        )
        for step in bar:
            for _ in range(self.n_critic):
                xr = real[torch.randint(0, len(real), (self.batch_size,), generator=gen)].to(device)
                z = torch.randn((self.batch_size, self.z_dim), generator=gen).to(device)
                with torch.no_grad():
                    xf = g(z)
                eps = torch.rand((self.batch_size, 1), generator=gen).to(device)
                xh = (eps * xr + (1 - eps) * xf).requires_grad_(True)
                grad = torch.autograd.grad(d(xh).sum(), xh, create_graph=True)[0]
                penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
                scores = d(torch.cat([xf, xr])).flatten()  # one pass for both halves
                loss_d = scores[: len(xf)].mean() - scores[len(xf) :].mean() + self.gp * penalty
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            z = torch.randn((self.batch_size, self.z_dim), generator=gen).to(device)
            loss_g = -d(g(z)).mean()
            if not (torch.isfinite(loss_d) and torch.isfinite(loss_g)):
                raise FloatingPointError(f"WGAN-GP training diverged at step {step} (critic loss {loss_d.item()})")
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if step % 100 == 0:
                losses.append(float(loss_d.item()))
                bar.set_postfix(critic=f"{loss_d.item():.3f}")
        config = {"z_dim": self.z_dim, "width": self.width, "shape": tuple(shape)}
        return WGANModel(config, {k: v.detach().cpu().clone() for k, v in g.state_dict().items()}, losses)

    @torch.no_grad()
    def sample(self, model: WGANModel, n: int, lam: float, seed: int) -> np.ndarray:
        lam = check_lam(lam)
        n = check_int(n, "n", 0)
        shape = model.config["shape"]
        g = Generator(model.config["z_dim"], model.config["width"], int(np.prod(shape)))
        g.load_state_dict(model.state)
        g.eval()
        gen = torch.Generator().manual_seed(seed % 2**63)
        out = []
        for s in range(0, n, 2000):
            z = torch.randn((min(2000, n - s), model.config["z_dim"]), generator=gen) * lam**0.5
            out.append(((g(z).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).view(-1, *shape).numpy())
        return np.concatenate(out) if out else np.zeros((0, *shape), np.uint8)
