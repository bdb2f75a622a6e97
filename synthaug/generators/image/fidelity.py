"""The score that picks an image family's epoch: a Fréchet distance between generated images and
the validation images (carved from the training split by `training.data.split_indices`, never
the pipeline's holdout), in the features of a small classifier trained once, at the start of
fit, on the training part only (`synthaug.validation.image.fit_feature_net`).

The families are class-conditional, so the score compares the joint distribution of (features,
label): each image's pooled features, divided by their overall standard deviation, next to its
one-hot label scaled so that the label block weighs as much as the feature block. A model whose
"3"s look like real "5"s gets the right feature marginal but the wrong joint, and scores worse.
Generated images carry the validation images' own labels (tiled to `n_generated` images), so
the label marginals match (exactly when `n_generated` is a multiple of the validation count) and
only the images are judged.

This is the image version of `training/fidelity.py`'s `FidelityValidation`.
"""

from __future__ import annotations

import numpy as np
import torch

from synthaug.transforms.image import ImageTransform
from synthaug.validation.image import FeatureNet, frechet_distance


class ImageFidelity:
    """Validation images' joint features, and the fixed labels to generate for a score.

    A plain object, not an nn.Module: the feature net stays out of the family's state dict and
    checkpoints (it is rebuilt by every fit, never saved).
    """

    def __init__(
        self, net: FeatureNet, transform: ImageTransform, images: np.ndarray, labels: np.ndarray, n_classes: int, n_generated: int
    ) -> None:
        self.net, self.transform, self.n_classes = net, transform, n_classes
        feats = net.features(images)
        self.feature_scale = float(np.sqrt(max(feats.var(axis=0).mean(), 1e-12)))
        # Label block total variance ~ (1 - 1/K) * weight^2; the feature block's is its dimension.
        self.label_weight = float(np.sqrt(feats.shape[1]))
        self.real = self.joint(feats, labels)
        self.real_features = feats
        self.labels = np.resize(np.asarray(labels, dtype=np.int64), n_generated)

    def joint(self, feats: np.ndarray, labels: np.ndarray) -> np.ndarray:
        onehot = np.eye(self.n_classes)[labels] * self.label_weight
        return np.concatenate([feats / self.feature_scale, onehot], axis=1)

    def to(self, device) -> ImageFidelity:
        self.net.module.to(device)
        return self

    def score(self, generated: torch.Tensor) -> dict[str, float]:
        """Scores of encoded images generated for `self.labels`: the joint Fréchet distance
        (`fidelity_gap`), the plain one in feature units, and the share the classifier labels right."""
        images = self.transform.decode(generated)
        feats = self.net.features(images)
        return {
            "fidelity_gap": frechet_distance(self.real, self.joint(feats, self.labels)),
            "frechet_distance": frechet_distance(self.real_features, feats),
            "label_accuracy": float((self.net.predict(images) == self.labels).mean()),
        }


class ImageFidelityValidation:
    """Mixin for an image LightningModule with `generate(labels, generator)` (encoded images).

    Its `val_loss` is the joint Fréchet distance of `ImageFidelity`, from images generated with
    a fixed seed, so early stopping and checkpoint selection follow sample quality rather than
    the training loss. The family's `_fit` sets `module.fidelity = ImageFidelity(...)` before
    training. Every rank scores the same images with the same weights, so the synced value and
    early stopping agree.
    """

    fidelity: ImageFidelity | None = None

    def validation_step(self, batch, batch_idx):
        """The validation images' features were computed once by ImageFidelity; nothing per batch."""
        return None

    def validation_sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.generate(labels, generator)

    def on_validation_epoch_end(self) -> None:
        if self.fidelity is None:
            raise RuntimeError(f"{type(self).__name__}.fidelity is not set; set module.fidelity = ImageFidelity(...) before training")
        was_training = self.training
        self.eval()
        labels = torch.as_tensor(self.fidelity.labels, device=self.device)
        with torch.no_grad():
            fake = self.validation_sample(labels, torch.Generator().manual_seed(0))
        self.train(was_training)
        scores = self.fidelity.to(self.device).score(fake)
        self.log("val_loss", scores["fidelity_gap"], sync_dist=True)  # what early stopping and checkpoints monitor
        self.log("fidelity_gap", scores["fidelity_gap"], prog_bar=True, sync_dist=True)
        self.log("val_frechet", scores["frechet_distance"], sync_dist=True)
        self.log("val_label_accuracy", scores["label_accuracy"], sync_dist=True)
