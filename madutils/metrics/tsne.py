"""t-SNE of real and synthetic features for the mode plots of the paper (Fig. 5, 7): all sets are embedded
together, so that the panels of different generations share one map (scikit-learn's Barnes–Hut t-SNE, PCA
initialisation, fixed seed)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def tsne(feature_sets: Mapping[str, np.ndarray], seed: int = 0, perplexity: float = 30.0) -> dict[str, np.ndarray]:
    """Embed several feature sets (same width) jointly in 2-D; returns one ``(n_i, 2)`` array per set."""
    from sklearn.manifold import TSNE

    names = list(feature_sets)
    if not names:
        raise ValueError("feature_sets is empty")
    arrays = [np.asarray(feature_sets[n], dtype=np.float32) for n in names]
    widths = {a.shape[1] for a in arrays if a.ndim == 2}
    if len(widths) != 1 or any(a.ndim != 2 for a in arrays):
        raise ValueError(f"feature sets must be 2-D with one common width, got shapes {[a.shape for a in arrays]}")
    x = np.concatenate(arrays)
    if len(x) < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {len(x)}")
    emb = TSNE(
        n_components=2, init="pca", random_state=seed, perplexity=min(perplexity, (len(x) - 1) / 3)
    ).fit_transform(x)
    out, start = {}, 0
    for name, a in zip(names, arrays, strict=True):
        out[name] = emb[start : start + len(a)]
        start += len(a)
    return out
