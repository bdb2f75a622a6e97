"""A small conv-net classifier whose penultimate layer is the feature space of the image metrics.

Trained from scratch on the real training split (no downloaded weights), so its features know
the classes of this dataset. The same recipe, trained on synthetic images, is the TSTR model.
Every tensor is created on the module's device and every random draw takes a seeded
torch.Generator: the same seed gives the same weights, and the global RNG is left untouched.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

from synthaug.errors import BadInput

MIN_SIDE = 8


def check_images(images: np.ndarray, what: str = "images") -> np.ndarray:
    """Return `images` if it is a uint8 (N, H, W, C) array with C in {1, 3} and H, W >= 8."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        got = f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
        raise BadInput(f"{what} must be a uint8 array of shape (N, H, W, C); got {got}")
    n, h, w, c = images.shape
    if c not in (1, 3) or min(h, w) < MIN_SIDE:
        raise BadInput(f"{what} have shape {images.shape}; need C in {{1, 3}} (L or RGB) and H, W >= {MIN_SIDE}")
    return images


def check_labels(labels: np.ndarray, n_classes: int, n: int, what: str = "labels") -> np.ndarray:
    """Return `labels` as int64 (N,) after checking the length and the range [0, n_classes)."""
    y = np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise BadInput(f"{what} must be an integer array of shape ({n},); got {y.dtype} {y.shape}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise BadInput(f"{what} must lie in [0, {n_classes}); found {y.min()}..{y.max()}")
    return y.astype(np.int64)


class _ConvNet(nn.Module):
    """Conv blocks halving the resolution down to about 4x4, then global average pooling.

    The pooled channels are the features (the FID analogue of Inception's pool3); pooling
    makes the net accept any H, W >= 8.
    """

    def __init__(self, channels: int, n_classes: int, side: int, width: int = 32):
        super().__init__()
        n_down = max(1, int(math.log2(side / 4)))  # 8 -> 1 (4x4), 28 -> 2 (7x7), 64 -> 4 (4x4)
        stem_stride = 2 if side >= 32 else 1  # large images: halve at once, most of the cost is at full size
        n_down -= stem_stride - 1
        widths = [width] + [min(width * 2 ** (i + 1), 128) for i in range(n_down)]
        stem = nn.Conv2d(channels, widths[0], 3, stride=stem_stride, padding=1)
        layers = [stem, nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 3, stride=2, padding=1), nn.BatchNorm2d(w_out), nn.ReLU()]
        layers += [nn.Conv2d(widths[-1], widths[-1], 3, padding=1), nn.BatchNorm2d(widths[-1]), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], n_classes)
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> standardised NCHW -> the last block's feature maps (N, d, h, w)."""
        x = (x.permute(0, 3, 1, 2).float() / 255.0 - self.mean[:, None, None]) / self.std[:, None, None]
        return self.body(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def _build(images: np.ndarray, n_classes: int, device: torch.device, gen: torch.Generator) -> _ConvNet:
    """Construct on the meta device (no global-RNG draws), then initialise on `device` from `gen`."""
    with torch.device("meta"):
        net = _ConvNet(images.shape[3], n_classes, min(images.shape[1:3]))
    net = net.to_empty(device=device)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()  # ones / zeros and fresh running statistics: no randomness
    pixels = images.reshape(-1, images.shape[3]) / 255.0
    net.mean.copy_(torch.as_tensor(pixels.mean(axis=0), device=device))
    net.std.copy_(torch.as_tensor(np.maximum(pixels.std(axis=0), 1e-3), device=device))
    return net


class FeatureNet:
    """A fitted `_ConvNet`: `features` (penultimate layer), `predict`, `accuracy`.

    `recipe` holds the fit settings, so a second net (TSTR) can be trained the same way;
    `history` has the per-epoch validation loss and accuracy.
    """

    def __init__(self, module: _ConvNet, *, n_classes: int, recipe: dict, history: list[dict], best_epoch: int):
        self.module = module.eval()
        self.n_classes = n_classes
        self.recipe = recipe
        self.history = history
        self.best_epoch = best_epoch

    @property
    def device(self) -> torch.device:
        return self.module.mean.device

    @property
    def feature_dim(self) -> int:
        return self.module.head.in_features

    @property
    def validation_accuracy(self) -> float | None:
        return self.history[self.best_epoch]["val_accuracy"] if self.history else None

    @torch.inference_mode()
    def _run(self, images: np.ndarray, fn, batch_size: int) -> np.ndarray:
        x = check_images(images)
        if x.shape[3] != self.module.mean.numel():
            trained = self.module.mean.numel()
            raise BadInput(f"images have {x.shape[3]} channels; this feature net was trained on {trained}")
        starts = range(0, max(len(x), 1), batch_size)  # one (empty) batch for no images keeps the shape
        out = [fn(torch.as_tensor(x[s : s + batch_size], device=self.device)).cpu() for s in starts]
        return torch.cat(out).numpy()

    def features(self, images: np.ndarray, batch_size: int = 512, *, spatial: bool = False) -> np.ndarray:
        """Penultimate-layer features, float64 (N, feature_dim).

        `spatial=True` gives the last block's maps before pooling, flattened (N, feature_dim * h * w):
        they keep where the strokes are, which near-duplicate search needs (pooled features of a
        trained classifier collapse within a class, so unseen images of a class look alike there).
        """
        fn = (lambda x: self.module.maps(x).flatten(1)) if spatial else self.module.embed
        return self._run(images, fn, batch_size).astype(np.float64)

    def predict(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Predicted class per image, int64 (N,)."""
        return self._run(images, lambda x: self.module(x).argmax(dim=1), batch_size).astype(np.int64)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        y = check_labels(labels, self.n_classes, len(images))
        return float((self.predict(images) == y).mean())


def _split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (when every class has 2+ images) seeded fit / validation indices."""
    idx = np.arange(len(labels))
    n_val = int(round(val_fraction * len(labels)))
    if n_val < 1 or len(labels) - n_val < 2:
        return idx, idx[:0]
    counts = np.bincount(labels)
    strat = labels if counts[counts > 0].min() >= 2 and n_val >= len(np.unique(labels)) else None
    fit, val = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strat)
    return np.sort(fit), np.sort(val)


@torch.inference_mode()
def _evaluate(net: _ConvNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    net.eval()
    logits = torch.cat([net(x[s : s + batch_size]) for s in range(0, len(x), batch_size)])
    return float(F.cross_entropy(logits, y)), float((logits.argmax(dim=1) == y).float().mean())


def fit_feature_net(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    seed: int,
    max_epochs: int = 30,
    patience: int = 5,
    val_fraction: float = 0.2,
    batch_size: int = 64,
    lr: float = 2e-3,
    device: str | torch.device = "cpu",
) -> FeatureNet:
    """Train the classifier on `images` and keep the epoch with the lowest validation loss.

    The validation split (`val_fraction`, stratified, seeded) is carved from `images` only;
    early stopping waits `patience` epochs. Without a usable validation split (tiny inputs) the
    last epoch is kept.
    """
    x = check_images(images)
    y = check_labels(labels, n_classes, len(x))
    if len(x) < 2:
        raise BadInput(f"need at least 2 images to train the feature net; got {len(x)}")
    device = torch.device(device)
    recipe = dict(max_epochs=max_epochs, patience=patience, val_fraction=val_fraction, batch_size=batch_size, lr=lr)
    fit_idx, val_idx = _split(y, val_fraction, seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    net = _build(x[fit_idx], n_classes, device, gen)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_fit, y_fit = torch.as_tensor(x[fit_idx], device=device), torch.as_tensor(y[fit_idx], device=device)
    x_val, y_val = torch.as_tensor(x[val_idx], device=device), torch.as_tensor(y[val_idx], device=device)

    history, best_epoch, best_loss, best_state = [], 0, math.inf, None
    for epoch in range(max_epochs):
        net.train()
        for batch in torch.randperm(len(x_fit), generator=gen, device=device).split(batch_size):
            if len(batch) < 2:  # batch norm needs two images
                continue
            loss = F.cross_entropy(net(x_fit[batch]), y_fit[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if len(val_idx) == 0:
            continue
        val_loss, val_acc = _evaluate(net, x_val, y_val)
        history.append({"epoch": epoch, "val_loss": val_loss, "val_accuracy": val_acc})
        if val_loss < best_loss:
            best_epoch, best_loss = epoch, val_loss
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return FeatureNet(net, n_classes=n_classes, recipe=recipe, history=history, best_epoch=best_epoch)
