import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from loop_helpers import simulate

from madutils import claims, gallery, notebook, plots
from madutils.scales import GaussianMartingaleSizes, check_scale, sizes
from madutils.utils import config_key


def _c1_inputs(mislabel=1.0, trials=600, gens=200):
    results, n_ini = {}, {}
    for lam in (1.0, 0.8):
        for n_s in (10, 100):
            sim = simulate(d=2, generations=gens, trials=trials, n_ini=n_s, n_s=n_s, lam=lam, seed=1)
            results[(lam * mislabel if lam < 1 else lam, n_s)] = sim.arrays()
            n_ini[(lam * mislabel if lam < 1 else lam, n_s)] = n_s
    return results, n_ini


def test_c1_is_reproduced_on_a_true_simulation():
    results, n_ini = _c1_inputs()
    rows = claims.c1_gaussian_martingale(results, trace0=2.0, n_ini=n_ini)
    # 600 trials pin the mean step ratio to ±4 SE ≈ ±0.012, wider than the stated ±1 %: that row cannot decide
    assert [r.verdict for r in rows] == ["reproduced", "uninformative", "reproduced", "reproduced", "reproduced"]
    assert "underpowered" in rows[1].reason and rows[1].power < 0.5
    assert rows[-1].statement.startswith("the distance E[W2(G^t, P_r)] grows") and all(r.effect for r in rows)
    assert all(0 <= r.power <= 1 for r in rows)


def test_c1_fails_when_the_data_do_not_follow_the_claim():
    # a simulation run with λ = 0.8 but labelled λ = 0.9: the martingale check must catch it
    results, n_ini = _c1_inputs(mislabel=0.9 / 0.8)
    rows = claims.c1_gaussian_martingale(results, trace0=2.0, n_ini=n_ini)
    assert rows[0].verdict == "not_reproduced"


def test_claims_table_is_written_and_collected(project):
    row = claims.ClaimResult("C1", "nb01_x", "s", "stat", "1.0", "reproduced")
    notebook.record_claims([row], "01", "smoke")
    df = gallery.collect_claims("smoke")
    assert df.columns.tolist() == claims.COLUMNS
    assert df.claim.tolist() == ["C1"]
    with pytest.raises(ValueError, match="verdict"):
        claims.ClaimResult("C1", "f", "s", "stat", "1", "maybe")


def test_save_figure_and_gallery(project):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = plots.save_figure(
        fig, "fig04_fully_synthetic_fid_precision_recall", scale="smoke", notebook="02", caption="A test."
    )
    assert path.is_file() and path.stat().st_size > 1000
    notebook.record_claims([claims.ClaimResult("C2", "fig04", "s", "stat", "v", "not_run", "no GPU")], "02", "smoke")
    readme = gallery.build("smoke", commit="abc1234").read_text()
    assert (
        "Paper Fig. 4" in readme and "fig04_fully_synthetic_fid_precision_recall.png" in readme and "not_run" in readme
    )
    assert "abc1234" in readme
    # per-notebook commits: an old three-column row takes the run's commit, a four-column row its own
    timings = project / "timings.tsv"
    timings.write_text("01_gaussian_martingale\t60\tok\n02_fully_synthetic\t120\tok\tdef5678\n")
    readme = gallery.build("smoke", timings=timings, commit="abc1234").read_text()
    assert "| 01_gaussian_martingale | 1.0 min | ok | `abc1234` |" in readme
    assert "| 02_fully_synthetic | 2.0 min | ok | `def5678` |" in readme and "commits that the table" in readme
    assert pd.read_csv(project / "figures" / "smoke" / "claims.csv").verdict.tolist() == ["not_run"]
    meta = json.loads(
        (
            project / "runs" / "smoke" / "meta" / "figures" / "fig04_fully_synthetic_fid_precision_recall.json"
        ).read_text()
    )
    assert meta["caption"] == "A test."
    with pytest.raises(ValueError, match="figure name"):
        plots.save_figure(fig, "Figure 4", scale="smoke", notebook="02", caption="")
    with pytest.raises(ValueError, match="not registered for notebook 02.*fig16_fully_synthetic_all_lambdas"):
        plots.save_figure(fig, "fig99_not_a_figure", scale="smoke", notebook="02", caption="")
    with pytest.raises(ValueError, match=r"notebook 02 records claims \['C9'\]"):
        notebook.record_claims([claims.ClaimResult("C9", "f", "s", "stat", "v", "not_run")], "02", "smoke")
    assert claims.ClaimResult("C10", "fig13", "s", "stat", "v", "not_run").notebook == "05"
    with pytest.raises(ValueError, match="no notebook records claim 'C13'"):
        claims.ClaimResult("C13", "f", "s", "stat", "v", "not_run")
    # a notebook that failed in its last run shows no figures or claims, and --forget removes what it recorded
    timings.write_text("02_fully_synthetic\t120\tFAILED\tdef5678\n")
    readme = gallery.build("smoke", timings=timings, commit="abc1234").read_text()
    assert "failed in its last run" in readme and "fig04_fully_synthetic_fid_precision_recall.png" not in readme
    assert pd.read_csv(project / "figures" / "smoke" / "claims.csv").empty
    removed = gallery.forget("smoke", "02")
    assert path in removed and not path.exists()
    assert not (project / "runs" / "smoke" / "meta" / "claims" / "02.csv").exists()
    plt.close(fig)


