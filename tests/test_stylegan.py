import socket
import zipfile

import numpy as np
import pytest
import torch
from ddp_stylegan_worker import run, toy_images

from madutils.data import DatasetError, FFHQSource, load_ffhq
from madutils.models.stylegan import ModulatedConv, StyleGANFamily, channels, truncate
from madutils.utils import check_resolution

TINY = dict(channel_base=128, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2, batch_size=8, progress=False)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing in this module may download: every connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a StyleGAN test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_truncation_is_the_identity_at_one_tends_to_w_avg_and_is_linear():
    gen = torch.Generator().manual_seed(0)
    w, w_avg = torch.randn(5, 16, generator=gen), torch.randn(16, generator=gen)
    assert torch.equal(truncate(w, w_avg, 1.0), w)
    assert torch.allclose(truncate(w, w_avg, 1e-9), w_avg.expand_as(w), atol=1e-7)
    a, b, s = 0.3, 0.9, 0.25
    mixed = truncate(w, w_avg, s * a + (1 - s) * b)
    assert torch.allclose(mixed, s * truncate(w, w_avg, a) + (1 - s) * truncate(w, w_avg, b), atol=1e-6)
    # the distance to w_avg scales with λ
    assert torch.allclose((truncate(w, w_avg, 0.5) - w_avg).norm(dim=1), 0.5 * (w - w_avg).norm(dim=1), rtol=1e-5)


def test_sampling_with_truncation_moves_every_sample_towards_the_average_image():
    fam = StyleGANFamily(steps=2, **TINY)
    model = fam.fit(toy_images(size=16), seed=0)
    g = model.generator()
    mean_img = g.synthesize(g.w_avg[None].expand(1, -1)).detach()
    spread = {lam: fam.sample(model, 64, lam, seed=1).astype(float) for lam in (1.0, 0.5, 0.1)}
    assert np.array_equal(fam.sample(model, 64, 0.5, seed=1), spread[0.5].astype(np.uint8))  # seeded
    dist = {lam: np.abs(x / 127.5 - 1 - mean_img.numpy()).mean() for lam, x in spread.items()}
    assert dist[1.0] > dist[0.5] > dist[0.1]


@pytest.mark.parametrize("demodulate, expected", [(True, (0.8, 1.25)), (False, None)])
def test_demodulation_keeps_unit_output_variance(demodulate, expected):
    torch.manual_seed(0)
    conv = ModulatedConv(64, 32, 3, w_dim=16, demodulate=demodulate)
    with torch.no_grad():
        conv.affine.weight.mul_(3.0)  # styles far from 1: the modulation would change the scale
        x = torch.randn(32, 64, 16, 16)
        out = conv(x, torch.randn(32, 16))
    std = out[:, :, 1:-1, 1:-1].std().item()  # away from the zero padding
    if expected:
        assert expected[0] < std < expected[1]
    else:
        assert not 0.8 < std < 1.25  # without demodulation the styles scale the output


def test_a_discriminator_step_decreases_its_loss_on_a_toy_set():
    fam = StyleGANFamily(lr=0.002, **TINY)
    trainer = fam.trainer(8, 1, seed=0)
    real = trainer.batch(torch.from_numpy(toy_images()))
    with torch.no_grad():
        fake = trainer.g(trainer.z())
    before = trainer.d_loss(real, fake).item()
    for _ in range(3):
        trainer.gen.manual_seed(1)  # the same fakes each step
        trainer.d_step(real, r1=True)
    with torch.no_grad():
        after = trainer.d_loss(real, fake).item()
    assert after < before


def test_the_generator_step_computes_no_discriminator_gradients():
    trainer = StyleGANFamily(**TINY).trainer(8, 1, seed=0)
    before = [p.detach().clone() for p in trainer.d.parameters()]
    trainer.g_step()
    assert all(p.grad is None for p in trainer.d.parameters())
    assert all(p.requires_grad for p in trainer.d.parameters())  # still trainable for the next step
    assert all(torch.equal(a, p) for a, p in zip(before, trainer.d.parameters(), strict=True))
    assert any(p.grad is not None for p in trainer.g.parameters())


def test_generator_and_discriminator_shapes_and_the_official_widths():
    assert channels(128, 32768, 512) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256}
    fam = StyleGANFamily(steps=1, **TINY)
    trainer = fam.trainer(16, 3, seed=0)
    img = trainer.g(trainer.z())
    assert img.shape == (8, 3, 16, 16)
    assert trainer.d(img).shape == (8, 1)
    w = trainer.g.map(trainer.z(), update_w_avg=True)
    assert w.shape == (8, 16) and trainer.g.w_avg.abs().sum() > 0


