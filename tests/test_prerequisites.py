"""At the paper scale a notebook checks what it needs before any work: a GPU for the deep models, free disk for its
stored results, and FFHQ and the Inception weights for its StyleGAN2 part, whose absence leaves the rest to run."""

import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch

from madutils import claims, prerequisites
from madutils.prerequisites import PrerequisiteError
from madutils.scales import GaussianMartingaleSizes, sizes

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine with a GPU, 10 TB free, no FFHQ and no Inception weights (an empty data folder)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(prerequisites.shutil, "disk_usage", lambda p: Usage(10**13, 0, 10**13))
    monkeypatch.setattr(prerequisites, "_host_memory_gb", lambda: 1000.0)
    monkeypatch.setenv("MAD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MAD_ROOT", str(tmp_path))
    monkeypatch.delenv("MAD_FFHQ", raising=False)
    monkeypatch.delenv("MAD_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path


def test_below_the_paper_scale_nothing_is_required(machine, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert prerequisites.check("02", "small").missing == {}


def test_no_gpu_stops_the_deep_notebooks_at_once(machine, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PrerequisiteError, match="usable GPU: notebook 02 trains ddpm, stylegan"):
        prerequisites.check("02", "paper")
    assert prerequisites.check("02", "paper", device="cpu")  # asked for explicitly: allowed
    assert prerequisites.check("01", "paper").missing == {}  # Gaussian Monte Carlo: no GPU needed


def test_missing_ffhq_and_inception_stop_only_the_stylegan_part(machine):
    report = prerequisites.check("02", "paper")
    assert not report.can_run("stylegan") and report.can_run("ddpm")
    why = report.reason("stylegan")
    assert f"FFHQ is not at {machine / 'data' / 'ffhq'}" in why and "MAD_INCEPTION_WEIGHTS" in why
    (machine / "data" / "ffhq").mkdir(parents=True)
    (machine / "data" / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"x")
    assert prerequisites.check("06", "paper").missing == {}
    rows = claims.c12_not_run("StyleGAN2 on FFHQ 128", why)
    assert len(rows) == 8 and {r.verdict for r in rows} == {"not_run"} and rows[0].reason == why


def test_too_little_disk_stops_with_the_estimate(machine, monkeypatch):
    need = prerequisites.estimated_disk_gb("01", "paper")
    # 01 keeps four float32 arrays (logarithms) of 28,000 trials × 5,000 generations for each of 16 (λ, n_s)
    assert need == pytest.approx(16 * 4 * 28000 * 5000 * 4 / 1e9)
    monkeypatch.setattr(prerequisites.shutil, "disk_usage", lambda p: Usage(10**12, 0, int(need * 1e9)))
    with pytest.raises(PrerequisiteError, match="free disk: notebook 01 stores about 36 GB"):
        prerequisites.check("01", "paper")


def test_the_disk_estimate_of_notebook_01_is_what_its_monte_carlo_stores(tmp_path):
    from madutils.experiments import gaussian_martingale
    from madutils.scales import GaussianMartingaleSizes, sizes
    from madutils.store import Store

    exp, _, _ = gaussian_martingale(sizes(GaussianMartingaleSizes, "smoke"))
    results = exp.run(Store(tmp_path))
    stored = sum(f.stat().st_size for f in (tmp_path / exp.folder).rglob("*.npy"))
    assert stored == pytest.approx(prerequisites.estimated_disk_gb("01", "smoke") * 1e9, rel=0.05)
    trace = next(iter(results.values()))["trace"]
    assert trace.dtype == np.float64 and (trace > 0).all()  # given back as float64 variances


def test_disk_estimate_follows_the_sizes():
    small = {nb: prerequisites.estimated_disk_gb(nb, "small") for nb in ("01", "02", "05", "06")}
    paper = {nb: prerequisites.estimated_disk_gb(nb, "paper") for nb in small}
    assert all(paper[nb] > small[nb] for nb in small)
    m = sizes(GaussianMartingaleSizes, "small")  # four float32 arrays of trials × generations for every (λ, n_s)
    loops = len(m.lams) * len(m.n_ss)
    assert small["01"] == pytest.approx(loops * 4 * m.trials * m.generations * 4 / 1e9, rel=0.01)
    assert 100 < paper["06"] < 200  # two seeds of 19 StyleGAN2 generations of 70,000 FFHQ images at 128 × 128


def test_too_little_memory_stops_with_the_estimate(machine, monkeypatch):
    need = prerequisites.estimated_memory_gb("06", "paper")
    # the StyleGAN2 augmentation loop at generation 5: real set, 4 outputs and their concatenation, 10 · 70,000 images
    assert need == pytest.approx(prerequisites.BASE_MEMORY_GB + 10 * 70000 * 3 * 128 * 128 / 1e9)
    monkeypatch.setattr(prerequisites, "_host_memory_gb", lambda: 32.0)
    with pytest.raises(PrerequisiteError, match="host memory: notebook 06 needs about 36 GB .* has 32 GB"):
        prerequisites.check("06", "paper")
    assert prerequisites.check("05", "paper").memory_gb < 4  # WGAN-GP, GMM, flow: small


MEASURE = """
import sys, tracemalloc
from madutils import store
store.MMAP_BYTES = 2**20
from madutils.claims import c1_gaussian_martingale
from madutils.experiments import gaussian_martingale
from madutils.scales import GaussianMartingaleSizes, sizes

sz = sizes(GaussianMartingaleSizes, "smoke", trials=1000, generations=1000, lams=[1.0, 0.9],
           n_ss=[10, 100, 1000, 10000])
exp, mu0, var0 = gaussian_martingale(sz)

def notebook():  # read back from the store and judge, as notebook 01 does
    results = exp.run(store.Store(sys.argv[1]))
    results.table()
    c1_gaussian_martingale(results, trace0=float(var0.sum()), n_ini={k: k[1] for k in results})

exp.run(store.Store(sys.argv[1]))  # computed and stored
notebook()  # once, so that every lazy import is done
tracemalloc.start()  # numpy reports its buffers to tracemalloc; memory-mapped files are not allocations
notebook()
print(*tracemalloc.get_traced_memory())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssAnon from /proc")
def test_notebook_01_holds_one_loop_at_a_time(tmp_path):
    # 8 loops of four 1,000 × 1,000 float64 arrays (256 MB) are read and judged; what is allocated at the peak is
    # bounded by the estimate for one loop (6 arrays, 48 MB), since stored arrays above MMAP_BYTES are
    # memory-mapped and given back one at a time; and nothing of them stays allocated afterwards. Measured with
    # tracemalloc rather than the resident size, which the allocator's reuse of freed memory makes noisy.
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    held, peak = map(int, out.stdout.split()[-2:])
    assert held < 8 * 1000 * 1000, f"{held / 1e6:.0f} MB still allocated after reading 256 MB of stored results"
    assert peak < 6 * 1000 * 1000 * 8, f"{peak / 1e6:.0f} MB allocated at the peak of reading 256 MB"
