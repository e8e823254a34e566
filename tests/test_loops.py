import numpy as np
import pytest
from loop_helpers import (
    FailingGaussianFamily,
    TagFamily,
    TagSource,
    W2Hook,
    record_training_set,
    simulate,
    stored_runs,
    thread_pools_after_a_fit,
    trace_hook,
)

from madutils.data import GaussianSource
from madutils.loops import LoopConfig, LoopError, Part, loop_workers, run_loop, run_loops
from madutils.models.gaussian import GaussianFamily
from madutils.store import Store


def run_tags(store=None, **kw):
    cfg = LoopConfig(**kw)
    run = run_loop(TagFamily(), cfg, TagSource(), store=store, evaluate=record_training_set, progress=False)
    return [run.generation(t).array("train") for t in range(1, cfg.generations + 1)], run


def origins(train):
    values, counts = np.unique(train[:, 0], return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def test_fully_synthetic_composition():
    sets, _ = run_tags(generations=4, n_ini=50, n_s=30)
    assert origins(sets[0]) == {0: 50}
    for t in range(2, 5):
        assert origins(sets[t - 1]) == {t - 1: 30}


def test_fixed_real_set_is_identical_every_generation():
    sets, _ = run_tags(generations=4, n_ini=50, n_s=30, real="fixed", n_r=40)
    fixed = sets[0][:40]
    for t in range(2, 5):
        train = sets[t - 1]
        assert origins(train) == {0: 40, t - 1: 30}
        np.testing.assert_array_equal(train[train[:, 0] == 0], fixed)


def test_fresh_real_set_is_new_every_generation():
    sets, _ = run_tags(generations=5, n_ini=50, n_s=30, real="fresh", n_r=20)
    seen = [set(sets[0][:, 1].tolist())]
    for t in range(2, 6):
        train = sets[t - 1]
        assert origins(train) == {0: 20, t - 1: 30}
        ids = set(train[train[:, 0] == 0][:, 1].tolist())
        assert all(len(ids & s) == 0 for s in seen), "fresh real samples were reused"
        seen.append(ids)


def test_memory_k_draws_from_the_last_k_models():
    k, n_s = 3, 300
    sets, _ = run_tags(generations=7, n_ini=50, n_s=n_s, real="fresh", n_r=10, memory=k)
    for t in range(2, 8):
        synthetic = {o: c for o, c in origins(sets[t - 1]).items() if o != 0}
        assert sum(synthetic.values()) == n_s
        assert set(synthetic) == set(range(max(1, t - k), t))
    # the counts are multinomial, not a fixed split
    last = origins(sets[-1])
    assert len({last[o] for o in last if o}) > 1


def test_memory_k_counts_are_multinomial_with_uniform_weights():
    cfg = LoopConfig(generations=10, n_ini=5, n_s=90, memory=3)
    rng = np.random.default_rng(0)
    counts = np.array([[p.count for p in cfg.composition(5, rng)] for _ in range(3000)])
    assert counts.shape == (3000, 3)
    assert np.all(counts.sum(1) == 90)
    np.testing.assert_allclose(counts.mean(0), [30, 30, 30], atol=0.5)
    np.testing.assert_allclose(counts.var(0), 90 * (1 / 3) * (2 / 3), rtol=0.1)


def test_accumulating_pool_keeps_every_earlier_synthetic_sample():
    sets, run = run_tags(generations=5, n_ini=40, n_s=25, real="fixed", n_r=40, accumulate=True)
    for t in range(2, 6):
        assert origins(sets[t - 1]) == {0: 40} | {j: 25 for j in range(1, t)}
        # the pool holds exactly the stored outputs of the earlier generations
        for j in range(1, t):
            np.testing.assert_array_equal(sets[t - 1][sets[t - 1][:, 0] == j], run.output(j))


def test_composition_parts():
    cfg = LoopConfig(generations=3, n_ini=100, n_s=20, real="fresh", n_r=7)
    assert cfg.composition(1) == [Part("initial", 100, 1)]
    assert cfg.composition(3) == [Part("fresh", 7, 3), Part("output", 20, 2)]


def test_n_eval_draws_more_output_than_n_s():
    sets, run = run_tags(generations=3, n_ini=50, n_s=0, real="fresh", n_r=50, n_eval=17)
    assert len(run.output(2)) == 17
    assert origins(sets[2]) == {0: 50}


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(real="fresh", n_r=0), "n_r = 0"),
        (dict(real="none", n_r=5), "fully synthetic"),
        (dict(real="fixed", n_r=500), "n_r"),
        (dict(lam=1.2), "lam"),
        (dict(lam=float("nan")), "lam"),
        (dict(real="other"), "loop kind"),
        (dict(n_s=-3), "n_s"),
        (dict(memory=0), "memory"),
        (dict(memory=2, accumulate=True), "accumulate"),
        (dict(n_s=0), "n_s = 0"),
    ],
)
def test_bad_loop_configs_are_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        LoopConfig(**(dict(generations=3, n_ini=100, n_s=10) | kw))


