"""The result store: run folders keyed by a hash of the full configuration, one atomic folder a generation,
resume after the last complete generation, and tidy tables that figures are drawn from.

Layout (DESIGN.md)::

    runs/<scale>/<experiment>/<run-key>/config.json
    runs/<scale>/<experiment>/<run-key>/gen-001/{manifest.json, metrics.json, *.npy, model.pt}
    runs/<scale>/<experiment>/cache/<key>/...            single results (a Monte Carlo grid point, a shared fit)

A generation folder is written under a temporary name and renamed into place when complete, so a killed process
leaves either a complete generation or a temporary folder that the next run deletes. Every file is listed with its
size and sha256 in ``manifest.json``; a file that does not match is reported as corrupted, never silently used or
deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .utils import canonical, config_key, sha256_file


class StoreError(RuntimeError):
    """A stored result that cannot be used as it is: the message names the path and says what to do."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, default=float) + "\n")


class _AtomicFolder:
    """Write files into a temporary sibling folder, then publish it with one rename."""

    def __init__(self, final: Path):
        self.final = final
        self.tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.files: dict[str, dict] = {}

    def __enter__(self) -> _AtomicFolder:
        self.tmp.mkdir(parents=True)
        return self

    def add_bytes(self, name: str, data: bytes) -> None:
        path = self.tmp / name
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def add_array(self, name: str, array: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.require(array, requirements="C"), allow_pickle=False)  # keeps 0-d arrays 0-d
        self.add_bytes(name + ".npy", buf.getvalue())

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        self.add_bytes("manifest.json", json.dumps({"files": self.files}, indent=1, sort_keys=True).encode())
        _fsync_dir(self.tmp)
        try:
            os.rename(self.tmp, self.final)
        except OSError:
            # Another process published the same result first; the two are identical by construction.
            shutil.rmtree(self.tmp, ignore_errors=True)
            if not (self.final / "manifest.json").is_file():
                raise
        _fsync_dir(self.final.parent)


def _read_folder(folder: Path, verify: bool = True) -> dict[str, Path]:
    """The files of a published folder, checked against its manifest."""
    manifest = folder / "manifest.json"
    hint = f"Delete {folder} (and, for a generation, every later generation of that run) so that it is recomputed."
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"stored result {folder} has no readable manifest ({exc}). {hint}") from None
    paths = {}
    for name, meta in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != meta["bytes"]:
            raise StoreError(f"stored file {path} is missing or has the wrong size: the result is corrupted. {hint}")
        if verify and sha256_file(path) != meta["sha256"]:
            raise StoreError(f"stored file {path} does not match its checksum: the result is corrupted. {hint}")
        paths[name] = path
    return paths


def _load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


class Generation:
    """One stored generation: its metrics, arrays (synthetic output, features, grids) and optionally its model."""

    def __init__(self, folder: Path, verify: bool = True):
        self.folder = folder
        self.files = _read_folder(folder, verify=verify)
        self.metrics: dict[str, float] = json.loads(self.files["metrics.json"].read_text())

    def array(self, name: str) -> np.ndarray:
        try:
            return _load_array(self.files[name + ".npy"])
        except KeyError:
            raise KeyError(f"generation {self.folder} stored no array {name!r}") from None

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {
            n[: -len(".npy")]: _load_array(p)
            for n, p in self.files.items()
            if n.endswith(".npy") and n.startswith(prefix)
        }

    def has(self, name: str) -> bool:
        return name + ".npy" in self.files

    def model(self) -> Any:
        if "model.pkl" not in self.files:
            raise KeyError(f"generation {self.folder} stored no model")
        return _unpickle(self.files["model.pkl"])


def _unpickle(path: Path) -> Any:
    import torch

    with open(path, "rb") as f:
        return torch.load(f, map_location="cpu", weights_only=False)


def _pickle_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return buf.getvalue()


class Run:
    """The folder of one loop run: ``config.json`` plus ``gen-NNN/`` folders."""

    def __init__(self, path: Path, config: dict, key: str):
        self.path, self.config, self.key = path, config, key

    def _gen_path(self, t: int) -> Path:
        return self.path / f"gen-{t:03d}"

    def completed(self) -> int:
        """The number of complete generations 1..m stored (stale temporary folders of killed runs are removed).

        Raises :class:`StoreError` when the stored generations are not contiguous or a manifest is unreadable.
        """
        for tmp in self.path.glob(".gen-*.tmp-*"):
            if _pid_gone(tmp.name):
                shutil.rmtree(tmp, ignore_errors=True)
        gens = sorted(int(p.name[4:]) for p in self.path.glob("gen-[0-9][0-9][0-9]") if p.is_dir())
        if gens != list(range(1, len(gens) + 1)):
            raise StoreError(
                f"run {self.path} holds generations {gens}, which are not 1..m without gaps. "
                "Delete the generations after the first gap so that they are recomputed."
            )
        for t in gens:
            _read_folder(self._gen_path(t), verify=False)
        return len(gens)

    def write_generation(
        self,
        t: int,
        metrics: dict[str, float],
        arrays: dict[str, np.ndarray] | None = None,
        model: Any = None,
    ) -> None:
        """Store generation ``t`` atomically (temporary folder, then rename)."""
        final = self._gen_path(t)
        if final.exists():
            raise StoreError(f"generation {final} is already stored; a run never overwrites a stored generation")
        clean = {}
        for k, v in (metrics or {}).items():
            clean[k] = float(v)
        with _AtomicFolder(final) as folder:
            folder.add_bytes("metrics.json", json.dumps(clean, indent=1, sort_keys=True).encode())
            for name, array in (arrays or {}).items():
                folder.add_array(name, np.asarray(array))
            if model is not None:
                folder.add_bytes("model.pkl", _pickle_bytes(model))

    def generation(self, t: int, verify: bool = True) -> Generation:
        path = self._gen_path(t)
        if not path.is_dir():
            raise StoreError(f"generation {t} of run {self.path} is not stored yet")
        return Generation(path, verify=verify)

    def metrics(self) -> pd.DataFrame:
        """Tidy metrics of this run: one row per generation × metric."""
        rows = []
        for t in range(1, self.completed() + 1):
            for name, value in self.generation(t, verify=False).metrics.items():
                rows.append({"generation": t, "metric": name, "value": value})
        return pd.DataFrame(rows, columns=["generation", "metric", "value"])