def test_save_figure_fails_loudly_when_it_cannot_write(project):
    (project / "figures").write_text("not a folder")
    fig, _ = plt.subplots()
    with pytest.raises((OSError, FileExistsError, NotADirectoryError)):
        plots.save_figure(fig, "nb01_trace_collapse", scale="smoke", notebook="01", caption="")
    plt.close(fig)


def test_unknown_scale():
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        check_scale("huge")
    with pytest.raises(ValueError, match="unknown scale"):
        sizes(GaussianMartingaleSizes, "huge")
    trials = [sizes(GaussianMartingaleSizes, s).trials for s in ("smoke", "small", "paper")]
    assert trials[0] < trials[1] <= trials[2]


def test_lambda_colours_are_distinct_and_stable():
    colours = [plots.lam_color(lam) for lam in (1.0, 0.9, 0.8, 0.7, 0.5)]
    assert len({tuple(np.round(c, 3)) for c in colours}) == 5
    # λ = 1 is the darkest colour, and the colour darkens monotonically towards it
    lum = [0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] for c in colours]
    assert lum == sorted(lum)
    assert plots.lam_color(0.3) == plots.lam_color(0.4)  # λ ≤ 0.4 share the last colour


def test_image_grid_tiles():
    imgs = np.arange(6 * 4).reshape(6, 1, 2, 2)
    grid = plots.image_grid(imgs, nrow=2)
    assert grid.shape == (4, 6)
    np.testing.assert_array_equal(grid[:2, :2], imgs[0, 0])
    np.testing.assert_array_equal(grid[2:, 4:], imgs[5, 0])


def _table(curves, seeds=3, noise=0.01, n_s=1000):
    """A tidy table like an experiment's from {(lam, real, n_ini): {metric: [values per generation]}}: every curve
    once per seed, with independent noise of ``noise`` × the curve's scale added per seed and generation."""
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for (lam, real, n_ini), metrics in curves.items():
            for metric, values in metrics.items():
                scale = noise * max(abs(v) for v in values) if values else 0
                for t, v in enumerate(values, start=1):
                    rows.append(
                        dict(
                            lam=lam,
                            real=real,
                            n_ini=n_ini,
                            n_s=n_s,
                            n_eval=0,
                            seed=seed,
                            metric=metric,
                            generation=t,
                            value=v + scale * rng.standard_normal(),
                            run=f"{lam}-{real}-{n_ini}-{seed}",
                        )
                    )
    return pd.DataFrame(rows)


