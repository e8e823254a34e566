"""Fan-out of the loops over the processes of a torchrun job (madutils.distributed), on CPUs with gloo."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from madutils.distributed import Rank, build, fan_out, plan, shard
from madutils.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("gmm", "flow")  # loops that need no dataset: two families, 2 seeds each at smoke (6 loops in all)


def test_rank_from_torchrun_variables(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    rank = Rank.from_env()
    assert rank == Rank(2, 4, 0)
    assert shard(list(range(10)), rank) == [2, 6]
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK = 4"):
        Rank.from_env()
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var)
    assert Rank.from_env() == Rank(0, 1, 0)


def test_the_plan_follows_the_notebooks():
    todo = plan(["02", "03"])
    assert todo["ddpm"] == (
        {"kind": "fully synthetic"},
        {"kind": "synthetic augmentation"},
        {"kind": "fully synthetic", "lam": 1.0},
    )
    assert set(todo) == {"ddpm", "stylegan"}
    assert plan(["01"]) == {}  # the Gaussian notebooks compute their Monte Carlo themselves
    assert plan([], ["flow"]) == {"flow": ({},)}
    with pytest.raises(ValueError, match="no notebook '09'"):
        plan(["09"])
    with pytest.raises(ValueError, match="unknown experiment 'vae'"):
        plan([], ["vae"])


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    store = Store(root / "runs" / "smoke")
    out = {}
    for name in EXPERIMENTS:
        exp = build(name, "smoke", 0, "cpu")
        run = exp.run(store, workers=1, progress=False)
        assert all(r.run.completed() == r.cfg.generations for r in run.values())
        out[name] = run.table().sort_values(list(run.table().columns[:-1])).reset_index(drop=True)
    return out


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ, MAD_ROOT=str(root), MAD_THREADS="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _project(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    (root / "madutils").mkdir(parents=True)
    (root / "reproduce.sh").write_text("")
    return root


def _command(*torchrun_args: str) -> list[str]:
    module = ["-m", "madutils.distributed", "--scale", "smoke", "--device", "cpu", "--experiments", *EXPERIMENTS]
    return [sys.executable, "-m", "torch.distributed.run", *torchrun_args, *module]


def _ranks_done(output: str) -> dict[int, int]:
    return {int(r): int(n) for r, n in re.findall(r"rank (\d+) of \d+: (\d+) loops", output)}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The loops computed one after another in this process, in a store of their own (once for the module)."""
    root = _project(tmp_path_factory.mktemp("distributed"), "serial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MAD_ROOT", str(root))
        mp.setenv("MAD_THREADS", "1")
        done = fan_out("smoke", experiments=EXPERIMENTS, device="cpu", rank=Rank(), progress=False)
        assert len(done) == 6
        return _tables(root)


