"""The reliability cases of the spine: a stored result is never served unchecked or for another configuration,
two processes never compute one loop, workers die with their parent, and bad input gets an error that names it."""

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
from madutils.data import GaussianSource
from madutils.loops import LoopConfig, UndescribableError, compute_key, describe, run_config, run_loop
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
    model = run.path / "gen-003" / "model.pkl"
    blob = bytearray(model.read_bytes())
    blob[len(blob) // 2] ^= 1
    model.write_bytes(bytes(blob))
    with pytest.raises(StoreError, match="model.pkl does not match"):
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


def test_reading_a_finished_result_takes_no_lock(tmp_path):
    store = Store(tmp_path)
    store.cached_arrays("mc", {"n": 1}, lambda: {"x": np.arange(3)})
    for lock in (tmp_path / "mc" / "cache").glob(".*.lock"):
        lock.unlink()
    calls = []
    store.cached_arrays("mc", {"n": 1}, lambda: calls.append(1) or {"x": np.arange(3)})
    assert calls == [] and not list((tmp_path / "mc" / "cache").glob(".*.lock"))
    run = _loop(tmp_path / "r").run
    (run.path / ".lock").unlink()
    _loop(tmp_path / "r")  # complete: read without taking the run's lock
    assert not (run.path / ".lock").exists()


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
    assert describe(None) is None and describe(Shifted(1.0)) == {"__class__": "Shifted", "shift": 1.0}


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