MAD = {  # the paper's picture: FID up, precision down at λ = 1, recall down faster with bias
    (1.0, "none", 100): dict(
        fid=[10, 20, 31, 40, 52], precision=[0.8, 0.7, 0.62, 0.5, 0.41], recall=[0.7, 0.6, 0.5, 0.42, 0.3]
    ),
    (0.5, "none", 100): dict(
        fid=[12, 25, 40, 52, 66], precision=[0.85, 0.86, 0.88, 0.9, 0.91], recall=[0.6, 0.4, 0.25, 0.15, 0.05]
    ),
    (1.0, "fixed", 100): dict(
        fid=[10, 13, 17, 20, 24], precision=[0.8, 0.78, 0.75, 0.72, 0.7], recall=[0.7, 0.66, 0.62, 0.6, 0.55]
    ),
    (0.5, "fixed", 100): dict(
        fid=[12, 16, 21, 25, 30], precision=[0.85, 0.86, 0.87, 0.88, 0.89], recall=[0.6, 0.5, 0.45, 0.4, 0.35]
    ),
}


def _flat(curves):
    return {k: {m: [v[0]] * len(v) for m, v in ms.items()} for k, ms in curves.items()}


def test_image_claims_on_tables_that_show_them_and_that_do_not():
    df = _table(MAD)
    rows = claims.c2_fully_synthetic_unbiased(df) + claims.c3_fully_synthetic_biased(df) + claims.c4_augmentation(df)
    run = [r for r in rows if r.verdict != "not_run"]
    assert [r.verdict for r in run] == ["reproduced"] * 15
    assert all(r.seeds == 3 and r.gate.endswith(": pass") and r.effect.startswith("δ = ") for r in run)
    # the paper's λ = 0.8 (Fig. 7, 27; the best mitigation of Fig. 9) is not in the table: rows that say how to run it
    skipped = [r for r in rows if r.verdict == "not_run"]
    assert [r.claim for r in skipped] == ["C3", "C4"] and "lams = [1.0, 0.8, 0.5]" in skipped[0].reason
    # flat curves measured precisely: every trend is excluded, the data contradict the claims (the flat curves still
    # have λ = 0.5 precision above λ = 1's, as their starts differ)
    flat = _table(_flat(MAD), noise=0.002, n_s=10**6)
    assert all(r.verdict == "not_reproduced" for r in claims.c2_fully_synthetic_unbiased(flat))
    verdicts = {r.statement: r.verdict for r in claims.c4_augmentation(flat) if r.verdict != "not_run"}
    assert verdicts.pop("augmentation loop, λ = 0.5 (DDPM on MNIST): precision can increase (above λ = 1)") == (
        "reproduced"
    )
    assert set(verdicts.values()) == {"not_reproduced"}
    # flat curves measured noisily: the intervals hold both 0 and the stated effect, and the rows say so
    noisy = claims.c2_fully_synthetic_unbiased(_table(_flat(MAD), noise=0.05))[1:]  # precision and recall
    assert {r.verdict for r in noisy} == {"uninformative"}
    assert all(r.reason.startswith("underpowered") and 0 <= r.power < 0.8 for r in noisy)


def test_the_three_verdicts_and_their_power():
    from madutils.claims.core import Effect, Interval, decide, power

    d = Effect(0.1, "test")
    assert decide(Interval(0.2, 0.05, 0.35, 3), d)[0] == "reproduced"
    assert decide(Interval(0.0, -0.05, 0.05, 3), d)[0] == "not_reproduced"  # excludes δ: smaller than stated
    assert "contradict" in decide(Interval(-0.2, -0.3, -0.1, 3), d)[1]
    verdict, reason = decide(Interval(0.05, -0.1, 0.2, 3), d)
    assert verdict == "uninformative" and reason.startswith("underpowered") and "power" in reason
    assert decide(Interval(-0.2, -0.35, -0.05, 3), d, sign=-1)[0] == "reproduced"
    # "holds": no change of δ or more against the claim
    assert decide(Interval(-0.02, -0.05, 0.01, 3), d, kind="holds")[0] == "reproduced"
    assert decide(Interval(-0.3, -0.4, -0.2, 3), d, kind="holds")[0] == "not_reproduced"
    # "equal": within ±δ
    assert decide(Interval(0.0, -0.05, 0.05, 3), d, kind="equal")[0] == "reproduced"
    assert decide(Interval(0.3, 0.2, 0.4, 3), d, kind="equal")[0] == "not_reproduced"
    assert decide(Interval(0.0, -0.2, 0.2, 3), d, kind="equal")[0] == "uninformative"
    # power: a narrow interval finds δ almost surely, a wide one rarely
    assert power(Interval(0.0, -0.01, 0.01, 3), 0.1) > 0.99 > 0.2 > power(Interval(0.0, -0.5, 0.5, 3), 0.1)
    with pytest.raises(ValueError, match="a stated effect must be a positive number"):
        Effect(0.0, "none")


