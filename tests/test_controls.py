"""The controls of the DDPM fresh data loop (madutils.controls) at the smoke sizes."""

import numpy as np
import pytest

from madutils import controls
from madutils.data import load_mnist
from madutils.experiments import ddpm_fresh
from madutils.scales import DDPMSizes, sizes
from madutils.store import Store


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("controls"))
    sz = sizes(DDPMSizes, "smoke", seeds=2, fresh_generations=2, fresh_inis=[200])
    fresh = ddpm_fresh(sz, device="cpu")
    fresh_runs = fresh.run(store, progress=False, workers=1)
    firsts = len(list((store.root / "shared-first-generation" / "cache").glob("[!.]*")))
    found = {
        name: exp.run(store, progress=False, workers=1)
        for name, exp in controls.fresh_controls(sz, 200, seeds=2, generations=2, device="cpu").items()
    }
    return store, sz, fresh, fresh_runs, firsts, found


def test_the_controls_start_from_the_fresh_loops_generation_1(stored):
    store, sz, fresh, fresh_runs, firsts, found = stored
    # no generation 1 trained for the controls: they share the fresh data loop's (one model per seed)
    assert firsts == 2 == len(list((store.root / "shared-first-generation" / "cache").glob("[!.]*")))
    only = found["fresh only"]
    assert {run.cfg.n_s for run in only.values()} == {0} and {run.cfg.n_r for run in only.values()} == {sz.fresh_n}


def test_real_in_place_of_synthetic_goes_through_the_path_of_samples_and_is_measured_on_the_model(stored):
    store, sz, fresh, fresh_runs, firsts, found = stored
    run = next(iter(found["real as synthetic"].values()))
    images, labels = run.output(1)  # what generation 2 trains on besides its fresh images: stored, read back
    assert images.dtype == np.uint8 and images.shape == (sz.fresh_n, 1, 28, 28) and labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == [sz.fresh_n // 10] * 10  # balanced like the samples
    train, train_labels = load_mnist("train")
    index = {train[i].tobytes(): train_labels[i] for i in range(len(train))}
    assert all(index.get(img[0].tobytes()) == lab for img, lab in zip(images, labels, strict=True))  # real digits
    # the metrics are of the model's own samples: the smoke model is far from MNIST, real digits would not be
    fid = run.metrics().query("metric == 'fid'").value
    assert (fid > 300).all()


def test_the_sampler_control_measures_both_samplers_once(stored, monkeypatch):
    store, sz, fresh, fresh_runs, firsts, found = stored
    runs = fresh_runs.where(seed=0)
    table = controls.sampler_control(store, runs, fresh.family, (1, 2), 40)
    assert sorted(table.steps.unique()) == [sz.family.sample_steps, sz.family.T]
    assert len(table) == 4 and {"fid", "grey_background", "recall"} <= set(table.columns)
    assert table.grey_background.between(0, 1).all()
    calls = []
    monkeypatch.setattr(type(fresh.family), "sample", lambda *a, **k: calls.append(1))
    again = controls.sampler_control(store, runs, fresh.family, (1, 2), 40)  # stored: nothing is sampled
    assert calls == [] and again.equals(table)
