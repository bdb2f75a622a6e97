"""Reversible image encoding: uint8 NHWC pixels <-> float32 NCHW in a fixed range.

`decode(encode(x)) == x` exactly for every uint8 input; `decode` also takes any float array a
model produces (values outside the range are clipped, NaN becomes the low end).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synthaug.schema.image import CHANNELS, ImageMode, ImageSchema


@dataclass(frozen=True)
class ImageTransform:
    size: tuple[int, int]  # (height, width)
    mode: ImageMode
    value_range: tuple[float, float] = (0.0, 1.0)  # (0, 1), or (-1, 1) for tanh outputs

    def __post_init__(self) -> None:
        if self.mode not in CHANNELS:
            raise ValueError(f"mode must be one of {sorted(CHANNELS)}, got {self.mode!r}")
        h, w = (int(v) for v in self.size)
        if h <= 0 or w <= 0:
            raise ValueError(f"size must be positive (height, width), got {self.size}")
        lo, hi = (float(v) for v in self.value_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"value_range must be finite (low, high) with low < high, got {self.value_range}")
        object.__setattr__(self, "size", (h, w))
        object.__setattr__(self, "value_range", (lo, hi))

    @classmethod
    def from_schema(cls, schema: ImageSchema, value_range: tuple[float, float] = (0.0, 1.0)) -> ImageTransform:
        return cls((schema.height, schema.width), schema.mode, value_range)

    @property
    def channels(self) -> int:
        return CHANNELS[self.mode]

    @property
    def shape(self) -> tuple[int, int, int]:
        """One encoded image: (C, H, W)."""
        return (self.channels, *self.size)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) -> float32 (N, C, H, W) in value_range."""
        images = np.asarray(images)
        expected = (*self.size, self.channels)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(f"encode expects uint8 (N, {expected[0]}, {expected[1]}, {expected[2]}), got {images.dtype} {images.shape}")
        lo, hi = self.value_range
        unit = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
        return np.ascontiguousarray(unit * np.float32(hi - lo) + np.float32(lo))

    def decode(self, values: Any) -> np.ndarray:
        """float (N, C, H, W) -> uint8 (N, H, W, C): clip to value_range, round to the nearest level."""
        if hasattr(values, "detach"):  # a torch tensor, without importing torch
            values = values.detach().cpu().numpy()
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 4 or values.shape[1:] != self.shape:
            raise ValueError(f"decode expects (N, {', '.join(map(str, self.shape))}), got {values.shape}")
        lo, hi = self.value_range
        unit = (np.nan_to_num(values, nan=lo) - np.float32(lo)) / np.float32(hi - lo)
        levels = np.rint(np.clip(unit, 0.0, 1.0) * 255)
        return np.ascontiguousarray(levels.astype(np.uint8).transpose(0, 2, 3, 1))

    def state_dict(self) -> dict:
        return {"size": list(self.size), "mode": self.mode, "value_range": list(self.value_range)}

    @classmethod
    def from_state(cls, state: dict) -> ImageTransform:
        return cls(tuple(state["size"]), state["mode"], tuple(state["value_range"]))