def test_one_seed_is_uninformative_and_an_interval_comes_from_the_seeds():
    one = claims.c2_fully_synthetic_unbiased(_table(MAD, seeds=1))
    assert {r.verdict for r in one} == {"uninformative"} and "2 seeds" in one[0].reason
    # a curve that rises in one seed and falls in another: no trend, however straight each seed's line is
    rising = _table({(1.0, "none", 100): dict(fid=[10, 20, 30, 40, 50], precision=[0.8] * 5, recall=[0.6] * 5)}, 1)
    falling = _table({(1.0, "none", 100): dict(fid=[50, 40, 30, 20, 10], precision=[0.8] * 5, recall=[0.6] * 5)}, 1)
    both = pd.concat([rising, falling.assign(seed=1)])
    s = claims.trend(both, "fid", lam=1.0, real="none")
    assert s.seeds == 2 and s.lo < 0 < s.hi and abs(s.estimate) < 0.5  # slopes ±10 per generation


def test_measurement_noise_floors_the_interval():
    # two seeds that agree exactly on a small drop of precision: without the binomial floor (n = 50 samples per
    # generation, standard error about 0.06) the interval would be a point
    curves = {
        (1.0, "none", 100): dict(fid=[10, 11, 12, 13, 14], precision=[0.8, 0.79, 0.78, 0.77, 0.76], recall=[0.6] * 5)
    }
    df = _table(curves, seeds=2, noise=0.0, n_s=50)
    s = claims.trend(df, "precision", lam=1.0, real="none")
    assert s.hi > 0 > s.lo
    assert claims.trend(_table(curves, seeds=2, noise=0.0, n_s=10**7), "precision", lam=1.0, real="none").hi < 0


def test_validity_gate():
    weak = {k: dict(v, recall=[0.1] + v["recall"][1:]) for k, v in MAD.items()}
    rows = claims.c2_fully_synthetic_unbiased(_table(weak, noise=0.0))
    assert {r.verdict for r in rows} == {"uninformative"}
    assert "recall 0.10 (≥ 0.2): fail" in rows[0].gate and "validity gate" in rows[0].reason
    labels = {k: dict(v, label_accuracy=[0.3, 0.3, 0.3, 0.3, 0.3]) for k, v in MAD.items()}
    rows = claims.c2_fully_synthetic_unbiased(_table(labels, noise=0.0))
    assert {r.verdict for r in rows} == {"uninformative"} and "label accuracy 0.30 (≥ 0.5)" in rows[0].gate
    assert claims.gate(_table({(1.0, "none", 1): dict(tail_mass=[0.1] * 3)}), dict(lam=1.0)).text == ""


