import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from madutils import claims, gallery, gaussian, plots
from madutils.scales import check_scale, sizes


def _c1_inputs(mislabel=1.0, trials=600, gens=200):
    results, n_ini = {}, {}
    for lam in (1.0, 0.8):
        for n_s in (10, 100):
            sim = gaussian.simulate(d=2, generations=gens, trials=trials, n_ini=n_s, n_s=n_s, lam=lam, seed=1)
            results[(lam * mislabel if lam < 1 else lam, n_s)] = sim.arrays()
            n_ini[(lam * mislabel if lam < 1 else lam, n_s)] = n_s
    return results, n_ini


def test_c1_is_reproduced_on_a_true_simulation():
    results, n_ini = _c1_inputs()
    rows = claims.c1_gaussian_martingale(results, trace0=2.0, n_ini=n_ini)
    assert [r.verdict for r in rows] == ["reproduced"] * 4


def test_c1_fails_when_the_data_do_not_follow_the_claim():
    # a simulation run with λ = 0.8 but labelled λ = 0.9: the martingale check must catch it
    results, n_ini = _c1_inputs(mislabel=0.9 / 0.8)
    rows = claims.c1_gaussian_martingale(results, trace0=2.0, n_ini=n_ini)
    assert rows[0].verdict == "not_reproduced"


def test_claims_table_is_written_and_collected(project):
    row = claims.ClaimResult("C1", "01", "nb01_x", "s", "stat", "1.0", "reproduced")
    claims.record_claims([row], "01", "smoke")
    df = gallery.collect_claims("smoke")
    assert df.columns.tolist() == claims.COLUMNS
    assert df.claim.tolist() == ["C1"]
    with pytest.raises(ValueError, match="verdict"):
        claims.ClaimResult("C1", "01", "f", "s", "stat", "1", "maybe")


def test_save_figure_and_gallery(project):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = plots.save_figure(fig, "fig04_test_panel", scale="smoke", notebook="02", caption="A test.", paper_figure="4")
    assert path.is_file() and path.stat().st_size > 1000
    claims.record_claims(
        [claims.ClaimResult("C2", "02", "fig04", "s", "stat", "v", "not_run", "no GPU")], "02", "smoke"
    )
    readme = gallery.build("smoke", commit="abc1234").read_text()
    assert "Paper Fig. 4" in readme and "fig04_test_panel.png" in readme and "not_run" in readme
    assert "abc1234" in readme
    assert pd.read_csv(project / "figures" / "smoke" / "claims.csv").verdict.tolist() == ["not_run"]
    meta = json.loads((project / "runs" / "smoke" / "meta" / "figures" / "fig04_test_panel.json").read_text())
    assert meta["caption"] == "A test."
    with pytest.raises(ValueError, match="figure name"):
        plots.save_figure(fig, "Figure 4", scale="smoke", notebook="02", caption="")
    plt.close(fig)


def test_save_figure_fails_loudly_when_it_cannot_write(project):
    (project / "figures").write_text("not a folder")
    fig, _ = plt.subplots()
    with pytest.raises((OSError, FileExistsError, NotADirectoryError)):
        plots.save_figure(fig, "nb01_x", scale="smoke", notebook="01", caption="")
    plt.close(fig)


def test_unknown_scale():
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        check_scale("huge")
    with pytest.raises(ValueError, match="unknown scale"):
        sizes("01", "huge")
    assert sizes("01", "smoke")["trials"] < sizes("01", "small")["trials"] <= sizes("01", "paper")["trials"]


def test_lambda_colours_are_distinct_and_stable():
    colours = [plots.lam_color(lam) for lam in (1.0, 0.9, 0.8, 0.7, 0.5)]
    assert len({tuple(np.round(c, 3)) for c in colours}) == 5
    assert plots.lam_color(0.8) == plots.lam_color(0.8)


def test_image_grid_tiles():
    imgs = np.arange(6 * 4).reshape(6, 1, 2, 2)
    grid = plots.image_grid(imgs, nrow=2)
    assert grid.shape == (4, 6)
    np.testing.assert_array_equal(grid[:2, :2], imgs[0, 0])
    np.testing.assert_array_equal(grid[2:, 4:], imgs[5, 0])
