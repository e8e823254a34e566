"""The MAD audit (madutils.audit): end to end on families written here, against the Gaussian fresh data loop's
limit that madutils.fresh computes independently, and its errors before any loop runs."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from madutils.audit import AuditError, audit, check_family, recommend
from madutils.models.gaussian import GaussianFamily
from madutils.store import Store

HERE = Path(__file__).parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Shrinking:
    """A family that fits a Gaussian and samples it with its spread shrunk by ``keep``: it goes MAD fast."""

    keep: float = 0.7
    name: str = "shrinking"

    def fit(self, data, seed):
        x = np.asarray(data, dtype=float)
        return {"mu": x.mean(0), "sd": x.std(0)}

    def sample(self, model, n, lam, seed):
        rng = np.random.default_rng(seed)
        return model["mu"] + self.keep * np.sqrt(lam) * model["sd"] * rng.standard_normal((n, len(model["mu"])))


@dataclass(frozen=True)
class ModelW2:
    """The audit's hook for the Gaussian family: W2 of the fitted model to the reference N(0, I_d), the metric of
    notebook 04 (the reference samples only give the dimension)."""

    d: int

    directions = {"w2": +1}

    def __call__(self, model, output, t):
        from madutils import gaussian

        return {"w2": float(gaussian.w2(model.mu, model.cov, np.zeros(self.d), np.eye(self.d)))}


def w2_hook(reference):
    return ModelW2(reference.shape[1])


def test_a_family_that_goes_mad_degrades_and_fresh_data_keep_it_within_tolerance(tmp_path):
    report = audit(Shrinking(), "gaussian-2", scale="smoke", store=Store(tmp_path), progress=False,
                   fractions=(0.25, 0.9), tolerance=0.2)  # fmt: skip
    rows = {(r.kind, r.fraction, r.metric): r for r in report.rows}
    # spread shrinks by 0.7 a generation in the fully synthetic loop: recall and the Fréchet distance degrade
    assert rows[("none", 0.0, "recall")].degrades == "reproduced"
    assert rows[("none", 0.0, "frechet")].degrades == "reproduced"
    # 90 % fresh real data: the spread settles near 0.9 / (1 − 0.1 · 0.49) of the truth, within 20 % of generation 1
    assert rows[("fresh", 0.9, "recall")].within == "reproduced"
    assert report.recommendation["fraction"] in (0.25, 0.9)
    verdicts = report.recommendation["verdicts"]
    assert verdicts["0.9"] == "within" and set(verdicts.values()) <= {"within", "beyond", "undecided"}
    paths = report.write(tmp_path / "report")
    data = json.loads(paths["json"].read_text())
    assert data["recommendation"] == json.loads(json.dumps(report.recommendation))
    html = paths["html"].read_text()
    assert "<script" not in html and "http" not in html and "data:image/png;base64," in html
    assert report.summary() in paths["md"].read_text()


def test_the_audit_of_the_gaussian_family_recovers_the_fresh_data_loop_limit(tmp_path):
    """The fresh data loop of the Gaussian family settles at WD(n_r, n_s, λ = 1) (eq. 3), which madutils.fresh
    computes by its own exact Monte Carlo: the audit's late W2 agrees within the two standard errors."""
    from madutils.fresh import fresh_limit

    report = audit(GaussianFamily(), "gaussian-2", metrics="test_audit:w2_hook", scale="smoke", seeds=8,
                   generations=12, n=100, fractions=(0.5,), store=Store(tmp_path), progress=False)  # fmt: skip
    t = report.table
    late = t[(t.real == "fresh") & (t.metric == "w2") & (t.generation > 6)].groupby("seed").value.mean()
    limit = fresh_limit(50, 50, 1.0, 2, trials=400)
    se = np.sqrt(late.var(ddof=1) / len(late) + limit.se**2)
    assert abs(late.mean() - limit.wd) < 3.5 * se, (late.mean(), limit.wd, se)
    # and the fully synthetic loop drifts away (a martingale's growing W2): it degrades
    w2 = next(r for r in report.rows if r.kind == "none" and r.metric == "w2")
    assert w2.degrades in ("reproduced", "uninformative") and w2.loss > 0


@dataclass(frozen=True)
class NoSample:
    name: str = "no-sample"

    def fit(self, data, seed):
        return {}


@dataclass(frozen=True)
class IgnoresN(Shrinking):
    def sample(self, model, n, lam, seed):
        return super().sample(model, 10, lam, seed)


@dataclass(frozen=True)
class NaNSamples(Shrinking):
    def sample(self, model, n, lam, seed):
        return np.full((n, 2), np.nan)


@pytest.mark.parametrize(
    "family, match",
    [
        (NoSample(), r"the family 'no-sample' has no sample\(\)"),
        (IgnoresN(), r"returned 10 samples when asked for n = 7"),
        (NaNSamples(), r"non-finite values"),
    ],
)
def test_a_family_that_breaks_the_protocol_is_refused_before_any_loop(family, match, tmp_path):
    with pytest.raises(AuditError, match=match):
        audit(family, "gaussian-2", scale="smoke", store=Store(tmp_path), progress=False)
    assert not list(tmp_path.rglob("gen-*"))


