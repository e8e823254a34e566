import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def run_benchmark(script: str, *args: str) -> str:
    """The standard output of ``python benchmarks/<script> args...`` run from the repository root."""
    command = [sys.executable, f"benchmarks/{script}", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=True).stdout


@pytest.mark.slow
def test_generation_cost_script_runs_at_smoke_scale():
    """The prepared GPU timing script (benchmarks/bench_generation_cost.py) on the tiny smoke models, on the CPU."""
    out = run_benchmark(
        "bench_generation_cost.py", "--scale", "smoke", "--steps", "2", "--images", "4", "--device", "cpu"
    )
    rows = [line for line in out.splitlines() if line.startswith("| DDPM") or line.startswith("| StyleGAN2")]
    assert len(rows) == 2 and "device: cpu, scale: smoke" in out
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2].lstrip("≤ ")) > 0 and float(cells[3]) > 0  # seconds per step, ms per image


@pytest.mark.slow
def test_parallel_loops_benchmark_runs_on_tiny_loops():
    """benchmarks/bench_parallel_loops.py end to end on two tiny DDPM loops (a few steps, 20 images)."""
    out = run_benchmark("bench_parallel_loops.py", "--steps", "3", "--n", "20")
    row = [line for line in out.splitlines() if line.startswith("| ") and "cores" in line]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    serial, parallel, ratio = float(cells[1].rstrip(" s")), float(cells[2].rstrip(" s")), cells[3]
    assert ratio.endswith("x") and float(ratio[:-1]) == pytest.approx(serial / parallel, abs=0.01 + 0.1 / parallel)


@pytest.mark.slow
def test_duplicate_and_low_dimensional_benchmarks_run():
    """benchmarks/bench_duplicates.py on a tiny collapsed set, and bench_low_dim.py: both paths agree."""
    out = run_benchmark("bench_duplicates.py", "--n", "400", "--d", "32")
    row = [line for line in out.splitlines() if line.startswith("| 400 × 32")]
    assert len(row) == 1 and row[0].rstrip(" |").endswith("True")
    out = run_benchmark("bench_low_dim.py")
    assert len([line for line in out.splitlines() if line.startswith("| 25 modes") or "three modes" in line]) == 2


@pytest.mark.slow
def test_gpu_check_runs_tiny_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.py --tiny end to end on the CPU: every part measured (none failed), TF32 on and off give
    identical metric values, and the extrapolation is filled."""
    import json

    out = tmp_path / "check.json"
    table = run_benchmark("gpu_check.py", "--tiny", "--device", "cpu", "--out", str(out))
    result = json.loads(out.read_text())
    parts = ("ddpm", "stylegan", "wgan", "inception", "prdc", "lenet_hook")
    assert not [p for p in parts if "error" in result[p]], {p: result[p] for p in parts}
    assert result["ddpm"]["train_s_per_step"] > 0 and result["ddpm"]["sample_s_guided"] > 0
    assert result["prdc"]["identical"] is True
    assert result["stylegan"]["train_s_per_step_bf16"] > 0 and result["stylegan"]["bf16_max_pixel_difference"] >= 0
    assert result["extrapolated"]["ddpm_hours_1_gpu"] >= result["extrapolated"]["ddpm_hours_8_gpus"] > 0
    assert table.count("\n| ") >= len(parts)


@pytest.mark.slow
def test_loop_order_benchmark_runs_and_both_orders_store_the_same_results():
    """benchmarks/bench_loop_order.py end to end with short pauses (the schedule, not its timing, is checked)."""
    out = run_benchmark("bench_loop_order.py", "--pause", "0.2", "--generations", "3")
    row = [line for line in out.splitlines() if line.startswith("| spread")]
    assert len(row) == 1 and row[0].rstrip(" |").endswith("True")


@pytest.mark.slow
def test_uneven_loops_benchmark_stores_the_same_results_with_one_worker_per_loop(monkeypatch):
    """benchmarks/bench_uneven_loops.py end to end on three tiny WGAN-GP loops (the results, not the timing)."""
    monkeypatch.setenv("MAD_THREADS", "2")  # two cores, whatever the machine has
    out = run_benchmark("bench_uneven_loops.py", "--loops", "3", "--steps", "2", "--generations", "2")
    row = [line for line in out.splitlines() if line.startswith("| 2 cores")]
    assert len(row) == 1 and row[0].rstrip(" |").endswith("yes")


@pytest.mark.slow
def test_gmm_workers_benchmark_covers_the_same_modes_all_three_ways(monkeypatch):
    """benchmarks/bench_gmm_workers.py end to end on two short GMM loops (the results, not the timing)."""
    monkeypatch.setenv("MAD_THREADS", "2")  # two cores, whatever the machine has
    out = run_benchmark("bench_gmm_workers.py", "--iterations", "3")
    row = [line for line in out.splitlines() if line.startswith("| 2 cores")]
    assert len(row) == 1 and row[0].rstrip(" |").endswith("True")
