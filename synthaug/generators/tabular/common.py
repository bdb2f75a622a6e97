"""What every tabular family shares: checks, encoding, seeded batched sampling, conditions, save/load.

A family implements three things on its torch module: `_fit(x, trainer, seed)` on the encoded
float matrix, `_sample(n, generator, fixed)` returning encoded rows, and `_build()` creating its
untrained module from `self.config` and `self.encoder` (used by load).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from synthaug.errors import BadInput
from synthaug.generators.base import FORMAT_VERSION, MANIFEST, Generator, TrainerConfig, read_manifest
from synthaug.generators.sampling import batch_seed, rejection_batches, renumber_ids
from synthaug.schema import Schema
from synthaug.transforms.tabular import TabularEncoder

WEIGHTS = "weights.pt"


class TabularGenerator(Generator):
    modality = "tabular"

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.schema: Schema | None = None
        self.encoder: TabularEncoder | None = None
        self.module = None

    # -- the public methods coordinate -----------------------------------------
    def fit(self, data, schema: Schema | None = None, trainer: TrainerConfig | None = None, *, seed: int = 0):
        table, schema = self._checked_input(data, schema)
        df = table.select(schema.names).to_pandas()
        self.schema = schema
        self.encoder = TabularEncoder().fit(df, schema, seed=seed)
        x = self.encoder.encode(df)
        self._fit(x, trainer or TrainerConfig(), seed)
        return self

    def sample_tables(self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000) -> Iterator[pa.Table]:
        """Yield Arrow tables with the source's exact schema. Batch i is seeded by (seed, i)."""
        import torch

        self._require_fitted()
        fixed = self._fixed_categories(conditions or {}) if conditions else {}
        gen = torch.Generator()

        def draw(k: int, batch_no: int, round_no: int) -> pa.Table:
            if round_no == 0:  # one torch stream per batch, continued by rejection rounds
                gen.manual_seed(batch_seed(seed, batch_no))
            return self.encoder.decode(self._sample(k, gen, fixed))

        return rejection_batches(draw, n, schema=self.schema, conditions=conditions, batch_size=batch_size, who=self.name)

    def sample_mixture(
        self,
        n: int,
        *,
        column: str,
        shares: dict[Any, float],
        seed: int = 0,
        conditions: dict[str, Any] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.Table]:
        """`n` rows whose `column` follows `shares` (category -> weight) exactly, for rebalancing.

        Each category is sampled with a condition on it; every batch mixes the categories in
        their remaining proportions and is shuffled (seeded), so shards are not sorted by class.
        """
        self._require_fitted()
        total = apportion(n, shares)
        left = dict(total)
        done, batch_no = 0, 0
        while done < n:
            want = min(batch_size, n - done)
            counts = apportion(want, left) if want < sum(left.values()) else dict(left)
            parts = []
            for i, (category, k) in enumerate(counts.items()):
                if k:
                    parts += self.sample_tables(k, seed=batch_seed(seed, batch_no, i), conditions={**(conditions or {}), column: category}, batch_size=k)
                left[category] -= k
            order = np.random.default_rng([seed, batch_no]).permutation(want)
            yield renumber_ids(pa.concat_tables(parts).take(order), self.schema, done)
            done += want
            batch_no += 1

    def _fixed_categories(self, conditions: dict[str, Any]) -> dict[int, int]:
        """Equality conditions on categorical columns as {one-hot span start: category index}.

        Families that can condition natively (GAN conditional vector, RBM clamping) use this;
        the rejection filter still runs afterwards, so every family returns only matching rows.
        """
        fixed = {}
        for name, want in conditions.items():
            spec = self.schema.column(name) if name in self.schema.names else None
            if spec and spec.kind in ("categorical", "boolean") and want in (spec.categories or []):
                span = next(s for s in self.encoder.spans_of(name) if s.role == "category")
                fixed[span.start] = list(self.encoder.columns[name]["categories"]).index(want)
        return fixed

    def _require_fitted(self) -> None:
        if self.module is None or self.encoder is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(data) or load(path) before sample()")

    # -- save / load -------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        import torch

        self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "config": self.config.model_dump(mode="json"),
            "schema": self.schema.model_dump(mode="json"),
            "encoder": self.encoder.state_dict(),
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=1))
        torch.save(self.module.state_dict(), path / WEIGHTS)

    @classmethod
    def load(cls, path: str | Path):
        import torch

        path = Path(path)
        manifest = read_manifest(path)
        if manifest.get("name") != cls.name:
            raise BadInput(f"{path}: holds a '{manifest.get('name')}' model, not '{cls.name}'; use synthaug.load_generator")
        gen = cls(manifest["config"])
        gen.schema = Schema.model_validate(manifest["schema"])
        gen.encoder = TabularEncoder.from_state(manifest["encoder"], gen.schema)
        gen.module = gen._build()
        try:
            state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
            gen.module.load_state_dict(state)
        except Exception as exc:  # torch raises many types for a damaged file
            raise BadInput(f"{path / WEIGHTS}: weights cannot be read ({type(exc).__name__}); the file is corrupt, re-save the model") from None
        gen.module.eval()
        return gen

    # -- what a family implements -------------------------------------------------
    def _build(self):
        raise NotImplementedError

    def _fit(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> None:
        raise NotImplementedError

    def _sample(self, n: int, generator, fixed: dict[int, int]) -> np.ndarray:
        """`n` encoded rows drawn with the torch `generator`; `fixed` as in _fixed_categories."""
        raise NotImplementedError


def sample_onehots(logits, spans, generator):
    """Replace each softmax span of `logits` (torch, rows x width) by a one-hot draw from it."""
    return draw_groups(logits, tuple((s.start, s.stop) for s in spans if s.kind == "softmax"), generator)


def draw_groups(logits, groups: tuple[tuple[int, int], ...], generator):
    """Replace each `(start, stop)` group of `logits` by a one-hot categorical draw from its softmax.

    All groups at once (inverse CDF with one uniform per row and group), so the cost does not
    grow with the number of groups in Python; wide tables have dozens of mode and category groups.
    """
    import torch

    out = logits.clone()
    if not groups:
        return out
    cols, gid, member, first, last = _group_index(groups)
    n = len(logits)
    x = logits[:, cols].double()
    index = gid.expand(n, -1)
    peak = torch.full((n, len(groups)), -torch.inf, dtype=x.dtype).scatter_reduce(1, index, x, "amax")
    e = torch.exp(x - peak.gather(1, index))
    cum = e.cumsum(1)
    within = cum - (cum - e)[:, first].gather(1, index)  # cumulative sum restarted at each group
    threshold = torch.rand(n, len(groups), generator=generator, dtype=x.dtype) * within[:, last]
    rank = ((within <= threshold.gather(1, index)).to(x.dtype) @ member).long()  # units passed in each group
    pick = first + torch.minimum(rank, last - first)
    out[:, cols] = torch.zeros(n, len(cols), dtype=out.dtype).scatter_(1, pick, 1.0)
    return out


@functools.lru_cache(maxsize=64)
def _group_index(groups: tuple[tuple[int, int], ...]):
    """Columns of the groups, each column's group, the column-to-group 0/1 matrix, and each group's first and last position."""
    import torch

    cols = torch.tensor([j for a, b in groups for j in range(a, b)])
    gid = torch.tensor([g for g, (a, b) in enumerate(groups) for _ in range(a, b)])
    member = torch.nn.functional.one_hot(gid, len(groups)).double()
    widths = torch.tensor([b - a for a, b in groups])
    first = widths.cumsum(0) - widths
    return cols, gid, member, first, first + widths - 1


def apportion(n: int, weights: dict[Any, float]) -> dict[Any, int]:
    """Split n into integer counts proportional to weights (largest remainder; ties by order)."""
    keys = list(weights)
    w = np.array([max(float(weights[k]), 0.0) for k in keys])
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return dict(zip(keys, counts.tolist()))
