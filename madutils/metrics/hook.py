"""The metric hook for the loop engine: after each generation, embed the generation's synthetic images, measure
FID, precision and recall against the held-out real reference set, and keep what the figures need (a random
subset of features and labels for t-SNE, a fixed grid of images)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .prd import ReferenceSet


@dataclass
class ImageMetrics:
    """``evaluate(model, output, t)`` for :func:`madutils.loops.run_loop`.

    ``embed`` maps images to features (a :class:`~madutils.metrics.features.LeNetFeatures` or
    :class:`~madutils.metrics.features.InceptionFeatures`); ``reference`` is the real reference set in the same
    feature space. ``keep_features`` samples' features (and labels, when the output has them) are stored for the
    t-SNE panels, and the first ``keep_images`` images for sample grids.
    """

    embed: Callable
    reference: ReferenceSet
    keep_features: int = 0
    keep_images: int = 64

    def key(self) -> dict:
        embed_key = self.embed.key() if hasattr(self.embed, "key") else type(self.embed).__name__
        return {
            "embed": embed_key,
            "reference": self.reference.key(),
            "keep_features": self.keep_features,
            "keep_images": self.keep_images,
        }

    def __call__(self, model, output, t: int) -> dict:
        images, labels = (output[0], output[1]) if isinstance(output, tuple) else (output, None)
        feats = self.embed(images)
        result: dict = self.reference.evaluate(feats)
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


def mnist_metrics(keep_features: int = 0, keep_images: int = 64, device: str = "auto", size: int = 28) -> ImageMetrics:
    """The metric hook of every MNIST experiment (paper footnote 3): LeNet-5 features, the 10,000 MNIST test
    images as the held-out reference set (zero-padded to ``size`` like the generated images)."""
    from ..data import load_mnist, pad_images
    from .features import LeNetFeatures

    lenet = LeNetFeatures(device=device)
    x, _ = load_mnist("test")
    if size != 28:
        x = pad_images(x, size)
    return ImageMetrics(lenet, ReferenceSet(lenet(x)), keep_features=keep_features, keep_images=keep_images)
