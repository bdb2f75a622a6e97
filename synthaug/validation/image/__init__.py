"""Image validation: a small conv-net feature space, fidelity (Fréchet distance, PRDC, TSTR) and
memorisation checks (DCR share, duplicates), all from `image_metrics`."""

from synthaug.validation.image.features import FeatureNet, fit_feature_net
from synthaug.validation.image.fidelity import class_counts, frechet_distance, pixel_stats, prdc, tstr
from synthaug.validation.image.metrics import image_metrics
from synthaug.validation.image.privacy import image_privacy

__all__ = [
    "FeatureNet",
    "class_counts",
    "fit_feature_net",
    "frechet_distance",
    "image_metrics",
    "image_privacy",
    "pixel_stats",
    "prdc",
    "tstr",
]
