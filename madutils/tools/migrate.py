"""Bring a store written by an older madutils (before format 2) to the current format, once.

Format 2 stores models, cached objects and training checkpoints as plain data (:mod:`madutils.plain`: reading them
runs no code) and binds every generation to its run and number in its manifest. Older stores kept models as Python
pickles, and reading a pickle runs whatever code its writer put in it; this command reads each such pickle once,
which is why it asks for ``--trust``. Without it, it only says what it would read and change.

    python -m madutils.tools.migrate runs/small            # what would be migrated; nothing is changed
    python -m madutils.tools.migrate runs/small --trust    # migrate

What ``--trust`` trusts: (1) the pickles in the store run no harmful code, which holds when only you, or people
whose code you would run, ever wrote to this store; (2) every generation folder belongs to the run and carries the
number of the folder it sits in (no generation was copied, moved or linked from elsewhere), since older manifests
did not say. Every file is still checked against its checksum first, every run's ``config.json`` against its
folder's name, and a model that holds NaN or infinity is not migrated (the report names it, to delete). Run it
while nothing computes in that store. Stopping it at any point leaves every folder readable in its old or its new
format; running it again finishes the rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import plain
from ..store import (
    FORMAT,
    MODEL_FILE,
    OBJECT_FILE,
    Checkpoint,
    Generation,
    StoreError,
    _file_sha256,
    _fsync_dir,
    _lock,
    _read_folder,
    _read_manifest,
    manifest_bytes,
)
from ..utils import config_key

OLD_FILES = {"model.pkl": MODEL_FILE, "object.pkl": OBJECT_FILE}


@dataclass
class Report:
    """What a migration found, did and could not do."""

    folders: list[Path] = field(default_factory=list)  # old-format folders found
    pickles: list[Path] = field(default_factory=list)  # pickles they hold (read only with --trust)
    checkpoints: list[Path] = field(default_factory=list)  # old checkpoints
    migrated: int = 0
    problems: list[str] = field(default_factory=list)  # folders left as they are, with why and what to do


def _old_digest(files: dict) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _unpickle_trusted(data: bytes):
    """Reads a pickle of an older store: this runs whatever code the pickle holds (the reason for ``--trust``)."""
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def _binding(folder: Path) -> tuple[dict, str] | None:
    """The binding a folder of an older store gets from where it sits, and the name of the lock its writers
    hold; None for a folder that is neither a generation of a run nor a cached result."""
    if folder.parent.name == "cache":
        return {"cache": folder.name}, f".{folder.name}.lock"
    if folder.name.startswith("gen-") and folder.name[4:].isdigit() and (folder.parent / "config.json").is_file():
        run = folder.parent
        config = json.loads((run / "config.json").read_text())
        if config_key(config) != run.name:
            raise StoreError(
                f"run folder {run} holds a config.json that does not hash to the folder's name; its results cannot "
                "be trusted: delete that folder"
            )
        lock = run.name
        if isinstance(config, dict) and isinstance(config.get("loop"), dict) and "generations" in config["loop"]:
            config["loop"]["generations"] = None  # the lock every run of this loop shares (RunKey.loop_name)
            lock = f"loop-{config_key(config)}"
        return {"run": run.name, "generation": int(folder.name[4:])}, f".{lock}.lock"
    return None


def _migrate_folder(folder: Path, binding: dict, trust: bool, report: Report) -> None:
    stored, files = _read_manifest(folder)
    if "listing_sha256" in stored and stored["listing_sha256"] != _old_digest(files):
        raise StoreError(f"{folder / 'manifest.json'} does not match its own checksum: delete {folder}")
    for name, meta in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != meta["bytes"] or _file_sha256(path) != meta["sha256"]:
            raise StoreError(f"stored file {path} does not match its manifest: delete {folder}")
    report.pickles += [folder / n for n in files if n in OLD_FILES]
    if not trust:
        return
    new_files = dict(files)
    for old, new in OLD_FILES.items():
        if old in files:
            obj = _unpickle_trusted((folder / old).read_bytes())
            data = plain.dumps(obj, what=f"the stored {folder / old}")  # refuses NaN, names where
            _write_atomic(folder / new, data)
            del new_files[old]
            new_files[new] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _write_atomic(folder / "manifest.json", manifest_bytes(binding, new_files))  # the folder is migrated here
    _fsync_dir(folder)
    for old in OLD_FILES:
        (folder / old).unlink(missing_ok=True)
    _read_folder(folder, binding)  # reads back in the new format
    if "run" in binding:
        Generation(folder, binding)
    report.migrated += 1


def _migrate_checkpoint(path: Path, trust: bool, report: Report) -> None:
    report.checkpoints.append(path)
    if not trust:
        return
    sums = path.with_name(path.name + ".sha256")
    data = path.read_bytes()
    if not sums.is_file() or hashlib.sha256(data).hexdigest() != sums.read_text().strip():
        raise StoreError(f"checkpoint {path} has no matching checksum (a save cut short): delete it and {sums.name}")
    saved = _unpickle_trusted(data)
    if not isinstance(saved, dict) or saved.get("checkpoint") != path.name or "state" not in saved:
        raise StoreError(f"checkpoint {path} was written for another training: delete it and {sums.name}")
    Checkpoint(path.with_suffix(".safetensors")).save(saved["state"])
    sums.unlink()
    path.unlink()
    report.migrated += 1


def migrate(root: Path | str, trust: bool = False, out=sys.stdout) -> Report:
    """Migrate every folder of the store ``root`` (e.g. ``runs/small``) that an older madutils wrote; with
    ``trust=False`` only find them. Folders that fail a check are left as they are and named in the report."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; give the store of one scale, e.g. runs/small")
    report = Report()
    for manifest in sorted(root.rglob("manifest.json")):
        folder = manifest.parent
        if folder.name.startswith(".") or folder.is_symlink():
            continue  # a temporary folder (a killed writer's), or a link: not a stored result of its own
        try:
            stored, _ = _read_manifest(folder)
            if isinstance(stored, dict) and "format" in stored:
                continue
            found = _binding(folder)
            if found is None:
                continue
            report.folders.append(folder)
            binding, lock = found
            if trust:
                lock_root = folder.parent if "cache" in binding else folder.parent.parent
                with _lock(lock_root / lock, f"{folder}"):
                    _migrate_folder(folder, binding, trust, report)
            else:
                _migrate_folder(folder, binding, trust, report)
        except (StoreError, plain.UnstorableError, plain.NonFiniteError) as exc:
            report.problems.append(f"{folder}: not migrated: {exc}")
        except Exception as exc:  # an unreadable pickle: whatever it raised
            report.problems.append(f"{folder}: not migrated ({type(exc).__name__}: {exc}); delete it to recompute")
    for path in sorted(root.glob("*/checkpoints/*.pt")):
        try:
            _migrate_checkpoint(path, trust, report)
        except Exception as exc:
            report.problems.append(f"{path}: not migrated ({type(exc).__name__}: {exc})")
    _print(report, root, trust, out)
    return report


