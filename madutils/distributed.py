"""Scale-out with PyTorch's own distributed launcher: the independent loops of the notebooks (λ values, loop kinds,
n_ini, seeds) fan out over the processes of a ``torchrun`` job, one loop at a time per process and one GPU per
process, on one machine or on several that share the project folder.

    torchrun --standalone --nproc_per_node 8 -m madutils.distributed --scale paper --only 02 03
    ./reproduce.sh --scale paper --gpus 8          # the same, then the notebooks

Each process takes every ``world``-th loop (round robin over a fixed order) and runs it into the shared store,
on ``cuda:<LOCAL_RANK>`` when there are GPUs; the notebooks afterwards read every loop from the store. A loop's
run key names the kind of device, not its index, so a run computed on GPU 3 is the run a notebook on GPU 0 asks
for. The store's per-run lock (and the lock of the shared generation 1) lets processes, and notebooks started
meanwhile, share loops without computing one twice. The process group (NCCL on GPUs, gloo on CPUs) makes rank 0
prepare what every process reads (MNIST, LeNet-5) before the others start, and ends with a barrier.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import catalog, prerequisites, registry
from .loops import first_key, spread_shared_starts
from .paths import runs_dir
from .store import Store
from .utils import check_scale

EXPERIMENTS = catalog.fanout()  # the experiments with loops for the fan-out (madutils/catalog.py)
DDP_EXPERIMENTS = tuple(e.name for e in catalog.ENTRIES.values() if e.ddp)  # those that can train with DDP


@dataclass(frozen=True)
class Rank:
    """This process's place in the job: ``rank`` of ``world`` processes, ``local`` on its machine."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @classmethod
    def from_env(cls) -> Rank:
        """From the variables that ``torchrun`` sets (a plain process is rank 0 of 1)."""

        def get(name: str, default: int) -> int:
            value = os.environ.get(name, "")
            try:
                return int(value) if value else default
            except ValueError:
                raise ValueError(f"{name} = {value!r} is not an integer (set by torchrun)") from None

        world = get("WORLD_SIZE", 1)
        rank, local = get("RANK", 0), get("LOCAL_RANK", 0)
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"RANK = {rank} does not lie in 0..WORLD_SIZE-1 = {world - 1}")
        return cls(rank, world, local)


def shard(items: Sequence[Any], rank: Rank) -> list[Any]:
    """The items of ``rank``: every ``world``-th, starting at its rank."""
    return list(items[rank.rank :: rank.world])