class Store:
    """All results of one scale: ``runs/<scale>/``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- loop runs ------------------------------------------------------------------------------------------------

    def run(self, experiment: str, config: Any) -> Run:
        """The run folder of a configuration (created on first use). A folder whose stored configuration differs
        from ``config`` is an error, never reused."""
        canon = canonical(config)
        key = config_key(canon)
        path = self.root / experiment / key
        stored = path / "config.json"
        if stored.is_file():
            try:
                old = json.loads(stored.read_text())
            except ValueError:
                raise StoreError(f"{stored} is not valid JSON; delete the folder {path} to recompute the run") from None
            if old != json.loads(json.dumps(canon)):
                raise StoreError(
                    f"run folder {path} holds a different configuration than the one asked for (key {key}). "
                    "Move that folder away or delete it; stored results are never reused for another configuration."
                )
        else:
            path.mkdir(parents=True, exist_ok=True)
            tmp = path / f".config.json.tmp-{os.getpid()}"
            _write_json(tmp, canon)
            os.replace(tmp, stored)
        return Run(path, canon, key)

    def runs(self, experiment: str) -> Iterator[Run]:
        for cfg in sorted((self.root / experiment).glob("*/config.json")):
            yield Run(cfg.parent, json.loads(cfg.read_text()), cfg.parent.name)

    # -- single cached results ------------------------------------------------------------------------------------

    def cached_arrays(
        self, experiment: str, config: Any, compute: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """A dict of arrays computed once per configuration and stored atomically (e.g. one Monte Carlo grid
        point); later calls with the same configuration load it."""
        folder = self._cache_folder(experiment, config)
        with _lock(folder):
            if not (folder / "manifest.json").is_file():
                result = compute()
                with _AtomicFolder(folder) as f:
                    f.add_bytes("config.json", json.dumps(canonical(config), sort_keys=True).encode())
                    for name, array in result.items():
                        f.add_array(name, np.asarray(array))
        files = _read_folder(folder)
        return {n[:-4]: _load_array(p) for n, p in files.items() if n.endswith(".npy")}

    def cached_object(self, experiment: str, config: Any, compute: Callable[[], Any]) -> Any:
        """An object (a fitted model) computed once per configuration, e.g. the generation-1 model that every
        loop with the same real data shares."""
        folder = self._cache_folder(experiment, config)
        with _lock(folder):
            if not (folder / "manifest.json").is_file():
                value = compute()
                with _AtomicFolder(folder) as f:
                    f.add_bytes("config.json", json.dumps(canonical(config), sort_keys=True).encode())
                    f.add_bytes("object.pkl", _pickle_bytes(value))
                return value
        return _unpickle(_read_folder(folder)["object.pkl"])

    def _cache_folder(self, experiment: str, config: Any) -> Path:
        folder = self.root / experiment / "cache" / config_key(config)
        folder.parent.mkdir(parents=True, exist_ok=True)
        for tmp in folder.parent.glob(f".{folder.name}.tmp-*"):
            if _pid_gone(tmp.name):
                shutil.rmtree(tmp, ignore_errors=True)
        return folder

    # -- tidy tables ----------------------------------------------------------------------------------------------

    def table(self, experiment: str, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        """The tidy table of an experiment: one row per run × generation × metric, with the run's configuration
        flattened into columns (``loop.lam`` → ``lam``, other parts keep a ``part.`` prefix) and, in column
        ``family_key``, the hash of the run's whole model family (compare with ``config_key(identity(family))`` to
        keep only the runs of one family)."""
        frames = []
        for run in self.runs(experiment):
            df = run.metrics()
            if df.empty:
                continue
            for k, v in flatten_config(run.config).items():
                if columns is None or k in columns:
                    df[k] = v if not isinstance(v, list) else str(v)
            df["family_key"] = config_key(run.config.get("family"))
            df["run"] = run.key
            frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["run", "generation", "metric", "value"])
        return pd.concat(frames, ignore_index=True)


def flatten_config(config: dict, prefix: str = "") -> dict[str, Any]:
    """``{"loop": {"lam": 1}, "family": {"width": 16}}`` → ``{"lam": 1, "family.width": 16}``."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if k == "__class__":
            continue
        name = k if (prefix in ("", "loop.")) else prefix + k
        if isinstance(v, dict):
            out.update(flatten_config(v, "loop." if k == "loop" else f"{name}."))
        else:
            out[name] = v
    return out


@contextlib.contextmanager
def _lock(folder: Path):
    """Serialise the computation of one cached result between processes (notebooks run in parallel may ask
    for the same shared generation-1 model); the second process waits, then loads what the first stored."""
    lock_path = folder.with_name(f".{folder.name}.lock")
    with open(lock_path, "a+") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX: no cross-process lock, results stay correct
            pass
        yield


def _pid_gone(tmp_name: str) -> bool:
    try:
        pid = int(tmp_name.split(".tmp-")[1].split("-")[0])
    except (IndexError, ValueError):
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # pragma: no cover
        return False
    return False
