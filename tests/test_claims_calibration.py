"""The trend and ordering criteria on null simulations (DESIGN.md: every criterion is calibrated): fed driftless
random walks with the generations and seeds of a scale, no row says ``reproduced`` for more than 5 % of them; fed a
drift in the claimed direction, the rows find it."""

import pytest

from madutils.claims import calibration
from madutils.scales import DDPMSizes, sizes

MAX_FALSE_POSITIVES = 0.05


def _check_null(rows, generations, seeds, sims):
    null = calibration.rates(rows, generations=generations, seeds=seeds, sims=sims)
    worst = null.sort_values("reproduced").iloc[-1]
    assert worst.reproduced <= MAX_FALSE_POSITIVES, f"{worst.statement}: {worst.reproduced:.3f} of null walks"
    assert len(null) > 0
    return null


def test_image_criteria_at_the_small_ddpm_sizes():
    d = sizes(DDPMSizes, "small")
    null = _check_null(calibration.image_rows, d.generations, d.seeds, sims=200)
    assert set(null.claim) == {"C2", "C3", "C4", "C5", "C12"}
    # a drift of 3 walk steps per generation in the claimed direction is found by the trend rows
    assert d.seeds >= 3  # with 2 seeds (t with 1 degree of freedom) the median power here was about 0.2
    power = calibration.rates(
        calibration.image_rows,
        generations=d.generations,
        seeds=d.seeds,
        sims=40,
        drift=calibration.paper_direction(3.0),
        seed=1,
    )
    trends = power[power.statement.str.contains("rises|falls over")]
    assert (trends.reproduced > 0.6).all(), trends


@pytest.mark.slow
def test_every_criterion_at_every_experiment_size():
    seen = set()
    for scale in ("smoke", "small", "paper"):
        for rows, gens, seeds in calibration.configurations(scale).values():
            if (rows, gens, seeds) not in seen:
                seen.add((rows, gens, seeds))
                _check_null(rows, gens, seeds, sims=100)


def test_two_dimensional_criteria_small():
    for name in ("flow (C11)", "GMM (C9)"):
        rows, gens, seeds = calibration.configurations("small")[name]
        _check_null(rows, min(gens, 200), seeds, sims=100)
        power = calibration.rates(
            rows, generations=min(gens, 200), seeds=seeds, sims=30, drift=calibration.paper_direction(3.0), seed=1
        )
        assert power.reproduced.iloc[0] > 0.5, (name, power)