def device_of(rank: Rank, device: str = "auto") -> str:
    """The device of ``rank``: with ``"auto"`` (or ``"cuda"``) GPU ``LOCAL_RANK`` when PyTorch sees GPUs, else the
    CPU; an explicit device is kept."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if rank.local >= count:
            raise ValueError(
                f"local rank {rank.local} has no GPU: this machine has {count}; start at most {count} processes per "
                "machine (torchrun --nproc_per_node)"
            )
        return f"cuda:{rank.local}"
    if device == "cuda":
        raise ValueError("device='cuda' was asked for, but PyTorch sees no CUDA device; use 'auto' or 'cpu'")
    return "cpu" if device == "auto" else device


def build(name: str, scale: str, seed: int, device: str):
    """Experiment ``name`` (one of :data:`EXPERIMENTS`) with the default sizes of ``scale``."""
    return catalog.entry(name).build(seed=seed, device=device, scale=scale)


def plan(notebooks: Sequence[str], experiments: Sequence[str] | None = None) -> dict[str, tuple[dict, ...]]:
    """The loop selections to compute per experiment for ``notebooks`` (all loops of ``experiments`` when given
    instead), in a fixed order (:mod:`madutils.catalog`)."""
    if experiments:
        for name in experiments:
            if not catalog.entry(name).fanout:  # an unknown experiment is an error that lists them
                raise ValueError(
                    f"experiment {name!r} is a Gaussian Monte Carlo that its notebook simulates on the CPU; the "
                    f"fan-out computes {', '.join(EXPERIMENTS)}"
                )
        return {name: catalog.ALL for name in experiments}
    out: dict[str, tuple[dict, ...]] = {}
    for nb in notebooks:
        registry.notebook(nb)  # an unknown notebook is an error that lists them
        for name, specs in catalog.notebook_loops(nb).items():
            out[name] = out.get(name, ()) + tuple(spec for spec in specs if spec not in out.get(name, ()))
    return out


def fan_out(
    scale: str,
    notebooks: Sequence[str] = (),
    experiments: Sequence[str] | None = None,
    seed: int = 0,
    device: str = "auto",
    rank: Rank | None = None,
    progress: bool = True,
    ddp: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """Compute this process's share of the loops of ``notebooks`` (or of ``experiments``) at ``scale`` into the
    store; returns the (experiment folder, loop label) pairs it ran. Call it in every process of a ``torchrun``
    job (:func:`main` does); in a single process it computes every loop, one after another.

    The loops of the experiments named in ``ddp`` (those of :data:`DDP_EXPERIMENTS`: StyleGAN2, whose 128 × 128
    training one GPU may not carry) are not shared out: all processes compute each of them together, training
    with DistributedDataParallel on a share of every batch and sampling a share of the images (the family's
    ``ddp``), after the shared-out loops. They store what a single process stores, to round-off."""

    check_scale(scale)
    rank = rank or Rank.from_env()
    todo = plan(notebooks, experiments)
    for name in ddp:
        if name not in DDP_EXPERIMENTS:
            raise ValueError(f"ddp: {name!r} has no DistributedDataParallel training; it exists for {DDP_EXPERIMENTS}")
    skip = set()
    if scale == "paper":
        for nb in notebooks:
            report = prerequisites.check(nb, scale, device)
            if not report.can_run("stylegan"):
                skip.add("stylegan")
                if rank.rank == 0:
                    print(f"StyleGAN2 loops skipped: {report.reason('stylegan')}", flush=True)
    dev = device_of(rank, device)
    group = _init_group(rank, dev)
    try:
        if group and rank.rank != 0:
            _barrier(dev)  # rank 0 prepares MNIST and LeNet-5 (building the experiments) first
        built = {name: build(name, scale, seed, dev) for name in todo if name not in skip}
        if group and rank.rank == 0:
            _barrier(dev)
        jobs, together = [], []
        for name, exp in built.items():
            (together if name in ddp else jobs).extend((name, label) for label in catalog.chosen(exp, todo[name]))
        # loops that share a generation 1 go to different ranks where they can, so that no rank waits for another
        jobs = [jobs[i] for i in spread_shared_starts([(n, *first_key(built[n].loops[lb])) for n, lb in jobs])]
        store = Store(runs_dir(scale))
        mine = shard(jobs, rank)
        for name, label in mine + together:
            exp = built[name]
            one = replace(exp, loops={label: exp.loops[label]})  # keeps the experiment's width: the same run keys
            together_here = (rank.rank, rank.world) if group and name in ddp else None  # the group, explicitly
            one.run(
                store, workers=1, progress=progress, desc=f"rank {rank.rank}: {exp.folder} {label}", group=together_here
            )
        if group:
            _barrier(dev)
        return [(built[name].folder, label) for name, label in mine + together]
    finally:
        if group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _init_group(rank: Rank, device: str) -> bool:
    if rank.world == 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            import torch

            torch.cuda.set_device(device)
        dist.init_process_group(backend)
    return True


def _barrier(device: str) -> None:
    import torch.distributed as dist

    if device.startswith("cuda"):
        dist.barrier(device_ids=[int(device.split(":")[1])])
    else:
        dist.barrier()


def main(argv: Sequence[str] | None = None) -> None:
    """Compute the loops of the notebooks at one scale, this process's share of them (run under torchrun)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m madutils.distributed", description=main.__doc__)
    parser.add_argument("--scale", default=os.environ.get("MAD_SCALE", "small"))
    parser.add_argument("--only", nargs="+", default=None, metavar="NN", help="notebooks (default: all)")
    parser.add_argument("--experiments", nargs="+", default=None, choices=EXPERIMENTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--ddp",
        nargs="+",
        default=(),
        choices=DDP_EXPERIMENTS,
        help="experiments whose loops all processes train together with DistributedDataParallel",
    )
    args = parser.parse_args(argv)
    notebooks = args.only or [nb for nb in registry.NOTEBOOKS if catalog.notebook_loops(nb)]
    rank = Rank.from_env()
    done = fan_out(
        args.scale, notebooks, args.experiments, args.seed, args.device, rank, progress=rank.rank == 0, ddp=args.ddp
    )
    print(f"rank {rank.rank} of {rank.world}: {len(done)} loops computed or found in the store", flush=True)


if __name__ == "__main__":
    main()
