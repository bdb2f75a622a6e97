"""Image fidelity in the feature space of `FeatureNet`: Fréchet distance, PRDC, TSTR, per-class tables."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from synthaug.validation.image.features import FeatureNet, check_images, check_labels, fit_feature_net
from synthaug.validation.image.knn import ball_counts, kth_neighbour_distance


def frechet_distance(real: np.ndarray, synthetic: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (rows = images).

    d^2 = |mu_r - mu_s|^2 + Tr(S_r + S_s - 2 (S_r S_s)^(1/2))   (Dowson & Landau 1982; FID,
    Heusel et al. 2017). Covariances are often singular (fewer images than features, dead
    channels), where sqrtm can fail or turn complex: as in pytorch-fid, we then retry with
    eps * mean variance added to both diagonals, and drop an imaginary part only if it is
    negligible. Rounding can leave a tiny negative value; it is clipped to 0.
    """
    a, b = np.asarray(real, dtype=np.float64), np.asarray(synthetic, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 rows on each side; got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(s_a @ s_b)
    if not _usable(covmean):
        offset = np.eye(len(s_a)) * eps * max(float(np.trace(s_a) + np.trace(s_b)) / (2 * len(s_a)), 1e-12)
        covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
        if not _usable(covmean):
            raise ValueError("the covariance product has no usable square root (non-finite features?)")
    diff = mu_a - mu_b
    fd = diff @ diff + np.trace(s_a) + np.trace(s_b) - 2.0 * np.trace(covmean.real)
    return float(max(fd, 0.0))


def _usable(m: np.ndarray) -> bool:
    if not np.isfinite(m).all():
        return False
    return not np.iscomplexobj(m) or np.abs(m.imag).max() <= 1e-3 * max(np.abs(m.real).max(), 1.0)


def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = 5) -> dict:
    """Precision, recall, density and coverage with k-NN balls (Naeem et al. 2020, ICML).

    With r_k(x) the distance from x to its k-th nearest neighbour within its own set:
    precision = share of synthetic points inside some real ball B(real_i, r_k(real_i));
    recall    = share of real points inside some synthetic ball B(syn_j, r_k(syn_j));
    density   = (1 / (k M)) * sum over synthetic j of the number of real balls containing it;
    coverage  = share of real points whose ball contains at least one synthetic point.
    """
    real_r = kth_neighbour_distance(real, k)
    syn_r = kth_neighbour_distance(synthetic, k)
    inside, recalled, covered = ball_counts(real, synthetic, real_r, syn_r)
    return {
        "precision": float((inside > 0).mean()),
        "recall": float(recalled.mean()),
        "density": float(inside.sum() / (k * len(inside))),
        "coverage": float(covered.mean()),
        "k": k,
    }


def tstr(
    real_net: FeatureNet,
    synth_images: np.ndarray,
    synth_labels: np.ndarray,
    holdout_images: np.ndarray,
    holdout_labels: np.ndarray,
    *,
    seed: int,
) -> dict:
    """Train-synthetic-test-real accuracy against train-on-real, both on the real holdout.

    `real_net` is the train-on-real model (the feature net); the synthetic model is the same
    architecture and recipe (`real_net.recipe`, same seed) trained from scratch on the synthetic
    images, with its validation split carved from them. `gap` = real - synthetic.
    """
    syn_net = fit_feature_net(synth_images, synth_labels, real_net.n_classes, seed=seed, device=real_net.device, **real_net.recipe)
    real_acc = real_net.accuracy(holdout_images, holdout_labels)
    syn_acc = syn_net.accuracy(holdout_images, holdout_labels)
    return {
        "real_accuracy": real_acc,
        "synthetic_accuracy": syn_acc,
        "gap": real_acc - syn_acc,
        "synthetic_validation_accuracy": syn_net.validation_accuracy,
    }


def class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(check_labels(labels, n_classes, len(labels)), minlength=n_classes).tolist()


def pixel_stats(
    real_images: np.ndarray,
    real_labels: np.ndarray,
    synth_images: np.ndarray,
    synth_labels: np.ndarray,
    n_classes: int,
) -> list[dict]:
    """Per class: counts, per-channel pixel mean / std (0..255) on each side, and the mean absolute
    difference between the two class-mean images (None where a side has no image of the class)."""
    real, syn = check_images(real_images, "real images"), check_images(synth_images, "synthetic images")
    y_real, y_syn = check_labels(real_labels, n_classes, len(real)), check_labels(synth_labels, n_classes, len(syn))
    rows = []
    for c in range(n_classes):
        r, s = real[y_real == c], syn[y_syn == c]
        row = {"class": c, "real_count": len(r), "synthetic_count": len(s)}
        for side, x in (("real", r), ("synthetic", s)):
            row[f"{side}_mean"] = x.mean(axis=(0, 1, 2)).tolist() if len(x) else None
            row[f"{side}_std"] = x.std(axis=(0, 1, 2)).tolist() if len(x) else None
        both = len(r) and len(s)
        row["mean_image_abs_diff"] = float(np.abs(r.mean(axis=0) - s.mean(axis=0)).mean()) if both else None
        rows.append(row)
    return rows
