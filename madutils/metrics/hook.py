"""The metric hook for the loop engine: after each generation, embed the generation's synthetic images, measure
FID, precision and recall against the held-out real reference set, and keep what the figures need (a random
subset of features and labels for t-SNE, a fixed grid of images)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data import load_ffhq, load_mnist, pad_images
from .features import InceptionFeatures, LeNetFeatures
from .prd import ReferenceSet
from .spectrum import high_frequency_share


@dataclass
class ImageMetrics:
    """``evaluate(model, output, t)`` for :func:`madutils.loops.run_loop`.

    ``embed`` maps images to features (a :class:`~madutils.metrics.features.LeNetFeatures` or
    :class:`~madutils.metrics.features.InceptionFeatures`); ``reference`` is the real reference set in the same
    feature space. ``keep_features`` samples' features (and labels, when the output has them) are stored for the
    t-SNE panels, and the first ``keep_images`` images for sample grids. With ``spectrum``, the share of the
    images' spectral power at high frequency (:func:`~madutils.metrics.spectrum.high_frequency_share`, a measure
    of artifacts) is recorded as ``hf_share``. Besides FID, precision and recall (the paper's metrics) it records
    density and coverage (secondary measures), ``fid_resamples`` bootstrap standard error of FID (``fid_se``, the
    noise the claims compare with) and, for conditional models, LeNet's label accuracy.

    Precision, recall, density and coverage compare equal set sizes (``equal_sizes``, the default): the generation's
    samples against as many reference points, one fixed subset of the reference for every loop and seed
    (:meth:`~madutils.metrics.prd.ReferenceSet.prdc_equal`), as Kynkäänniemi et al. do; the same four measured
    against the whole reference are kept as ``precision_full`` etc., so that a reader can see what the sizes change
    (notebook 02). FID always uses the whole reference.
    """

    embed: Callable
    reference: ReferenceSet
    keep_features: int = 0
    keep_images: int = 64
    spectrum: bool = False
    fid_resamples: int = 10
    equal_sizes: bool = True

    VERSION = 2  # 2: density, coverage and the bootstrap standard error of FID (fid_se) are recorded as well
    PRDC = ("precision", "recall", "density", "coverage")

    def key(self) -> dict:
        embed_key = self.embed.key() if hasattr(self.embed, "key") else type(self.embed).__name__
        key = {
            "embed": embed_key,
            "reference": self.reference.key(),
            "keep_features": self.keep_features,
            "keep_images": self.keep_images,
            "metrics": self.VERSION,
            "fid_resamples": self.fid_resamples,
        }
        key |= {"spectrum": True} if self.spectrum else {}
        return key | ({"equal_sizes": True} if self.equal_sizes else {})

    @property
    def min_samples(self) -> int:
        """The fewest samples a generation can be measured on: k + 1 for the k-NN radii of precision and recall."""
        return self.reference.k + 1

    def __call__(self, model, output, t: int) -> dict:
        images, labels = (output[0], output[1]) if isinstance(output, tuple) else (output, None)
        feats = self.embed(images)
        result: dict = self.reference.evaluate(feats, self.fid_resamples)
        if self.equal_sizes:
            result |= {f"{name}_full": result[name] for name in self.PRDC} | self.reference.prdc_equal(feats)
        if self.spectrum:
            result["hf_share"] = high_frequency_share(images)
        if labels is not None and hasattr(self.embed, "classify_features"):
            # not a paper metric: how often the classifier reads a generated digit as its label
            result["label_accuracy"] = float(np.mean(self.embed.classify_features(feats) == np.asarray(labels)))
        if self.keep_features:
            idx = np.random.default_rng(t).permutation(len(feats))[: self.keep_features]
            result["features"] = feats[idx].astype(np.float32)
            if labels is not None:
                result["labels"] = np.asarray(labels)[idx]
        if self.keep_images:
            result["grid"] = np.asarray(images[: self.keep_images])
            if labels is not None:
                result["grid_labels"] = np.asarray(labels[: self.keep_images])
        return result


def mnist_metrics(
    keep_features: int = 0, keep_images: int = 64, device: str = "auto", size: int = 28, spectrum: bool = False
) -> ImageMetrics:
    """The metric hook of every MNIST experiment (paper footnote 3): LeNet-5 features, the 10,000 MNIST test
    images as the held-out reference set (zero-padded to ``size`` like the generated images)."""

    lenet = LeNetFeatures(device=device)
    x, _ = load_mnist("test")
    if size != 28:
        x = pad_images(x, size)
    return ImageMetrics(
        lenet, ReferenceSet(lenet(x)), keep_features=keep_features, keep_images=keep_images, spectrum=spectrum
    )


def ffhq_metrics(
    path=None,
    resolution: int = 128,
    keep_images: int = 64,
    device: str = "auto",
    spectrum: bool = True,
    embed=None,
) -> ImageMetrics:
    """The metric hook of the StyleGAN2 loops at paper scale: Inception features (pytorch-fid's network; ``embed``
    replaces it, e.g. ``InceptionFeatures.random_init()`` in tests), the FFHQ images at ``resolution`` as the
    reference set (see :func:`madutils.data.load_ffhq` for ``path``), and the high-frequency power share."""

    x = load_ffhq(path, resolution)  # first: a missing FFHQ is reported before any weights are looked for
    embed = embed if embed is not None else InceptionFeatures(device=device)
    reference = ReferenceSet(embed(x), device=getattr(embed, "device", "cpu"))
    return ImageMetrics(embed, reference, keep_images=keep_images, spectrum=spectrum)
