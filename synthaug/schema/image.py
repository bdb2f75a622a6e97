"""The image schema: size, mode, classes and their counts, and what was converted on load.

A JSON file like the tabular schema, so a run records what its images were and a model knows
what to generate: `ImageSchema.save(path)` / `ImageSchema.load(path)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthaug.errors import BadInput

ImageMode = Literal["L", "RGB"]
SourceFormat = Literal["imagefolder", "hf_parquet", "webdataset", "sklearn"]
CHANNELS: dict[str, int] = {"L": 1, "RGB": 3}


class ImageSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    modality: Literal["image"] = "image"
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    mode: ImageMode
    label_column: str = "label"
    label_names: list[str]  # position = class index
    class_counts: dict[str, int]  # same keys and order as label_names; a class may have 0
    source_format: SourceFormat
    notes: list[str] = []  # conversions made on load, e.g. "3 images converted from RGBA to RGB"

    @model_validator(mode="after")
    def _consistent(self) -> ImageSchema:
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"label names are not unique: {self.label_names}")
        if list(self.class_counts) != self.label_names:
            raise ValueError("class_counts must have one entry per label name, in label order")
        return self

    @property
    def channels(self) -> int:
        return CHANNELS[self.mode]

    @property
    def n_images(self) -> int:
        return sum(self.class_counts.values())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: str | Path) -> ImageSchema:
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValidationError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"{path}: not a synthaug image schema JSON ({first})") from None


def infer_image_schema(
    images: np.ndarray,
    labels: np.ndarray,
    label_names: list[str],
    *,
    source_format: SourceFormat,
    notes: list[str] | None = None,
    label_column: str = "label",
) -> ImageSchema:
    """Describe an already-converted image set: `images` uint8 (N, H, W, C), `labels` int (N,)."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, 1 or 3), got shape {images.shape}")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(label_names))
    if len(counts) > len(label_names):
        raise ValueError(f"label index {len(counts) - 1} has no name among {len(label_names)} label names")
    return ImageSchema(
        height=int(images.shape[1]),
        width=int(images.shape[2]),
        mode="L" if images.shape[-1] == 1 else "RGB",
        label_column=label_column,
        label_names=list(label_names),
        class_counts={name: int(c) for name, c in zip(label_names, counts)},
        source_format=source_format,
        notes=list(notes or []),
    )
