"""Metrics for image generations (paper §2.4): features (LeNet for MNIST, as the paper's footnote 3; Inception for
natural images), FID, precision and recall (Kynkäänniemi et al. 2019, k = 5), t-SNE, and the metric hook that the
loop engine calls after every generation."""

from .features import InceptionFeatures, InceptionWeightsError, LeNetFeatures
from .fid import fid, frechet_distance, gaussian_stats
from .hook import ImageMetrics, ffhq_metrics, mnist_metrics
from .prd import ReferenceSet, kth_neighbour_radii, precision_recall
from .spectrum import grey_background_share, high_frequency_share
from .toy import ModeMetrics, TailMetrics, mode_statistics
from .tsne import tsne

__all__ = [
    "ImageMetrics",
    "InceptionFeatures",
    "InceptionWeightsError",
    "LeNetFeatures",
    "ModeMetrics",
    "ReferenceSet",
    "TailMetrics",
    "ffhq_metrics",
    "fid",
    "frechet_distance",
    "gaussian_stats",
    "grey_background_share",
    "high_frequency_share",
    "kth_neighbour_radii",
    "mnist_metrics",
    "mode_statistics",
    "precision_recall",
    "tsne",
]