def test_store_and_memory_give_the_same_results(tmp_path):
    cfg = LoopConfig(generations=6, n_ini=30, n_s=20, real="fresh", n_r=10, lam=0.8, memory=2)
    hook = trace_hook
    src = GaussianSource.standard(3)
    a = run_loop(GaussianFamily(), cfg, src, store=Store(tmp_path), evaluate=hook, progress=False)
    b = run_loop(GaussianFamily(), cfg, src, store=None, evaluate=hook, progress=False)
    np.testing.assert_array_equal(a.metrics().value, b.metrics().value)


def test_first_generation_is_shared_between_loops(tmp_path):
    store = Store(tmp_path)
    calls = []

    class Counting(TagFamily):
        def fit(self, data, seed):
            calls.append(len(data))
            return super().fit(data, seed)

    for lam, real in [(1.0, "none"), (0.5, "none"), (0.8, "fixed")]:
        cfg = LoopConfig(generations=2, n_ini=40, n_s=10, lam=lam, real=real, n_r=40 if real == "fixed" else 0)
        run_loop(Counting(), cfg, TagSource(), store=store, progress=False)
    assert calls.count(40) == 1, "generation 1 was trained more than once"
    assert len(calls) == 4


def test_a_failing_generation_says_where_to_resume(tmp_path):
    class Failing(TagFamily):
        def fit(self, data, seed):
            if data[:, 0].max() >= 2:
                raise FloatingPointError("loss is NaN")
            return super().fit(data, seed)

    store = Store(tmp_path)
    cfg = LoopConfig(generations=5, n_ini=20, n_s=10)
    with pytest.raises(LoopError, match="generation 3 .*NaN.*Generations 1..2"):
        run_loop(Failing(), cfg, TagSource(), store=store, progress=False)
    (run,) = stored_runs(store, "loop")
    assert run.completed() == 2


@pytest.mark.slow
def test_engine_matches_batched_monte_carlo():
    """The engine with the Gaussian family and gaussian.simulate implement the same loop."""
    from scipy.stats import ks_2samp

    d, gens = 3, 4
    cfg = dict(generations=gens, n_ini=20, n_s=15, real="fresh", n_r=5, lam=0.8)
    src = GaussianSource.standard(d)
    hook = W2Hook(d)
    engine = []
    for seed in range(400):
        run = run_loop(GaussianFamily(), LoopConfig(seed=seed, **cfg), src, evaluate=hook, progress=False)
        engine.append(run.metrics().query("metric == 'w2'").sort_values("generation").value.to_numpy())
    mc = simulate(d=d, trials=4000, **cfg)
    for t in range(gens):
        assert ks_2samp(np.array(engine)[:, t], mc.w2[:, t]).pvalue > 1e-3


def test_loops_in_two_processes_equal_the_loops_run_one_after_another(tmp_path):
    src = GaussianSource.standard(3)
    family = GaussianFamily()
    cfgs = [
        LoopConfig(generations=4, n_ini=40, n_s=30, lam=1.0),
        LoopConfig(generations=4, n_ini=40, n_s=30, lam=0.7),
        LoopConfig(generations=3, n_ini=40, n_s=20, real="fresh", n_r=20, lam=0.9),
    ]
    kw = dict(folder="g", evaluate=trace_hook, progress=False)
    parallel = run_loops(family, cfgs, src, store=Store(tmp_path / "a"), workers=2, **kw)
    serial = [run_loop(family, cfg, src, store=Store(tmp_path / "b"), **kw) for cfg in cfgs]
    for p, s, cfg in zip(parallel, serial, cfgs, strict=True):
        assert p.cfg == cfg and p.run.completed() == cfg.generations
        np.testing.assert_array_equal(p.metrics().value, s.metrics().value)
        np.testing.assert_array_equal(p.output(cfg.generations), s.output(cfg.generations))
    # a second call finds everything stored and starts no process
    again = run_loops(family, cfgs, src, store=Store(tmp_path / "a"), workers=2, **kw)
    assert [r.run.key for r in again] == [r.run.key for r in parallel]


