"""The fresh data loop: its limit (eq. 3), the effective sample size (eq. 4), thresholds, claims C5–C8."""

import numpy as np
import pandas as pd
import pytest
from loop_helpers import simulate

from madutils import claims, fresh


@pytest.fixture(scope="module")
def cal10():
    return fresh.calibrate(10, points=30, trials=800, n_max=10**5)


def test_calibration_is_decreasing_and_matches_samples_at_d100():
    """E[W2] of real-only fits for n = 200, 500, 1,000, 5,000 (d = 100): exact Monte Carlo against drawing data."""
    ns = [200, 500, 1000, 5000]
    for n in ns:
        exact = simulate(d=100, generations=1, trials=400, n_ini=n, n_s=0, seed=1).w2[:, 0]
        samples = simulate(d=100, generations=1, trials=120, n_ini=n, n_s=0, seed=2, method="samples").w2[:, 0]
        se = np.hypot(exact.std() / np.sqrt(exact.size), samples.std() / np.sqrt(samples.size))
        assert abs(exact.mean() - samples.mean()) < 4 * se, (n, exact.mean(), samples.mean())
    cal = fresh.calibrate(20, points=12, trials=200, n_max=10**4)
    assert np.all(np.diff(cal.w2) <= 0)


def test_no_synthetic_data_gives_ratio_one(cal10):
    e = fresh.effective_sample_size(50, 0, 0.8, 10, calibration=cal10, trials=60)
    assert e.converged
    assert e.ratio_low <= 1.0 <= e.ratio_high
    assert e.ratio == pytest.approx(1.0, abs=0.05)


def test_unbiased_synthetic_data_is_admissible_and_biased_data_is_not(cal10):
    good = fresh.effective_sample_size(50, 200, 1.0, 10, calibration=cal10, trials=60)
    bad = fresh.effective_sample_size(50, 2000, 0.7, 10, calibration=cal10, trials=60)
    assert good.ratio_low > 1.0
    assert bad.ratio_high < 0.5


def test_limit_does_not_depend_on_n_ini():
    d, n_r, n_s, gens = 10, 20, 80, 60
    runs = {
        n: simulate(d=d, generations=gens, trials=300, n_ini=n, n_s=n_s, real="fresh", n_r=n_r, lam=0.9, seed=n).w2
        for n in (12, 10000)
    }
    rows = claims.c5_limit_independent_of_start({(0.9, n): w for n, w in runs.items()})
    assert rows[0].verdict == "reproduced", rows[0].value


def test_c5_fails_when_the_loop_keeps_its_start():
    # a fully synthetic loop never forgets n_ini: its "limits" differ
    runs = {
        (1.0, n): simulate(d=5, generations=20, trials=300, n_ini=n, n_s=50, lam=1.0, seed=n).w2 for n in (10, 5000)
    }
    assert claims.c5_limit_independent_of_start(runs)[0].verdict == "not_reproduced"


def test_too_few_generations_give_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="needs about"):
        lim = fresh.fresh_limit(10, 1000, 1.0, 5, generations=30)
    assert np.isnan(lim.wd) and not lim.converged


def test_out_of_range_limit_gives_nan_with_a_warning(cal10):
    with pytest.warns(RuntimeWarning, match="outside the calibrated range"):
        assert np.isnan(cal10.n_for(cal10.w2[0] * 2))
    with pytest.warns(RuntimeWarning, match="outside the calibrated range"):
        assert np.isnan(cal10.n_for(cal10.w2[-1] / 2))
    inside = cal10.n_for(float(cal10.w2[5]))
    assert inside == pytest.approx(cal10.n[5], rel=1e-6)


def test_calibration_dimension_must_match(cal10):
    with pytest.raises(ValueError, match="d = 10"):
        fresh.effective_sample_size(10, 10, 1.0, 20, calibration=cal10)


def test_fresh_loop_without_real_data_is_rejected():
    with pytest.raises(ValueError, match="n_r = 0"):
        simulate(d=2, generations=3, trials=2, n_ini=5, n_s=5, real="fresh", n_r=0)