@pytest.mark.parametrize("world", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_fanned_out_loops_give_the_stored_results_of_a_serial_run(tmp_path, serial, monkeypatch, world):
    root = _project(tmp_path, f"world{world}")
    proc = subprocess.run(
        _command("--standalone", f"--nproc_per_node={world}"),
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    done = _ranks_done(proc.stdout + proc.stderr)
    assert sorted(done) == list(range(world)) and sum(done.values()) == 6  # each loop once, every rank a share
    monkeypatch.setenv("MAD_ROOT", str(root))
    monkeypatch.setenv("MAD_THREADS", "1")
    for name, table in _tables(root).items():
        pd.testing.assert_frame_equal(table, serial[name], obj=name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_rendezvous_on_localhost_and_share_the_store(tmp_path, serial, monkeypatch):
    root = _project(tmp_path, "nodes")
    port = _free_port()
    common = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}"]
    nodes = [
        subprocess.Popen(
            _command(*common, f"--node_rank={i}", "--rdzv_id=mad-test"),
            env=_env(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    done = _ranks_done("".join(outputs))
    assert sorted(done) == [0, 1] and sum(done.values()) == 6
    monkeypatch.setenv("MAD_ROOT", str(root))
    monkeypatch.setenv("MAD_THREADS", "1")
    for name, table in _tables(root).items():
        pd.testing.assert_frame_equal(table, serial[name], obj=name)


@pytest.mark.slow
def test_stylegan_loops_trained_with_ddp_store_what_one_process_stores(tmp_path, monkeypatch):
    """The StyleGAN2 loops at smoke, every one trained by two gloo processes together (DDP, sharded sampling),
    store the metrics that one process stores, to round-off."""
    data = os.environ.get("MAD_DATA") or str(ROOT / "data")  # MNIST and LeNet of the checkout
    monkeypatch.setenv("MAD_DATA", data)
    monkeypatch.setenv("MAD_THREADS", "1")
    with pytest.raises(ValueError, match="ddp: 'gmm' has no DistributedDataParallel training"):
        fan_out("smoke", experiments=["gmm"], device="cpu", rank=Rank(), ddp=["gmm"])
    together = _project(tmp_path, "ddp")
    proc = subprocess.run(
        [*_command("--standalone", "--nproc_per_node=2")[:-2], "stylegan", "--ddp", "stylegan"],
        env=_env(together) | {"MAD_DATA": data},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _ranks_done(proc.stdout + proc.stderr) == {0: 6, 1: 6}  # every rank took part in all 6 loops
    tables = {}
    for name, root in (("alone", _project(tmp_path, "alone")), ("ddp", together)):
        monkeypatch.setenv("MAD_ROOT", str(root))
        if name == "alone":
            fan_out("smoke", experiments=["stylegan"], device="cpu", rank=Rank(), progress=False)
        runs = build("stylegan", "smoke", 0, "cpu").run(Store(root / "runs" / "smoke"), workers=1, progress=False)
        assert all(r.run.completed() == r.cfg.generations for r in runs.values())
        table = runs.table()
        tables[name] = table.sort_values(list(table.columns[:-1])).reset_index(drop=True)
    pd.testing.assert_frame_equal(tables["ddp"], tables["alone"], rtol=1e-3)


def test_the_catalog_defines_each_experiment_and_each_notebook_selection_once():
    """madutils/catalog.py: the notebooks, the fan-out and the progress line select the same loops from one table."""
    from pathlib import Path

    from madutils import catalog
    from madutils.scales import DDPMSizes, sizes

    entry = catalog.entry("ddpm")
    ddpm = entry.build(sizes(DDPMSizes, "smoke", seeds=2), seed=0, device="cpu")
    aug = entry.select(ddpm, "03")
    assert {(c.real, c.lam) for c in aug.loops.values()} == {("fixed", 1.0), ("fixed", 0.5), ("none", 1.0)}
    assert list(aug.loops) == [label for label in ddpm.loops if label in aug.loops]  # the experiment's order
    assert aug.width == ddpm.width  # a selection computes with the same threads: the same run keys
    assert {c.real for c in entry.select(ddpm, "02").loops.values()} == {"none"}
    assert plan(["03"])["ddpm"] == entry.notebooks["03"]
    with pytest.raises(ValueError, match="notebook 05 computes no loop of experiment 'ddpm'"):
        entry.select(ddpm, "05")
    with pytest.raises(ValueError, match="unknown experiment 'vae'; the experiments are gaussian_martingale, "):
        catalog.entry("vae")
    with pytest.raises(ValueError, match="'fresh_start' is a Gaussian Monte Carlo"):
        plan([], ["fresh_start"])
    # the notebooks take their selections from the catalog instead of writing them again
    notebooks = Path(__file__).parent.parent / "notebooks"
    for nb in ("02_fully_synthetic", "03_synthetic_augmentation"):
        text = (notebooks / f"{nb}.ipynb").read_text()
        assert "where(kind=" not in text and f'select(ddpm, \\"{nb[:2]}\\")' in text, nb


def test_each_experiment_of_the_catalog_names_the_store_folders_it_writes(tmp_path):
    """An entry's folders are where its builder stores (the Gaussian Monte Carlo runs at smoke to show it)."""
    from madutils import catalog
    from madutils.store import Store

    for entry in catalog.ENTRIES.values():
        built = entry.build(seed=0, device="cpu", scale="smoke")
        if hasattr(built, "folder"):
            assert (built.folder,) == entry.folders, entry.name
    store = Store(tmp_path)
    analysis = catalog.entry("fresh_analysis").build(seed=0, device="cpu", scale="smoke")
    analysis.memory(store)
    assert {p.name for p in tmp_path.iterdir() if p.name != "meta"} <= set(catalog.entry("fresh_analysis").folders)
    # every notebook's experiments come from the one table: the registry names none of its own
    assert [e.name for e in catalog.notebook_entries("04")] == [
        "fresh_start",
        "fresh_analysis",
        "ddpm_fresh",
        "ddpm_fresh_only",
        "ddpm_real_as_synthetic",
    ]


def test_the_run_keys_of_the_stored_small_runs_do_not_change():
    """Stored `small` runs live in folders named by these keys: a change of the run key would leave them behind
    (every loop recomputed). Pinned from the folder names of a `small` store that the current code reads.

    The key of an MNIST loop holds the digest of the LeNet-5 that this machine trained (its features are the
    metrics), and that training does not give the same last bits on every CPU: a machine whose AMD EPYC exposes AVX
    but not AVX2 trained the LeNet-5 whose digest begins c196e5cca163460b, so it stores its DDPM loops under
    another folder than the machines that computed the committed `small` store."""
    from madutils import catalog
    from madutils.metrics import LeNetFeatures

    other_cpu = LeNetFeatures(device="cpu", progress=False).sha256.startswith("c196e5cca163460b")
    ddpm = "8f8fb8b1f03c" if other_cpu else "9b0ee40f2fa1"
    pinned = {("gmm", "seed 0"): "4afe7bf2baa9", ("ddpm", "fully synthetic λ=1"): ddpm}
    for (name, label), folder in pinned.items():
        exp = catalog.entry(name).build(scale="small", seed=0, device="cpu")
        key = exp.key(exp.loops[label], threads=1)
        assert (key.folder, key.name) == (catalog.entry(name).folders[0], folder), (name, label)


def test_the_stored_small_monte_carlo_loops_keep_their_keys(tmp_path, monkeypatch):
    """The Gaussian Monte Carlo loops are stored through the store's codec (LOG_FLOAT32), whose name joins the
    configuration: notebook 01's first `small` loop (28,000 trials) asks for the cache folder that the committed `small`
    run stored."""
    from madutils import experiments, store
    from madutils.scales import GaussianMartingaleSizes, sizes
    from madutils.utils import config_key

    class Asked(Exception):
        pass

    def ask(self, folder, config):
        raise Asked(folder, config_key(config))

    exp, _, _ = experiments.gaussian_martingale(sizes(GaussianMartingaleSizes, "small"))
    monkeypatch.setattr(store.Store, "_cache_folder", ask)
    with pytest.raises(Asked) as asked:
        exp.run(store.Store(tmp_path))
    assert next(iter(exp.loops)) == (1.0, 10) and asked.value.args == ("gaussian-martingale", "ec5313323c7b")
