import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from madutils.store import Store, StoreError

HERE = Path(__file__).parent


def test_generation_roundtrip_and_tidy_metrics(tmp_path):
    store = Store(tmp_path)
    run = store.run("exp", {"lam": 0.5, "family": {"width": 8}})
    assert run.completed() == 0
    run.write_generation(1, {"fid": 3.0, "recall": 0.5}, {"x": np.arange(6).reshape(2, 3)})
    run.write_generation(2, {"fid": 4.0, "recall": 0.25})
    assert run.completed() == 2
    np.testing.assert_array_equal(run.generation(1).array("x"), np.arange(6).reshape(2, 3))
    table = run.metrics()
    assert len(table) == 4
    assert table.query("generation == 2 and metric == 'fid'").value.item() == 4.0


def test_a_run_of_a_thousand_generations_and_more_is_read_back_whole(tmp_path):
    """The GMM loop runs 1,000 iterations (paper: 2,000): gen-1000 has four digits and must count as stored."""
    run = Store(tmp_path).run("exp", {"iterations": 1002})
    for t in range(1, 1003):
        run.write_generation(t, {"m": float(t)})
    again = Store(tmp_path).run("exp", {"iterations": 1002})
    assert again.completed() == 1002
    assert again.metrics().query("generation == 1002").value.item() == 1002.0


def test_a_stored_generation_is_never_overwritten(tmp_path):
    run = Store(tmp_path).run("exp", {"a": 1})
    run.write_generation(1, {"m": 1.0})
    with pytest.raises(StoreError, match="already stored"):
        run.write_generation(1, {"m": 2.0})
    assert run.generation(1).metrics == {"m": 1.0}


def test_config_mismatch_is_an_error(tmp_path):
    store = Store(tmp_path)
    run = store.run("exp", {"a": 1})
    run.write_generation(1, {"m": 1.0})
    (run.path / "config.json").write_text(json.dumps({"a": 2}))
    with pytest.raises(StoreError, match="different configuration"):
        store.run("exp", {"a": 1})
    assert (run.path / "gen-001" / "metrics.json").is_file(), "a stored result was lost"


def test_corrupted_generation_is_reported_with_its_path(tmp_path):
    run = Store(tmp_path).run("exp", {"a": 1})
    run.write_generation(1, {"m": 1.0}, {"x": np.zeros(100)})
    path = run.path / "gen-001" / "x.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"gen-001.*checksum.*Delete"):
        run.generation(1).array("x")
    assert path.is_file(), "the corrupted file must be kept for inspection"


def test_truncated_file_and_gaps_are_reported(tmp_path):
    run = Store(tmp_path).run("exp", {"a": 1})
    for t in (1, 2, 3):
        run.write_generation(t, {"m": float(t)}, {"x": np.zeros(10)})
    (run.path / "gen-002" / "x.npy").write_bytes(b"short")
    with pytest.raises(StoreError, match="gen-002.*wrong size"):
        run.completed()
    (run.path / "gen-002" / "x.npy").unlink()
    os.rename(run.path / "gen-002", run.path / "gen-009")
    with pytest.raises(StoreError, match="not 1..m"):
        run.completed()


def test_large_arrays_are_memory_mapped_after_their_checksum(tmp_path, monkeypatch):
    from madutils import store as store_module

    monkeypatch.setattr(store_module, "MMAP_BYTES", 1000)
    store = Store(tmp_path)
    big = np.arange(2000.0).reshape(40, 50)
    out = store.cached_arrays("mc", {"n": 1}, lambda: {"big": big, "small": np.arange(3)})
    assert isinstance(out["big"], np.memmap) and not out["big"].flags.writeable
    assert not isinstance(out["small"], np.memmap)
    np.testing.assert_array_equal(out["big"], big)
    path = next((tmp_path / "mc" / "cache").glob("*/big.npy"))
    raw = bytearray(path.read_bytes())
    raw[-8:] = np.float64(-1.0).tobytes()  # a same-size corruption
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"big\.npy does not match the checksum.*Delete"):
        store.cached_arrays("mc", {"n": 1}, lambda: {"big": big})