def _fake_ess(thresholds):
    """A grid whose n_e/n_r crosses 1 at the given n_s* (per (lam, n_r)), with a tight band."""
    rows = []
    for (lam, n_r), thr in thresholds.items():
        for n_s in [0] + [n_r * r for r in (0.25, 0.5, 1, 2, 4, 8, 16, 32)]:
            ratio = 1.0 if n_s == 0 else float(np.exp(-np.log(n_s / thr))) ** 0.5 if thr else 2.0
            rows.append(dict(lam=lam, n_r=n_r, n_s=n_s, ratio=ratio, ratio_low=ratio * 0.97, ratio_high=ratio * 1.03))
    return pd.DataFrame(rows)


def test_admissible_threshold_interpolates_the_crossing():
    df = _fake_ess({(0.9, 100): 300.0})
    thr = fresh.admissible_thresholds(df)
    assert thr.threshold.item() == pytest.approx(300.0, rel=1e-6)
    assert thr.low.item() < 300 < thr.high.item()
    assert thr.censored.item() == ""


def test_c6_on_a_grid_that_shows_the_claims_and_one_that_does_not():
    shown = {
        (0.7, 10): 50.0,
        (0.7, 100): 60.0,
        (0.7, 1000): 80.0,
        (0.9, 10): 170.0,
        (0.9, 100): 200.0,
        (0.9, 1000): 240.0,
        (1.0, 10): 0,
        (1.0, 100): 0,
        (1.0, 1000): 0,
    }
    df = _fake_ess(shown)
    verdicts = [r.verdict for r in claims.c6_phase_transition(df, fresh.admissible_thresholds(df))]
    assert verdicts == ["reproduced"] * 5
    # thresholds proportional to n_r, and ordered the wrong way in λ
    wrong = {
        (0.7, 10): 80.0,
        (0.7, 100): 800.0,
        (0.7, 1000): 8000.0,
        (0.9, 10): 30.0,
        (0.9, 100): 300.0,
        (0.9, 1000): 3000.0,
    }
    df = _fake_ess(wrong)
    rows = claims.c6_phase_transition(df, fresh.admissible_thresholds(df))
    assert rows[2].verdict == "not_reproduced" and rows[3].verdict == "not_reproduced"
    # a threshold that doubles across the upper half of the grid is not constant, whatever its slope
    growing = dict(shown) | {(0.9, 1000): 340.0}
    df = _fake_ess(growing)
    rows = claims.c6_phase_transition(df, fresh.admissible_thresholds(df))
    assert rows[2].verdict == "not_reproduced" and "×2.00" in rows[2].value
    # one that grows by 3/4 with ±3 % bands on n_e/n_r: the interval holds both answers
    df = _fake_ess(dict(shown) | {(0.9, 1000): 300.0})
    rows = claims.c6_phase_transition(df, fresh.admissible_thresholds(df))
    assert rows[2].verdict == "uninformative" and "underpowered" in rows[2].reason
    assert all(0 <= r.power <= 1 for r in rows)


