"""The reliability cases of the spine: a stored result is never served unchecked or for another configuration,
two processes never compute one loop, workers die with their parent, and bad input gets an error that names it."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from loop_helpers import SlowGaussianFamily, trace_hook

from madutils import gaussian
from madutils.claims.core import Gate
from madutils.data import GaussianSource
from madutils.loops import LoopConfig, LoopError, UndescribableError, compute_key, describe, run_config, run_loop
from madutils.metrics import precision_recall
from madutils.models.ddpm import DDPMFamily
from madutils.models.gaussian import GaussianFamily
from madutils.store import Store, StoreError
from madutils.utils import cpu_threads

HERE = Path(__file__).parent
ROOT = HERE.parent


def _loop(tmp_path, **kw):
    cfg = LoopConfig(generations=3, n_ini=20, n_s=20, seed=1)
    return run_loop(GaussianFamily(), cfg, GaussianSource.standard(2), store=Store(tmp_path), progress=False, **kw)


def test_a_same_size_corruption_of_stored_metrics_is_an_error_that_names_the_file(tmp_path):
    run = _loop(tmp_path, evaluate=trace_hook).run
    path = run.path / "gen-002" / "metrics.json"
    text = path.read_text()
    digit = next(c for c in text if c.isdigit())
    path.write_text(text.replace(digit, str((int(digit) + 1) % 10), 1))  # same size, other value
    for read in (run.metrics, run.completed, lambda: run.generation(2).metrics):
        with pytest.raises(StoreError, match=r"gen-002/metrics.json does not match the checksum"):
            read()
    with pytest.raises(StoreError, match="gen-002/metrics.json does not match"):
        _loop(tmp_path, evaluate=trace_hook)  # a resume reads it too


def test_a_corrupted_array_or_model_is_an_error_when_it_is_read(tmp_path):
    run = _loop(tmp_path, store_models=True).run
    out = run.path / "gen-001" / "output.npy"
    blob = bytearray(out.read_bytes())
    blob[-1] ^= 1
    out.write_bytes(bytes(blob))
    gen = run.generation(1)  # sizes agree: opening works, reading the array does not
    with pytest.raises(StoreError, match="output.npy does not match"):
        gen.array("output")
    model = run.path / "gen-003" / "model.safetensors"
    blob = bytearray(model.read_bytes())
    blob[len(blob) // 2] ^= 1
    model.write_bytes(bytes(blob))
    with pytest.raises(StoreError, match="model.safetensors does not match"):
        run.generation(3).model()


def test_a_cached_result_is_checked_against_its_configuration(tmp_path):
    store = Store(tmp_path)
    a = store.cached_arrays("mc", {"n": 1}, lambda: {"x": np.arange(3)})
    (folder,) = (tmp_path / "mc" / "cache").glob("[!.]*")
    assert (folder / "config.json").read_text() == '{"n": 1}'
    (folder / "config.json").write_text('{"n": 2}')  # same size, another configuration
    with pytest.raises(StoreError, match="config.json does not match"):
        store.cached_arrays("mc", {"n": 1}, lambda: {"x": np.arange(3)})
    np.testing.assert_array_equal(a["x"], np.arange(3))


def test_reading_a_finished_result_takes_no_lock_and_no_lock_file_stays(tmp_path, monkeypatch):
    from madutils import store as store_module

    store = Store(tmp_path)
    store.cached_arrays("mc", {"n": 1}, lambda: {"x": np.arange(3)})
    _loop(tmp_path)
    assert not list(tmp_path.rglob("*.lock"))  # each holder removes its lock file when it is done

    def no_lock(*args):
        raise AssertionError("a finished result was read under a lock")

    monkeypatch.setattr(store_module, "_lock", no_lock)
    calls = []
    store.cached_arrays("mc", {"n": 1}, lambda: calls.append(1) or {"x": np.arange(3)})
    assert calls == []
    _loop(tmp_path)  # complete: read without taking the run's lock


@dataclass(frozen=True)
class Shifted:
    """A hook that is a dataclass: its field enters the run key."""

    shift: float

    def __call__(self, model, output, t):
        return {"m": float(model.mu[0] + self.shift)}


class PlainShifted:
    def __init__(self, shift):
        self.shift = shift

    def __call__(self, model, output, t):
        return {"m": float(model.mu[0] + self.shift)}


def test_objects_that_cannot_describe_themselves_are_refused(tmp_path):
    for hook in (lambda m, o, t: {}, lambda m, o, t: {"x": 1.0}, PlainShifted(0), PlainShifted(100)):
        with pytest.raises(UndescribableError, match="make it a .*dataclass.*or give it a key"):
            _loop(tmp_path, evaluate=hook)
    a, b = _loop(tmp_path, evaluate=Shifted(0.0)), _loop(tmp_path, evaluate=Shifted(100.0))
    assert a.run.key != b.run.key
    assert b.metrics().query("metric == 'm'").value.min() > 50
    assert describe(None) is None
    assert {k: v for k, v in describe(Shifted(1.0)).items() if k != "__code__"} == {
        "__class__": "Shifted",
        "shift": 1.0,
    }


def test_the_thread_count_is_part_of_the_key_of_pytorch_families():
    family, cfg, source = DDPMFamily(device="cpu"), LoopConfig(2, 10, 10), GaussianSource.standard(2)
    one, two = run_config(family, cfg, source, None, 1), run_config(family, cfg, source, None, 2)
    assert one["compute"] == {"device": "cpu", "threads": 1} and two["compute"]["threads"] == 2
    assert compute_key(GaussianFamily(), 1) is None  # NumPy families: the same numbers with any thread count
    assert "compute" not in run_config(GaussianFamily(), cfg, source, None, 3)


CHILD = """
import sys
sys.path.insert(0, {here!r})
from loop_helpers import SlowGaussianFamily, trace_hook
from madutils.data import GaussianSource
from madutils.loops import LoopConfig, run_loop
from madutils.store import Store
cfg = LoopConfig(generations=8, n_ini=20, n_s=20, seed=3)
run_loop(SlowGaussianFamily(pause=0.3), cfg, GaussianSource.standard(2), store=Store({root!r}), folder="lock",
         evaluate=trace_hook, progress=False)