def test_cached_arrays_are_computed_once(tmp_path):
    store = Store(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"w2": np.arange(3.0)}

    a = store.cached_arrays("mc", {"n": 3}, compute)
    b = store.cached_arrays("mc", {"n": 3}, compute)
    assert store.cached_arrays("scalar", {}, lambda: {"x": np.array(2.5)})["x"].shape == ()
    np.testing.assert_array_equal(a["w2"], b["w2"])
    assert len(calls) == 1
    store.cached_arrays("mc", {"n": 4}, compute)
    assert len(calls) == 2


CHILD = """
import sys
sys.path.insert(0, {here!r})
from loop_helpers import SlowGaussianFamily, big_hook
from madutils.data import GaussianSource
from madutils.loops import LoopConfig, run_loop
from madutils.store import Store
cfg = LoopConfig(generations={gens}, n_ini=30, n_s=20, real="fresh", n_r=10, lam=0.9, memory=2, seed=7)
run_loop(SlowGaussianFamily(pause=0.05), cfg, GaussianSource.standard(4), store=Store({root!r}),
         folder="kill", evaluate=big_hook, progress=False)
"""


def _start(root, gens):
    code = CHILD.format(here=str(HERE), gens=gens, root=str(root))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run_folder(root):
    folders = [p.parent for p in Path(root, "kill").glob("*/config.json")]
    return folders[0] if folders else None


def _stored(root):
    folder = _run_folder(root)
    return sorted(folder.glob("gen-[0-9][0-9][0-9]")) if folder else []


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_gives_identical_results(tmp_path):
    gens = 30
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    proc = _start(reference, gens)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()

    rng = np.random.default_rng(0)
    kills = 0
    for target in (2, 9, 17, 24):
        proc = _start(interrupted, gens)
        deadline = time.time() + 300
        while len(_stored(interrupted)) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0, 0.06)))  # land anywhere inside the next generation, writing included
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL
            kills += 1
        assert len(_stored(interrupted)) < gens
    assert kills == 4
    proc = _start(interrupted, gens)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()

    ref_run, int_run = _run_folder(reference), _run_folder(interrupted)
    assert ref_run.name == int_run.name  # same configuration, same key
    assert not list(int_run.glob(".gen-*")), "temporary folders of killed runs were left behind"
    store_ref, store_int = Store(reference).run("kill", json.loads((ref_run / "config.json").read_text())), None
    store_int = Store(interrupted).run("kill", json.loads((int_run / "config.json").read_text()))
    assert store_ref.completed() == store_int.completed() == gens
    for t in range(1, gens + 1):
        a, b = store_ref.generation(t), store_int.generation(t)
        assert a.metrics == b.metrics
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert a.files[name][0].read_bytes() == b.files[name][0].read_bytes(), (t, name)


def test_the_log_codec_stores_logarithms_and_is_part_of_the_key(tmp_path):
    from madutils.store import LOG_FLOAT32, Store

    store = Store(tmp_path)
    a = np.array([[0.0, 1e-250, 3.0], [1.0, 2.5, 1e200]])
    out = store.cached_arrays("mc", {"n": 1}, lambda: {"a": a}, codec=LOG_FLOAT32)
    np.testing.assert_allclose(out["a"], a, rtol=1e-4)
    assert out["a"].dtype == np.float64 and out["a"][0, 0] == 0.0
    results = lambda: [p for p in (tmp_path / "mc" / "cache").iterdir() if not p.name.startswith(".")]  # noqa: E731
    (folder,) = results()
    assert np.load(folder / "a.npy").dtype == np.float32  # stored as its logarithm, in float32
    assert json.loads((folder / "config.json").read_text()) == {"n": 1, "stored": "log-float32"}
    # the same configuration without the codec is another result: never read the other way
    plain = store.cached_arrays("mc", {"n": 1}, lambda: {"a": a})
    assert plain["a"].dtype == np.float64 and len(results()) == 2
    with pytest.raises(ValueError, match="≥ 0"):
        store.cached_arrays("mc", {"n": 2}, lambda: {"a": -a}, codec=LOG_FLOAT32)
    with pytest.raises(ValueError, match="stored"):
        store.cached_arrays("mc", {"stored": "x"}, lambda: {"a": a}, codec=LOG_FLOAT32)
