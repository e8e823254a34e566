"""The result store: run folders keyed by a hash of the full configuration, one atomic folder a generation,
resume after the last complete generation, single cached results, and the in-memory run of a loop without a
store.

Layout (docs/design.md, "The store and its keys")::

    runs/<scale>/<folder>/<run-key>/config.json
    runs/<scale>/<folder>/<run-key>/gen-001/{manifest.json, metrics.json, *.npy, model.safetensors}
    runs/<scale>/<folder>/cache/<key>/...            single results (a Monte Carlo grid point, a shared fit)

A generation folder is written under a temporary name and renamed into place when complete, so a killed process
leaves either a complete generation or a temporary folder. Temporary folders are deleted only by a process that
holds the lock of their run (or cached result): every writer holds that lock while it writes, and the operating
system (or the file server's lock manager, on a shared disk) releases it only when the holder is gone, so a
temporary folder found under the lock belongs to nobody. No process ever decides from a process id that a writer
is gone: a reader on another machine, or in another PID namespace (a container), cannot see the writer's
processes. Every file is listed with its size and sha256 in ``manifest.json``, which also says what the folder is
(generation t of run <key>, or cached result <key>) and carries the checksum of all of that; every read checks
the file it reads against it, and a file that does not match, or a folder that is not where its manifest says it
belongs, is reported by name, never silently used or deleted. A run's ``config.json`` is checked against the
folder's name (the hash of the configuration) before the run is read or taken over. Models, cached objects and
training states are plain data (:mod:`madutils.plain`): reading them runs no code. A run is computed under a
lock that its runs of every length share, so two processes never compute the same generations. A write that
fails (a full disk) removes what it had written and says where, how much the result needed and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from . import plain
from .utils import canonical, config_key

_NOT_COMPUTED = object()


_GEN_NAME = re.compile(r"gen-\d{3,}")


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


def write_error(exc: OSError, path: Path, needed: int | None = None, what: str = "this result") -> StoreError:
    """A failed write as an error that names the path and says what to do (for a full disk: the bytes ``what``
    needs, the bytes free, and where to free space or move the results)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "requested and" in str(exc):
        existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
        try:
            free = shutil.disk_usage(existing).free
        except OSError:
            free = None
        size = f"{what} needs about {needed:,} bytes, " if needed else ""
        room = f"{free:,} bytes free" if free is not None else "free space unknown"
        return StoreError(
            f"no space left on the disk of {path} ({size}{room}); nothing was stored for {what}. Free space on "
            "that disk (old runs under runs/<scale>/ can go) or point MAD_ROOT at a project folder on a disk with "
            "room, then rerun: what was stored before is kept"
        )
    return StoreError(
        f"cannot write {path} ({exc.strerror or exc}); nothing was stored for {what}. Make the folder "
        "writable or point MAD_ROOT at a writable project folder, then rerun"
    )


# The manifest of a published folder: its format, what it belongs to (the binding: generation t of run <key>, or
# the cached result <key>), every file with its size and sha256, and the sha256 of all of that. Manifests of
# format 1 (no format, no binding, stored models as pickles) are read only through `madutils.tools.migrate`.
FORMAT = 2
MIGRATE = "python -m madutils.tools.migrate"