"""


def test_a_second_process_waits_for_the_first_and_reads_its_results(tmp_path, capfd):
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(here=str(HERE), root=str(tmp_path))])
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob("lock/*/gen-001")) and time.time() < deadline:
            time.sleep(0.05)
        cfg = LoopConfig(generations=8, n_ini=20, n_s=20, seed=3)
        run = run_loop(
            SlowGaussianFamily(pause=0.3),
            cfg,
            GaussianSource.standard(2),
            store=Store(tmp_path),
            folder="lock",
            evaluate=trace_hook,
            progress=False,
        )
        assert child.wait(timeout=60) == 0  # it was not disturbed ("already stored") by this process
    finally:
        child.kill()
    assert "is being computed by process" in capfd.readouterr().err
    assert run.run.completed() == 8 and len(run.metrics().generation.unique()) == 8


PARENT = """
import sys, time
sys.path.insert(0, {here!r})
from loop_helpers import SlowGaussianFamily
from madutils.data import GaussianSource
from madutils.loops import LoopConfig, run_loops
from madutils.store import Store
cfgs = [LoopConfig(generations=200, n_ini=20, n_s=20, seed=s) for s in (1, 2)]
run_loops(SlowGaussianFamily(pause=0.2), cfgs, GaussianSource.standard(2), store=Store({root!r}), workers=2,
          progress=False)
"""


@pytest.mark.slow
def test_killing_the_parent_of_run_loops_stops_its_workers(tmp_path):
    psutil = pytest.importorskip("psutil")
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(here=str(HERE), root=str(tmp_path))])
    try:
        deadline = time.time() + 120
        workers = []
        while time.time() < deadline and len(list(tmp_path.glob("loop/*/gen-002"))) < 2:
            time.sleep(0.1)
        workers = [p for p in psutil.Process(parent.pid).children(recursive=True) if "python" in p.name()]
        assert len(workers) >= 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers still running after their parent was killed: {alive}"
    finally:
        parent.kill()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LoopConfig(generations=3.0, n_ini=10, n_s=10), r"generations must be an integer.*write 3"),
        (lambda: LoopConfig(generations=3, n_ini=10, n_s=10.0), r"n_s must be an integer.*write 10"),
        (lambda: precision_recall(np.zeros((20, 2)), np.zeros((20, 2)), k=2.5), "k must be an integer"),
        (lambda: gaussian.w2(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2)), "cov1 contains NaN"),
        (lambda: gaussian.w2(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2)), "cov2 has a negative eigenvalue"),
        (lambda: gaussian.w2(np.zeros(2), np.array([[1, 2], [0, 1.0]]), np.zeros(2), np.eye(2)), "not symmetric"),
        (lambda: gaussian.w2([np.nan, 0], np.eye(2), np.zeros(2), np.eye(2)), "mu1 contains NaN"),
        (lambda: LoopConfig(generations=3, n_ini=10, n_s=10, memory=5), r"memory = 5 is more than the 3 generations"),
        (lambda: LoopConfig(generations=3, n_ini=10, n_s=10, accumulate="yes"), "accumulate = 'yes' must be True"),
    ],
)
def test_bad_input_names_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_mad_threads_names_the_variable(monkeypatch):
    for value in ("abc", "0", "-2"):
        monkeypatch.setenv("MAD_THREADS", value)
        with pytest.raises(ValueError, match=f"MAD_THREADS = '{value}' is not a positive integer"):
            cpu_threads()
    monkeypatch.setenv("MAD_THREADS", "3")
    assert cpu_threads() == 3


def test_a_truncated_run_configuration_names_its_folder(tmp_path):
    store = Store(tmp_path)
    run = store.run("exp", {"a": 1})
    (run.path / "config.json").write_text('{"a": ')
    with pytest.raises(StoreError, match=rf"{run.path}/config.json is not valid JSON; delete the folder"):
        store.run("exp", {"a": 1})


def test_a_corrupt_inception_weights_file_says_what_to_do(tmp_path):
    from madutils.metrics import InceptionFeatures, InceptionWeightsError

    bad = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    bad.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(InceptionWeightsError, match=r"cannot be read as pytorch-fid's weights.*Delete it and download"):
        InceptionFeatures(weights=bad, device="cpu")


def test_reproduce_only_without_numbers_is_an_error():
    out = subprocess.run(
        ["bash", "reproduce.sh", "--only", "--scale", "smoke"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2 and "--only needs notebook numbers" in out.stderr


def test_reproduce_gpus_needs_a_number():
    out = subprocess.run(["bash", "reproduce.sh", "--gpus", "all"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "--gpus needs a number of GPUs, got 'all'" in out.stderr


def test_a_gpu_that_a_cuda_build_cannot_use_is_reported(monkeypatch):
    import torch

    from madutils import utils

    monkeypatch.setattr(utils, "_WARNED_GPU", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(utils, "nvidia_gpu_present", lambda: True)
    with pytest.warns(RuntimeWarning, match=r"has an NVIDIA GPU, but PyTorch .* cannot use it.*update the driver"):
        assert utils.resolve_device("auto") == "cpu"
    assert not utils.warn_unusable_gpu()  # once per process
    monkeypatch.setattr(utils, "_WARNED_GPU", False)
    monkeypatch.setattr(utils, "nvidia_gpu_present", lambda: False)  # no GPU at all: nothing to say
    assert not utils.warn_unusable_gpu()


# -- the store's promise on shared disks and damaged files ----------------------------------------------------------


def _gaussian_loop(store, generations, seed=1, lam=1.0, **kw):
    cfg = LoopConfig(generations=generations, n_ini=20, n_s=20, lam=lam, seed=seed)
    return run_loop(GaussianFamily(), cfg, GaussianSource.standard(2), store=store, progress=False, **kw)


def test_a_changed_config_json_is_never_taken_over_for_another_loop(tmp_path):
    store = Store(tmp_path)
    donor = _gaussian_loop(store, 3, seed=1, evaluate=trace_hook)
    path = donor.run.path / "config.json"
    text = path.read_text()
    assert '"seed": 1' in text
    path.write_text(text.replace('"seed": 1', '"seed": 0'))  # one byte: it now says it is seed 0's loop
    with pytest.raises(StoreError, match=rf"{donor.run.path} holds a config.json that does not hash to the folder"):
        _gaussian_loop(store, 5, seed=0, evaluate=trace_hook)
    # the advice: delete that folder; then seed 0 computes its own loop
    import shutil

    shutil.rmtree(donor.run.path)
    fresh = _gaussian_loop(store, 5, seed=0, evaluate=trace_hook)
    alone = _gaussian_loop(Store(tmp_path / "alone"), 5, seed=0, evaluate=trace_hook)
    assert fresh.metrics().value.tolist() == alone.metrics().value.tolist()


WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from madutils.store import Store, _AtomicFolder
root = Path({root!r})
run = Store(root).run("exp", {{"a": 1}})
with run.lock():
    with _AtomicFolder(run.path / "gen-001", run.binding(1)) as f:
        f.add_bytes("metrics.json", b"{{}}")
        (root / "ready").touch()
        deadline = time.time() + 60
        while not (root / "go").exists() and time.time() < deadline:
            time.sleep(0.05)
        f.add_array("output", np.arange(5))
print("written")
"""