def test_c7_and_c8_criteria():
    ess = pd.DataFrame(dict(memory=[1, 2, 4, 8], ratio=[2.0, 2.6, 3.0, 3.2]))
    ess["ratio_low"], ess["ratio_high"] = ess.ratio - 0.04, ess.ratio + 0.04
    assert [r.verdict for r in claims.c7_memory(ess)] == ["reproduced", "reproduced"]
    flat = ess.assign(ratio=2.0, ratio_low=1.996, ratio_high=2.004)
    assert [r.verdict for r in claims.c7_memory(flat)] == ["not_reproduced", "not_reproduced"]
    noisy = ess.assign(ratio=2.0, ratio_low=1.96, ratio_high=2.04)  # bands too wide to rule out a gain of 0.1
    assert [r.verdict for r in claims.c7_memory(noisy)] == ["uninformative", "uninformative"]

    ns = np.array([100, 1000, 10000, 100000])
    by_p = pd.concat(
        [
            pd.DataFrame(dict(n=ns, p=p, wd=c / np.sqrt(ns), wd_se=1e-3 * c / np.sqrt(ns)))
            for p, c in ((1.0, 1.0), (0.5, 1.3))
        ]
    )
    by_lam = pd.concat(
        [
            pd.DataFrame(dict(n=ns, lam=1.0, wd=1 / np.sqrt(ns), wd_se=1e-3 / np.sqrt(ns))),
            pd.DataFrame(dict(n=ns, lam=0.9, wd=0.05 + 1 / np.sqrt(ns), wd_se=1e-4)),
        ]
    )
    # synthetic data raises WD by a constant factor: the same rate n^(-1/2), so "falls more slowly" is not shown
    assert [r.verdict for r in claims.c8_dataset_size(by_p, by_lam)] == [
        "reproduced",
        "not_reproduced",
        "reproduced",
        "reproduced",
    ]
    slower = by_p.assign(wd=lambda d: np.where(d.p < 1, 1.3 * d.n**-0.4, d.wd))
    slower["wd_se"] = 1e-3 * slower.wd
    assert [r.verdict for r in claims.c8_dataset_size(slower, by_lam)][:3] == ["reproduced"] * 3
    rows = claims.c8_dataset_size(by_p, by_lam)
    assert all(np.isfinite(r.power) and r.effect.startswith("δ") for r in rows[:3]), [r.power for r in rows]
    # the closed form's excess at p = 1/2 is 1/√0.75 − 1 = 15.5 %: a WD 2 % higher is smaller than the stated effect
    closer = by_p.assign(wd=lambda d: np.where(d.p < 1, 1.02 / np.sqrt(d.n), d.wd))
    assert claims.c8_dataset_size(closer, by_lam)[2].verdict == "not_reproduced"
    no_plateau = by_lam.assign(wd=lambda d: np.where(d.lam == 0.9, 1.1 / np.sqrt(d.n), d.wd))
    assert claims.c8_dataset_size(by_p, no_plateau)[3].verdict == "not_reproduced"


def test_every_experiment_shape_gives_the_tidy_table_of_runs(tmp_path):
    """Runs, the Gaussian Monte Carlo and the fresh-loop analysis all answer .table() with one row per loop (or
    part) × metric and the columns loop, metric, value and the configuration; the Monte Carlo value is the mean
    over trials of what the store gives back."""
    import numpy as np

    from madutils import experiments
    from madutils.scales import FreshGaussianSizes, GaussianMartingaleSizes, sizes
    from madutils.store import Store

    store = Store(tmp_path)
    common = {"loop", "metric", "value", "lam", "n_s"}
    runs = experiments.gmm(sizes(experiments.GMMSizes, "smoke", seeds=1)).run(store, progress=False)
    assert common <= set(runs.table().columns)

    sz = sizes(GaussianMartingaleSizes, "smoke")
    mc, _, _ = experiments.gaussian_martingale(sz)
    results = mc.run(store)
    table = results.table(metrics=("trace",))
    assert common | {"generation", "sem", "q05", "q95", "n_ini", "seed"} <= set(table.columns)
    assert len(table) == len(mc.loops) * sz.generations and set(table.metric) == {"trace"}
    row = table[(table.lam == 1.0) & (table.n_s == sz.n_ss[0]) & (table.generation == 2)]
    assert np.isclose(row.value.item(), np.mean(results[(1.0, sz.n_ss[0])]["trace"][:, 1]), rtol=1e-12)
    assert len(results.where(lam=1.0)) == len(sz.n_ss)

    analysis = experiments.fresh_analysis(sizes(FreshGaussianSizes, "smoke")).run(store)
    table = analysis.table()
    assert {"loop", "metric", "value", "lam", "n_r", "n_s"} <= set(table.columns)
    assert set(table.loop) == {"grid", "threshold", "memory", "dataset p", "dataset λ"}
    ratio = table[(table.loop == "grid") & (table.metric == "ratio")]
    assert len(ratio) == len(analysis.ess) and np.allclose(ratio.value, analysis.ess.ratio)