def _manifest_digest(fmt: Any, binding: Any, files: dict) -> str:
    listing = {"format": fmt, "binding": binding, "files": files}
    return hashlib.sha256(json.dumps(listing, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def manifest_bytes(binding: dict, files: dict) -> bytes:
    """The manifest of a folder of format :data:`FORMAT` bound to ``binding`` that lists ``files``."""
    digest = _manifest_digest(FORMAT, binding, files)
    manifest = {"format": FORMAT, "binding": binding, "files": files, "listing_sha256": digest}
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def _describe_binding(binding: Any) -> str:
    if isinstance(binding, dict) and "run" in binding:
        return f"generation {binding.get('generation')} of run {binding['run']}"
    if isinstance(binding, dict) and "cache" in binding:
        return f"cached result {binding['cache']}"
    return f"{binding!r}"


class _AtomicFolder:
    """Write files into a temporary sibling folder, then publish it with one rename. Its manifest binds it to
    ``binding`` (:func:`manifest_bytes`); ``needed`` (the bytes of the whole result, when known) and ``what`` name
    it in a full disk's error."""

    def __init__(self, final: Path, binding: dict, needed: int | None = None, what: str = "this result"):
        self.final, self.binding, self.needed, self.what = final, binding, needed, what
        self.tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self.files: dict[str, dict] = {}

    def _failed(self, exc: OSError, name: str, size: int) -> StoreError:
        return write_error(exc, self.final / name, self.needed or size, self.what)

    def __enter__(self) -> _AtomicFolder:
        try:
            self.tmp.mkdir(parents=True)
        except OSError as exc:
            raise self._failed(exc, "", 0) from None
        return self

    def add_bytes(self, name: str, data: bytes) -> None:
        path = self.tmp / name
        try:
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise self._failed(exc, name, len(data)) from None
        self.files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def add_array(self, name: str, array: np.ndarray) -> None:
        """Written straight to its file and hashed from there: no copy of a large array in memory."""
        path = self.tmp / (name + ".npy")
        array = np.require(array, requirements="C")
        try:
            with open(path, "wb") as f:
                np.save(f, array, allow_pickle=False)  # keeps 0-d arrays 0-d
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise self._failed(exc, name + ".npy", array.nbytes) from None
        self.files[name + ".npy"] = {"bytes": path.stat().st_size, "sha256": _file_sha256(path)}

    def add_link(self, name: str, src: Path, meta: dict) -> None:
        """A file of another published folder, checked against ``meta`` before: as a hard link (a copy where the
        file system has none)."""
        try:
            try:
                os.link(src, self.tmp / name)
            except OSError:
                shutil.copy2(src, self.tmp / name)
        except OSError as exc:
            raise self._failed(exc, name, meta["bytes"]) from None
        self.files[name] = dict(meta)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            self.add_bytes("manifest.json", manifest_bytes(self.binding, self.files))
            _fsync_dir(self.tmp)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        try:
            os.rename(self.tmp, self.final)
        except OSError as exc:
            # Another process published the same result first; the two are identical by construction.
            shutil.rmtree(self.tmp, ignore_errors=True)
            if not (self.final / "manifest.json").is_file():
                raise self._failed(exc, "", 0) from None
        _fsync_dir(self.final.parent)


class OldFormatError(StoreError):
    """A folder stored by a version of madutils before format 2 (:data:`FORMAT`): read only by the migration."""


def _read_manifest(folder: Path) -> tuple[dict, dict]:
    """The parsed manifest of a published folder and its file listing, with nothing checked but its syntax."""
    manifest = folder / "manifest.json"
    hint = f"Delete {folder} (and, for a generation, every later generation of that run) so that it is recomputed."
    try:
        stored = json.loads(manifest.read_text())
        files = stored["files"]
        files = {str(name): {"bytes": int(m["bytes"]), "sha256": str(m["sha256"])} for name, m in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"stored file {manifest} cannot be read ({type(exc).__name__}: {exc}). {hint}") from None
    outside = [n for n in files if n in ("", ".", "..") or "/" in n or os.sep in n]
    if outside:
        raise StoreError(f"stored file {manifest} lists {outside[0]!r}, a file outside its folder. {hint}")
    return stored, files


def _read_folder(folder: Path, binding: dict) -> dict[str, tuple[Path, dict]]:
    """The files of a published folder with their manifest entries (size and sha256), after checking that the
    manifest is of this format, matches its own checksum and is bound to ``binding`` (the folder was not copied,
    moved or linked from another run, generation or cached result). The sizes are checked here, each file's
    checksum when it is read (:func:`_read_checked`)."""
    manifest = folder / "manifest.json"
    hint = f"Delete {folder} (and, for a generation, every later generation of that run) so that it is recomputed."
    stored, files = _read_manifest(folder)
    if not isinstance(stored, dict) or ("format" not in stored and "binding" not in stored):
        root = folder.parents[2] if len(folder.parents) > 2 else folder.parent
        raise OldFormatError(
            f"{folder} was stored by an older version of madutils (stored models were Python pickles, and a "
            f"generation was not bound to its run). Run `{MIGRATE} {root}` once to bring the store to the current "
            f"format (it says what it trusts before it changes anything), or delete {folder} so that it is "
            "recomputed"
        )
    if stored.get("listing_sha256") != _manifest_digest(stored.get("format"), stored.get("binding"), files):
        raise StoreError(f"stored file {manifest} does not match its own checksum: it is corrupted. {hint}")
    if stored["format"] != FORMAT:
        raise StoreError(
            f"{folder} was stored in format {stored['format']!r}, which this version of madutils (format {FORMAT}) "
            f"cannot read: update madutils, or delete the folder so that it is recomputed"
        )
    if stored["binding"] != binding:
        link = f" (a link to {folder.resolve()})" if folder.is_symlink() else ""
        raise StoreError(
            f"{folder}{link} is not {_describe_binding(binding)}: its manifest binds it to "
            f"{_describe_binding(stored['binding'])}, so it was copied, moved or linked here from there. "
            f"{hint}"
        )
    out = {}
    for name, meta in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != meta["bytes"]:
            raise StoreError(f"stored file {path} is missing or has the wrong size: the result is corrupted. {hint}")
        out[name] = (path, meta)
    return out


def _corrupted(path: Path) -> StoreError:
    return StoreError(
        f"stored file {path} does not match the checksum in its manifest: the result is corrupted. "
        f"Delete {path.parent} (and, for a generation, every later generation of that run) to recompute it."
    )


def _read_checked(path: Path, meta: dict) -> bytes:
    """The bytes of a stored file, after checking them against the sha256 of its manifest: a result is never
    served without this check (a same-size corruption changes the checksum, not the size)."""
    data = path.read_bytes()
    if len(data) != meta["bytes"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise _corrupted(path)
    return data


MMAP_BYTES = 64 * 2**20  # larger arrays are memory-mapped (read-only) instead of read into memory


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def _load_array(path: Path, meta: dict) -> np.ndarray:
    """A stored array, checked against its checksum. An array of at least :data:`MMAP_BYTES` is checked by
    streaming the file and then memory-mapped read-only: its pages are read when used and can be dropped again, so
    a notebook can hold many large results (notebook 01 at the paper scale: 16 arrays of 3.2 GB) without holding
    them all in memory. NumPy reads it without unpickling anything: an array of Python objects is refused by
    name."""
    try:
        if meta["bytes"] < MMAP_BYTES:
            return np.load(io.BytesIO(_read_checked(path, meta)), allow_pickle=False)
        if path.stat().st_size != meta["bytes"] or _file_sha256(path) != meta["sha256"]:
            raise _corrupted(path)
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as exc:  # an array of objects (a pickle), or not an .npy file
        raise StoreError(
            f"stored file {path} is not an array of numbers that can be read without running code ({exc}). Delete "
            f"{path.parent} (and, for a generation, every later generation of that run) so that it is recomputed"
        ) from None


def _load_plain(path: Path, meta: dict) -> Any:
    """A stored model or object (:mod:`madutils.plain`: reading it runs no code), checked against its checksum."""
    return _decode_plain(path, _read_checked(path, meta))


def _decode_plain(path: Path, data: bytes) -> Any:
    try:
        return plain.loads(data)
    except plain.UnknownClassError as exc:
        raise StoreError(f"stored file {path} cannot be read in this process: {exc}") from None
    except plain.NonFiniteError as exc:
        raise StoreError(
            f"stored file {path} holds NaN or infinity ({exc}), so it is not a usable result. Delete {path.parent} "
            "(and, for a generation, every later generation of that run) so that it is recomputed"
        ) from None
    except plain.PlainFormatError as exc:
        raise StoreError(
            f"stored file {path} is not a plain-data file that can be read ({exc}). Delete {path.parent} (and, for "
            "a generation, every later generation of that run) so that it is recomputed"
        ) from None


def _load_json(path: Path, meta: dict) -> Any:
    try:
        return json.loads(_read_checked(path, meta))
    except ValueError:
        raise StoreError(f"stored file {path} is not valid JSON; delete {path.parent} to recompute it") from None


class Generation:
    """One stored generation: its metrics, arrays (synthetic output, features, grids) and optionally its model.
    Every file is checked against its manifest's checksum when it is read."""

    def __init__(self, folder: Path, binding: dict):
        self.folder = folder
        self.files = _read_folder(folder, binding)
        if "metrics.json" not in self.files:
            raise StoreError(f"generation {folder} stored no metrics.json; delete it so that it is recomputed")
        self.metrics: dict[str, float] = _load_json(*self.files["metrics.json"])
        if not isinstance(self.metrics, dict) or not all(_is_metric(v) for v in self.metrics.values()):
            raise StoreError(
                f"generation {folder} stored metrics that are not finite numbers in metrics.json; delete it (and "
                "every later generation of its run) so that it is recomputed"
            )

    def array(self, name: str) -> np.ndarray:
        try:
            return _load_array(*self.files[name + ".npy"])
        except KeyError:
            raise KeyError(f"generation {self.folder} stored no array {name!r}") from None

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {
            n[: -len(".npy")]: _load_array(*f)
            for n, f in self.files.items()
            if n.endswith(".npy") and n.startswith(prefix)
        }

    def has(self, name: str) -> bool:
        return name + ".npy" in self.files

    def verify(self) -> None:
        """Check every file of this generation against its checksum (:class:`StoreError` naming the first that
        does not match)."""
        for path, meta in self.files.values():
            if path.stat().st_size != meta["bytes"] or _file_sha256(path) != meta["sha256"]:
                raise _corrupted(path)

    def model(self) -> Any:
        if MODEL_FILE not in self.files:
            _refuse_pickles(self.folder, self.files)
            raise KeyError(f"generation {self.folder} stored no model")
        return _load_plain(*self.files[MODEL_FILE])


MODEL_FILE = "model.safetensors"  # a generation's model (madutils.plain)
OBJECT_FILE = "object.safetensors"  # a cached object


def _refuse_pickles(folder: Path, files: Mapping) -> None:
    """A folder whose manifest lists a pickle where a model or object should be is refused by name: the store never
    reads a pickle (reading one runs whatever code its writer put in it)."""
    for name in files:
        if name.endswith((".pkl", ".pickle", ".pt", ".pth")):
            raise StoreError(
                f"stored file {folder / name} is a pickle, which this store never reads (reading a pickle runs code "
                f"that its writer put in it); models are stored as {MODEL_FILE}. Delete {folder} (and, for a "
                "generation, every later generation of that run) so that it is recomputed"
            )


def _is_metric(value: Any) -> bool:
    """A metric is a finite real number (a bool counts as 0 or 1): never a text, never NaN or infinity."""
    return (
        not isinstance(value, (str, bytes))
        and np.ndim(value) == 0
        and np.asarray(value).dtype.kind in "biuf"
        and bool(np.isfinite(value))
    )


class Checkpoint:
    """The state of one long training in progress (a StyleGAN2 generation at the paper scale takes hours), so that a
    killed run resumes from its last save instead of from the start of the generation.

    ``save(state)`` writes the state as plain data (:mod:`madutils.plain`: reading it runs no code) atomically and
    then its SHA-256 beside it; ``load()`` returns ``None`` when no complete checkpoint is there (a file without
    its checksum was cut short and is removed), the state when the checksum matches, and otherwise raises
    :class:`StoreError` naming the file. ``clear()`` removes it once the generation is stored. The path names the
    run and the generation, so a checkpoint is only read back for the training it was written by; the state
    records that name as well and is checked against it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.sum_path = self.path.with_name(self.path.name + ".sha256")

    def save(self, state: dict) -> None:
        data = plain.dumps({"checkpoint": self.path.name, "state": state}, what=f"the training state {self.path}")
        self.sum_path.unlink(missing_ok=True)  # the old checksum goes first: a cut-short save is never trusted
        for target, payload in ((self.path, data), (self.sum_path, hashlib.sha256(data).hexdigest().encode())):
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                self.sum_path.unlink(missing_ok=True)
                raise write_error(exc, target, len(data), "the training checkpoint") from None

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        if not self.sum_path.is_file():
            self.path.unlink(missing_ok=True)
            return None
        data = self.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != self.sum_path.read_text().strip():
            raise StoreError(
                f"checkpoint {self.path} does not match its checksum (a corrupted file); delete it and "
                f"{self.sum_path.name} to train this generation from its start"
            )
        saved = _decode_plain(self.path, data)
        if not isinstance(saved, dict) or saved.get("checkpoint") != self.path.name:
            raise StoreError(
                f"checkpoint {self.path} was written for another training; delete it and {self.sum_path.name}"
            )
        return saved["state"]

    def clear(self) -> None:
        self.sum_path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


class Run:
    """The folder of one loop run: ``config.json`` plus ``gen-NNN/`` folders, each bound to this run and its
    number. ``lock_name`` names the lock that every writer of this run holds (:meth:`lock`): by default the run's
    own; a loop passes one that its runs of every length share, so that two writers of the same loop with
    different lengths never compute the same generations."""

    def __init__(self, path: Path, config: dict, key: str, lock_name: str | None = None):
        self.path, self.config, self.key = path, config, key
        self.lock_name = lock_name or key

    def _gen_path(self, t: int) -> Path:
        return self.path / f"gen-{t:03d}"

    def binding(self, t: int) -> dict:
        """What the manifest of generation ``t`` of this run says it is."""
        return {"run": self.key, "generation": t}

    def _open(self, t: int) -> Generation:
        return Generation(self._gen_path(t), self.binding(t))

    def completed(self) -> int:
        """The number of complete generations 1..m stored. It only reads: temporary folders of writers (alive or
        killed) are left alone (:meth:`remove_temporary`, under the run's lock, deletes those of killed writers).

        Every generation's manifest and file sizes are checked, and its metrics against their checksum. Raises
        :class:`StoreError` when the stored generations are not contiguous or a stored file does not match.
        """
        # gen-001 … gen-999, then gen-1000 …: the number has at least three digits
        gens = sorted(int(p.name[4:]) for p in self.path.glob("gen-*") if p.is_dir() and _GEN_NAME.fullmatch(p.name))
        if gens != list(range(1, len(gens) + 1)):
            raise StoreError(
                f"run {self.path} holds generations {gens}, which are not 1..m without gaps. "
                "Delete the generations after the first gap so that they are recomputed."
            )
        for t in gens:
            self._open(t)
        return len(gens)

    def remove_temporary(self) -> int:
        """Delete the temporary generation folders that killed writers left. Only a process that holds this run's
        :meth:`lock` may call it: every writer holds the lock while it writes, so under the lock no temporary
        folder has a living writer, on this machine or any other that shares the disk. Returns how many went."""
        gone = 0
        for tmp in self.path.glob(".gen-*.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
            gone += 1
        return gone

    def write_generation(
        self,
        t: int,
        metrics: dict[str, float],
        arrays: dict[str, np.ndarray] | None = None,
        model: Any = None,
    ) -> None:
        """Store generation ``t`` atomically (temporary folder, then rename). Its metrics must be finite numbers and
        its model plain data without NaN or infinity (:mod:`madutils.plain`); otherwise nothing is written."""
        final = self._gen_path(t)
        if final.exists() or final.is_symlink():
            raise StoreError(
                f"generation {final} is already stored; a run never overwrites a stored generation (was the run "
                "computed by two processes without its lock?)"
            )
        bad = {k: v for k, v in (metrics or {}).items() if not _is_metric(v)}
        if bad:
            raise ValueError(f"metrics must be finite numbers; generation {t} has {bad}")
        clean = json.dumps({k: float(v) for k, v in (metrics or {}).items()}, indent=1, sort_keys=True).encode()
        arrays = {name: np.asarray(a) for name, a in (arrays or {}).items()}
        stored_model = plain.dumps(model, what=f"the model of generation {t}") if model is not None else b""
        needed = len(clean) + len(stored_model) + sum(a.nbytes + 128 for a in arrays.values())
        with _AtomicFolder(final, self.binding(t), needed, f"generation {t}") as folder:
            folder.add_bytes("metrics.json", clean)
            for name, array in arrays.items():
                folder.add_array(name, array)
            if model is not None:
                folder.add_bytes(MODEL_FILE, stored_model)

    def generation(self, t: int) -> Generation:
        path = self._gen_path(t)
        if not path.is_dir():
            raise StoreError(f"generation {t} of run {self.path} is not stored yet")
        return self._open(t)

    def metrics(self) -> pd.DataFrame:
        """Tidy metrics of this run: one row per generation × metric (each read checked against its checksum)."""
        rows = []
        for t in range(1, self.completed() + 1):
            for name, value in self.generation(t).metrics.items():
                rows.append({"generation": t, "metric": name, "value": value})
        return pd.DataFrame(rows, columns=["generation", "metric", "value"])

    def adopt(self, donor: Run, upto: int) -> int:
        """Take over generations ``completed() + 1 .. upto`` of ``donor``, a stored run of the same loop with
        another number of generations (:meth:`madutils.loops.RunKey.other_length`), as hard links (copies where the file
        system has none); each is published with one rename, like a computed generation. Returns how many were
        taken. Each gets a manifest of its own, bound to this run. The caller holds this run's lock; the files stay
        checked against their checksums when read."""
        start = self.completed() + 1
        upto = min(upto, donor.completed())
        for t in range(start, upto + 1):
            try:  # every file against its checksum: a damaged donor generation is computed again, not linked
                gen = donor._open(t)
                gen.verify()
            except StoreError as exc:
                print(f"not taking over generation {t} of {donor.path}: {exc}", file=sys.stderr, flush=True)
                upto = t - 1
                break
            needed = sum(meta["bytes"] for _, meta in gen.files.values())
            with _AtomicFolder(self._gen_path(t), self.binding(t), needed, f"generation {t}") as folder:
                for name, (path, meta) in sorted(gen.files.items()):
                    folder.add_link(name, path, meta)
            self._open(t)  # its manifest and file sizes, as for a computed generation
        return max(0, upto - start + 1)

    @contextlib.contextmanager
    def lock(self):
        """Hold this run for one process: a second process that asks for it waits (and says so) until the first
        is done, then resumes after what the first stored. The operating system releases the lock when the
        holder dies, so a killed process never blocks a run."""
        with _lock(self.path.parent / f".{self.lock_name}.lock", f"run {self.path}"):
            yield


class MemoryGeneration:
    """A generation kept in memory (a loop run without a store)."""

    def __init__(self, metrics, arrays, model):
        self.metrics, self._arrays, self._model, self.folder = metrics, arrays, model, "<memory>"

    def array(self, name):
        return self._arrays[name]

    def arrays(self, prefix=""):
        return {k: v for k, v in self._arrays.items() if k.startswith(prefix)}

    def has(self, name):
        return name in self._arrays

    def model(self):
        return self._model


class MemoryRun:
    """The in-memory counterpart of :class:`Run`, for loops run without a store."""

    def __init__(self, config):
        self.config, self.key, self.path, self.gens = config, "memory", "<memory>", []

    def completed(self):
        return len(self.gens)

    def write_generation(self, t, metrics, arrays=None, model=None):
        self.gens.append(MemoryGeneration({k: float(metrics[k]) for k in sorted(metrics)}, arrays or {}, model))

    def generation(self, t):
        return self.gens[t - 1]

    def metrics(self):
        rows = [
            {"generation": t, "metric": k, "value": v} for t, g in enumerate(self.gens, 1) for k, v in g.metrics.items()
        ]
        return pd.DataFrame(rows, columns=["generation", "metric", "value"])

    @contextlib.contextmanager
    def lock(self):
        yield


class ArrayCodec(Protocol):
    """How :meth:`Store.cached_arrays` stores a dict of arrays: ``encode`` before writing, ``decode`` after
    reading; ``name`` enters the configuration, so the stored form is part of a result's key."""

    name: str

    def encode(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def decode(self, stored: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]: ...


class _Decoded(Mapping):
    """Stored arrays given back through a function, one at a time and on each access: nothing is kept, so a
    memory-mapped array stays on disk until it is read."""

    def __init__(self, stored: Mapping[str, np.ndarray], decode: Callable[[np.ndarray], np.ndarray]):
        self._stored, self._decode = stored, decode

    def __getitem__(self, name: str) -> np.ndarray:
        return self._decode(self._stored[name])

    def __iter__(self):
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)


class LogFloat32:
    """Non-negative arrays stored as their natural logarithms in float32: half the disk of float64 with the
    range of float64 (a variance of 1e-250 is log −576); given back as float64 (relative error below 1e-4, far
    under the Monte Carlo noise of the Gaussian loops that use it). Zero is stored as log 0 = −inf."""

    name = "log-float32"

    def encode(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, a in arrays.items():
            a = np.asarray(a, dtype=np.float64)
            if (a < 0).any() or np.isnan(a).any():
                raise ValueError(f"{name}: an array stored as its logarithm must be ≥ 0 and not NaN")
            with np.errstate(divide="ignore"):
                out[name] = np.log(a).astype(np.float32)
        return out

    def decode(self, stored: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        return _Decoded(stored, lambda a: np.exp(np.asarray(a, dtype=np.float64)))


LOG_FLOAT32 = LogFloat32()


class Store:
    """All results of one scale: ``runs/<scale>/``, one folder per experiment."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- loop runs ------------------------------------------------------------------------------------------------

    def run(self, folder: str, config: Any, lock_name: str | None = None) -> Run:
        """The run folder of a configuration under ``runs/<scale>/<folder>/`` (created on first use). A folder
        whose stored configuration differs from ``config`` is an error, never reused. ``lock_name``: see
        :class:`Run`."""
        canon = canonical(config)
        key = config_key(canon)
        path = self.root / folder / key
        stored = path / "config.json"
        if path.is_symlink() and not path.exists():
            raise StoreError(
                f"run folder {path} is a link to {os.readlink(path)}, which does not exist (moved or deleted). "
                "Restore what it pointed to, or remove the link so that the run is computed here"
            )
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
            tmp = path / f".config.json.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                path.mkdir(parents=True, exist_ok=True)
                _write_json(tmp, canon)
                os.replace(tmp, stored)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise write_error(exc, stored, what="the run's configuration") from None
        return Run(path, canon, key, lock_name)

    def existing(self, folder: str, config: Any, lock_name: str | None = None) -> Run | None:
        """The run folder of ``config`` if it was created (checked as :meth:`run` checks it), else ``None``: for
        readers that must not create folders."""
        path = self.root / folder / config_key(canonical(config))
        return self.run(folder, config, lock_name) if (path / "config.json").is_file() else None

    def most_complete(self, folder: str, accept: Callable[[dict], bool]) -> Run | None:
        """The stored run under ``folder`` whose configuration ``accept`` takes (its ``config.json`` as parsed), with
        the most complete generations; None when there is none. A run key decides what it accepts
        (:meth:`madutils.loops.RunKey.other_length`: the same loop with another number of generations), so the store
        knows nothing of a loop's fields. Folders that cannot be read, or that fail their checks, are passed over;
        one whose ``config.json`` does not hash to its name is an error."""
        best, best_done = None, 0
        for stored in sorted((self.root / folder).glob("*/config.json")):
            try:
                other = json.loads(stored.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(other, dict) or not accept(other):
                continue
            if config_key(other) != stored.parent.name:
                raise StoreError(
                    f"run folder {stored.parent} holds a config.json that does not hash to the folder's name: the "
                    "file was changed after the run was stored, so its generations may be of another configuration. "
                    "Delete that folder (its results cannot be trusted), then rerun"
                )
            run = Run(stored.parent, other, stored.parent.name)
            try:
                done = run.completed()
            except StoreError:
                continue
            if done > best_done:
                best, best_done = run, done
        return best

    def checkpoint(self, folder: str, name: str) -> Checkpoint:
        """The checkpoint ``name`` of a training in progress, under ``runs/<scale>/<folder>/checkpoints/``."""
        return Checkpoint(self.root / folder / "checkpoints" / f"{name}.pt")

    # -- single cached results ------------------------------------------------------------------------------------

    def cached_arrays(
        self,
        folder: str,
        config: Any,
        compute: Callable[[], Mapping[str, np.ndarray]],
        codec: ArrayCodec | None = None,
    ) -> Mapping[str, np.ndarray]:
        """A dict of arrays computed once per configuration and stored atomically (e.g. one Monte Carlo grid
        point); later calls with the same configuration load it, checked against its checksums.

        With a ``codec`` (:data:`LOG_FLOAT32`) the arrays are stored encoded and given back decoded; the codec's
        name is part of the configuration (its field ``stored``), so a result stored one way is never read the
        other way."""
        if codec is not None:
            if not isinstance(config, dict) or "stored" in config:
                raise ValueError("a configuration stored with a codec must be a dict without a field 'stored'")
            config = {**config, "stored": codec.name}

        def write(f: _AtomicFolder) -> None:
            arrays = compute()
            arrays = {n: np.asarray(a) for n, a in (codec.encode(arrays) if codec is not None else arrays).items()}
            f.needed = sum(a.nbytes + 128 for a in arrays.values())
            for name, array in arrays.items():
                f.add_array(name, array)

        path = self._cache_folder(folder, config)
        self._compute_once(path, config, write)
        files = _read_folder(path, {"cache": path.name})
        self._check_cached_config(path, files, config)
        stored = {n[:-4]: _load_array(*f) for n, f in files.items() if n.endswith(".npy")}
        return codec.decode(stored) if codec is not None else stored

    def has_cached(self, folder: str, config: Any) -> bool:
        """Whether the cached result of ``config`` under ``folder`` is published (see :meth:`cached_object`)."""
        return (self._cache_folder(folder, config) / "manifest.json").is_file()

    def cached_object(self, folder: str, config: Any, compute: Callable[[], Any], what: str = "the object") -> Any:
        """An object (a fitted model) computed once per configuration, e.g. the generation-1 model that every
        loop with the same real data shares. It is stored as plain data (:mod:`madutils.plain`: reading it runs no
        code); an object that is not plain data or holds NaN or infinity is refused by name (``what``), and
        nothing is stored."""

        def write(f: _AtomicFolder) -> Any:
            value = compute()
            data = plain.dumps(value, what=what)
            f.needed = len(data)
            f.add_bytes(OBJECT_FILE, data)
            return value

        path = self._cache_folder(folder, config)
        computed = self._compute_once(path, config, write)
        if computed is not _NOT_COMPUTED:
            return computed
        files = _read_folder(path, {"cache": path.name})
        self._check_cached_config(path, files, config)
        if OBJECT_FILE not in files:
            _refuse_pickles(path, files)
            raise StoreError(f"cached result {path} holds no {OBJECT_FILE}; delete it so that it is recomputed")
        return _load_plain(*files[OBJECT_FILE])

    @staticmethod
    def _compute_once(path: Path, config: Any, write: Callable[[_AtomicFolder], Any]) -> Any:
        """Publish the cached result ``path`` with ``write`` unless it is there: under a lock, so that a second
        process waits and then reads it. Reading a finished result takes no lock. Returns what ``write`` returned,
        or ``_NOT_COMPUTED``."""
        if (path / "manifest.json").is_file():
            return _NOT_COMPUTED
        with _lock(path.with_name(f".{path.name}.lock"), f"cached result {path}"):
            if (path / "manifest.json").is_file():
                return _NOT_COMPUTED
            # under the lock: temporary folders of this result belong to killed writers
            for tmp in path.parent.glob(f".{path.name}.tmp-*"):
                shutil.rmtree(tmp, ignore_errors=True)
            with _AtomicFolder(path, {"cache": path.name}, what=f"the cached result {path.name}") as f:
                f.add_bytes("config.json", json.dumps(canonical(config), sort_keys=True).encode())
                return write(f)

    @staticmethod
    def _check_cached_config(path: Path, files: dict, config: Any) -> None:
        if "config.json" not in files or _load_json(*files["config.json"]) != json.loads(
            json.dumps(canonical(config), sort_keys=True)
        ):
            raise StoreError(
                f"cached result {path} was computed for another configuration than the one asked for; delete it "
                "so that it is recomputed"
            )

    def _cache_folder(self, folder: str, config: Any) -> Path:
        path = self.root / folder / "cache" / config_key(config)
        if path.is_dir():
            return path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, path.parent) from None
        return path


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _holder() -> bytes:
    """Who holds a lock, written into the lock file for the processes that wait for it."""
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "pid_namespace": _pid_namespace(), "since": since}
    ).encode()


def _describe_holder(text: bytes) -> str:
    """The holder of a lock in words, as seen from this process: a process id means nothing to a process on
    another machine or in another PID namespace (a container), so the message says where the holder runs."""
    try:
        h = json.loads(text)
        pid, host, ns, since = int(h["pid"]), str(h["host"]), str(h["pid_namespace"]), str(h["since"])
    except (ValueError, KeyError, TypeError):
        return "another process"
    if host != socket.gethostname():
        where = f"on the machine {host}"
    elif ns != _pid_namespace():
        where = f"in another PID namespace (a container) on {host}"
    else:
        where = "on this machine"
    return f"process {pid} {where} (since {since})"


@contextlib.contextmanager
def _lock(lock_path: Path, what: str):
    """An exclusive lock between processes on ``lock_path`` (``fcntl.flock``): the second process says who holds
    it and waits. The holder removes the lock file when it is done (while it still holds it; a process that was
    waiting on the removed file then locks the path anew), so no lock files stay behind, empty or not; a killed
    holder's file stays until the next holder is done. Who holds it is written into the file when the disk has
    room: a full disk never stops a lock, it only leaves the waiters without a name."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _lock_error(exc, lock_path, what) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe_holder(os.pread(fd, 4096, 0))
                print(f"{what} is being computed by {holder}; waiting for it to finish", file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                now, mine = os.stat(lock_path), os.fstat(fd)
                same = (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)  # its holder removed the file we waited on: lock the path again
    try:
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder(), 0)
        except OSError:  # a full disk: the lock holds without the name
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # still held: nobody else holds this file
        os.close(fd)


def _lock_error(exc: OSError, lock_path: Path, what: str) -> StoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return write_error(exc, lock_path, what=f"the lock of {what}")
    return StoreError(
        f"cannot lock {what} ({exc.strerror}: {lock_path}); the result is not stored yet and must be computed, "
        "which needs a writable runs folder (make it writable or point MAD_ROOT elsewhere)"
    )
