"""`image_metrics`: every image fidelity and privacy metric from one feature net, as a JSON-able dict."""

from __future__ import annotations

import numpy as np
import torch

from synthaug.errors import BadInput
from synthaug.validation.image.features import check_images, check_labels, fit_feature_net
from synthaug.validation.image.fidelity import class_counts, frechet_distance, pixel_stats, prdc, tstr
from synthaug.validation.image.privacy import image_privacy


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[np.sort(rng.choice(len(x), n, replace=False))]


def image_metrics(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    holdout_images: np.ndarray | None,
    holdout_labels: np.ndarray | None,
    synth_images: np.ndarray,
    synth_labels: np.ndarray | None,
    n_classes: int,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_epochs: int = 30,
    max_images: int = 5000,
    k: int = 5,
) -> dict:
    """Train the feature net once on the real training images, then compute every metric.

    Sections: `feature_net` (its validation and holdout accuracy), `fidelity` (Fréchet distance,
    with the holdout's own distance to train as the noise floor; PRDC on equal-sized seeded
    subsamples of at most `max_images`), `tstr`, `class_counts`, `pixel_stats` and `privacy`.
    What cannot be computed (no holdout, no synthetic labels, too few images) is listed under
    `skipped` as {metric: reason}. The holdout never trains or selects a model: it is only tested
    on (TSTR) and compared with (Fréchet reference, privacy baselines).
    """
    train = check_images(train_images, "training images")
    y_train = check_labels(train_labels, n_classes, len(train), "training labels")
    synth = check_images(synth_images, "synthetic images")
    if len(synth) == 0:
        raise BadInput("there are no synthetic images to validate")
    shape = train.shape[1:]
    if synth.shape[1:] != shape:
        raise BadInput(f"synthetic images have shape {synth.shape[1:]}; the training images have {shape}")
    holdout = None
    if holdout_images is not None and len(holdout_images):
        holdout = check_images(holdout_images, "holdout images")
    if holdout is not None and holdout.shape[1:] != shape:
        raise BadInput(f"holdout images have shape {holdout.shape[1:]}; the training images have {shape}")
    y_hold = None
    if holdout is not None and holdout_labels is not None:
        y_hold = check_labels(holdout_labels, n_classes, len(holdout), "holdout labels")
    y_syn = None if synth_labels is None else check_labels(synth_labels, n_classes, len(synth), "synthetic labels")
    skipped: dict[str, str] = {}
    rng = np.random.default_rng(seed)

    net = fit_feature_net(train, y_train, n_classes, seed=seed, max_epochs=max_epochs, device=device)
    f_train, f_syn = net.features(train), net.features(synth)
    f_hold = None if holdout is None else net.features(holdout)
    out: dict = {
        "n_images": {"train": len(train), "holdout": 0 if holdout is None else len(holdout), "synthetic": len(synth)},
        "feature_net": {
            "feature_dim": net.feature_dim,
            "best_epoch": net.best_epoch,
            "epochs_run": len(net.history),
            "validation_accuracy": net.validation_accuracy,
        },
    }

    fidelity: dict = {}
    if len(synth) >= 2:
        fidelity["frechet_distance"] = frechet_distance(f_train, f_syn)
    else:
        skipped["frechet_distance"] = f"needs at least 2 synthetic images; got {len(synth)}"
    if f_hold is not None and len(f_hold) >= 2:
        fidelity["frechet_distance_holdout"] = frechet_distance(f_train, f_hold)
    else:
        skipped["frechet_distance_holdout"] = "needs at least 2 holdout images"
    n_prdc = min(len(train), len(synth), max_images)
    if n_prdc > k:
        fidelity.update(prdc(_subsample(f_train, n_prdc, rng), _subsample(f_syn, n_prdc, rng), k=k))
        fidelity["prdc_images"] = n_prdc
    else:
        skipped["prdc"] = f"needs more than k={k} images on each side; got {n_prdc}"
    out["fidelity"] = fidelity

    if y_hold is None:
        skipped["tstr"] = "no labelled holdout images to test on"
    elif y_syn is None:
        skipped["tstr"] = "no synthetic labels to train on"
    elif len(synth) < 2:
        skipped["tstr"] = f"needs at least 2 synthetic images; got {len(synth)}"
    else:
        out["tstr"] = tstr(net, synth, y_syn, holdout, y_hold, seed=seed)
    if y_hold is not None:
        out["feature_net"]["holdout_accuracy"] = net.accuracy(holdout, y_hold)

    out["class_counts"] = {"train": class_counts(y_train, n_classes)}
    if y_hold is not None:
        out["class_counts"]["holdout"] = class_counts(y_hold, n_classes)
    if y_syn is not None:
        out["class_counts"]["synthetic"] = class_counts(y_syn, n_classes)
        out["pixel_stats"] = pixel_stats(train, y_train, synth, y_syn, n_classes)
    else:
        skipped["pixel_stats"] = "no synthetic labels"

    out["privacy"] = image_privacy(net, train, synth, holdout, seed=seed, max_images=max_images)
    if holdout is None:
        skipped["dcr_share"] = skipped["duplicate_excess"] = "no holdout images to compare with"
    out["skipped"] = skipped
    return out
