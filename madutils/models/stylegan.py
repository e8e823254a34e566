"""A compact StyleGAN2 (Karras et al. 2020) in plain PyTorch, with truncation as the paper's sampling bias (§2.3).

* Mapping network: z → (pixel norm) → ``mapping_layers`` equalised-learning-rate linear layers (learning rate
  multiplier 0.01) → w. The running average w_avg is updated in training as in the official implementation:
  w_avg ← lerp(mean of the batch's w, w_avg, 0.995).
* Truncation (the bias λ of the paper): w' = w_avg + λ (w − w_avg); λ = 1 is untruncated.
* Synthesis: a learned 4 × 4 constant, then per resolution two weight-demodulated modulated 3 × 3 convolutions
  (the first after a 2× bilinear upsampling), per-pixel noise inputs with learned strengths, leaky ReLU, and the
  skip-connection generator (an RGB output per resolution, upsampled and summed).
* Discriminator: residual blocks (two 3 × 3 convolutions, average-pool downsampling, a 1 × 1 skip, scaled by
  1/√2), minibatch standard deviation (groups of 4), a final convolution and two linear layers.
* Training: non-saturating logistic loss, lazy R1 regularisation of the discriminator every 16 steps, Adam
  (β = (0, 0.99)), an exponential moving average of the generator for sampling.

Differences from the official implementation (kept simple, no custom CUDA code): bilinear resampling instead of the
[1, 3, 3, 1] FIR filters, modulation applied to the activations (the official ``fused_modconv=False`` path) rather
than grouped convolutions, no path-length regularisation, no style mixing, no EMA or learning-rate ramp-up. Widths
follow the official rule min(channel_base / resolution, channel_max). Training and sampling use ``channels_last``
tensors (measured 1.35× faster training steps on a 2-core CPU at 32 × 32: 0.23 s against 0.31 s at batch 32), and
TF32 matrix products and cuDNN autotuning on a GPU.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..plain import storable
from ..utils import check_int, check_lam, check_resolution, resolve_device
from .base import NOT_KEY, TorchFamily, key_unless

SQRT2 = math.sqrt(2.0)


def channels(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Feature maps per resolution: min(channel_base / r, channel_max), as in the official configurations."""
    out, r = {}, 4
    while r <= resolution:
        out[r] = max(1, min(channel_base // r, channel_max))
        r *= 2
    return out


def truncate(w: torch.Tensor, w_avg: torch.Tensor, lam: float) -> torch.Tensor:
    """The truncation trick, the paper's bias for StyleGAN: w' = w_avg + λ (w − w_avg); λ = 1 returns w itself
    (as the official implementation, which skips the step)."""
    return w if lam == 1 else w_avg.lerp(w, lam)


class EqualLinear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((fan_out,), float(bias_init)))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(fan_in), lr_mul, act

    def forward(self, x):
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


class EqualConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.scale, self.pad = 1 / math.sqrt(c_in * k * k), k // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class ModulatedConv(nn.Module):
    """Modulated (and optionally demodulated) convolution: per sample, the weight is scaled by the style s of its
    input channels and, with demodulation, each output channel is renormalised to unit expected variance. Applied
    as x·s → convolution → ·d, which equals the official weight modulation."""

    def __init__(self, c_in: int, c_out: int, k: int, w_dim: int, demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.scale, self.pad = 1 / math.sqrt(c_in * k * k), k // 2
        self.demodulate, self.upsample = demodulate, upsample

    def forward(self, x, w):
        s = self.affine(w)  # (N, c_in)
        weight = self.weight * self.scale
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = F.conv2d(x * s[:, :, None, None], weight, padding=self.pad)
        if self.demodulate:
            d = torch.rsqrt((weight[None] ** 2 * s[:, None, :, None, None] ** 2).sum(dim=(2, 3, 4)) + 1e-8)
            x = x * d[:, :, None, None]
        return x


class StyledLayer(nn.Module):
    def __init__(self, c_in, c_out, w_dim, upsample=False):
        super().__init__()
        self.conv = ModulatedConv(c_in, c_out, 3, w_dim, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x, w, noise=None):
        x = self.conv(x, w)
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        x = x + self.noise_strength * noise + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * SQRT2


class ToRGB(nn.Module):
    def __init__(self, c_in, img_channels, w_dim):
        super().__init__()
        self.conv = ModulatedConv(c_in, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x, w):
        return self.conv(x, w) + self.bias[None, :, None, None]


class Generator(nn.Module):
    def __init__(
        self,
        resolution: int,
        img_channels: int,
        z_dim: int,
        w_dim: int,
        mapping_layers: int,
        chans: dict[int, int],
        w_avg_beta: float = 0.995,
    ):
        super().__init__()
        self.z_dim, self.w_dim, self.resolution, self.w_avg_beta = z_dim, w_dim, resolution, w_avg_beta
        layers = [EqualLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=0.01, act=True) for i in range(mapping_layers)]
        self.mapping = nn.Sequential(*layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        # set by a Trainer that shards its batch over the processes of a group (see Trainer): this process's rows of
        # the global batch, the global batch size, and the average of a tensor over the processes
        self.shard_rows: tuple[torch.Tensor, int] | None = None
        self.reduce_mean = None
        self.const = nn.Parameter(torch.randn(1, chans[4], 4, 4))
        self.layers = nn.ModuleList([StyledLayer(chans[4], chans[4], w_dim)])
        self.to_rgb = nn.ModuleList([ToRGB(chans[4], img_channels, w_dim)])
        r = 8
        while r <= resolution:
            self.layers.append(StyledLayer(chans[r // 2], chans[r], w_dim, upsample=True))
            self.layers.append(StyledLayer(chans[r], chans[r], w_dim))
            self.to_rgb.append(ToRGB(chans[r], img_channels, w_dim))
            r *= 2

    def map(self, z: torch.Tensor, update_w_avg: bool = False) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        w = self.mapping(z)
        if update_w_avg:
            with torch.no_grad():
                mean = w.detach().float().mean(0)  # float32 also under bf16 autocast
                if self.reduce_mean is not None:  # the mean over the global batch
                    mean = self.reduce_mean(mean)
                self.w_avg.copy_(mean.lerp(self.w_avg, self.w_avg_beta))
        return w

    def synthesize(self, w: torch.Tensor, noise_seed: torch.Generator | None = None) -> torch.Tensor:
        x = self.const.expand(len(w), -1, -1, -1)
        x = self.layers[0](x, w, self._noise(x, noise_seed))
        img = self.to_rgb[0](x, w)
        for i, to_rgb in enumerate(self.to_rgb[1:]):
            up, same = self.layers[1 + 2 * i], self.layers[2 + 2 * i]
            size = x.shape[-1] * 2
            x = up(x, w, self._noise(x, noise_seed, size))
            x = same(x, w, self._noise(x, noise_seed))
            img = F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False) + to_rgb(x, w)
        return img

    def _noise(self, x, gen, size=None):
        size = size or x.shape[-1]
        if gen is not None:
            return torch.randn((x.shape[0], 1, size, size), generator=gen).to(x.device)
        if self.shard_rows is None:
            return None  # the layer draws its noise from the global stream
        # a shard of a global batch: the global batch's draw from the global stream (as the layer would make it in
        # one process), then this process's rows
        rows, n = self.shard_rows
        return torch.randn((n, 1, size, size), device=x.device, dtype=x.dtype)[rows.to(x.device)]

    def noise_sizes(self) -> list[int]:
        """The sizes of the noise images :meth:`synthesize` draws, in the order it draws them."""
        sizes, r = [4], 8
        while r <= self.resolution:
            sizes += [r, r]
            r *= 2
        return sizes

    def skip_draws(self, n: int, gen: torch.Generator) -> None:
        """Advance ``gen`` past the draws of :meth:`StyleGANFamily.sample` for ``n`` images without computing them
        (the chunks of another process in sharded sampling)."""
        torch.randn((n, self.z_dim), generator=gen)
        for size in self.noise_sizes():
            torch.randn((n, 1, size, size), generator=gen)

    def forward(self, z, lam: float = 1.0, update_w_avg: bool = False):
        w = self.map(z, update_w_avg)
        return self.synthesize(truncate(w, self.w_avg, lam))


class DiscriminatorBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = EqualConv2d(c_in, c_in, 3)
        self.conv2 = EqualConv2d(c_in, c_out, 3)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        y = F.leaky_relu(self.conv1(x), 0.2) * SQRT2
        y = F.leaky_relu(self.conv2(y), 0.2) * SQRT2
        y = F.avg_pool2d(y, 2)
        s = F.avg_pool2d(self.skip(x), 2)
        return (y + s) / SQRT2


class Discriminator(nn.Module):
    def __init__(self, resolution: int, img_channels: int, chans: dict[int, int], mbstd_group: int = 4):
        super().__init__()
        self.from_rgb = EqualConv2d(img_channels, chans[resolution], 1)
        blocks, r = [], resolution
        while r > 4:
            blocks.append(DiscriminatorBlock(chans[r], chans[r // 2]))
            r //= 2
        self.blocks = nn.ModuleList(blocks)
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(chans[4] + 1, chans[4], 3)
        self.fc = EqualLinear(chans[4] * 16, chans[4], act=True)
        self.out = EqualLinear(chans[4], 1)

    def minibatch_std(self, x):
        n, c, h, w = x.shape
        g = min(self.mbstd_group, n)
        while n % g:
            g -= 1
        y = x.view(g, -1, c, h, w)
        y = (y - y.mean(0)).pow(2).mean(0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (n/g,)
        y = y.view(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, img):
        x = F.leaky_relu(self.from_rgb(img), 0.2) * SQRT2
        for block in self.blocks:
            x = block(x)
        x = F.leaky_relu(self.conv(self.minibatch_std(x)), 0.2) * SQRT2
        return self.out(self.fc(x.flatten(1)))


def _all_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` over the processes of the group."""
    import torch.distributed as dist

    t = t.clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def shard_rows(batch: int, mbstd_group: int, rank: int, world: int) -> torch.Tensor:
    """The rows of a global batch of ``batch`` that process ``rank`` of ``world`` trains on: an equal share of each
    minibatch-standard-deviation group, so that its groups (of the discriminator's strided layout, row j with rows
    j + m, j + 2m, … for m = batch / group) are the ones the whole batch forms in one process."""
    g = min(mbstd_group, batch)
    while batch % g:
        g -= 1
    m = batch // g
    if m % world:
        raise ValueError(
            f"batch_size = {batch} cannot be shared by {world} processes: each minibatch-std group of {g} needs "
            f"the same share on every process, so batch_size / {g} = {m} must be a multiple of {world}"
        )
    share = m // world
    return torch.tensor([k * m + j for k in range(g) for j in range(rank * share, (rank + 1) * share)])


def _fast_gpu(device: str) -> None:
    """TF32 products and convolutions and cuDNN autotuning for training on a GPU (the metrics switch TF32 off
    while they compute distances: :func:`madutils.metrics.prd.exact_float32`)."""
    if device.startswith("cuda"):
        b = torch.backends
        if hasattr(b.cuda.matmul, "fp32_precision"):  # PyTorch ≥ 2.9: never mix with the legacy flags
            b.cuda.matmul.fp32_precision = "tf32"
            b.cudnn.conv.fp32_precision = "tf32"
        else:
            b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = True
        b.cudnn.benchmark = True


FORMAT = torch.channels_last  # the memory format of every image tensor and convolution weight


def _images(data) -> np.ndarray:
    x = data[0] if isinstance(data, tuple) else data
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ValueError(f"StyleGAN training images must be uint8 of shape (N, C, H, W), got {x.dtype} {x.shape}")
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"StyleGAN needs square images, got {x.shape[-2]}×{x.shape[-1]}")
    check_resolution(x.shape[-1])
    # a stored generation may come memory-mapped read-only (madutils.store): training reads it at random, so in memory
    return x if x.flags.writeable else np.array(x)


def _generator(config: dict) -> Generator:
    """A freshly initialised generator of the architecture ``config`` describes (see :class:`Trainer`)."""
    c = config
    chans = {int(k): v for k, v in c["chans"].items()}
    return Generator(c["resolution"], c["img_channels"], c["z_dim"], c["w_dim"], c["mapping_layers"], chans)


@storable
@dataclass
class StyleGANModel:
    config: dict
    state: dict
    losses: list = field(default_factory=list)

    def generator(self, device: str = "cpu") -> Generator:
        """The EMA generator of this model (eval mode) on ``device``."""
        g = _generator(self.config)
        g.load_state_dict(self.state)
        return g.eval().to(device, memory_format=FORMAT)


@dataclass(frozen=True)
class StyleGANFamily(TorchFamily):
    """StyleGAN2 as an (unconditional) model family for :func:`madutils.loops.run_loop`; λ is the truncation ψ.

    ``steps`` generator steps of batch ``batch_size``, one discriminator step each, R1 weight ``r1_gamma`` applied
    every ``r1_interval`` steps (lazily, scaled by the interval), generator EMA ``ema``. With ``checkpoint_every``
    and a checkpoint from the loop engine (:class:`~madutils.store.Checkpoint`), the whole training state
    (networks, optimisers, random streams) is saved every that many steps, and a killed training resumes from its
    last save with the same result as an uninterrupted one.

    With ``group`` = (rank, world) of an initialised ``torch.distributed`` group of several processes (a
    ``torchrun`` job, one GPU per process; the loop engine sets it through :meth:`in_group`), :meth:`fit` is
    collective: every process draws the whole global batch of ``batch_size`` from the
    same streams and trains on its share of it, with the generator and the discriminator wrapped in PyTorch's
    ``DistributedDataParallel`` and the batch means (losses, w_avg) taken over all processes, so the model is the
    one a single process would train on the same global batch, to round-off. :meth:`sample` is then sharded: each
    process synthesises every world-th chunk of 256 images and the chunks are gathered, the same images a single
    process makes.

    On a GPU the training set stays on the device and the training draws are made there. ``precision="bf16"``
    runs the generator's and the discriminator's passes under bfloat16 autocast (the R1 penalty stays in float32);
    ``compile`` compiles those passes with ``torch.compile`` on a GPU. ``group``, ``compile`` and
    ``checkpoint_every`` are not part of the key; ``precision`` is."""

    channel_base: int = 512
    channel_max: int = 128
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    steps: int = 2000
    batch_size: int = 32
    lr: float = 0.002
    r1_gamma: float = 1.0
    r1_interval: int = 16
    ema: float = 0.995
    mbstd_group: int = 4
    name: str = "stylegan2"
    device: str = field(default="auto", metadata=NOT_KEY)
    checkpoint_every: int = field(default=0, metadata=NOT_KEY)  # steps between saves of the training state (0: never)
    # (rank, world) of a torch.distributed group to train and sample in collectively; set by the loop engine from the
    # group it is given (:meth:`in_group`), never by the experiment
    group: tuple[int, int] | None = field(default=None, metadata=NOT_KEY)
    precision: str = field(default="fp32", metadata=key_unless("fp32"))  # or "bf16": autocast for training passes
    compile: bool = field(default=False, metadata=NOT_KEY)  # torch.compile the training passes on a GPU
    progress: bool = field(default=True, metadata=NOT_KEY)

    def __post_init__(self) -> None:
        check_int(self.steps, "steps", 1)
        check_int(self.batch_size, "batch_size", 2)
        check_int(self.mapping_layers, "mapping_layers", 1)
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision = {self.precision!r}; use 'fp32' or 'bf16'")
        if self.group is not None and not (len(self.group) == 2 and 0 <= self.group[0] < self.group[1]):
            raise ValueError(f"group = {self.group!r}; it must be (rank, world) with 0 <= rank < world")

    def in_group(self, group: tuple[int, int]) -> StyleGANFamily:
        """This family training and sampling collectively as process ``rank`` of ``world`` (the loop engine calls
        it with the group the torchrun fan-out passes; the run key is the same)."""
        return replace(self, group=(int(group[0]), int(group[1])))

    def trainer(self, resolution: int, img_channels: int, seed: int) -> Trainer:
        """Fresh networks and optimisers for ``resolution`` × ``resolution`` images (what :meth:`fit` uses)."""
        return Trainer(self, check_resolution(resolution), img_channels, seed)

    def fit(self, data, seed: int, checkpoint=None) -> StyleGANModel:
        from tqdm.auto import tqdm

        x = _images(data)
        trainer = self.trainer(x.shape[-1], x.shape[1], seed)
        real = torch.from_numpy(x).to(trainer.device)  # uint8 on the device: no copy per step
        losses = []
        start = 0
        saving = checkpoint is not None and self.checkpoint_every > 0
        writes = trainer.shard is None or trainer.shard[0] == 0  # in a group, one process saves the shared state
        if saving and (state := checkpoint.load()) is not None:
            if state["seed"] != seed or state["steps"] != self.steps or not 0 < state["step"] < self.steps:
                raise ValueError(f"checkpoint {checkpoint.path} belongs to another training; delete it")
            trainer.load_state(state["trainer"])
            start, losses = state["step"], list(state["losses"])
        bar = tqdm(
            range(start, self.steps),
            desc=f"training StyleGAN2 ({len(x)} images, {x.shape[-1]}×{x.shape[-1]})",
            disable=not self.progress,
            leave=False,
            initial=start,
            total=self.steps,
        )
        for step in bar:
            xr = trainer.batch(real)
            loss_d = trainer.d_step(xr, r1=step % self.r1_interval == 0)
            loss_g = trainer.g_step()
            trainer.update_ema()
            done = step + 1
            save = saving and done % self.checkpoint_every == 0 and done < self.steps
            # reading the losses synchronises a GPU: every 50 steps, before a save and at the last step (a NaN
            # stays NaN until then)
            if step % 50 == 0 or save or done == self.steps:
                value_d, value_g = trainer.values(loss_d, loss_g)
                if not (np.isfinite(value_d) and np.isfinite(value_g)):
                    raise FloatingPointError(
                        f"StyleGAN2 training diverged by step {step} (D loss {value_d}, G loss {value_g}); "
                        f"lower lr (now {self.lr}) or raise r1_gamma (now {self.r1_gamma})"
                    )
                if step % 50 == 0:
                    losses.append((value_d, value_g))
                    bar.set_postfix(d=f"{value_d:.3f}", g=f"{value_g:.3f}")
            if save and writes:
                checkpoint.save(
                    {"seed": seed, "steps": self.steps, "step": done, "losses": losses, "trainer": trainer.state()}
                )
        return trainer.model(losses)

    @torch.no_grad()
    def sample(self, model: StyleGANModel, n: int, lam: float, seed: int) -> np.ndarray:
        """``n`` images with truncation ψ = λ (uint8). The same seed gives the same latent codes whatever the
        model, so grids of different generations show the same z."""
        lam = check_lam(lam)
        n = check_int(n, "n", 0)
        device = resolve_device(self.device)
        _fast_gpu(device)
        g = model.generator(device)
        gen = torch.Generator().manual_seed(seed % 2**63)
        rank, world = self.group or (0, 1)
        out = {}
        for i, s in enumerate(range(0, n, 256)):
            m = min(256, n - s)
            if i % world != rank:  # another process's chunk: only its random draws, to keep the stream in step
                g.skip_draws(m, gen)
                continue
            z = torch.randn((m, g.z_dim), generator=gen).to(device)
            w = truncate(g.map(z), g.w_avg, lam)
            img = g.synthesize(w, noise_seed=gen)
            out[i] = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
        if world > 1:
            import torch.distributed as dist

            parts: list = [None] * world
            dist.all_gather_object(parts, out)
            out = {i: a for part in parts for i, a in part.items()}
        res, c = model.config["resolution"], model.config["img_channels"]
        return np.concatenate([out[i] for i in sorted(out)]) if out else np.zeros((0, c, res, res), np.uint8)


class Trainer:
    """The networks, optimisers and one training step of :class:`StyleGANFamily` (non-saturating logistic loss,
    lazy R1 on real images, generator EMA)."""

    def __init__(self, family: StyleGANFamily, resolution: int, img_channels: int, seed: int):
        f = self.family = family
        self.device = resolve_device(f.device)
        _fast_gpu(self.device)
        torch.manual_seed(seed % 2**63)
        self.gen = torch.Generator(self.device).manual_seed(seed % 2**63)  # batch indices and latents, on the device
        chans = channels(resolution, f.channel_base, f.channel_max)
        self.config = {
            "resolution": resolution,
            "img_channels": img_channels,
            "z_dim": f.z_dim,
            "w_dim": f.w_dim,
            "mapping_layers": f.mapping_layers,
            "chans": {str(k): v for k, v in chans.items()},
        }
        self.g, self.g_ema = (_generator(self.config).to(self.device, memory_format=FORMAT) for _ in range(2))
        self.d = Discriminator(resolution, img_channels, chans, f.mbstd_group).to(self.device, memory_format=FORMAT)
        self.g_ema.load_state_dict(self.g.state_dict())
        self.g_ema.requires_grad_(False)
        self.shard = f.group if f.group is not None and f.group[1] > 1 else None
        self.rows = None
        self.g_train, self.d_train = self.g, self.d  # what the losses call: DDP wrappers in a group
        if self.shard is not None:
            from torch.nn.parallel import DistributedDataParallel as DDP

            rank, world = self.shard
            self.rows = shard_rows(f.batch_size, f.mbstd_group, rank, world).to(self.device)
            self.g.shard_rows, self.g.reduce_mean = (self.rows, f.batch_size), _all_mean
            ids = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else None
            # buffers (w_avg) are kept in step by the all-reduced batch mean, not broadcast from rank 0 every forward
            # (they start equal: every process seeds the same initialisation)
            # newer PyTorch deprecates broadcast_buffers for forward_sync_buffers
            new = "forward_sync_buffers" in inspect.signature(DDP).parameters
            no_sync = {"forward_sync_buffers" if new else "broadcast_buffers": False}
            self.g_train = DDP(self.g, device_ids=ids, **no_sync)
            self.d_train = DDP(self.d, device_ids=ids, **no_sync)
        if f.compile and self.device.startswith("cuda"):
            self.g_train, self.d_train = torch.compile(self.g_train), torch.compile(self.d_train)
        self.d_plain = torch.compile(self.d) if f.compile and self.device.startswith("cuda") else self.d
        c = f.r1_interval / (f.r1_interval + 1)  # lazy regularisation: Adam hyper-parameters rescaled
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=f.lr, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=f.lr * c, betas=(0.0, 0.99**c))

    def batch(self, real: torch.Tensor) -> torch.Tensor:
        """A random batch of uint8 images, scaled to [−1, 1]."""
        idx = torch.randint(0, len(real), (self.family.batch_size,), generator=self.gen, device=self.gen.device)
        if self.rows is not None:
            idx = idx[self.rows]
        return real[idx.to(real.device)].float().div(127.5).sub(1).to(self.device, memory_format=FORMAT)

    def z(self) -> torch.Tensor:
        z = torch.randn((self.family.batch_size, self.family.z_dim), generator=self.gen, device=self.gen.device)
        return (z if self.rows is None else z[self.rows]).to(self.device)

    def autocast(self):
        """bfloat16 autocast for the training passes with ``precision="bf16"`` (else nothing)."""
        kind = torch.device(self.device).type
        return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=self.family.precision == "bf16")

    def d_loss(self, xr: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            fake_scores, real_scores = self.d_train(fake).float(), self.d_train(xr).float()
        return F.softplus(fake_scores).mean() + F.softplus(-real_scores).mean()

    def values(self, *losses: torch.Tensor) -> list[float]:
        """Losses as numbers (this synchronises a GPU): in a group, their means over the processes (the global
        batch's losses)."""
        both = torch.stack([loss.float() for loss in losses])
        return [float(v) for v in (both if self.shard is None else _all_mean(both)).tolist()]

    def d_step(self, xr: torch.Tensor, r1: bool = False) -> torch.Tensor:
        """One discriminator step on real images ``xr`` and fresh fakes; with ``r1``, plus the lazy R1 penalty
        (γ/2)·E‖∇D(x)‖², scaled by the interval. Returns the loss (detached, not read: no synchronisation)."""
        f = self.family
        with torch.no_grad(), self.autocast():
            fake = self.g(self.z()).float()
        loss = self.d_loss(xr, fake)
        if r1:
            xr_ = xr.detach().requires_grad_(True)
            grad = torch.autograd.grad(self.d_train(xr_).sum(), xr_, create_graph=True)[0]
            loss = loss + f.r1_gamma / 2 * grad.pow(2).sum(dim=(1, 2, 3)).mean() * f.r1_interval
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.detach()

    def g_step(self) -> torch.Tensor:
        """One generator step (non-saturating loss); updates the running average w_avg. Returns the loss
        (detached)."""
        self.d.requires_grad_(False)  # no gradients of the discriminator's weights in the generator step
        try:
            with self.autocast():
                scores = self.d_plain(self.g_train(self.z(), update_w_avg=True)).float()
            loss = F.softplus(-scores).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.d.requires_grad_(True)
        self.opt_g.step()
        return loss.detach()

    def state(self) -> dict:
        """Everything a resumed training needs: the networks, the optimisers and the random streams (the batch
        and latent generator, and the global streams that draw the synthesis noise)."""

        def cpu(sd: dict) -> dict:
            return {k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in sd.items()}

        state = {
            "g": cpu(self.g.state_dict()),
            "g_ema": cpu(self.g_ema.state_dict()),
            "d": cpu(self.d.state_dict()),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "gen": self.gen.get_state(),
            "torch": torch.get_rng_state(),
        }
        if self.device.startswith("cuda"):
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state(self, state: dict) -> None:
        for name in ("g", "g_ema", "d"):
            getattr(self, name).load_state_dict(state[name])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state and self.device.startswith("cuda"):
            torch.cuda.set_rng_state(state["cuda"], self.device)

    @torch.no_grad()
    def update_ema(self) -> None:
        for pe, p in zip(self.g_ema.parameters(), self.g.parameters(), strict=True):
            pe.lerp_(p, 1 - self.family.ema)
        self.g_ema.w_avg.copy_(self.g.w_avg)

    def model(self, losses: list | None = None) -> StyleGANModel:
        state = {k: v.detach().cpu().clone() for k, v in self.g_ema.state_dict().items()}
        return StyleGANModel(dict(self.config), state, list(losses or []))
