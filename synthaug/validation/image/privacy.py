"""Image memorisation checks: DCR share, exact and near duplicates, closest synthetic-training pairs.

Nearest neighbours come from the tabular privacy module's chunked search (`_neighbours`).
Pixel distances are Euclidean on values scaled to [0, 1]; feature distances use `FeatureNet`
features (pooled for the DCR share, spatial maps for near duplicates). Every rate a gate
compares has the holdout's own rate beside it (real images the generator never saw), so the
gate reads an excess over that baseline.
"""

from __future__ import annotations

import hashlib

import numpy as np

from synthaug.validation.image.features import FeatureNet
from synthaug.validation.privacy import _neighbours

NEAR_COSINE = 0.1  # cosine distance (centred spatial features) under which two images are near duplicates


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64) / 255.0


def _unit(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _nearest(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return _neighbours(query, reference, second=False, columns=False)[0]


def _closer_share(d_train: np.ndarray, d_holdout: np.ndarray) -> float:
    """Share closer to train than to holdout; a tie counts half (ideal 0.5 for equal-sized sets)."""
    return float(np.where(d_train < d_holdout, 1.0, np.where(d_train == d_holdout, 0.5, 0.0)).mean())


def _digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(im).tobytes(), digest_size=16).digest() for im in images]


def _duplicate_rate(images: np.ndarray, train_digests: set[bytes]) -> float:
    return float(np.mean([d in train_digests for d in _digests(images)])) if len(images) else 0.0


def _cosine_nearest(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine distance to the nearest reference row: on unit vectors |a - b|^2 = 2 (1 - cos)."""
    return _nearest(_unit(query), _unit(reference)) ** 2 / 2.0


def image_privacy(
    net: FeatureNet,
    train_images: np.ndarray,
    synth_images: np.ndarray,
    holdout_images: np.ndarray | None = None,
    *,
    seed: int = 0,
    max_images: int = 5000,
    top: int = 8,
) -> dict:
    """Memorisation metrics of synthetic images against the training images.

    - `dcr_share_pixel` / `dcr_share_feature`: share of synthetic images closer to a training
      image than to any holdout image, with train and holdout subsampled (seeded) to the same
      size, at most `max_images` (0.5 = no memorisation signal; lower = further from train);
    - `exact_duplicate_*`: identical pixels to some training image (all training images);
    - `near_duplicate_*`: cosine distance < 0.1 to some training image, on the net's spatial
      feature maps centred by the training mean (ReLU features all point one way otherwise);
    - `closest_pairs`: the `top` synthetic-training pairs closest in pixel space, with indices
      into the arrays given, for a report to show side by side.

    At most `max_images` synthetic images are compared (seeded subsample); pixel-space search
    holds float64 copies of them and of the training images. Without a holdout the DCR shares
    and the excesses over the holdout's rates are absent.
    """
    rng = np.random.default_rng(seed)
    syn_idx = np.arange(len(synth_images))
    if len(syn_idx) > max_images:
        syn_idx = np.sort(rng.choice(len(syn_idx), max_images, replace=False))
    synth = synth_images[syn_idx]
    syn_px, train_px = _pixels(synth), _pixels(train_images)
    train_maps = net.features(train_images, spatial=True)
    centre = train_maps.mean(axis=0)
    train_maps -= centre
    digests = set(_digests(train_images))

    d_syn_px = _nearest(syn_px, train_px)
    train_sq = np.einsum("ij,ij->i", train_px, train_px)
    pairs = []
    for j in np.argsort(d_syn_px, kind="stable")[:top]:  # `top` rows: one product each
        i = int(np.argmin(train_sq - 2.0 * train_px @ syn_px[j]))
        pairs.append({"synthetic_index": int(syn_idx[j]), "train_index": i, "pixel_distance": float(d_syn_px[j])})

    def near_rate(images: np.ndarray) -> float:
        return float((_cosine_nearest(net.features(images, spatial=True) - centre, train_maps) < NEAR_COSINE).mean())

    out = {
        "synthetic_compared": len(syn_idx),
        "exact_duplicate_rate": _duplicate_rate(synth, digests),
        "near_duplicate_rate": near_rate(synth),
        "near_duplicate_threshold": NEAR_COSINE,
        "closest_pairs": pairs,
    }
    if holdout_images is None or len(holdout_images) == 0:
        return out

    n = min(len(train_images), len(holdout_images), max_images)
    tr = np.sort(rng.choice(len(train_images), n, replace=False))
    ho = np.sort(rng.choice(len(holdout_images), n, replace=False))
    syn_f = net.features(synth)
    out["dcr_images_compared"] = int(n)
    out["dcr_share_pixel"] = _closer_share(_nearest(syn_px, train_px[tr]), _nearest(syn_px, _pixels(holdout_images[ho])))
    out["dcr_share_feature"] = _closer_share(
        _nearest(syn_f, net.features(train_images[tr])), _nearest(syn_f, net.features(holdout_images[ho]))
    )
    out["holdout_exact_duplicate_rate"] = _duplicate_rate(holdout_images, digests)
    out["exact_duplicate_excess"] = out["exact_duplicate_rate"] - out["holdout_exact_duplicate_rate"]
    out["holdout_near_duplicate_rate"] = near_rate(holdout_images[ho])
    out["near_duplicate_excess"] = out["near_duplicate_rate"] - out["holdout_near_duplicate_rate"]
    return out
