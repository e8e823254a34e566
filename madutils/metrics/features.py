"""Feature extractors for the image metrics.

* :class:`LeNetFeatures`: a LeNet-5 classifier trained on the MNIST training set (the paper's footnote 3: MNIST
  FID and precision/recall use LeNet features). Its 84-d penultimate layer is the feature space. It is trained once
  with a fixed seed (at least 99 % test accuracy, checked) and cached in the data folder with a checksum.
* :class:`InceptionFeatures`: pytorch-fid's InceptionV3 (2048-d pool features) for natural images, from a local
  weights file (argument, ``MAD_INCEPTION_WEIGHTS``, the data folder, or the torch hub cache), downloaded by
  pytorch-fid when none is found and the internet allows; otherwise an error that says where to put the file.

Both take images as uint8 arrays in [0, 255] or floats in [0, 1], run on CPU or GPU, and embed in batches.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import load_mnist
from ..paths import data_dir
from ..utils import resolve_device, sha256_file

LENET_FILE = "lenet5_mnist_seed{seed}.pt"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILE


def as_float_images(images, name: str = "images", channels: tuple[int, ...] = (1,)) -> torch.Tensor:
    """Validate images and return them as float32 in [0, 1], shape (N, C, H, W).

    Accepts (N, H, W) or (N, C, H, W); uint8 in [0, 255] or floats in [0, 1]. Anything else is an error that
    names the argument."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in channels:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, C, H, W) with C in {channels}, got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be uint8 in [0, 255] or floats in [0, 1], got dtype {x.dtype}")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name} as floats must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return x.clamp_(0, 1)


def float_batches(images, batch_size: int, name: str = "images", channels: tuple[int, ...] = (1,)):
    """:func:`as_float_images` one batch of ``batch_size`` at a time, so that host memory holds one float32 batch
    and not the whole set (as floats, 70,000 FFHQ images at 128 × 128 would take 4 × their 3.4 GB as uint8)."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if len(x):
        as_float_images(x[:1], name, channels)  # a wrong shape or dtype fails before any work
    for s in range(0, len(x), batch_size):
        yield as_float_images(x[s : s + batch_size], name, channels)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling: 28×28 → conv 6@5×5 (padded) → pool → conv 16@5×5
    → pool → 120 → 84 → 10. ``features`` returns the 84-d penultimate activations."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.features(x))


def _prepare_mnist(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images → LeNet input: 32×32 padded MNIST is centre-cropped back to 28×28, then standardised."""
    if x.shape[-1] != 28 or x.shape[-2] != 28:
        h, w = x.shape[-2:]
        if h < 28 or w < 28:
            raise ValueError(f"LeNet features need 28×28 images (or larger, centre-cropped), got {h}×{w}")
        top, left = (h - 28) // 2, (w - 28) // 2
        x = x[..., top : top + 28, left : left + 28]
    return (x - MNIST_MEAN) / MNIST_STD