def test_fresh_image_claim():
    fresh = {
        (1.0, "fresh", 100): dict(fid=[90, 40, 31, 30, 29, 31], recall=[0.5] * 6),
        (1.0, "fresh", 5000): dict(fid=[20, 28, 30, 31, 30, 30], recall=[0.5] * 6),
    }
    rows = claims.c5_fresh_images(_table(fresh))
    assert [r.verdict for r in rows] == ["reproduced"] * 3 and rows[0].seeds == 3  # the gap closes, two plateaus
    apart = {
        (1.0, "fresh", 100): dict(fid=[90, 80, 81, 79, 80, 81], recall=[0.5] * 6),
        (1.0, "fresh", 5000): dict(fid=[20, 28, 30, 31, 30, 30], recall=[0.5] * 6),
    }
    assert claims.c5_fresh_images(_table(apart))[0].verdict == "not_reproduced"
    still_rising = {
        (1.0, "fresh", 100): dict(fid=[90, 60, 70, 80, 90, 100], recall=[0.5] * 6),
        (1.0, "fresh", 5000): dict(fid=[20, 50, 70, 80, 90, 100], recall=[0.5] * 6),
    }
    # the gap closes, but neither loop reaches a limit
    assert [r.verdict for r in claims.c5_fresh_images(_table(still_rising))] == ["reproduced"] + ["not_reproduced"] * 2
    together = {k: dict(fid=[30] * 6, recall=[0.5] * 6) for k in fresh}  # nothing to forget
    assert {r.verdict for r in claims.c5_fresh_images(_table(together))} == {"uninformative"}
    assert claims.c5_fresh_images(_table({(1.0, "fresh", 100): dict(fid=[1, 2, 3])}))[0].verdict == "not_run"


