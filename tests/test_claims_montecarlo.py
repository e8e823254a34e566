"""The Monte Carlo rows (C1, C5–C8): null simulations of :func:`madutils.claims.core.mc_decide` give at most 5 %
false positives, and its stated power matches the simulated rate of ``reproduced`` at the stated effect."""

import numpy as np
import pytest

from madutils.claims.core import Setting, mc_decide, mc_power, mc_row

SIMS = 4000


def _rate(kind: str, truth: float, effect: float, se: float, settings: int, rng) -> float:
    hits = 0
    for _ in range(SIMS):
        est = truth + se * rng.standard_normal(settings)
        v, _, _ = mc_decide([Setting(f"s{i}", e, se, effect) for i, e in enumerate(est)], kind=kind)
        hits += v == "reproduced"
    return hits / SIMS


@pytest.mark.parametrize("settings", [1, 6])
def test_direction_rows_rarely_pass_on_a_null_and_pass_at_the_stated_power(settings):
    rng = np.random.default_rng(settings)
    assert _rate("direction", 0.0, 0.5, 0.1, settings, rng) <= 0.05
    se = 0.1
    effect = 0.45  # a power near 0.7 for one setting
    want = mc_power(effect, se) ** settings  # independent settings: every one must pass
    assert _rate("direction", effect, effect, se, settings, rng) == pytest.approx(want, abs=0.03)


@pytest.mark.parametrize("kind", ["equal", "holds"])
def test_equal_and_holds_rows_pass_at_their_stated_power_and_fail_beyond_the_effect(kind):
    rng = np.random.default_rng(7)
    se, effect = 0.1, 0.5
    p = mc_power(effect, se, kind)
    assert _rate(kind, 0.0, effect, se, 1, rng) == pytest.approx(p, abs=0.03)
    # a true change of twice the stated effect against the claim: at most 5 % say reproduced
    assert _rate(kind, -2 * effect, effect, se, 1, rng) <= 0.05


def test_a_failing_setting_names_itself_and_a_weak_one_makes_the_row_uninformative():
    v, why, power = mc_decide([Setting("good", 1.0, 0.01, 0.1), Setting("bad", 0.0, 0.001, 0.1)])
    assert v == "not_reproduced" and "bad" in why and "good" not in why
    v, why, power = mc_decide([Setting("good", 1.0, 0.01, 0.1), Setting("weak", 0.1, 0.1, 0.1)])
    assert v == "uninformative" and "weak" in why and "underpowered" in why
    assert power == pytest.approx(mc_power(0.1, 0.1))
    # a setting may test another kind than its row (a plateau beside a difference)
    v, _, _ = mc_decide([Setting("diff", 1.0, 0.01, 0.1), Setting("flat", 0.0, 0.01, 0.1, kind="equal")])
    assert v == "reproduced"


def test_a_row_whose_precondition_fails_says_so_unless_the_data_contradict_it():
    head, text = ("C6", "fig12_fresh_threshold_vs_lambda"), ("statement", "statistic", "value")
    holds = [Setting("s", 0.001, 0.001, 0.05)]  # equal to 0 within ±0.05: would be reproduced
    contradicts = [Setting("s", 0.5, 0.001, 0.05)]  # far outside ±0.05: not_reproduced
    row = mc_row(head, *text, holds, "δ = 0.05", kind="equal", untestable="the curves do not start apart")
    assert (row.verdict, row.reason) == ("uninformative", "the curves do not start apart")
    row = mc_row(head, *text, contradicts, "δ = 0.05", kind="equal", untestable="the curves do not start apart")
    assert row.verdict == "not_reproduced"
    assert mc_row(head, *text, holds, "δ = 0.05", kind="equal").verdict == "reproduced"
