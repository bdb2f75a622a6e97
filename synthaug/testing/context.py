"""What the checks of one generator share: its class, the data, one lazily fitted model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthaug.generators.base import Generator, get_generator
from synthaug.schema import Schema, infer_schema
from synthaug.testing.data import tiny_table
from synthaug.training.config import TrainerConfig

N_SAMPLE = 50  # rows per sampling check
BATCH = 20  # batch size used by the sampling checks, so several batches are exercised


@dataclass
class Context:
    """What the checks of one generator share: its class, the data, and one lazily fitted model."""

    target: str | type[Generator]
    data: pa.Table | pd.DataFrame | Any | None  # an ImageSet for modality "image"
    config: Any
    trainer: TrainerConfig
    _fitted: Generator | None = field(default=None, repr=False)
    _fit_returned: Any = field(default=None, repr=False)
    _refit: tuple[Generator, str | None] | None = field(default=None, repr=False)
    fit_seconds: float | None = None

    @property
    def cls(self) -> type[Generator]:
        return get_generator(self.target) if isinstance(self.target, str) else self.target

    @property
    def label(self) -> str:
        return getattr(self.cls, "name", self.cls.__name__)

    @property
    def table(self) -> pa.Table:
        if self.data is None:
            return tiny_table()
        return self.data if isinstance(self.data, pa.Table) else pa.Table.from_pandas(self.data, preserve_index=False)

    @property
    def images(self):
        """Modality "image": the ImageSet given as data, else `testing.image.tiny_images()`."""
        from synthaug.testing.image import tiny_images

        return tiny_images() if self.data is None else self.data

    @property
    def schema(self) -> Schema:
        if self.cls.modality == "image":
            return self.images.schema
        return infer_schema(self.table)

    def new(self) -> Generator:
        return self.cls(self.config)

    def fit(self, seed: int = 0) -> tuple[Generator, Any]:
        gen = self.new()
        start = time.perf_counter()
        data = self.images if self.cls.modality == "image" else self.table
        returned = gen.fit(data, self.schema, self.trainer, seed=seed)
        self.fit_seconds = round(time.perf_counter() - start, 2)
        return gen, returned

    @property
    def refitted(self) -> tuple[Generator, str | None]:
        """A second fit with seed 0 (sampled once), and what it did to the global RNGs (None: nothing)."""
        if self._refit is None:
            import torch

            np_before, torch_before = np.random.get_state()[1].copy(), torch.random.get_rng_state().clone()
            gen, _ = self.fit(seed=0)
            self.sample(gen, seed=1)
            changed = None
            if not np.array_equal(np.random.get_state()[1], np_before):
                changed = "numpy's global random state; use a local np.random.Generator or save and restore it"
            elif not torch.equal(torch.random.get_rng_state(), torch_before):
                changed = "torch's global random state; use torch.random.fork_rng or a torch.Generator"
            self._refit = (gen, changed)
        return self._refit

    @property
    def fitted(self) -> Generator:
        if self._fitted is None:
            self._fitted, self._fit_returned = self.fit(seed=0)
        return self._fitted

    def sample(self, gen: Generator | None = None, *, n: int = N_SAMPLE, seed: int = 0, conditions=None) -> pa.Table:
        gen = gen or self.fitted
        batches = list(gen.sample_batches(n, seed=seed, conditions=conditions, batch_size=BATCH))
        if self.cls.modality == "image":
            from synthaug.generators.image.base import ImageBatch

            return ImageBatch.concat(batches)
        return pa.concat_tables(batches) if batches else pa.table({})


def fail(ctx: Context, check: str, message: str) -> AssertionError:
    return AssertionError(f"{ctx.label}: {check}: {message}")


def same(a: pa.Table, b: pa.Table) -> bool:
    if not isinstance(a, pa.Table):  # image batches: pixels, labels and keys
        return a.images.shape == b.images.shape and (a.images == b.images).all() and (a.labels == b.labels).all() and a.keys == b.keys
    return a.schema.equals(b.schema) and a.equals(b)


def schema_difference(got: pa.Schema, want: pa.Schema) -> str:
    if got.names != want.names:
        return f"columns {got.names}, want {want.names} (same names, same order)"
    for g, w in zip(got, want):
        if not g.equals(w):
            return f"column '{w.name}' is {g.type}{'' if g.nullable else ' not null'}, want {w.type}{'' if w.nullable else ' not null'}"
    return f"got {got}, want {want}"


def first_difference(a: pa.Table, b: pa.Table) -> str:
    if not isinstance(a, pa.Table):
        for part in ("images", "labels"):
            x, y = getattr(a, part), getattr(b, part)
            if x.shape != y.shape or not (x == y).all():
                where = np.argwhere(x != y)[0].tolist() if x.shape == y.shape else f"shapes {x.shape} vs {y.shape}"
                return f"{part} differ (first at {where})"
        return "keys differ"
    for name in a.column_names:
        if name in b.column_names and not a[name].equals(b[name]):
            return f"column '{name}' differs, e.g. {a[name].slice(0, 3).to_pylist()} vs {b[name].slice(0, 3).to_pylist()}"
    return f"schemas differ: {a.schema} vs {b.schema}"
