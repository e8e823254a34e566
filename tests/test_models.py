"""Model families: DDPM (schedule, guidance, class balance, failure modes), GMM (sampling pitfalls), WGAN-GP,
flow (Rosenbrock reference, invertibility)."""

import numpy as np
import pytest
import torch
from loop_helpers import stored_runs

from madutils.data import GridSource, RosenbrockSource, grid_modes, rosenbrock_log_density
from madutils.loops import LoopConfig, LoopError, run_loop
from madutils.metrics import mode_statistics
from madutils.models import ddpm as ddpm_mod
from madutils.models.ddpm import DDPMFamily, beta_schedule
from madutils.models.flow import Flow, FlowFamily
from madutils.models.gmm import GMMFamily, GMMModel
from madutils.models.wgan import WGANFamily
from madutils.store import Store

TINY_DDPM = dict(width=8, patch=4, T=50, steps=6, batch_size=16, sample_steps=5, progress=False, device="cpu")


def _toy_mnist(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28), np.uint8)
    y = np.arange(n) % 10
    for i, d in enumerate(y):  # a bar whose position encodes the digit
        x[i, 0, 4:24, 2 + 2 * d : 4 + 2 * d] = 200 + rng.integers(0, 55)
    return x, y


# -- DDPM ---------------------------------------------------------------------------------------------------------


def test_beta_schedule_matches_the_paper_and_rescales():
    b = beta_schedule(500)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    abar = torch.cumprod(1 - b, 0)[-1].item()
    for T in (50, 100, 250):
        bt = beta_schedule(T)
        assert bt.sum().item() == pytest.approx(b.sum().item(), rel=0.01)
        assert torch.cumprod(1 - bt, 0)[-1].item() == pytest.approx(abar, rel=0.5, abs=2e-3)
    with pytest.raises(ValueError, match="T"):
        beta_schedule(1)