def test_the_loop_family_trains_samples_and_keys():
    fam = StyleGANFamily(steps=3, **TINY)
    model = fam.fit((toy_images(size=16), np.zeros(64)), seed=0)  # labels are ignored: unconditional
    out = fam.sample(model, 10, 0.7, seed=3)
    assert out.shape == (10, 1, 16, 16) and out.dtype == np.uint8
    assert len(model.losses) == 1 and np.all(np.isfinite(model.losses[0]))
    assert "device" not in fam.key() and fam.key()["steps"] == 3


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: check_resolution(48), "not a power of two"),
        (lambda: StyleGANFamily(**TINY).fit(toy_images(size=12), 0), "not a power of two"),
        (lambda: StyleGANFamily(**TINY).fit(toy_images().astype(np.float32), 0), "uint8"),
        (lambda: StyleGANFamily(steps=0), "steps"),
    ],
)
def test_bad_input_is_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("lam", [0.0, -0.5, 1.5, float("nan")])
def test_lambda_outside_the_unit_interval_is_refused(lam):
    fam = StyleGANFamily(steps=1, **TINY)
    model = fam.fit(toy_images(size=8), 0)
    with pytest.raises(ValueError, match="lam"):
        fam.sample(model, 4, lam, seed=0)


def test_a_diverging_run_raises():
    fam = StyleGANFamily(steps=20, **{**TINY, "lr": 1e12})
    with pytest.raises(FloatingPointError, match="diverged"):
        fam.fit(toy_images(size=8), 0)


def _write_pngs(folder, sizes):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for i, size in enumerate(sizes):
        img = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
        images.append(img)
    return images


def test_ffhq_loader_reads_a_folder_and_a_zip_it_wrote(tmp_path, monkeypatch):
    images = _write_pngs(tmp_path / "thumbs" / "00000", [16, 16, 16, 32])
    x = load_ffhq(tmp_path / "thumbs", resolution=16)
    assert x.shape == (4, 3, 16, 16) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[1], images[1].transpose(2, 0, 1))
    assert x[3].std() > 0  # the 32 × 32 image was resized
    with zipfile.ZipFile(tmp_path / "thumbs.zip", "w") as z:
        for p in sorted((tmp_path / "thumbs").rglob("*.png")):
            z.write(p, p.relative_to(tmp_path))
    np.testing.assert_array_equal(load_ffhq(tmp_path / "thumbs.zip", resolution=16), x)
    monkeypatch.setenv("MAD_FFHQ", str(tmp_path / "thumbs"))
    draw = FFHQSource(resolution=16).draw(3, seed=0)
    assert draw.shape == (3, 3, 16, 16) and len({d.tobytes() for d in draw}) == 3


