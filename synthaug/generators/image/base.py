"""The image half of the contract: labelled uint8 images in, `ImageBatch`es out; encoding,
conditions, rebalancing, epoch scoring set-up, save/load.

A family implements, on its LightningModule: `generate(labels, generator)` returning encoded
images (N, C, H, W) in the family's `value_range`; and on its generator class: `_check_size`
(refuse what the network cannot take), `_build()` (an untrained module from `self.config` and
`self.schema`) and `_fit_encoded(x, y, fidelity, trainer, seed)` on the encoded training part
(returning what `training.lightning.fit_module` reported).

`fit` carves the validation images out of the training data (`training.data.split_indices`,
never the pipeline's holdout), trains the scoring feature net on the rest and hands the family
an `ImageFidelity` (None without a validation split) to set on its module; every family's
Config has `val_images`, the number of images generated per score.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from synthaug.errors import BadInput
from synthaug.generators.base import MANIFEST, MIN_ROWS, Generator, build_checked, read_model, short_repr, write_model
from synthaug.generators.image.fidelity import ImageFidelity
from synthaug.generators.sampling import apportion, batch_seed
from synthaug.io.image_sources import ImageSet
from synthaug.schema.image import CHANNELS, ImageSchema
from synthaug.training import random as draws
from synthaug.training.config import TrainerConfig
from synthaug.training.data import ShuffledRows, split_indices, steps_per_epoch, train_loader, val_loader
from synthaug.transforms.image import ImageTransform

MIN_SIDE = 8  # the feature net that scores epochs (and validates the output) needs H, W >= 8
FEATURE_NET_EPOCHS = 10  # ~1 s on digits; enough for > 0.95 accuracy there
FEATURE_NET_IMAGES = 5000  # the scoring net trains on at most this many training images (seeded subsample)


@dataclass(eq=False)  # arrays inside: compare fields, not objects
class ImageBatch:
    """Generated images: uint8 (N, H, W, C), int64 labels (class indices), keys unique across a run."""

    images: np.ndarray
    labels: np.ndarray
    keys: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(batches: list[ImageBatch]) -> ImageBatch:
        return ImageBatch(
            np.concatenate([b.images for b in batches]), np.concatenate([b.labels for b in batches]), [k for b in batches for k in b.keys]
        )


class LabelledImages(Dataset):
    """Encoded images and labels; `ds[key]` gathers a whole batch (key = row indices) at once."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, key) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(key)
        return self.x[idx], self.y[idx]