def test_a_failing_loop_among_parallel_ones_keeps_the_others_and_says_where_to_resume(tmp_path):
    store = Store(tmp_path)
    family = FailingGaussianFamily(fail_lam=0.5, n_ini=40)
    cfgs = [LoopConfig(generations=3, n_ini=40, n_s=40, lam=lam) for lam in (1.0, 0.5)]
    with pytest.raises(LoopError, match="generation 2 .*NaN.*Generations 1..1"):
        run_loops(family, cfgs, GaussianSource.standard(2), store=store, workers=2, progress=False)
    completed = sorted(run.completed() for run in stored_runs(store, "loop"))
    assert completed == [1, 3], "the healthy loop must finish, the failing one keep its first generation"


def test_loop_workers(monkeypatch):
    monkeypatch.setenv("MAD_THREADS", "4")
    family = GaussianFamily()
    assert loop_workers(family, jobs=1) == 1
    assert loop_workers(family, jobs=8) == 4 and loop_workers(family, jobs=3) == 3
    # loops that do not divide evenly among the cores share them, one process each (up to four loops per core)
    assert loop_workers(family, jobs=6) == 6 and loop_workers(family, jobs=12) == 4
    assert loop_workers(family, jobs=16) == 4 and loop_workers(family, jobs=15) == 15
    assert loop_workers(family, jobs=17) == 4
    assert loop_workers(family, jobs=8, workers=3) == 3
    with pytest.raises(ValueError, match="workers"):
        loop_workers(family, jobs=2, workers=0)
    with pytest.raises(ValueError, match="store"):
        run_loops(family, [LoopConfig(generations=2, n_ini=10, n_s=10)], GaussianSource.standard(2), store=None)