def train_lenet(seed: int = 0, epochs: int = 6, batch_size: int = 128, device: str = "auto", progress: bool = True):
    """Train LeNet-5 on the 60,000 MNIST training images (Adam with a one-cycle learning rate peaking at 3e-3,
    batch 128, 6 epochs: about 99.2 % test accuracy). Returns the model (on CPU) and its accuracy on the 10,000
    test images."""
    from tqdm.auto import tqdm

    device = resolve_device(device)
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LeNet5().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    xs = _prepare_mnist(torch.as_tensor(x)[:, None].float() / 255.0)
    ys = torch.as_tensor(y)
    bar = tqdm(total=steps, desc="training LeNet-5 on MNIST", disable=not progress, leave=False)
    started = time.time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xs), generator=gen)
        for start in range(0, len(xs), batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(model(xs[idx].to(device)), ys[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
        if not progress:  # plain lines where no bar is shown (a log, ./test.sh's setup)
            print(f"LeNet-5: epoch {epoch + 1}/{epochs} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    bar.close()
    model.eval().cpu()
    with torch.no_grad():
        xts = _prepare_mnist(torch.as_tensor(xt)[:, None].float() / 255.0)
        pred = torch.cat([model(xts[s : s + 2000]).argmax(1) for s in range(0, len(xts), 2000)])
    return model, float((pred.numpy() == yt).mean())


class LeNetFeatures:
    """84-d LeNet-5 features of MNIST images (the feature space of every MNIST FID, precision and recall here).

    The network is trained on first use (about a minute on a CPU) and cached as ``<data>/lenet5_mnist_seed0.pt``
    with its sha256 and test accuracy in a ``.json`` beside it; a cached file that does not match its checksum is an
    error, never silently used. ``min_accuracy`` (99 %) is checked when training and when loading.
    """

    dim = 84

    def __init__(
        self,
        seed: int = 0,
        device: str = "auto",
        path: Path | None = None,
        min_accuracy: float = 0.99,
        batch_size: int = 2000,
        progress: bool = True,
    ):
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.path = Path(path) if path is not None else data_dir() / LENET_FILE.format(seed=seed)
        meta_path = self.path.with_suffix(".json")
        if not self.path.is_file():
            start = time.time()
            print(
                f"LeNet-5, the feature network of every MNIST metric, is not in {self.path.parent} yet: training it "
                "once (6 epochs on MNIST; about a minute on an idle 2-core CPU)",
                file=sys.stderr,
                flush=True,
            )
            model, acc = train_lenet(seed=seed, progress=progress)
            if acc < min_accuracy:
                raise RuntimeError(f"LeNet-5 reached {acc:.2%} test accuracy, below the required {min_accuracy:.0%}")
            tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
            torch.save(model.state_dict(), tmp)
            meta = {
                "sha256": sha256_file(tmp),
                "test_accuracy": acc,
                "seed": seed,
                "train_seconds": time.time() - start,
            }
            os.replace(tmp, self.path)
            meta_path.write_text(json.dumps(meta, indent=1) + "\n")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            raise RuntimeError(f"{meta_path} is missing or unreadable; delete {self.path} to retrain LeNet-5") from None
        if sha256_file(self.path) != meta["sha256"]:
            raise RuntimeError(
                f"cached LeNet-5 weights {self.path} do not match their checksum in {meta_path}: the file is "
                f"corrupted. Delete both files to retrain (about a minute)."
            )
        if meta["test_accuracy"] < min_accuracy:
            raise RuntimeError(
                f"cached LeNet-5 {self.path} has {meta['test_accuracy']:.2%} test accuracy, below "
                f"{min_accuracy:.0%}; delete it to retrain"
            )
        self.accuracy = float(meta["test_accuracy"])
        self.sha256 = meta["sha256"]
        self.model = LeNet5()
        self.model.load_state_dict(torch.load(self.path, map_location="cpu", weights_only=True))
        self.model.eval().to(self.device)

    def key(self) -> dict:
        return {"name": "lenet5", "sha256": self.sha256[:16]}

    @torch.no_grad()
    def __call__(self, images) -> np.ndarray:
        out = [
            self.model.features(_prepare_mnist(xb).to(self.device)).cpu()
            for xb in float_batches(images, self.batch_size, "images", channels=(1,))
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def classify_features(self, features: np.ndarray) -> np.ndarray:
        """Predicted digits from already computed 84-d features (the last layer only)."""
        f = torch.as_tensor(np.asarray(features, dtype=np.float32), device=self.device)
        return self.model.fc3(f).argmax(1).cpu().numpy()

    @torch.no_grad()
    def classify(self, images) -> np.ndarray:
        """Predicted digit of each image (used to check that generated digits are recognisable)."""
        out = [
            self.model(_prepare_mnist(xb).to(self.device)).argmax(1).cpu()
            for xb in float_batches(images, self.batch_size, "images", channels=(1,))
        ]
        return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


class InceptionWeightsError(FileNotFoundError):
    """The FID Inception weights are not available; the message says where to put them."""


def inception_weights_path(weights: str | Path | None = None) -> Path | None:
    """The first existing file among: ``weights``, ``$MAD_INCEPTION_WEIGHTS``, ``<data>/pt_inception-...pth``, the
    torch hub checkpoint cache. ``None`` when none exists."""
    candidates = [
        weights,
        os.environ.get("MAD_INCEPTION_WEIGHTS"),
        data_dir() / INCEPTION_FILE,
        Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE,
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    if weights is not None:
        raise InceptionWeightsError(f"Inception weights file {weights} does not exist")
    return None


@contextmanager
def _pytorch_fid_loader(state_dict_fn):
    import pytorch_fid.inception as fid_inception

    with mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *a, **k: state_dict_fn()):
        yield fid_inception


class InceptionFeatures:
    """2048-d pool features of pytorch-fid's InceptionV3, the network of the FID literature (for FFHQ)."""

    dim = 2048

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 100,
        _random_init: int | None = None,
    ):
        import pytorch_fid.inception as fid_inception

        self.device = resolve_device(device)
        self.batch_size = batch_size
        if _random_init is not None:
            torch.manual_seed(_random_init)
            # the exact architecture with random weights (tests, benchmarks): skip the loading of the state dict
            with _pytorch_fid_loader(dict), mock.patch.object(nn.Module, "load_state_dict", lambda *a, **k: None):
                self.net = fid_inception.InceptionV3([3])
            self.source = f"random init (seed {_random_init})"
        else:
            path = inception_weights_path(weights)
            if path is None and os.environ.get("MAD_OFFLINE") != "1":
                try:
                    self.net = fid_inception.InceptionV3([3])  # pytorch-fid downloads into the torch hub cache
                    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
                except Exception as exc:  # noqa: BLE001 - reported with the instructions below
                    raise InceptionWeightsError(self._missing(f"the download failed: {exc}")) from None
            elif path is None:
                raise InceptionWeightsError(self._missing("MAD_OFFLINE=1"))
            else:
                try:
                    with _pytorch_fid_loader(lambda: torch.load(path, map_location="cpu", weights_only=True)):
                        self.net = fid_inception.InceptionV3([3])
                except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError) as exc:
                    raise InceptionWeightsError(
                        f"the Inception weights file {path} cannot be read as pytorch-fid's weights "
                        f"({type(exc).__name__}): it is corrupted or not {INCEPTION_FILE}. Delete it and download "
                        f"{INCEPTION_URL} again to that path (its sha256 is published with pytorch-fid)."
                    ) from None
            self.source = str(path)
        self.net.eval().to(self.device)

    @staticmethod
    def _missing(why: str) -> str:
        return (
            f"the FID Inception weights are not available ({why}). Download {INCEPTION_URL} and put it at "
            f"{data_dir() / INCEPTION_FILE}, or pass weights=PATH, or set MAD_INCEPTION_WEIGHTS=PATH."
        )

    @classmethod
    def random_init(cls, seed: int = 0, device: str = "cpu") -> InceptionFeatures:
        """pytorch-fid's InceptionV3 architecture with random weights: for tests and timing, never for results."""
        return cls(device=device, _random_init=seed)

    def key(self) -> dict:
        return {"name": "inception-v3-fid", "weights": Path(self.source).name}

    @torch.no_grad()
    def __call__(self, images) -> np.ndarray:
        out = []
        for xb in float_batches(images, self.batch_size, "images", channels=(1, 3)):
            xb = xb.to(self.device)
            if xb.shape[1] == 1:
                xb = xb.expand(-1, 3, -1, -1)
            out.append(self.net(xb)[0].flatten(1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)