READER = """
from pathlib import Path
from madutils.store import Store
root = Path({root!r})
run = Store(root).run("exp", {{"a": 1}})
print("completed", run.completed())
(root / "go").touch()
"""


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare --pid` (util-linux, run as root)")
def test_a_reader_in_another_pid_namespace_never_deletes_a_writers_generation(tmp_path):
    """The writer's process id means nothing to a reader in another PID namespace (a container, another machine
    on a shared disk): the reader must leave the writer's temporary folder alone."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # forty short processes first: the writer gets PID 42 of its namespace, a PID the reader's does not have (it
    # has its own PID 1 and the few processes that importing NumPy starts)
    script = f'for i in $(seq 40); do /bin/true; done; {sys.executable} -c "$0"; true'
    writer = subprocess.Popen(
        ["unshare", "--pid", "--fork", "sh", "-c", script, WRITER.format(root=str(tmp_path))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while not (tmp_path / "ready").exists() and time.time() < deadline:
            time.sleep(0.05)
        (tmp,) = (tmp_path / "exp").glob("*/.gen-001.tmp-*")
        assert int(tmp.name.split(".tmp-")[1].split("-")[0]) > 20, tmp.name
        reader = subprocess.run(
            ["unshare", "--pid", "--fork", sys.executable, "-c", READER.format(root=str(tmp_path))],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reader.returncode == 0, reader.stderr
        assert "completed 0" in reader.stdout
        out, err = writer.communicate(timeout=60)
    finally:
        writer.kill()
    assert writer.returncode == 0, err
    (run,) = (tmp_path / "exp").glob("*/gen-001")
    assert (run / "output.npy").is_file()


def test_temporary_folders_of_killed_writers_go_only_under_the_runs_lock(tmp_path):
    import shutil

    store = Store(tmp_path)
    run = _gaussian_loop(store, 3, evaluate=trace_hook).run
    shutil.rmtree(run.path / "gen-003")
    stale = run.path / ".gen-003.tmp-999999999-deadbeef"  # as a writer killed in generation 3 leaves it
    stale.mkdir()
    assert run.completed() == 2 and stale.exists()  # a reader leaves it
    _gaussian_loop(store, 3, evaluate=trace_hook)  # a writer, under the lock, removes it
    assert not stale.exists() and run.completed() == 3


@dataclass(frozen=True)
class NaNFamily(GaussianFamily):
    """The Gaussian family whose fit returns NaN parameters from generation 2 on while ``BROKEN`` holds."""

    name: str = "nan-gaussian"

    def fit(self, data, seed):
        model = super().fit(data, seed)
        if BROKEN and len(data) != 20:
            model.mu[:] = np.nan
        return model


BROKEN = True


@dataclass(frozen=True)
class InfHook:
    def __call__(self, model, output, t):
        return {"m": float("inf") if t == 2 else 1.0}


def test_a_non_finite_generation_is_never_stored_and_a_fixed_family_resumes(tmp_path, monkeypatch):
    store = Store(tmp_path)
    cfg = LoopConfig(generations=3, n_ini=20, n_s=19, seed=1)
    source = GaussianSource.standard(2)
    with pytest.raises(
        LoopError, match=r"generation 2 .*the family 'nan-gaussian' .*non-finite.*resumes at generation 2"
    ):
        run_loop(NaNFamily(), cfg, source, store=store, progress=False)
    (path,) = (tmp_path / "loop").glob("*/config.json")
    assert sorted(p.name for p in path.parent.glob("gen-*")) == ["gen-001"]
    monkeypatch.setattr(sys.modules[__name__], "BROKEN", False)  # the family is fixed; its key is the same
    run = run_loop(NaNFamily(), cfg, source, store=store, progress=False)
    assert run.run.completed() == 3 and np.isfinite(run.output(3)).all()
    with pytest.raises(LoopError, match=r"the evaluation hook InfHook returned non-finite values .*'m'"):
        _gaussian_loop(store, 3, evaluate=InfHook())
    hooked = next(r for r in (tmp_path / "loop").glob("*/config.json") if "InfHook" in r.read_text()).parent
    assert sorted(p.name for p in hooked.glob("gen-*")) == ["gen-001"]


def test_a_claim_that_leaves_a_seed_out_says_so():
    import pandas as pd

    from madutils.claims.core import Effect, rises

    rows = [
        {"generation": t, "metric": "fid", "value": v, "seed": s}
        for s in (0, 1, 2)
        for t, v in enumerate([100.0, 150.0, 200.0 + s, 260.0] if s != 2 else [100.0, 150.0, float("nan")], 1)
    ]
    row = rises(pd.DataFrame(rows), ("C2", "fig04"), "FID rises", "fid", +1, Gate(), Effect(1.0, "test"))
    assert "seed 2 left out" in row.reason and row.seeds == 2


def test_a_corrupted_array_of_a_taken_over_generation_is_recomputed_as_advised(tmp_path):
    import re
    import shutil

    store = Store(tmp_path)
    _gaussian_loop(store, 3, evaluate=trace_hook)
    longer = _gaussian_loop(store, 5, evaluate=trace_hook).run  # takes over generations 1..3 (hard links)
    good = (longer.path / "gen-002" / "output.npy").read_bytes()
    blob = bytearray(good)
    blob[-1] ^= 1
    (longer.path / "gen-002" / "output.npy").write_bytes(bytes(blob))  # the donor's file too (one inode)
    with pytest.raises(StoreError, match="does not match the checksum") as err:
        longer.generation(2).array("output")
    # follow the advice: delete the named generation and every later one of that run, then rerun
    assert re.search(r"Delete .*gen-002 \(and, for a generation, every later generation", str(err.value))
    for t in (2, 3, 4, 5):
        shutil.rmtree(longer.path / f"gen-{t:03d}")
    again = _gaussian_loop(store, 5, evaluate=trace_hook).run
    assert again.completed() == 5 and (again.path / "gen-002" / "output.npy").read_bytes() == good


def test_a_corrupted_shared_first_generation_names_its_file_and_the_advice_works(tmp_path):
    import shutil

    store = Store(tmp_path)
    _gaussian_loop(store, 2, lam=1.0, evaluate=trace_hook)
    (obj,) = (tmp_path / "shared-first-generation" / "cache").glob("*/object.safetensors")
    blob = bytearray(obj.read_bytes())
    blob[len(blob) // 2] ^= 1
    obj.write_bytes(bytes(blob))
    with pytest.raises(LoopError) as err:
        _gaussian_loop(store, 2, lam=0.5, evaluate=trace_hook)  # another loop that shares generation 1
    text = str(err.value)
    assert "object.safetensors does not match the checksum" in text and f"Delete {obj.parent}" in text
    assert "Generations 1..0" not in text and "resumes" not in text
    shutil.rmtree(obj.parent)
    assert _gaussian_loop(store, 2, lam=0.5, evaluate=trace_hook).run.completed() == 2


def test_a_corrupted_manifest_is_named_as_itself(tmp_path):
    run = _gaussian_loop(Store(tmp_path), 3, evaluate=trace_hook).run
    manifest = run.path / "gen-002" / "manifest.json"
    text = manifest.read_text()
    sha = json.loads(text)["files"]["metrics.json"]["sha256"]
    manifest.write_text(text.replace(sha, sha[::-1]))  # same size, another checksum for metrics.json
    with pytest.raises(StoreError, match=r"gen-002/manifest.json does not match its own checksum"):
        run.completed()


def test_a_full_disk_names_the_path_and_the_bytes_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    import errno

    from madutils import store as store_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    store = Store(tmp_path)
    _gaussian_loop(store, 1, evaluate=trace_hook)
    monkeypatch.setattr(store_module.np, "save", full)
    with pytest.raises(
        StoreError, match=r"no space left on the disk of .*gen-002/output.npy \(generation 2 needs about 506 bytes, "
    ):
        _gaussian_loop(store, 3, evaluate=trace_hook)
    monkeypatch.setattr(
        store_module.np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("31360 requested and 28544 written"))
    )
    with pytest.raises(StoreError, match=r"no space left on the disk of .*/x.npy .*MAD_ROOT"):
        store.cached_arrays("mc", {"n": 1}, lambda: {"x": np.zeros(40)})
    monkeypatch.setattr(store_module, "_write_json", full)
    with pytest.raises(StoreError, match=r"no space left on the disk of .*config.json"):
        store.run("exp", {"a": 2})
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_sizes_the_metrics_cannot_evaluate_are_refused_before_anything_trains(tmp_path):
    from madutils.metrics import ModeMetrics

    hook = ModeMetrics(np.random.default_rng(0).normal(size=(50, 2)))
    cfg = LoopConfig(generations=2, n_ini=3, n_s=3)
    with pytest.raises(ValueError, match=r"draws 3 samples \(n_s = 3\), but its evaluation hook ModeMetrics needs"):
        run_loop(GaussianFamily(), cfg, GaussianSource.standard(2), store=Store(tmp_path), evaluate=hook)
    assert not list(tmp_path.rglob("config.json"))


def test_reproduce_refuses_an_unknown_mad_scale():
    env = dict(os.environ, MAD_SCALE="bogus")
    out = subprocess.run(["bash", "reproduce.sh"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "unknown scale 'bogus' (from --scale or MAD_SCALE)" in out.stderr


# -- a shared store runs no one's code and serves no generation out of place -------------------------------------


class Payload:
    """A pickle that runs a command when it is read: what anyone who can write a shared store could plant."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(folder: Path, name: str, data: bytes, binding: dict) -> None:
    """Replace a stored file and recompute the folder's manifest and its checksum, as a writer of the store can."""
    import hashlib

    from madutils.store import manifest_bytes

    (folder / name).write_bytes(data)
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(folder.iterdir())
        if p.name != "manifest.json"
    }
    (folder / "manifest.json").write_bytes(manifest_bytes(binding, files))


def _payloads(marker: Path) -> dict[str, bytes]:
    """Bytes that would run a command if a reader executed what they name: a pickle (plain and through
    torch.save), and plain-data files whose tree names a function, an unregistered class and a registered class
    with a field it does not have."""
    import io
    import pickle

    import safetensors.numpy
    import torch

    buf = io.BytesIO()
    torch.save(Payload(marker), buf)

    def tree(node):
        meta = json.dumps({"format": "madutils-plain-1", "tree": node})
        return safetensors.numpy.save({}, metadata={"madutils": meta})

    command = {"command": {"tuple": [f"touch {marker}"]}}
    return {
        "pickle": pickle.dumps(Payload(marker)),
        "torch.save": buf.getvalue(),
        "os.system": tree({"object": "posix:system", "fields": command}),
        "madutils function": tree({"object": "madutils.utils:canonical", "fields": {"obj": 1}}),
        "unregistered": tree({"object": "subprocess:Popen", "fields": {"args": f"touch {marker}"}}),
        "extra field": tree(
            {"object": "madutils.models.gaussian:GaussianModel", "fields": {"mu": 1, "cov": 2, "x": 3}}
        ),
    }


def test_a_planted_payload_in_any_stored_model_object_or_checkpoint_runs_nothing_and_is_refused(tmp_path):
    import io

    from madutils.store import Checkpoint

    marker = tmp_path / "ran"
    store = Store(tmp_path / "runs")
    run = _gaussian_loop(store, 3, store_models=True, evaluate=trace_hook).run
    (cached,) = (tmp_path / "runs" / "shared-first-generation" / "cache").glob("*/object.safetensors")
    for kind, data in _payloads(marker).items():
        _plant(run.path / "gen-002", "model.safetensors", data, run.binding(2))
        with pytest.raises(StoreError, match=r"gen-002/model.safetensors (is not a plain-data|cannot be read)"):
            run.generation(2).model()
        _plant(cached.parent, "object.safetensors", data, {"cache": cached.parent.name})
        with pytest.raises(LoopError, match=r"object.safetensors (is not a plain-data|cannot be read)"):
            _gaussian_loop(store, 2, lam=0.5, evaluate=trace_hook)  # a loop that shares generation 1
        checkpoint = Checkpoint(tmp_path / "checkpoints" / "x.safetensors")
        checkpoint.path.parent.mkdir(exist_ok=True)
        checkpoint.path.write_bytes(data)
        checkpoint.sum_path.write_text(__import__("hashlib").sha256(data).hexdigest())
        with pytest.raises(StoreError, match=r"x.safetensors (is not a plain-data|cannot be read)"):
            checkpoint.load()
        assert not marker.exists(), f"reading a planted {kind} ran its command"
    # an array of Python objects (a pickle inside an .npy file) where the synthetic output should be
    objects = io.BytesIO()
    np.save(objects, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    _plant(run.path / "gen-001", "output.npy", objects.getvalue(), run.binding(1))
    with pytest.raises(StoreError, match=r"gen-001/output.npy is not an array of numbers that can be read"):
        run.generation(1).array("output")
    # a manifest that lists a pickle where the model should be
    (run.path / "gen-003" / "model.safetensors").unlink()
    _plant(run.path / "gen-003", "model.pkl", _payloads(marker)["torch.save"], run.binding(3))
    with pytest.raises(StoreError, match=r"gen-003/model.pkl is a pickle, which this store never reads"):
        run.generation(3).model()
    assert not marker.exists()


def _old_format(folder: Path) -> None:
    """Rewrite a folder as an older madutils stored it: the model pickled, a manifest without format or binding."""
    import hashlib
    import io

    import torch

    from madutils import plain

    for new, old in (("model.safetensors", "model.pkl"), ("object.safetensors", "object.pkl")):
        if (folder / new).exists():
            buf = io.BytesIO()
            torch.save(plain.loads((folder / new).read_bytes()), buf)
            (folder / old).write_bytes(buf.getvalue())
            (folder / new).unlink()
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(folder.iterdir())
        if p.name != "manifest.json"
    }
    digest = hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps({"files": files, "listing_sha256": digest}))


def test_an_older_store_is_read_only_through_the_migration_which_says_what_it_trusts(tmp_path):
    from madutils.tools.migrate import migrate

    root = tmp_path / "runs"
    store = Store(root)
    run = _gaussian_loop(store, 3, store_models=True, evaluate=trace_hook).run
    before = run.metrics()
    folders = [run.path / f"gen-{t:03d}" for t in (1, 2, 3)] + list((root / "shared-first-generation").glob("cache/*"))
    for folder in folders:
        _old_format(folder)
    with pytest.raises(StoreError, match=r"stored by an older version of madutils .*python -m madutils.tools.migrate"):
        run.completed()
    # a payload planted in the old store: the migration without --trust reads no pickle
    marker = tmp_path / "ran"
    import io

    import torch

    buf = io.BytesIO()
    torch.save(Payload(marker), buf)
    (run.path / "gen-002" / "model.pkl").write_bytes(buf.getvalue())
    _old_format(run.path / "gen-002")
    out = io.StringIO()
    report = migrate(root, trust=False, out=out)
    assert not marker.exists() and len(report.folders) == 4 and len(report.pickles) == 4
    assert "Nothing was changed" in out.getvalue() and "runs whatever code" in out.getvalue()
    with pytest.raises(StoreError, match="older version"):
        run.completed()
    # with --trust it reads the pickles: the planted one runs, which is what trusting a store means
    out = io.StringIO()
    report = migrate(root, trust=True, out=out)
    assert report.migrated == 4 and not report.problems and marker.exists()
    assert "4 folders and checkpoints migrated to format 2" in out.getvalue()
    assert migrate(root, trust=False, out=io.StringIO()).folders == []  # done: nothing left to migrate
    shutil_rmtree(run.path / "gen-002")  # what the payload left there is no model: recomputed
    shutil_rmtree(run.path / "gen-003")
    again = _gaussian_loop(store, 3, store_models=True, evaluate=trace_hook)
    assert again.run.completed() == 3 and again.metrics().value.tolist() == before.value.tolist()
    assert np.isfinite(again.model(1).mu).all() and not list(root.rglob("*.pkl"))


def shutil_rmtree(path):
    import shutil

    shutil.rmtree(path)


def test_a_generation_copied_swapped_or_linked_from_elsewhere_is_refused_naming_both_runs(tmp_path):
    import shutil

    store = Store(tmp_path)
    one = _gaussian_loop(store, 3, seed=1, evaluate=trace_hook).run
    two = _gaussian_loop(store, 3, seed=2, evaluate=trace_hook).run
    mine = one.path / "gen-002"
    # seed 2's generation 2 copied over seed 1's
    shutil.rmtree(mine)
    shutil.copytree(two.path / "gen-002", mine)
    with pytest.raises(
        StoreError, match=rf"{mine} is not generation 2 of run {one.key}: .*generation 2 of run {two.key}"
    ):
        one.completed()
    with pytest.raises(StoreError, match=rf"generation 2 of run {two.key}"):
        _gaussian_loop(store, 3, seed=1, evaluate=trace_hook)
    # a longer loop does not take it over: it computes from there
    longer = _gaussian_loop(store, 4, seed=1, evaluate=trace_hook)
    reference = _gaussian_loop(Store(tmp_path / "ref"), 4, seed=1, evaluate=trace_hook)
    assert longer.metrics().value.tolist() == reference.metrics().value.tolist()
    # two generations swapped
    shutil.rmtree(mine)
    shutil.rmtree(one.path / "gen-003")
    one = _gaussian_loop(store, 3, seed=1, evaluate=trace_hook).run
    os.rename(one.path / "gen-002", one.path / "swap")
    os.rename(one.path / "gen-003", one.path / "gen-002")
    os.rename(one.path / "swap", one.path / "gen-003")
    with pytest.raises(
        StoreError, match=rf"gen-002 is not generation 2 of run {one.key}: .*generation 3 of run {one.key}"
    ):
        one.completed()
    # a generation linked to another run's
    shutil.rmtree(one.path / "gen-002")
    shutil.rmtree(one.path / "gen-003")
    os.symlink(two.path / "gen-002", one.path / "gen-002")
    with pytest.raises(
        StoreError, match=rf"gen-002 \(a link to .*{two.key}/gen-002\) is not generation 2 of run {one.key}"
    ):
        one.generation(2)


@dataclass(frozen=True)
class NaNFirstFamily(GaussianFamily):
    """The Gaussian family whose every fit returns NaN parameters while ``BROKEN`` holds (generation 1 included)."""

    name: str = "nan-first"

    def fit(self, data, seed):
        model = super().fit(data, seed)
        if BROKEN:
            model.mu[:] = np.nan
        return model


def test_a_non_finite_generation_1_is_never_cached_and_a_fixed_family_completes(tmp_path, monkeypatch):
    store = Store(tmp_path)
    cfg = LoopConfig(generations=2, n_ini=20, n_s=20, seed=1)
    source = GaussianSource.standard(2)
    with pytest.raises(LoopError, match=r"generation 1 .*the model of the family 'nan-first' holds non-finite .* mu"):
        run_loop(NaNFirstFamily(), cfg, source, store=store, progress=False)
    assert not list((tmp_path / "shared-first-generation").rglob("object.safetensors"))
    monkeypatch.setattr(sys.modules[__name__], "BROKEN", False)  # the family is fixed; its key is the same
    assert run_loop(NaNFirstFamily(), cfg, source, store=store, progress=False).run.completed() == 2


def test_a_non_finite_cached_model_names_its_file_and_the_advice_works(tmp_path):
    """A generation 1 cached by an older version without the finiteness check is named when it is read."""
    import shutil

    from madutils import plain

    store = Store(tmp_path)
    _gaussian_loop(store, 2, lam=1.0, evaluate=trace_hook)
    (obj,) = (tmp_path / "shared-first-generation" / "cache").glob("*/object.safetensors")
    model = plain.loads(obj.read_bytes())
    model.mu[:] = 0.0
    data = bytearray(plain.dumps(model))
    zero = np.zeros(2).tobytes()
    at = bytes(data).rindex(zero)
    data[at : at + 16] = np.full(2, np.nan).tobytes()
    _plant(obj.parent, "object.safetensors", bytes(data), {"cache": obj.parent.name})
    with pytest.raises(LoopError, match=rf"object.safetensors holds NaN or infinity .*Delete {obj.parent}"):
        _gaussian_loop(store, 2, lam=0.5, evaluate=trace_hook)
    shutil.rmtree(obj.parent)
    assert _gaussian_loop(store, 2, lam=0.5, evaluate=trace_hook).run.completed() == 2


@dataclass(frozen=True)
class TextHook:
    def __call__(self, model, output, t):
        return {"m": "nan"}


def test_a_fresh_loop_without_output_stores_no_non_finite_model_and_text_metrics_are_refused(tmp_path):
    store = Store(tmp_path)
    cfg = LoopConfig(generations=3, n_ini=20, n_s=0, real="fresh", n_r=21, seed=1)  # n_s = 0: no output drawn
    with pytest.raises(LoopError, match=r"generation 2 .*the model of the family 'nan-gaussian' holds non-finite"):
        run_loop(NaNFamily(), cfg, GaussianSource.standard(2), store=store, store_models=True, progress=False)
    assert not list(tmp_path.rglob("gen-002"))
    with pytest.raises(LoopError, match=r"the evaluation hook TextHook returned str 'nan' for 'm'"):
        _gaussian_loop(store, 2, evaluate=TextHook())
    (run,) = [p.parent for p in (tmp_path / "loop").glob("*/config.json") if "TextHook" in p.read_text()]
    with pytest.raises(ValueError, match="metrics must be finite numbers"):
        Store(tmp_path).run("loop", json.loads((run / "config.json").read_text())).write_generation(1, {"m": "nan"})
    assert not list(run.glob("gen-*"))


def test_a_full_disk_at_the_lock_names_the_path_and_leaves_no_lock_file(tmp_path, monkeypatch):
    import errno

    from madutils import store as store_module

    real_open, real_pwrite = os.open, os.pwrite

    def no_new_lock(path, flags, *args):
        if str(path).endswith(".lock"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args)

    store = Store(tmp_path)
    monkeypatch.setattr(store_module.os, "open", no_new_lock)
    with pytest.raises(StoreError, match=r"no space left on the disk of .*\.lock \(.* bytes free\); .*MAD_ROOT"):
        store.cached_arrays("mc", {"n": 1}, lambda: {"x": np.zeros(40)})
    with pytest.raises(StoreError, match=r"no space left on the disk of .*loop-[0-9a-f]+\.lock"):
        _gaussian_loop(store, 2, evaluate=trace_hook)
    monkeypatch.setattr(store_module.os, "open", real_open)
    _gaussian_loop(store, 1, evaluate=trace_hook)

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "pwrite", full)  # the lock file is made, its holder's name cannot be written
    monkeypatch.setattr(store_module.np, "save", lambda *a, **k: full(0, b"", 0))
    with pytest.raises(
        StoreError, match=r"gen-002/output.npy \(generation 2 needs about 506 bytes, [0-9,]+ bytes free"
    ):
        _gaussian_loop(store, 3, evaluate=trace_hook)
    monkeypatch.setattr(store_module.os, "pwrite", real_pwrite)
    assert not list(tmp_path.rglob("*.lock")) and not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_a_manifest_that_lists_a_file_outside_its_folder_is_refused(tmp_path):
    from madutils.store import manifest_bytes

    store = Store(tmp_path)
    one = _gaussian_loop(store, 2, seed=1, evaluate=trace_hook).run
    two = _gaussian_loop(store, 2, seed=2, evaluate=trace_hook).run
    manifest = json.loads((one.path / "gen-002" / "manifest.json").read_text())
    outside = f"../../{two.key}/gen-002/output.npy"
    manifest["files"][outside] = json.loads((two.path / "gen-002" / "manifest.json").read_text())["files"]["output.npy"]
    del manifest["files"]["output.npy"]
    (one.path / "gen-002" / "manifest.json").write_bytes(manifest_bytes(one.binding(2), manifest["files"]))
    with pytest.raises(StoreError, match=r"gen-002/manifest.json lists '\.\./\.\./.*', a file outside its folder"):
        one.completed()


def test_a_renamed_listing_checksum_is_not_an_old_manifest(tmp_path):
    run = _gaussian_loop(Store(tmp_path), 2, evaluate=trace_hook).run
    manifest = run.path / "gen-002" / "manifest.json"
    manifest.write_text(manifest.read_text().replace("listing_sha256", "listing_sha257"))
    with pytest.raises(StoreError, match=r"gen-002/manifest.json does not match its own checksum"):
        run.completed()


def test_a_dangling_link_of_a_run_folder_is_named_as_such(tmp_path):
    store = Store(tmp_path)
    run = _gaussian_loop(store, 2, evaluate=trace_hook).run
    moved = tmp_path / "elsewhere"
    os.rename(run.path, moved)
    os.symlink(moved, run.path)
    moved.rename(tmp_path / "gone")
    with pytest.raises(StoreError, match=rf"run folder {run.path} is a link to {moved}, which does not exist"):
        _gaussian_loop(store, 2, evaluate=trace_hook)


def test_the_holder_of_a_lock_is_described_as_the_waiter_sees_it(monkeypatch):
    import socket

    from madutils import store as store_module

    def holder(**changes):
        h = json.loads(store_module._holder()) | changes
        return store_module._describe_holder(json.dumps(h).encode())

    assert holder(pid=7).startswith("process 7 on this machine (since ")
    assert "process 1 in another PID namespace (a container) on " + socket.gethostname() in holder(
        pid=1, pid_namespace="pid:[1]"
    )
    assert "process 1 on the machine node-17" in holder(pid=1, host="node-17")
    assert store_module._describe_holder(b"") == "another process"


@dataclass(frozen=True)
class CountingHook:
    """Appends each generation it evaluates to a file, so that a test can count the generations computed."""

    path: str

    def __call__(self, model, output, t):
        with open(self.path, "a") as f:
            f.write(f"{t}\n")
        return {"trace": float(np.trace(model.cov))}


LENGTH_CHILD = """
import sys
sys.path.insert(0, {here!r})
from loop_helpers import SlowGaussianFamily
from test_reliability import CountingHook
from madutils.data import GaussianSource
from madutils.loops import LoopConfig, run_loop
from madutils.store import Store
cfg = LoopConfig(generations=4, n_ini=20, n_s=20, seed=3)
run_loop(SlowGaussianFamily(pause=0.3), cfg, GaussianSource.standard(2), store=Store({root!r}), folder="lock",
         evaluate=CountingHook({log!r}), progress=False)
"""


def test_two_writers_of_one_loop_with_different_lengths_compute_each_generation_once(tmp_path):
    log = tmp_path / "evaluated"
    code = LENGTH_CHILD.format(here=str(HERE), root=str(tmp_path), log=str(log))
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob("lock/*/gen-001")) and time.time() < deadline:
            time.sleep(0.05)
        cfg = LoopConfig(generations=6, n_ini=20, n_s=20, seed=3)
        run = run_loop(
            SlowGaussianFamily(pause=0.3),
            cfg,
            GaussianSource.standard(2),
            store=Store(tmp_path),
            folder="lock",
            evaluate=CountingHook(str(log)),
            progress=False,
        )
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
    assert run.run.completed() == 6
    assert sorted(int(t) for t in log.read_text().split()) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("point", ["folder", "metrics", "array", "manifest", "publish"])
def test_a_full_disk_at_every_write_of_a_generation_names_it_and_the_rerun_completes(tmp_path, monkeypatch, point):
    import builtins
    import errno
    from pathlib import Path as P

    from madutils import store as store_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    store = Store(tmp_path)
    _gaussian_loop(store, 1, evaluate=trace_hook)
    real_open, real_mkdir = builtins.open, P.mkdir

    def open_full(path, mode="r", *args, **kwargs):
        if "w" in mode and P(path).name == {"metrics": "metrics.json", "manifest": "manifest.json"}.get(point):
            full()
        return real_open(path, mode, *args, **kwargs)

    def mkdir_full(self, *args, **kwargs):
        if self.name.startswith(".gen-002.tmp-"):
            full()
        return real_mkdir(self, *args, **kwargs)

    with monkeypatch.context() as m:
        if point == "folder":
            m.setattr(P, "mkdir", mkdir_full)
        elif point == "array":
            m.setattr(store_module.np, "save", full)
        elif point == "publish":
            m.setattr(store_module.os, "rename", full)
        else:
            m.setattr(store_module, "open", open_full, raising=False)
        # generation 1 is taken over from the stored loop of 1 generation (a new manifest, a rename), then 2 computed
        with pytest.raises(
            StoreError, match=r"no space left on the disk of .*gen-00([12]).* \(generation \1 needs about "
        ):
            _gaussian_loop(store, 3, evaluate=trace_hook)
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or p.name.endswith(".lock")]
    done = _gaussian_loop(store, 3, evaluate=trace_hook)  # room again: the rerun completes
    reference = _gaussian_loop(Store(tmp_path / "ref"), 3, evaluate=trace_hook)
    assert done.metrics().value.tolist() == reference.metrics().value.tolist()