def test_a_worker_keeps_the_thread_pools_that_load_after_it_starts_to_its_threads():
    """A family's fit loads scikit-learn's OpenMP and SciPy's OpenBLAS only in the worker, after it has started:
    they too run on the worker's share of the cores, so that loops side by side do not oversubscribe them."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from madutils.loops import _start_worker

    with ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(1, os.getpid())
    ) as p:
        pools = p.submit(thread_pools_after_a_fit).result(timeout=300)
    assert pools and all(n == 1 for n in pools.values()), pools


def test_workers_run_their_family_without_its_own_progress_bars():
    from madutils.loops import _quiet
    from madutils.models.ddpm import DDPMFamily

    family = DDPMFamily(progress=True, steps=3)
    quiet = _quiet(family)
    assert quiet.progress is False and quiet.steps == 3 and quiet.key() == family.key()
    gaussian_family = GaussianFamily()
    assert _quiet(gaussian_family) is gaussian_family  # no progress field: unchanged


def test_a_longer_or_shorter_loop_takes_over_the_stored_generations_of_the_same_loop(tmp_path, capsys):
    calls = []

    class Counting(GaussianFamily):
        def fit(self, data, seed):
            calls.append(seed)
            return super().fit(data, seed)

    src = GaussianSource.standard(3)
    store = Store(tmp_path / "a")

    def run(generations, store=store, seed=0):
        cfg = LoopConfig(generations=generations, n_ini=30, n_s=20, real="fresh", n_r=10, lam=0.8, seed=seed)
        return run_loop(Counting(), cfg, src, store=store, evaluate=trace_hook, progress=False)

    short = run(3)
    assert len(calls) == 3
    longer = run(5)
    assert len(calls) == 5, "the longer loop recomputed the generations that were stored"
    assert "generations 1..3 taken from the stored run" in capsys.readouterr().err
    # exactly what a loop computed in one go stores
    fresh = run(5, store=Store(tmp_path / "b"))
    np.testing.assert_array_equal(longer.metrics().value, fresh.metrics().value)
    for t in range(1, 6):
        np.testing.assert_array_equal(longer.output(t), fresh.output(t))
    np.testing.assert_array_equal(short.metrics().value, fresh.metrics()[lambda d: d.generation <= 3].value)
    # a shorter loop computes nothing; a loop with another seed takes nothing
    calls.clear()
    run(2)
    assert calls == []
    run(2, seed=1)
    assert len(calls) == 2
    assert len(list(stored_runs(store, "loop"))) == 4


def test_a_damaged_run_of_another_length_is_passed_over(tmp_path):
    src = GaussianSource.standard(3)
    store = Store(tmp_path)
    cfg = dict(n_ini=30, n_s=20, lam=1.0)
    run_loop(GaussianFamily(), LoopConfig(generations=3, **cfg), src, store=store, progress=False)
    (donor,) = stored_runs(store, "loop")
    (donor.path / "gen-002" / "manifest.json").write_text("not json")
    longer = run_loop(GaussianFamily(), LoopConfig(generations=4, **cfg), src, store=store, progress=False)
    assert longer.run.completed() == 4
    assert not any(p.samefile(donor.path / "gen-001" / "metrics.json") for p in (longer.run.path / "gen-001").iterdir())


def test_loops_that_share_a_first_generation_are_spread_apart():
    from madutils.loops import first_key, spread_shared_starts

    assert spread_shared_starts(["a", "a", "b", "b", "c", "c"]) == [0, 2, 4, 1, 3, 5]
    assert spread_shared_starts(["a", "b", "c"]) == [0, 1, 2]  # nothing shared: the given order
    assert spread_shared_starts(["a", "a", "a", "b"]) == [0, 3, 1, 2]
    assert spread_shared_starts([]) == []
    # the λ = 1 and λ = 0.5 loops of each seed: two workers start on the generation 1 of two different seeds
    cfgs = [LoopConfig(generations=3, n_ini=10, n_s=5, lam=lam, seed=s) for s in range(3) for lam in (1.0, 0.5)]
    order = spread_shared_starts([first_key(c) for c in cfgs])
    assert [(cfgs[i].seed, cfgs[i].lam) for i in order[:3]] == [(0, 1.0), (1, 1.0), (2, 1.0)]
    assert sorted(order) == list(range(6))


def test_an_experiment_says_what_it_will_compute_and_how_long_before_it_starts(tmp_path, capsys):
    from madutils import experiments
    from madutils.scales import GMMSizes, sizes
    from madutils.store import Store

    store = Store(tmp_path / "smoke")
    exp = experiments.gmm(sizes(GMMSizes, "smoke", iterations=4, seeds=2))
    assert experiments.announce(exp, store)[0] == 8
    assert "gmm-grid: 8 gmm generations not stored yet, about 1 s on this machine" in capsys.readouterr().out
    assert not list(tmp_path.rglob("config.json"))  # saying so creates no run folder
    exp.run(store, workers=1, progress=False)
    longer = experiments.gmm(sizes(GMMSizes, "smoke", iterations=6, seeds=2))
    assert experiments.announce(longer, store)[0] == 4  # a longer loop takes over the 4 stored generations
    capsys.readouterr()
    assert experiments.announce(exp, store) == (0, None) and capsys.readouterr().out == ""


def test_the_progress_line_counts_stored_generations_and_rescales_its_estimate(tmp_path):
    from madutils.progress import Planned, line, stored_generations

    run = tmp_path / "run"
    for t in (1, 2):
        (run / f"gen-{t:03d}").mkdir(parents=True)
    (run / ".gen-003.tmp-1-x").mkdir()  # a generation being written does not count
    assert stored_generations(run) == 2 and stored_generations(tmp_path / "none") == 0
    a, b = Planned(run, 4, 0, 100.0), Planned(tmp_path / "b", 3, 3, 100.0)
    now = {a.path: 2, b.path: 3}
    text = line([a, b], now, elapsed=200.0, current="2/8 02_fully_synthetic", cores=1)
    # 2 generations of 100 s came in 200 s: on pace, 2 left take about 200 s
    assert text == "[2/8 02_fully_synthetic] loops 1/2, generations 5/7 | 3 min elapsed, about 3 min left for the loops"
    slow = line([a, b], now, elapsed=800.0, current="", cores=1)  # four times slower than measured: 4 × 200 s
    assert slow.endswith("13 min elapsed, about 13 min left for the loops")
    assert "left" not in line([a, b], {a.path: 4, b.path: 3}, elapsed=10.0, current="", cores=1)


def test_a_family_without_a_collective_mode_is_refused_in_a_group(tmp_path):
    """The multi-process mode is passed to run_loop as (rank, world); a family that cannot train collectively is
    refused before anything is read or trained, naming the family."""
    source = GaussianSource.from_arrays(np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="'gaussian' cannot compute a loop collectively"):
        run_loop(GaussianFamily(), LoopConfig(2, 10, 10), source, store=Store(tmp_path), group=(0, 2))
    assert not any(tmp_path.iterdir())
