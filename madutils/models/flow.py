"""A normalizing flow on the 2-D Rosenbrock density in the fully synthetic loop (App. B.4, Fig. 17).

The reference is p(x1, x2) ∝ exp(−x1²/2 − (x2 − x1²)²), sampled exactly: x1 ~ N(0, 1), x2 = x1² + N(0, 1/2).

The flow is GLOW-style for 2-D data: ``n_layers`` steps of actnorm, an invertible 2 × 2 linear map and an
affine coupling layer (RealNVP) whose scale and shift come from an MLP of ``hidden`` units; maximum likelihood
with Adam for ``epochs`` epochs of batch ``batch_size`` (the paper: 8 coupling layers, hidden 64, 20 epochs,
batch 256). Sampling with bias λ draws the latent from the tempered N(0, λ I) and inverts the flow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..plain import storable
from ..utils import check_int, check_lam
from .base import NOT_KEY, TorchFamily


class ActNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.initialised = False

    def forward(self, x):
        if not self.initialised and self.training:
            with torch.no_grad():  # data-dependent initialisation (GLOW): unit variance at the start
                self.loc.copy_(-x.mean(0))
                self.log_scale.copy_(-torch.log(x.std(0) + 1e-6))
            self.initialised = True
        return (x + self.loc) * self.log_scale.exp(), self.log_scale.sum().expand(len(x))

    def inverse(self, y):
        return y * (-self.log_scale).exp() - self.loc


class InvertibleLinear(nn.Module):
    """y = W x with W = Q (1 + upper-triangular part) parametrised so that log|det W| is cheap (LU-style)."""

    def __init__(self, dim: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
        self.register_buffer("q", q)
        self.upper = nn.Parameter(torch.zeros(dim, dim))
        self.log_diag = nn.Parameter(torch.zeros(dim))

    def weight(self):
        u = torch.triu(self.upper, 1) + torch.diag(self.log_diag.exp())
        return self.q @ u

    def forward(self, x):
        return x @ self.weight().T, self.log_diag.sum().expand(len(x))

    def inverse(self, y):
        return torch.linalg.solve(self.weight(), y.T).T


class AffineCoupling(nn.Module):
    def __init__(self, hidden: int, flip: bool):
        super().__init__()
        self.flip = flip
        self.net = nn.Sequential(
            nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _split(self, x):
        return (x[:, 1:], x[:, :1]) if self.flip else (x[:, :1], x[:, 1:])

    def _join(self, a, b):
        return torch.cat([b, a], 1) if self.flip else torch.cat([a, b], 1)

    def forward(self, x):
        a, b = self._split(x)
        s, t = self.net(a).chunk(2, dim=1)
        s = torch.tanh(s)
        return self._join(a, b * s.exp() + t), s.sum(1)

    def inverse(self, y):
        a, b = self._split(y)
        s, t = self.net(a).chunk(2, dim=1)
        s = torch.tanh(s)
        return self._join(a, (b - t) * (-s).exp())


class Flow(nn.Module):
    def __init__(self, n_layers: int, hidden: int, seed: int):
        super().__init__()
        layers = []
        for i in range(n_layers):
            layers += [ActNorm(2), InvertibleLinear(2, seed + i), AffineCoupling(hidden, flip=bool(i % 2))]
        self.layers = nn.ModuleList(layers)

    def log_prob(self, x):
        logdet = torch.zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return -0.5 * (x**2).sum(1) - math.log(2 * math.pi) + logdet

    def inverse(self, z):
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


@storable
@dataclass
class FlowModel:
    config: dict
    state: dict
    losses: list = field(default_factory=list)


@dataclass(frozen=True)
class FlowFamily(TorchFamily):
    """The 2-D flow as a model family for :func:`madutils.loops.run_loop`; λ is the latent temperature."""

    n_layers: int = 8
    hidden: int = 64
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    name: str = "flow"
    progress: bool = field(default=False, metadata=NOT_KEY)

    def fit(self, data, seed: int) -> FlowModel:
        from tqdm.auto import tqdm

        x = torch.as_tensor(np.asarray(data, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != 2 or not torch.isfinite(x).all():
            raise ValueError(f"flow training data must be finite 2-D points, got shape {tuple(x.shape)}")
        torch.manual_seed(seed % 2**63)
        gen = torch.Generator().manual_seed(seed % 2**63)
        flow = Flow(self.n_layers, self.hidden, seed % 2**31)
        flow.train()
        flow.log_prob(x[: min(len(x), 4096)])  # initialises actnorm on data
        opt = torch.optim.Adam(flow.parameters(), lr=self.lr)
        losses = []
        for epoch in tqdm(range(self.epochs), desc="training flow", disable=not self.progress, leave=False):
            order = torch.randperm(len(x), generator=gen)
            total = 0.0
            for s in range(0, len(x), self.batch_size):
                loss = -flow.log_prob(x[order[s : s + self.batch_size]]).mean()
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"flow training diverged at epoch {epoch} (loss {loss.item()})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * min(self.batch_size, len(x) - s)
            losses.append(total / len(x))
        config = {"n_layers": self.n_layers, "hidden": self.hidden, "seed": seed % 2**31}
        return FlowModel(config, {k: v.detach().clone() for k, v in flow.state_dict().items()}, losses)

    def network(self, model: FlowModel) -> Flow:
        flow = Flow(model.config["n_layers"], model.config["hidden"], model.config["seed"])
        flow.load_state_dict(model.state)
        for layer in flow.layers:
            if isinstance(layer, ActNorm):
                layer.initialised = True
        return flow.eval()

    @torch.no_grad()
    def sample(self, model: FlowModel, n: int, lam: float, seed: int) -> np.ndarray:
        lam = check_lam(lam)
        n = check_int(n, "n", 0)
        gen = torch.Generator().manual_seed(seed % 2**63)
        z = torch.randn((n, 2), generator=gen) * math.sqrt(lam)
        return self.network(model).inverse(z).double().numpy()

    @torch.no_grad()
    def log_density(self, model: FlowModel, xy: np.ndarray) -> np.ndarray:
        return self.network(model).log_prob(torch.as_tensor(np.asarray(xy, dtype=np.float32))).double().numpy()