def test_gmm_and_flow_claims():
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1, 2):
        modes = np.maximum(3, 25 - np.arange(50) // 2)
        for t, m in enumerate(modes, start=1):
            for metric, v in (
                ("modes_covered", m),
                ("recall", m / 25 + rng.normal(0, 0.01)),
                ("total_variance", 16 + rng.normal(0, 1)),
                ("modal_variance", m * 1e-4),
            ):
                rows.append(dict(run=f"s{seed}", seed=seed, generation=t, metric=metric, value=float(v)))
    gmm = pd.DataFrame(rows)
    assert [r.verdict for r in claims.c9_gmm_modes(gmm)] == ["reproduced", "reproduced"]
    swapped = gmm.assign(metric=gmm.metric.replace({"recall": "total_variance", "total_variance": "recall"}))
    assert claims.c9_gmm_modes(swapped)[1].verdict == "not_reproduced"
    assert claims.appendix.log_spaced(range(1, 1001), 30)[-1] == 1000
    assert len(claims.appendix.log_spaced(range(1, 1001), 30)) <= 30

    tails = {
        (1.0, "none", 10): dict(tail_mass=[0.045, 0.04, 0.036, 0.03, 0.027, 0.022]),
        (0.8, "none", 10): dict(tail_mass=[0.04, 0.02, 0.01, 0.006, 0.003, 0.001]),
    }
    flow = _table(tails, noise=0.02, n_s=5000)
    assert [r.verdict for r in claims.c11_flow_tails(flow)] == ["reproduced"] * 3
    flat = _table(_flat(tails), noise=0.001, n_s=10**6)
    assert claims.c11_flow_tails(flat)[0].verdict == "not_reproduced"
    # the loss is a level (the share of the start lost by the late generations): with 5,000 samples a generation a
    # flat curve is told from half of the tails lost; with 500 the binomial noise of a tail mass of 0.045 leaves
    # 3 seeds unable to tell them apart
    assert claims.c11_flow_tails(_table(_flat(tails), noise=0.01, n_s=5000))[0].verdict == "not_reproduced"
    assert claims.c11_flow_tails(_table(_flat(tails), noise=0.01, n_s=500))[0].verdict == "uninformative"
    # a run that has lost every tail sample by generation 3 and stays there has lost all of it (a slope over the
    # generations would call that less than the stated loss)
    floor = {(0.8, "none", 10): dict(tail_mass=[0.025, 0.008, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])}
    gone = claims.c11_flow_tails(_table(floor, noise=0.0, n_s=5000))[0]
    assert gone.verdict == "reproduced" and "share lost +1 " in gone.value, gone.value
    # λ = 1 gaining tail mass does not make λ = 0.8 "faster" unless it loses more of its own start
    gain = dict(tails)
    gain[(0.8, "none", 10)] = dict(tail_mass=[0.02, 0.021, 0.022, 0.024, 0.025, 0.026])
    gain[(1.0, "none", 10)] = dict(tail_mass=[0.02, 0.022, 0.024, 0.026, 0.028, 0.03])
    assert claims.c11_flow_tails(_table(gain, noise=0.01, n_s=5000))[2].verdict == "not_reproduced"


def test_stylegan_claim_c12():
    hf_up = [0.01, 0.012, 0.015, 0.019, 0.024]
    sg = {
        (1.0, "none", 100): dict(MAD[(1.0, "none", 100)], hf_share=hf_up),
        (0.7, "none", 100): dict(MAD[(0.5, "none", 100)]),
        (1.0, "fixed", 100): dict(MAD[(1.0, "fixed", 100)]),
    }
    rows = claims.c12_stylegan(_table(sg), model="StyleGAN2")
    assert [r.verdict for r in rows] == ["reproduced"] * 8  # the artifact row too: one rule at every scale
    assert all(r.claim == "C12" and r.notebook == "06" for r in rows)
    collapsed = {k: dict(v, recall=[0.003] * 5) for k, v in sg.items()}
    assert {r.verdict for r in claims.c12_stylegan(_table(collapsed), model="StyleGAN2")} == {"uninformative"}
    # the augmentation loop no slower than the fully synthetic one, and biased recall above unbiased: not shown
    worse = dict(sg)
    worse[(1.0, "fixed", 100)] = dict(fid=[10, 25, 40, 55, 70], precision=[0.8] * 5, recall=[0.7] * 5)
    worse[(0.7, "none", 100)] = dict(fid=[10, 20, 30, 40, 50], precision=[0.8] * 5, recall=[0.7, 0.69, 0.68, 0.67, 0.6])
    verdicts = {r.statement: r.verdict for r in claims.c12_stylegan(_table(worse), model="StyleGAN2")}
    assert [v for s, v in verdicts.items() if "slows the degradation" in s] == ["not_reproduced"]
    assert [v for s, v in verdicts.items() if "decays faster" in s] == ["not_reproduced"]


def test_typed_parameters_merge_over_the_sizes_and_change_the_run_key():
    from madutils import experiments
    from madutils.loops import run_config
    from madutils.scales import DDPMSizes, FreshGaussianSizes, GMMSizes

    base = sizes(DDPMSizes, "smoke")
    sz = sizes(DDPMSizes, "smoke", lams=[1, 0.7], family={"steps": 3}, generations=None)
    assert sz.lams == (1.0, 0.7) and sz.family.steps == 3 and sz.generations == base.generations
    assert sizes(FreshGaussianSizes, "smoke", start={"n_r": 50}).start.n_r == 50
    with pytest.raises(ValueError, match="DDPMSizes has no size 'lam'; its sizes are family, n, generations"):
        sizes(DDPMSizes, "smoke", lam=1.0)
    with pytest.raises(ValueError, match="generations must be an integer"):
        sizes(DDPMSizes, "smoke", generations=2.5)
    a, b = experiments.gmm(sizes(GMMSizes, "smoke")), experiments.gmm(sizes(GMMSizes, "smoke", iterations=5))
    keys = [config_key(run_config(e.family, e.loops["seed 0"], e.source, e.hook, 1)) for e in (a, b)]
    assert keys[0] != keys[1] and b.loops["seed 0"].generations == 5


def test_the_fresh_ddpm_loops_scale_their_effort_and_measure_enough_samples():
    from madutils import experiments
    from madutils.scales import DDPMSizes

    sz = sizes(DDPMSizes, "small")
    fresh, loops = experiments.ddpm_fresh(sz, 0, "cpu"), experiments.ddpm(sz, 0, "cpu")
    assert fresh.family.effort_images == sz.n and loops.family.effort_images is None
    assert fresh.family.steps_for(min(sz.fresh_inis)) < sz.family.steps == fresh.family.steps_for(sz.n)
    assert all(c.real == "fresh" and c.n_out >= 1000 for c in fresh.loops.values())
    assert not any(c.real == "fresh" for c in loops.loops.values())
    assert len(fresh.loops) == len(sz.fresh_inis) * sz.seeds


def test_changed_parameters_are_recorded_for_the_gallery(project, monkeypatch):
    from madutils.notebook import setup_notebook

    monkeypatch.setenv("MAD_PUBLISH", "1")
    ctx = setup_notebook("02", "smoke", 0, "cpu")
    assert ctx.record_parameters({"lams": (1.0, 0.7), "n": None, "family": {"steps": 3}}) == {
        "lams": [1.0, 0.7],
        "family.steps": 3,
    }
    fig, _ = plt.subplots()
    ctx.save_figure(fig, "fig16_fully_synthetic_all_lambdas", caption="A test.")
    plt.close(fig)
    readme = gallery.build("smoke").read_text()
    assert "Run with parameters changed from the `smoke` sizes: `lams = [1.0, 0.7]`, `family.steps = 3`" in readme
    monkeypatch.delenv("MAD_PUBLISH")
    hand = setup_notebook("02", "smoke", 0, "cpu")
    assert hand.output_folder == project / "runs" / "smoke" / "by-hand"


def test_every_loop_runs_with_the_seeds_of_its_sizes():
    from madutils import experiments
    from madutils.scales import FlowSizes, GMMSizes

    f = sizes(FlowSizes, "smoke", seeds=3)
    exp = experiments.flow(f, seed=5)
    assert [c.seed for c in exp.loops.values()] == [5, 5, 6, 6, 7, 7]
    assert list(exp.loops)[:3] == ["λ=1", "λ=0.8", "λ=1 · seed 6"]
    picked = exp.where(lam=0.8)  # selected by structure, every seed of it
    assert [c.seed for c in picked.loops.values()] == [5, 6, 7] and {c.lam for c in picked.loops.values()} == {0.8}
    with pytest.raises(ValueError, match=r"no loop of flow-rosenbrock has kind=None, \{'lam': 0.5\}"):
        exp.where(lam=0.5)
    with pytest.raises(ValueError, match="unknown loop kind 'augmented'"):
        exp.where(kind="augmented")
    g = experiments.gmm(sizes(GMMSizes, "smoke"), seed=2)
    assert sorted(c.seed for c in g.loops.values()) == [2, 3]
    with pytest.raises(ValueError, match="seeds must be"):
        experiments.flow(sizes(FlowSizes, "smoke", seeds=0))


def test_the_fresh_grid_figures_mark_censored_thresholds_as_bounds():
    """Fig. 11 and 12 (notebook 04's figure code, in madutils.plots): the admissible region over (n_r, n_s) and
    the threshold curves, whose censored points are hollow markers with their own legend entries, never values."""
    import matplotlib.pyplot as plt

    from madutils.plots import admissible_region, threshold_curves

    n_rs, ratios = (10, 100, 1000), (0.5, 4.0, 16.0)
    ess = pd.DataFrame(
        [
            dict(lam=lam, n_r=r, n_s=int(q * r), ratio=2.0 ** (1 - q / 4))
            for lam in (0.9, 1.0)
            for r in n_rs
            for q in ratios
        ]
    )
    thresholds = pd.DataFrame(
        [dict(lam=0.9, n_r=r, threshold=4.0 * r, low=3.0 * r, high=5.0 * r, censored="") for r in n_rs]
        + [dict(lam=1.0, n_r=r, threshold=16.0 * r, low=np.nan, high=np.nan, censored="above") for r in n_rs]
    )
    fig = admissible_region(ess, thresholds, 0.9, d=5)
    assert fig.axes[0].get_title() == r"$n_e / n_r$, $\lambda = 0.9$, $d = 5$" and len(fig.axes) == 2  # + colour bar
    plt.close(fig)
    fig = threshold_curves(thresholds, (0.9, 1.0), top=32000)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == [r"$\lambda = 0.9$", r"$\lambda = 1$"]  # λ = 1, censored everywhere, still has its colour
    assert sum("not a value" in label for label in labels) == 2
    plt.close(fig)