def test_bad_data_and_settings_name_the_parameter(tmp_path):
    np.save(tmp_path / "flat.npy", np.arange(100.0))
    with pytest.raises(AuditError, match=r"--data .*flat.npy: an array of samples along axis 0 .*reshape it"):
        audit(Shrinking(), str(tmp_path / "flat.npy"), store=Store(tmp_path), progress=False)
    bad = np.random.default_rng(0).normal(size=(600, 2))
    bad[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(AuditError, match=r"1 values are NaN or inf"):
        audit(Shrinking(), str(tmp_path / "nan.npy"), store=Store(tmp_path), progress=False)
    with pytest.raises(AuditError, match=r"--data 'nowhere' is neither"):
        audit(Shrinking(), "nowhere", store=Store(tmp_path), progress=False)
    with pytest.raises(AuditError, match=r"--fractions \[1.5\]"):
        audit(Shrinking(), "grid", fractions=(0.5, 1.5), store=Store(tmp_path), progress=False)
    with pytest.raises(AuditError, match=r"--seeds 1"):
        audit(Shrinking(), "grid", seeds=1, store=Store(tmp_path), progress=False)
    with pytest.raises(AuditError, match=r"--tolerance 2"):
        audit(Shrinking(), "grid", tolerance=2, store=Store(tmp_path), progress=False)
    with pytest.raises(ValueError, match="lam"):
        audit(Shrinking(), "grid", lams=[1.5], store=Store(tmp_path), progress=False)


def test_the_recommendation_is_the_smallest_fraction_from_which_all_stay_within():
    from madutils.audit import Row

    def row(f, within):
        return Row("", "fresh", 1.0, f, "recall", 1, 1, 0, 0, 0, 3, "", 0, within, 0)

    rows = [row(0.1, "not_reproduced"), row(0.25, "uninformative"), row(0.5, "reproduced"), row(0.75, "reproduced")]
    assert recommend(rows, (0.1, 0.25, 0.5, 0.75)) == {
        "fraction": 0.5,
        "below": 0.25,
        "verdicts": {"0.1": "beyond", "0.25": "undecided", "0.5": "within", "0.75": "within"},
        "undecided_metrics": [],
    }
    # a passing fraction below a failing one does not count: "from which" every larger fraction passes too
    rows = [row(0.1, "reproduced"), row(0.5, "not_reproduced"), row(0.75, "reproduced")]
    assert recommend(rows, (0.1, 0.5, 0.75))["fraction"] == 0.75
    assert recommend([row(0.5, "not_reproduced")], (0.5,))["fraction"] is None
    # a metric that no fraction can judge (a noisy distance) is named and leaves the decision to the others
    noisy = [Row("", "fresh", 1.0, f, "frechet", 1, 1, 0, 0, 0, 3, "", 0, "uninformative", 0) for f in (0.5, 0.75)]
    both = recommend(noisy + [row(0.5, "not_reproduced"), row(0.75, "reproduced")], (0.5, 0.75))
    assert both["fraction"] == 0.75 and both["undecided_metrics"] == ["frechet"]


def test_the_command_runs_end_to_end_on_a_family_and_data_of_the_user(tmp_path):
    """As a user runs it: a family in a module of their own, an .npy array of 2-D points, the smoke scale."""
    (tmp_path / "mymodels.py").write_text(
        "from dataclasses import dataclass\nimport numpy as np\n\n\n@dataclass(frozen=True)\nclass KDE:\n"
        "    bandwidth: float = 0.05\n    name: str = 'kde'\n\n    def fit(self, data, seed):\n"
        "        return {'points': np.asarray(data, dtype=float), 'h': self.bandwidth}\n\n"
        "    def sample(self, model, n, lam, seed):\n        rng = np.random.default_rng(seed)\n"
        "        pick = model['points'][rng.integers(0, len(model['points']), size=n)]\n"
        "        return pick + np.sqrt(lam) * model['h'] * rng.standard_normal(pick.shape)\n"
    )
    from madutils.data import GridSource

    np.save(tmp_path / "points.npy", GridSource().draw(3000, 5))
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "MAD_ROOT": str(tmp_path), "MPLBACKEND": "Agg"}
    import os

    out = subprocess.run(
        [sys.executable, "-m", "madutils.audit", "--family", "mymodels:KDE", "--kwargs", '{"bandwidth": 0.1}',
         "--data", str(tmp_path / "points.npy"), "--lams", "0.8", "--out", str(tmp_path / "report")],
        env=dict(os.environ) | env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    loops = {r["loop"] for r in data["rows"]}
    assert loops == {
        "fully synthetic, λ = 1",
        "fully synthetic, λ = 0.8",
        "synthetic augmentation, λ = 1",
        "fresh data, λ = 1, fresh fraction 0.25",
        "fresh data, λ = 1, fresh fraction 0.5",
    }
    assert {r["degrades"] for r in data["rows"]} <= {"reproduced", "not_reproduced", "uninformative"}
    assert (
        data["settings"]["family"].startswith("mymodels.KDE")
        and "2500 samples to train on, 500 held out" in data["settings"]["data"]
    )
    assert "report:" in out.stdout and (tmp_path / "report" / "report.html").is_file()
    # a second run reads the stored loops
    again = subprocess.run(out.args, env=dict(os.environ) | env, capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "not stored yet" not in again.stderr
    bad = subprocess.run([sys.executable, "-m", "madutils.audit", "--family", "mymodels:Nope", "--data", "grid"],
                         env=dict(os.environ) | env, capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "--family 'mymodels:Nope': mymodels has no Nope" in bad.stderr


def test_check_family_probes_with_a_small_fit():
    check_family(Shrinking(), np.random.default_rng(0).normal(size=(300, 2)), 100)