def test_ffhq_errors_say_what_to_download_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("MAD_FFHQ", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="nowhere.*thumbnails128x128.*MAD_FFHQ"):
        load_ffhq(resolution=16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no PNG images"):
        load_ffhq(tmp_path / "empty", resolution=16)
    _write_pngs(tmp_path / "bad", [16])
    (tmp_path / "bad" / "00001.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="00001.png"):
        load_ffhq(tmp_path / "bad", resolution=16)
    with pytest.raises(ValueError, match="power of two"):
        load_ffhq(tmp_path / "bad", resolution=100)
    (tmp_path / "bad" / "00001.png").unlink()
    with pytest.raises(ValueError, match="asked for 5 real FFHQ images"):
        FFHQSource(str(tmp_path / "bad"), resolution=16).draw(5, seed=0)


def test_high_frequency_share_sees_cross_hatching():
    from madutils.metrics import high_frequency_share

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    smooth = np.stack([np.exp(-((yy - 16) ** 2 + (xx - c) ** 2) / 40.0) * 255 for c in rng.integers(8, 24, 20)])
    hatch = smooth * (1 + 0.3 * ((xx + yy) % 2))  # a checkerboard at the Nyquist frequency
    low, high = high_frequency_share(smooth[:, None]), high_frequency_share(hatch[:, None])
    assert 0 <= low < 0.01 and high > 10 * low
    with pytest.raises(ValueError, match="cutoff"):
        high_frequency_share(smooth, cutoff=2.0)


def test_ffhq_metrics_on_a_folder_it_wrote(tmp_path):
    from madutils.metrics import InceptionFeatures, ffhq_metrics

    _write_pngs(tmp_path / "faces", [16] * 8)
    hook = ffhq_metrics(tmp_path / "faces", resolution=16, keep_images=4, embed=InceptionFeatures.random_init())
    fake = np.random.default_rng(1).integers(0, 256, size=(8, 3, 16, 16), dtype=np.uint8)
    out = hook(None, fake, 1)
    assert {"fid", "precision", "recall", "hf_share"} <= set(out) and out["grid"].shape == (4, 3, 16, 16)
    assert hook.key()["spectrum"] is True
    with pytest.raises(DatasetError, match="thumbnails128x128"):
        ffhq_metrics(tmp_path / "missing", resolution=16, embed=InceptionFeatures.random_init())


@pytest.mark.slow
def test_the_shared_stylegan_loops_at_smoke_scale(project, monkeypatch):
    import os
    from pathlib import Path

    from madutils import experiments
    from madutils.scales import StyleGANSizes, sizes
    from madutils.store import Store

    data = os.environ.get("MAD_DATA") or str(Path(__file__).parent.parent / "data")
    monkeypatch.setenv("MAD_DATA", data)  # MNIST and LeNet of the checkout, outputs in the empty project
    sg = experiments.stylegan(sizes(StyleGANSizes, "smoke"), 0, "cpu")
    n = sizes(StyleGANSizes, "smoke").n
    aug = sg.loops["synthetic augmentation λ=1"]
    assert (aug.real, aug.accumulate, aug.n_r, aug.n_s) == ("fixed", True, n, n)
    assert sg.loops["fully synthetic λ=0.7"].real == "none" and sg.data == "MNIST 32×32"
    with pytest.raises(ValueError, match=r"no loop of stylegan has kind='fully synthetic', \{'lam': 0.5\}"):
        sg.where(kind="fully synthetic", lam=0.5)
    store = Store(project / "runs")
    one = sg.where(kind="fully synthetic", lam=1.0)
    runs = one.run(store, progress=False)
    table = runs.table()
    last = sizes(StyleGANSizes, "smoke").generations[("fully synthetic", 1.0)]
    assert last >= 2  # the loop goes past its first generation
    assert set(table.generation) == set(range(1, last + 1)) and {"fid", "recall", "hf_share"} <= set(table.metric)
    assert set(table.loop) == {"fully synthetic λ=1", "fully synthetic λ=1 · seed 1"}  # every seed of the loop
    assert set(table.seed) == {0, 1}
    again = one.run(store, progress=False)["fully synthetic λ=1"]  # read from the store, not trained again
    run = runs["fully synthetic λ=1"]
    assert again.run.key == run.run.key and again.model(last).state.keys() == run.model(last).state.keys()


# -- checkpoints inside a generation ---------------------------------------------------------------------------------


def test_a_killed_training_resumes_from_its_checkpoint_with_the_same_result(tmp_path, monkeypatch):
    from madutils.models import stylegan
    from madutils.store import Checkpoint

    data = (toy_images(size=16), np.zeros(64))
    fam = StyleGANFamily(steps=7, checkpoint_every=3, **TINY)
    whole = fam.fit(data, seed=5)

    checkpoint = Checkpoint(tmp_path / "gen-002.pt")
    calls = []
    original = stylegan.Trainer.update_ema

    def killed_after_four_steps(self):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(stylegan.Trainer, "update_ema", killed_after_four_steps)
    with pytest.raises(KeyboardInterrupt):
        fam.fit(data, seed=5, checkpoint=checkpoint)
    monkeypatch.setattr(stylegan.Trainer, "update_ema", original)
    assert checkpoint.load()["step"] == 3  # saved after step 3; step 5 never finished

    resumed = fam.fit(data, seed=5, checkpoint=checkpoint)
    assert resumed.losses == whole.losses
    for name, value in whole.state.items():
        torch.testing.assert_close(resumed.state[name], value, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="another training"):
        fam.fit(data, seed=6, checkpoint=checkpoint)  # another seed: never resumed from this state


def test_checkpoint_files_are_checked(tmp_path):
    from madutils.store import Checkpoint, StoreError

    c = Checkpoint(tmp_path / "x.pt")
    assert c.load() is None
    c.save({"step": 3, "w": torch.ones(2)})
    assert c.load()["step"] == 3
    c.path.write_bytes(c.path.read_bytes()[:-3] + b"xyz")
    with pytest.raises(StoreError, match=r"x\.pt does not match its checksum.*delete it"):
        c.load()
    c.save({"step": 4})
    c.sum_path.unlink()  # killed between the two files: the state is not trusted
    assert c.load() is None and not c.path.exists()
    c.save({"step": 5})
    (tmp_path / "y.pt").write_bytes(c.path.read_bytes())
    (tmp_path / "y.pt.sha256").write_bytes(c.sum_path.read_bytes())
    with pytest.raises(StoreError, match="another training"):
        Checkpoint(tmp_path / "y.pt").load()
    c.clear()
    assert not c.path.exists() and not c.sum_path.exists()


def test_the_loop_engine_hands_out_checkpoints_and_clears_them(tmp_path):
    from loop_helpers import TagFamily, TagSource

    from madutils.loops import LoopConfig, run_loop
    from madutils.store import Store

    seen = []

    class Checkpointed(TagFamily):
        def fit(self, data, seed, checkpoint=None):
            checkpoint.save({"seed": seed})
            seen.append(checkpoint.path)
            return super().fit(data, seed)

    store = Store(tmp_path)
    run_loop(Checkpointed(), LoopConfig(3, 10, 10), TagSource(), store=store, folder="tags", progress=False)
    assert [p.parent.name for p in seen] == ["checkpoints"] * 3
    assert seen[0].parent.parent.name == "shared-first-generation" and seen[1].name.endswith("-gen-002.pt")
    assert not any(p.exists() for p in seen)  # cleared once each generation was stored


def test_shard_rows_keep_the_minibatch_std_groups_of_the_global_batch():
    from madutils.models.stylegan import Discriminator, shard_rows

    rows = [shard_rows(16, 4, r, 2) for r in range(2)]
    assert sorted(torch.cat(rows).tolist()) == list(range(16))  # every row once
    assert rows[0].tolist() == [0, 1, 4, 5, 8, 9, 12, 13]
    # the standard-deviation feature of each shard is the one of the same rows in the whole batch
    d = Discriminator(8, 1, channels(8, 128, 16))
    x = torch.randn(16, 16, 4, 4)
    whole = d.minibatch_std(x)
    for r in rows:
        torch.testing.assert_close(d.minibatch_std(x[r]), whole[r])
    with pytest.raises(ValueError, match="batch_size = 12 cannot be shared by 2 processes"):
        shard_rows(12, 4, 0, 2)


def test_ddp_training_and_sharded_sampling_match_one_process(tmp_path):
    """Two gloo processes train the same tiny StyleGAN2 as one process does on the same global batch (to
    round-off) and shard its sampling into the same images."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    out = tmp_path / "ddp.pt"
    worker = root / "tests" / "ddp_stylegan_worker.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker)]
    proc = subprocess.run([*command, str(out), "8", "6"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    model, images = run(None, 8, 6)  # one process, the same global batch of 8
    ddp = torch.load(out, weights_only=False)
    for k, v in model.state.items():
        torch.testing.assert_close(ddp["state"][k], v, atol=1e-5, rtol=1e-4, msg=k)
    np.testing.assert_allclose(np.array(ddp["losses"]), np.array(model.losses), rtol=1e-5)
    assert np.array_equal(ddp["images"], ddp["alone"])  # sharded sampling: the images of one process
    diff = np.abs(ddp["images"].astype(int) - images.astype(int))
    assert ddp["images"].shape == (600, 1, 16, 16) and diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_bf16_training_passes_and_the_switches_outside_the_key():
    fam = StyleGANFamily(steps=3, r1_interval=2, device="cpu", **TINY)
    half = StyleGANFamily(steps=3, r1_interval=2, device="cpu", precision="bf16", **TINY)
    assert "precision" not in fam.key() and half.key()["precision"] == "bf16"  # fp32 keeps the stored keys
    assert fam.key() == StyleGANFamily(steps=3, r1_interval=2, compile=True, **TINY).in_group((1, 2)).key()
    with pytest.raises(ValueError, match="precision = 'fp16'"):
        StyleGANFamily(precision="fp16")
    x = toy_images(size=16)
    a, b = fam.fit(x, seed=0), half.fit(x, seed=0)
    assert all(np.isfinite(v).all() for v in b.losses)
    diff = max((a.state[k] - b.state[k]).abs().max().item() for k in a.state)
    assert 0 < diff < 0.05  # bfloat16 passes: a different model, close to the float32 one after 3 steps