def _print(report: Report, root: Path, trust: bool, out) -> None:
    size = sum(p.stat().st_size for p in report.pickles if p.exists()) if not trust else 0
    if not report.folders and not report.checkpoints:
        print(f"{root}: nothing to migrate (every stored folder is in format {FORMAT})", file=out)
    elif not trust:
        print(
            f"{root}: {len(report.folders)} folders of an older format, holding {len(report.pickles)} pickled "
            f"models ({size / 2**20:.1f} MB), and {len(report.checkpoints)} old checkpoints.",
            file=out,
        )
        for p in (report.pickles or report.folders)[:10]:
            print(f"  {p}", file=out)
        print(
            "Nothing was changed. Migrating reads each pickle once, which runs whatever code its writer put in "
            "it, and takes every generation to belong where it sits. If only you, or people whose code you would "
            "run, ever wrote to this store, run again with --trust (while nothing computes in it); otherwise "
            "delete the store and recompute it.",
            file=out,
        )
    else:
        print(f"{root}: {report.migrated} folders and checkpoints migrated to format {FORMAT}.", file=out)
    for problem in report.problems:
        print(problem, file=out)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m madutils.tools.migrate",
        description=__doc__.split("\n\n")[0],
        epilog="Without --trust nothing is read or changed beyond the checks.",
    )
    parser.add_argument("root", type=Path, help="the store of one scale, e.g. runs/small")
    parser.add_argument(
        "--trust",
        action="store_true",
        help="read the store's pickles (this runs any code in them) and migrate: only for a store that you, or "
        "people whose code you would run, wrote",
    )
    args = parser.parse_args(argv)
    report = migrate(args.root, trust=args.trust)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