class ImageGenerator(Generator):
    modality = "image"
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # encoded pixel range the family's module works in

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.schema: ImageSchema | None = None
        self.transform: ImageTransform | None = None
        self.module = None

    # -- the public methods coordinate -----------------------------------------
    def _check_data(self, data: Any, schema: ImageSchema | None) -> tuple[ImageSet, ImageSchema]:
        """An ImageSet, or (images, labels) arrays with an ImageSchema; refuse what this family cannot take."""
        if isinstance(data, ImageSet):
            images, labels, keys = data.images, data.labels, data.keys
            schema = schema or data.schema
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            images, labels = data
            if schema is None:
                raise BadInput(
                    f"{self.name}: images given as arrays need schema=ImageSchema(...) (see "
                    "synthaug.schema.image.infer_image_schema), or pass the ImageSet of synthaug.io.images.read_images"
                )
            keys = [f"image{i:08d}" for i in range(len(labels))]
        else:
            raise BadInput(
                f"{self.name} trains on an ImageSet (synthaug.io.images.read_images) or (images, labels) arrays; got {type(data).__name__}"
            )
        if not isinstance(schema, ImageSchema):
            raise BadInput(f"{self.name}: schema must be an ImageSchema, got {type(schema).__name__}")
        images, labels = np.asarray(images), np.asarray(labels)
        want = (schema.height, schema.width, schema.channels)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != want:
            raise BadInput(
                f"{self.name}: images must be uint8 (N, {want[0]}, {want[1]}, {want[2]}) as the schema says; "
                f"got {images.dtype} {images.shape}"
            )
        n_classes = len(schema.label_names)
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise BadInput(f"{self.name}: labels must be integers of shape ({len(images)},); got {labels.dtype} {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            raise BadInput(
                f"{self.name}: labels must be class indices in [0, {n_classes}) (the schema names {n_classes} "
                f"classes); found {labels.min()}..{labels.max()}"
            )
        if len(images) < MIN_ROWS:
            raise BadInput(f"training data has {len(images)} images; {self.name} needs at least {MIN_ROWS}")
        self._check_shape(schema.height, schema.width, schema.mode)
        labels = labels.astype(np.int64)
        counts = np.bincount(labels, minlength=n_classes).tolist()
        schema = schema.model_copy(update={"class_counts": dict(zip(schema.label_names, counts))})
        return ImageSet(images, labels, list(schema.label_names), list(keys), schema), schema

    def _check_shape(self, height: int, width: int, mode: str) -> None:
        if mode not in CHANNELS:
            raise BadInput(f"{self.name}: image mode {mode!r} is not supported; use L or RGB")
        if min(height, width) < MIN_SIDE:
            raise BadInput(
                f"{self.name}: images are {height}x{width}; every family needs at least {MIN_SIDE}x{MIN_SIDE} "
                "(read the source with size=(8, 8) or larger)"
            )
        self._check_size(height, width, CHANNELS[mode])

    def _fit(self, data: ImageSet, schema: ImageSchema, trainer: TrainerConfig, *, seed: int) -> dict[str, Any]:
        self.schema = schema
        self.transform = ImageTransform.from_schema(schema, self.value_range)
        x = self.transform.encode(data.images)
        train_idx, val_idx = split_indices(len(x), trainer, seed)
        fidelity = None
        if val_idx is not None:
            fidelity = self._fidelity(data, train_idx, val_idx, seed)
        info = self._fit_encoded(x[train_idx], data.labels[train_idx], fidelity, trainer, seed)
        digest = hashlib.sha256(np.ascontiguousarray(data.images))
        digest.update(np.ascontiguousarray(data.labels))
        return {**(info or {}), "data_sha256": digest.hexdigest()}

    def _fidelity(self, data: ImageSet, train_idx: np.ndarray, val_idx: np.ndarray, seed: int) -> ImageFidelity:
        """The epoch score: a feature net fitted on the training part only, and the validation images."""
        from synthaug.validation.image import fit_feature_net

        k = len(self.schema.label_names)
        rows = np.sort(np.random.default_rng(seed).permutation(train_idx)[:FEATURE_NET_IMAGES])
        net = fit_feature_net(data.images[rows], data.labels[rows], k, seed=seed, max_epochs=FEATURE_NET_EPOCHS)
        return ImageFidelity(net, self.transform, data.images[val_idx], data.labels[val_idx], k, self.config.val_images)

    def _loaders(
        self, x: np.ndarray, y: np.ndarray, fidelity: ImageFidelity | None, trainer: TrainerConfig, seed: int, steps_factor: int = 1
    ) -> tuple[DataLoader, DataLoader | None]:
        """Uniformly sampled training batches (StepSampler; an epoch is `steps_factor` times the
        usual number of steps) and a one-row validation loader that only makes Lightning run the
        validation epoch: the validation images themselves are already in `fidelity`."""
        batch = min(trainer.batch_size, len(x))
        steps = steps_per_epoch(len(x), batch, trainer) * steps_factor
        train = train_loader(LabelledImages(x, y), ShuffledRows(len(x)), batch, steps, seed)
        return train, (None if fidelity is None else val_loader(np.zeros((1, 1), dtype=np.float32)))

    def sample_batches(
        self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[ImageBatch]:
        """Yield `ImageBatch`es totalling `n` images; batch i is seeded by (seed, i).

        Unconditioned labels follow the training class frequencies; `conditions={"label": 3}` (a
        class index) or `{"label": "3"}` (a class name) gives only that class.
        """
        self._require_fitted()
        if n <= 0 or batch_size <= 0:
            raise BadInput(f"n and batch_size must be > 0 (got n={n}, batch_size={batch_size})")
        fixed = self._condition_label(conditions) if conditions else None
        freq = torch.tensor(list(self.schema.class_counts.values()), dtype=torch.float64)
        return self._batches(n, seed, batch_size, fixed, freq)

    def _batches(self, n: int, seed: int, batch_size: int, fixed: int | None, freq: torch.Tensor) -> Iterator[ImageBatch]:
        gen = torch.Generator()
        for batch_no, start in enumerate(range(0, n, batch_size)):
            k = min(batch_size, n - start)
            gen.manual_seed(batch_seed(seed, batch_no))
            labels = torch.full((k,), fixed, dtype=torch.long) if fixed is not None else draws.multinomial(freq, k, generator=gen)
            yield self._draw(labels, gen, start)

    def sample_mixture(
        self,
        n: int,
        *,
        column: str = "label",
        shares: dict[Any, float],
        seed: int = 0,
        batch_size: int = 10_000,
    ) -> Iterator[ImageBatch]:
        """`n` images whose labels follow `shares` ({label name or index: weight}) exactly, for
        rebalancing; every batch mixes the labels in their remaining proportions, shuffled (seeded)."""
        self._require_fitted()
        if column != self.schema.label_column:
            raise BadInput(f"rebalance column '{column}' is not this model's label column '{self.schema.label_column}'")
        if n <= 0 or batch_size <= 0:
            raise BadInput(f"n and batch_size must be > 0 (got n={n}, batch_size={batch_size})")
        weights: dict[int, float] = {}
        for label, w in shares.items():
            k = self._label_index(label)
            if k in weights:
                raise BadInput(f"shares name label {label!r} twice (by name and by index); give each label once")
            if not isinstance(w, (int, float)) or not np.isfinite(w) or w < 0:
                raise BadInput(f"share of label {label!r} must be a finite number >= 0 (got {short_repr(w)})")
            weights[k] = float(w)
        if not weights or sum(weights.values()) <= 0:
            raise BadInput(f"shares {short_repr(shares)} give no label a positive weight")
        return self._mixture(n, weights, seed, batch_size)

    def _mixture(self, n: int, weights: dict[int, float], seed: int, batch_size: int) -> Iterator[ImageBatch]:
        left = apportion(n, weights)
        gen = torch.Generator()
        for batch_no, start in enumerate(range(0, n, batch_size)):
            want = min(batch_size, n - start)
            counts = apportion(want, left) if want < sum(left.values()) else dict(left)
            for k, c in counts.items():
                left[k] -= c
            labels = np.repeat(np.array(list(counts), dtype=np.int64), list(counts.values()))
            labels = labels[np.random.default_rng([seed, batch_no]).permutation(want)]
            gen.manual_seed(batch_seed(seed, batch_no))
            yield self._draw(torch.from_numpy(labels), gen, start)

    @torch.no_grad()
    def _draw(self, labels: torch.Tensor, gen: torch.Generator, start: int) -> ImageBatch:
        module = self.module.eval()
        encoded = module.generate(labels.to(module.device), gen)
        images = self.transform.decode(encoded)
        return ImageBatch(images, labels.cpu().numpy().astype(np.int64), [f"syn{i:08d}" for i in range(start, start + len(labels))])

    # -- conditions ----------------------------------------------------------------
    def _condition_label(self, conditions: dict[str, Any]) -> int:
        column = self.schema.label_column
        for name in conditions:
            if name != column:
                raise BadInput(f"condition on unknown column '{name}'; image models condition on '{column}' only")
        return self._label_index(conditions[column])

    def _label_index(self, value: Any) -> int:
        """A class index from a label name ("3") or an index (3); BadInput naming it otherwise."""
        names = self.schema.label_names
        if isinstance(value, str) and value in names:
            k = names.index(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < len(names):
            k = int(value)
        else:
            raise BadInput(
                f"label {short_repr(value)} is not one of this model's labels; labels are: {', '.join(names)} "
                f"(or their indices 0..{len(names) - 1})"
            )
        if self.schema.class_counts[names[k]] == 0:
            raise BadInput(
                f"label {names[k]!r} had no training images, so the model cannot draw it; labels with images: "
                + ", ".join(n for n in names if self.schema.class_counts[n])
            )
        return k

    def _require_fitted(self) -> None:
        if self.module is None or self.transform is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(data) or load(path) before sampling")

    # -- save / load -------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        self._require_fitted()
        state = {"schema": self.schema.model_dump(mode="json"), "transform": self.transform.state_dict()}
        write_model(path, self, state, self.module)

    @classmethod
    def load(cls, path: str | Path) -> ImageGenerator:
        path = Path(path)
        file = path / MANIFEST
        manifest, state = read_model(cls, path, ("schema", "transform"))
        gen = cls(manifest["config"])
        gen.fit_info = manifest.get("fit") or {}
        try:
            gen.schema = ImageSchema.model_validate(manifest["schema"])
            gen.transform = ImageTransform.from_state(manifest["transform"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{file}: schema or transform state is damaged ({type(exc).__name__}); re-save the model") from None
        s, t = gen.schema, gen.transform
        if t.size != (s.height, s.width) or t.mode != s.mode or t.value_range != cls.value_range:
            raise BadInput(
                f"{file}: transform {t.state_dict()} does not match the schema ({s.height}x{s.width} {s.mode}) "
                f"or this family's range {cls.value_range}; the file is damaged, re-save the model"
            )
        gen._check_shape(s.height, s.width, s.mode)
        gen.module = build_checked(gen._build, state, path)
        return gen

    def _build_seeded(self, seed: int):
        """An untrained module, its initial weights drawn from `seed` (the global RNG left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._build()

    # -- what a family implements -------------------------------------------------
    def _check_size(self, height: int, width: int, channels: int) -> None:
        """BadInput (one line) for an image size the family's network cannot take."""

    def _build(self):
        raise NotImplementedError

    def _fit_encoded(
        self, x: np.ndarray, y: np.ndarray, fidelity: ImageFidelity | None, trainer: TrainerConfig, seed: int
    ) -> dict[str, Any] | None:
        raise NotImplementedError
