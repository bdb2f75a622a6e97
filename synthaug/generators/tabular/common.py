"""What every tabular family shares: checks, encoding, seeded batched sampling, conditions, save/load.

A family implements three things on its torch module: `_fit(x, trainer, seed)` on the encoded
float matrix, `_sample(n, generator, fixed)` returning encoded rows, and `_build()` creating its
untrained module from `self.config` and `self.encoder` (used by load).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthaug.errors import BadInput
from synthaug.generators.base import FORMAT_VERSION, MANIFEST, Generator, TrainerConfig, read_manifest
from synthaug.schema import Schema, infer_schema
from synthaug.transforms.tabular import TabularEncoder

MIN_ROWS = 10
WEIGHTS = "weights.pt"
# Rejection sampling for conditions draws at most this many rows per requested row.
MAX_REJECTION_FACTOR = 200


class TabularGenerator(Generator):
    modality = "tabular"

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.schema: Schema | None = None
        self.encoder: TabularEncoder | None = None
        self.module = None

    # -- the public methods coordinate -----------------------------------------
    def fit(self, data, schema: Schema | None = None, trainer: TrainerConfig | None = None, *, seed: int = 0):
        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        if table.num_rows < MIN_ROWS:
            raise BadInput(f"training data has {table.num_rows} rows; {self.name} needs at least {MIN_ROWS}")
        schema = schema or infer_schema(table)
        missing = [c for c in schema.names if c not in table.column_names]
        if missing:
            raise BadInput(f"column '{missing[0]}' of the schema is not in the training data; columns there: {', '.join(table.column_names)}")
        df = table.select(schema.names).to_pandas()
        self.schema = schema
        self.encoder = TabularEncoder().fit(df, schema, seed=seed)
        x = self.encoder.encode(df)
        self._fit(x, trainer or TrainerConfig(), seed)
        return self

    def sample(self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000) -> Iterator[pd.DataFrame]:
        """Yield DataFrames (at most `batch_size` rows each) totalling `n` rows."""
        for table in self.sample_tables(n, seed=seed, conditions=conditions, batch_size=batch_size):
            yield table.to_pandas()

    def sample_tables(self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000) -> Iterator[pa.Table]:
        """Yield Arrow tables with the source's exact schema. Batch i is seeded by (seed, i)."""
        import torch

        self._require_fitted()
        if n <= 0:
            raise BadInput(f"n_rows must be > 0 (got {n})")
        accept = self._condition_filter(conditions or {})
        fixed = self._fixed_categories(conditions or {})
        done, batch_no = 0, 0
        while done < n:
            want = min(batch_size, n - done)
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, batch_no]).generate_state(1)[0]))
            batch_no += 1
            parts, got, drawn = [], 0, 0
            while got < want:
                if drawn > MAX_REJECTION_FACTOR * want:
                    raise BadInput(
                        f"conditions {conditions} were met by {got} of {drawn} sampled rows; "
                        f"they are too rare for this model: widen them or use a conditional family (gan, rbm)"
                    )
                draw = max(want - got, 64) if accept is None else max(4 * (want - got), 256)
                table = self.encoder.decode(self._sample(draw, gen, fixed), start_index=0)
                drawn += draw
                if accept is not None:
                    table = table.filter(accept(table))
                parts.append(table.slice(0, want - got))
                got += parts[-1].num_rows
            batch = pa.concat_tables(parts)
            yield self._renumber_ids(batch, done)
            done += want

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
                    sub_seed = int(np.random.SeedSequence([seed, batch_no, i]).generate_state(1)[0])
                    parts += self.sample_tables(k, seed=sub_seed, conditions={**(conditions or {}), column: category}, batch_size=k)
                left[category] -= k
            order = np.random.default_rng([seed, batch_no]).permutation(want)
            yield self._renumber_ids(pa.concat_tables(parts).take(order), done)
            done += want
            batch_no += 1

    def _renumber_ids(self, table: pa.Table, start: int) -> pa.Table:
        """Regenerate id columns with globally unique numbers (rejection may have dropped rows)."""
        ids = [c for c in self.schema.columns if c.kind == "id"]
        if not ids:
            return table
        for spec in ids:
            i = table.schema.get_field_index(spec.name)
            table = table.set_column(i, table.field(i), self.encoder.new_ids(spec.name, start, table.num_rows))
        return table

    def _condition_filter(self, conditions: dict[str, Any]):
        """Check conditions against the schema; return a table -> mask function, or None."""
        if not conditions:
            return None
        import pyarrow.compute as pc

        tests = []
        for name, want in conditions.items():
            if name not in self.schema.names:
                raise BadInput(f"condition on unknown column '{name}'; columns are: {', '.join(self.schema.names)}")
            spec = self.schema.column(name)
            if isinstance(want, (list, tuple)) and spec.kind in ("continuous", "integer"):
                if len(want) != 2 or want[0] > want[1]:
                    raise BadInput(f"condition '{name}': a range is [low, high] with low <= high (got {want})")
                if want[1] < spec.min or want[0] > spec.max:
                    raise BadInput(f"condition '{name}': range {want} lies outside the data's [{spec.min}, {spec.max}]")
                tests.append(lambda t, n=name, w=want: pc.and_(pc.greater_equal(t[n], w[0]), pc.less_equal(t[n], w[1])))
            elif spec.kind in ("categorical", "boolean", "constant"):
                known = spec.categories if spec.kind != "constant" else [spec.value]
                if want not in known:
                    raise BadInput(f"condition '{name}': value {want!r} never occurs in the data; values are: {known}")
                tests.append(lambda t, n=name, w=want: pc.equal(t[n], w))
            else:
                raise BadInput(f"condition '{name}': conditions take a category of a categorical column or [low, high] of a numeric one")

        def accept(table: pa.Table):
            mask = tests[0](table)
            for test in tests[1:]:
                mask = pc.and_(mask, test(table))
            return pc.fill_null(mask, False)

        return accept

    def _fixed_categories(self, conditions: dict[str, Any]) -> dict[int, int]:
        """Equality conditions on categorical columns as {one-hot span start: category index}.

        Families that can condition natively (GAN conditional vector, RBM clamping) use this;
        the rejection filter still runs afterwards, so every family returns only matching rows.
        """
        fixed = {}
        for name, want in conditions.items():
            spec = self.schema.column(name)
            if spec.kind in ("categorical", "boolean") and not isinstance(want, (list, tuple)):
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
    import torch

    out = logits.clone()
    for s in spans:
        if s.kind != "softmax":
            continue
        probs = torch.softmax(logits[:, s.start : s.stop], dim=1)
        idx = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        out[:, s.start : s.stop] = torch.nn.functional.one_hot(idx, s.width).to(out.dtype)
    return out


def apportion(n: int, weights: dict[Any, float]) -> dict[Any, int]:
    """Split n into integer counts proportional to weights (largest remainder; ties by order)."""
    keys = list(weights)
    w = np.array([max(float(weights[k]), 0.0) for k in keys])
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return dict(zip(keys, counts.tolist()))