class _FakeNet(torch.nn.Module):
    """ε(x, t, c) = c + 1 for a label, 0 for the null label: makes the guidance combination visible."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, c):
        self.calls.append(len(x))
        eps = torch.where(c == ddpm_mod.NULL_LABEL, torch.zeros_like(c), c + 1).float()
        return eps[:, None, None, None].expand_as(x)


@pytest.mark.parametrize("lam", [1.0, 0.5, 0.25])
def test_guidance_is_one_doubled_batch_with_w_from_lambda(lam):
    """ε = (1 + w) ε(x, c) − w ε(x, ∅) with w = 1/λ − 1, from one doubled batch (and no doubling at λ = 1)."""
    fam = DDPMFamily(**TINY_DDPM | {"sample_steps": 1})
    net = _FakeNet()
    y = torch.tensor([0, 3, 9])
    w = 1 / lam - 1
    out = fam._sample_batch(net, y, w, torch.Generator().manual_seed(0), "cpu", (28, 28))
    assert net.calls == [6 if lam < 1 else 3], "guided sampling must evaluate one doubled batch"
    # one step from t = T - 1 straight to x_0: x0 = (x_T - β / sqrt(1 - ᾱ) ε) / sqrt(1 - β), β = 1 - ᾱ_{T-1}
    x_T = torch.randn((3, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    abar = torch.cumprod(1 - beta_schedule(fam.T), 0)[-1]
    beta = 1 - abar
    eps = ((1 + w) * (y + 1).float())[:, None, None, None]  # the null-label estimate is 0
    expected = (x_T - beta.float() / (1 - abar).sqrt().float() * eps) / (1 - beta).sqrt().float()
    np.testing.assert_array_equal(out, ddpm_mod.model_to_images(expected))


def test_sampling_is_class_balanced_in_random_order():
    fam = DDPMFamily(**TINY_DDPM)
    model = fam.fit(_toy_mnist(), seed=0)
    images, labels = fam.sample(model, 103, 1.0, seed=1)
    assert images.shape == (103, 1, 28, 28) and images.dtype == np.uint8
    counts = np.bincount(labels, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 103
    assert not np.all(np.diff(labels) >= 0), "labels come sorted"
    again, _ = fam.sample(model, 103, 1.0, seed=1)
    np.testing.assert_array_equal(images, again)


@pytest.mark.slow
@pytest.mark.parametrize("conditioning", ["scale-shift", "add"])
def test_training_reduces_the_loss(conditioning):
    fam = DDPMFamily(**TINY_DDPM | {"steps": 150, "lr": 3e-3, "conditioning": conditioning})
    model = fam.fit(_toy_mnist(200), seed=0)
    # the output layer starts at zero, so an untrained network's loss is E‖ε‖² / dim = 1
    assert model.losses[-1] < 0.85 and model.losses[-1] < model.losses[0]
    assert model.config["conditioning"] == conditioning
    images, _ = fam.sample(model, 10, 0.5, seed=0)  # the stored weights load into the right network
    assert images.shape == (10, 1, 28, 28)


def test_scale_shift_conditioning_starts_as_plain_group_norm():
    """With the embedding's scale and shift at zero, an adaptive-GroupNorm block computes the unconditioned block;
    a nonzero scale changes its output."""
    block = ddpm_mod.ResBlock(8, 8, emb=16, conditioning="scale-shift")
    torch.nn.init.zeros_(block.emb.weight)
    torch.nn.init.zeros_(block.emb.bias)
    x, e = torch.randn(2, 8, 5, 5), torch.randn(2, 16)
    plain = block.conv2(torch.nn.functional.silu(block.norm2(block.conv1(torch.nn.functional.silu(block.norm1(x))))))
    torch.testing.assert_close(block(x, e), plain + block.skip(x))
    with torch.no_grad():
        block.emb.bias[:8] = 1.0  # scale 1 + 1 = 2
    assert not torch.allclose(block(x, e), plain + block.skip(x))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(width=2), "width"),
        (dict(T=1), "T"),
        (dict(sample_steps=0), "sample_steps"),
        (dict(p_uncond=1.0), "p_uncond"),
        (dict(lr=0.0), "lr"),
        (dict(conditioning="concat"), "conditioning"),
    ],
)
def test_ddpm_rejects_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        DDPMFamily(**TINY_DDPM | kw)


def test_ddpm_rejects_bad_lambda_and_images():
    fam = DDPMFamily(**TINY_DDPM)
    model = fam.fit(_toy_mnist(), seed=0)
    for lam in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="lam"):
            fam.sample(model, 4, lam, 0)
    x, y = _toy_mnist()
    with pytest.raises(ValueError, match="multiple of the patch"):
        fam.fit((x[:, :, :26, :26], y), 0)
    with pytest.raises(ValueError, match="uint8"):
        fam.fit((x.astype(np.float32), y), 0)


def test_device_is_not_part_of_the_run_key():
    assert DDPMFamily(**TINY_DDPM).key() == DDPMFamily(**TINY_DDPM | {"device": "auto", "progress": True}).key()
    assert DDPMFamily(**TINY_DDPM).key() != DDPMFamily(**TINY_DDPM | {"width": 16}).key()
    assert DDPMFamily(**TINY_DDPM).key() != DDPMFamily(**TINY_DDPM | {"conditioning": "add"}).key()


def test_effort_halves_for_a_tenth_of_the_data_below_effort_images():
    fam = DDPMFamily(**TINY_DDPM | {"steps": 2000, "effort_images": 1000})
    assert [fam.steps_for(n) for n in (10, 100, 200, 1000, 5000)] == [500, 1000, 1233, 2000, 2000]
    assert DDPMFamily(**TINY_DDPM | {"steps": 2000}).steps_for(100) == 2000  # no rule: the same steps for any n
    # without the rule the key is what it was before the field existed (stored runs keep their keys)
    assert "effort_images" not in DDPMFamily(**TINY_DDPM).key()
    assert fam.key() != DDPMFamily(**TINY_DDPM | {"steps": 2000}).key()
    with pytest.raises(ValueError, match="effort_images"):
        DDPMFamily(**TINY_DDPM | {"effort_images": 0})


@pytest.mark.slow
def test_a_smaller_training_set_trains_fewer_steps():
    # the loss history (a mean per 100 steps) shows the steps trained
    small = DDPMFamily(**TINY_DDPM | {"steps": 400, "effort_images": 240})
    assert len(small.fit(_toy_mnist(60), seed=0).losses) == 3  # ⌈400 · 2^log10(60/240)⌉ = 264 steps


class ToyMnistSource:
    name = "toy"

    def draw(self, n, seed):
        return _toy_mnist(n, seed)

    def key(self):
        return {"toy": 1}


def test_a_fresh_loop_shares_generation_1_where_its_effort_rule_trains_as_the_plain_family(tmp_path, monkeypatch):
    # notebook 04's DDPM (effort_images = n) trains n_ini = n images exactly as notebooks 02 and 03's does
    plain = DDPMFamily(**TINY_DDPM | {"steps": 40})
    ruled = DDPMFamily(**TINY_DDPM | {"steps": 40, "effort_images": 40})
    assert ruled.trained_on(40) == plain and ruled.trained_on(400) == plain
    assert ruled.trained_on(20) is ruled and plain.trained_on(20) is plain
    steps = []
    fit = DDPMFamily.fit
    monkeypatch.setattr(
        DDPMFamily, "fit", lambda self, data, seed: steps.append(self.steps_for(len(data[0]))) or fit(self, data, seed)
    )
    store = Store(tmp_path)
    runs = [
        run_loop(
            fam, LoopConfig(generations=1, n_ini=n_ini, n_s=40, seed=0), ToyMnistSource(), store=store, progress=False
        )
        for fam, n_ini in [(plain, 40), (ruled, 40), (ruled, 20), (ruled, 20)]
    ]
    # ⌈40 · 2^log10(20/40)⌉ = 33 steps for 20 images; the second loop on 40 images and the fourth loop train nothing
    assert steps == [40, 33], "generation 1 on 40 images was trained twice, or the one on 20 images not at all"
    a, b = (r.generation(1).array("output_0") for r in runs[:2])
    np.testing.assert_array_equal(a, b)  # the same model, sampled with the same seed


def test_a_diverging_ddpm_stops_with_a_clear_error_and_keeps_stored_generations(tmp_path, monkeypatch):
    fam = DDPMFamily(**TINY_DDPM)
    store = Store(tmp_path)
    cfg = LoopConfig(generations=3, n_ini=40, n_s=40, seed=0)
    run_loop(fam, LoopConfig(generations=1, n_ini=40, n_s=40, seed=0), ToyMnistSource(), store=store, progress=False)
    # generation 1 comes from the shared first-generation cache, so the first training of this run is generation 2

    def nan_loss(pred, target):
        return torch.full((), float("nan"))

    monkeypatch.setattr(ddpm_mod.F, "mse_loss", nan_loss)
    with pytest.raises(LoopError, match="generation 2.*diverged.*resumes at generation 2"):
        run_loop(fam, cfg, ToyMnistSource(), store=store, progress=False)
    (run,) = [r for r in stored_runs(store, "loop") if r.config["loop"]["generations"] == 3]
    assert run.completed() == 1


# -- GMM -----------------------------------------------------------------------------------------------------------


def test_grid_reference_and_mode_statistics():
    x = GridSource().draw(20000, 0)
    stats = mode_statistics(x)
    assert stats["modes_covered"] == 25 and stats["high_quality"] > 0.98
    assert stats["modal_variance"] == pytest.approx(2 * 0.05**2, rel=0.1)
    assert grid_modes().shape == (25, 2)


def test_gmm_sampling_avoids_the_scikit_learn_pitfalls():
    fam = GMMFamily()
    model = fam.fit(GridSource().draw(2000, 0), seed=1)
    a, b, c = fam.sample(model, 4000, 1.0, 7), fam.sample(model, 4000, 1.0, 7), fam.sample(model, 4000, 1.0, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c), "two seeds gave the same samples"
    # not ordered by component: both halves spread over the whole grid
    assert mode_statistics(a[:2000])["modes_covered"] == 25 and mode_statistics(a[2000:])["modes_covered"] == 25


def test_gmm_lambda_scales_the_component_covariances():
    model = GMMModel(np.array([1.0]), np.zeros((1, 2)), np.array([np.diag([4.0, 1.0])]), True)
    x = GMMFamily(n_components=1).sample(model, 200000, 0.25, 0)
    np.testing.assert_allclose(np.var(x, axis=0), [1.0, 0.25], rtol=0.02)


def test_gmm_fit_failure_is_clear():
    fam = GMMFamily()
    with pytest.raises(ValueError, match="25 mixture components to 10 samples"):
        fam.fit(GridSource().draw(10, 0), 0)
    collapsed = np.repeat(np.array([[1.0, 2.0]]), 500, axis=0)
    with pytest.raises(ValueError, match="1 distinct"):
        fam.fit(collapsed, 0)


# -- WGAN-GP -------------------------------------------------------------------------------------------------------


def test_wgan_fits_and_samples():
    fam = WGANFamily(width=16, steps=5, batch_size=16, progress=False, device="cpu")
    model = fam.fit(_toy_mnist(64), seed=0)
    x = fam.sample(model, 30, 1.0, seed=1)
    assert x.shape == (30, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, fam.sample(model, 30, 1.0, seed=1))
    cold = fam.sample(model, 2000, 0.01, seed=2).astype(float)
    warm = fam.sample(model, 2000, 1.0, seed=2).astype(float)
    assert cold.std(axis=0).mean() < warm.std(axis=0).mean(), "a tempered latent must reduce the spread"
    with pytest.raises(ValueError, match="uint8"):
        fam.fit(np.zeros((10, 28, 28), np.float32), 0)
    with pytest.raises(ValueError, match="28 × 28"):
        fam.fit(np.zeros((10, 1, 32, 32), np.uint8), 0)


def test_wgan_key_names_the_architecture():
    # runs of the earlier multilayer perceptrons must never be served for the convolutional networks
    assert WGANFamily().key()["architecture"] == "dcgan"


def test_wgan_generator_step_leaves_the_critic_trainable(monkeypatch):
    # the critic is frozen only inside the generator step: its weights still change in training
    import madutils.models.wgan as wgan_module

    seen = []
    original = wgan_module.Critic.forward

    def forward(self, x):
        seen.append(all(p.requires_grad for p in self.parameters()))
        return original(self, x)

    monkeypatch.setattr(wgan_module.Critic, "forward", forward)
    WGANFamily(width=4, steps=2, n_critic=2, batch_size=8, progress=False, device="cpu").fit(_toy_mnist(32), 0)
    # per generator step: 2 critic steps × 2 calls (penalty, scores) with gradients, then 1 frozen call
    assert seen == [True, True, True, True, False] * 2


def test_wgan_divergence_is_an_error(monkeypatch):
    fam = WGANFamily(width=16, steps=3, batch_size=8, progress=False, device="cpu", lr=1e-4)
    monkeypatch.setattr(torch.Tensor, "norm", lambda self, *a, **k: torch.full(self.shape[:1], float("nan")))
    with pytest.raises(FloatingPointError, match="diverged"):
        fam.fit(_toy_mnist(32), 0)


# -- flow ----------------------------------------------------------------------------------------------------------


def test_rosenbrock_sampler_and_density():
    x = RosenbrockSource().draw(400000, 0)
    assert x[:, 0].mean() == pytest.approx(0, abs=0.01) and x[:, 0].var() == pytest.approx(1, rel=0.01)
    assert x[:, 1].mean() == pytest.approx(1, abs=0.01) and x[:, 1].var() == pytest.approx(2.5, rel=0.02)
    gx, gy = np.meshgrid(np.linspace(-6, 6, 601), np.linspace(-4, 40, 2201))
    dens = np.exp(rosenbrock_log_density(np.stack([gx, gy], -1)))
    assert dens.sum() * (12 / 600) * (44 / 2200) == pytest.approx(1.0, rel=1e-3)


def test_flow_is_invertible_and_normalised():
    flow = Flow(4, 16, seed=0)
    flow.train()
    flow.log_prob(torch.randn(512, 2) * 2 + 1)  # initialise actnorm
    flow.eval()
    for p in flow.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    z = torch.randn(100, 2)
    x = flow.inverse(z)
    h = x
    for layer in flow.layers:
        h, _ = layer(h)
    torch.testing.assert_close(h, z, atol=1e-4, rtol=1e-4)
    g = torch.linspace(-12, 12, 481)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    mass = flow.log_prob(grid).exp().sum().item() * (24 / 480) ** 2
    assert mass == pytest.approx(1.0, abs=0.02)


def test_flow_learns_rosenbrock_and_tempering_shrinks_it():
    fam = FlowFamily(n_layers=6, hidden=32, epochs=8)
    data = RosenbrockSource().draw(4000, 0)
    model = fam.fit(data, seed=0)
    assert model.losses[-1] < model.losses[0]
    x = fam.sample(model, 20000, 1.0, 1)
    assert x[:, 0].std() == pytest.approx(1.0, abs=0.15)
    cold = fam.sample(model, 20000, 0.5, 1)
    assert cold[:, 0].std() < 0.85 * x[:, 0].std()
    with pytest.raises(ValueError, match="2-D points"):
        fam.fit(np.zeros((10, 3)), 0)
