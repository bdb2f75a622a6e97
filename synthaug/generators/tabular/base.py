"""The tabular half of the contract: Arrow in, Arrow out, encoding, conditions, rebalancing, save/load.

A family implements, on its LightningModule: `_build()` (an untrained module from `self.config`
and `self.encoder`), `_fit_encoded(x, trainer, seed)` on the encoded float matrix (returning
what `training.lightning.fit_module` reported), and `_sample(n, generator, fixed)` returning
encoded rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from synthaug.errors import BadInput
from synthaug.generators.base import MANIFEST, MIN_ROWS, Generator, build_checked, read_model, write_model
from synthaug.generators.sampling import apportion, batch_seed, rejection_batches, renumber_ids
from synthaug.schema import Schema
from synthaug.training.config import TrainerConfig
from synthaug.transforms.tabular import TabularEncoder

RULES_STREAM = 0x52554C45  # the random stream of rule enforcement within a batch ("RULE")


def to_pandas(table: pa.Table):
    """Arrow -> pandas with nullable integer and boolean dtypes (stable across batches)."""
    import pandas as pd

    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return table.to_pandas(types_mapper=nullable.get)


class TabularGenerator(Generator):
    modality = "tabular"

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.schema: Schema | None = None
        self.encoder: TabularEncoder | None = None
        self.module = None

    # -- the public methods coordinate -----------------------------------------
    def _check_data(self, data: Any, schema: Schema | None) -> tuple[pa.Table, Schema]:
        from synthaug.schema import infer_schema

        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        if table.num_rows < MIN_ROWS:
            raise BadInput(f"training data has {table.num_rows} rows; {self.name} needs at least {MIN_ROWS}")
        schema = schema or infer_schema(table)
        missing = [c for c in schema.names if c not in table.column_names]
        if missing:
            raise BadInput(
                f"column '{missing[0]}' of the schema is not in the training data; columns there: {', '.join(table.column_names)}"
            )
        return table.select(schema.names), schema

    def _fit(self, table: pa.Table, schema: Schema, trainer: TrainerConfig, *, seed: int) -> dict[str, Any] | None:
        self.schema = schema
        # Arrow in (not pandas): int64 columns with nulls stay exact instead of turning float64.
        self.encoder = TabularEncoder().fit(table, schema, seed=seed)
        x = self.encoder.encode(table)
        return self._fit_encoded(x, trainer, seed)

    def sample_batches(
        self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000
    ) -> Iterator[pa.Table]:
        """Yield Arrow tables with the source's exact schema. Batch i is seeded by (seed, i).

        Every decoded batch keeps the schema's structure rules (`synthaug.schema.rules.apply_rules`:
        derived columns computed from their inputs, granularity, dependencies, allowed combinations,
        inequalities) before the condition filter; the rows each rule repaired add up in
        `self.rule_repairs` (rule label -> rows, since the model was fitted or loaded).
        """
        import torch

        from synthaug.schema.rules import apply_rules

        self._require_fitted()
        fixed = self._fixed_categories(conditions or {}) if conditions else {}
        gen = torch.Generator()
        if not isinstance(getattr(self, "rule_repairs", None), Counter):
            self.rule_repairs = Counter()

        def draw(k: int, batch_no: int, round_no: int) -> pa.Table:
            if round_no == 0:  # one torch stream per batch, continued by rejection rounds
                gen.manual_seed(batch_seed(seed, batch_no))
            table = self.encoder.decode(self._sample(k, gen, fixed))
            table, repairs = apply_rules(table, self.schema, batch_seed(seed, batch_no, round_no, RULES_STREAM), fixed=conditions or {})
            self.rule_repairs.update(repairs)
            return table

        return rejection_batches(draw, n, schema=self.schema, conditions=conditions, batch_size=batch_size, who=self.name)

    def sample(self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000):
        """Yield pandas DataFrames (at most `batch_size` rows each) totalling `n` rows, with the same
        dtypes in every batch: integers and booleans as pandas' nullable types (Int64, boolean), so
        a batch that happens to hold a null does not turn an int column into float."""
        for table in self.sample_batches(n, seed=seed, conditions=conditions, batch_size=batch_size):
            yield to_pandas(table)

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
                    wanted = {**(conditions or {}), column: category}
                    parts += self.sample_batches(k, seed=batch_seed(seed, batch_no, i), conditions=wanted, batch_size=k)
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
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(data) or load(path) before sampling")

    # -- save / load -------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        self._require_fitted()
        state = {"schema": self.schema.model_dump(mode="json"), "encoder": self.encoder.state_dict()}
        write_model(path, self, state, self.module)

    @classmethod
    def load(cls, path: str | Path):
        manifest, state = read_model(cls, path, ("schema", "encoder"))
        gen = cls(manifest["config"])
        gen.fit_info = manifest.get("fit") or {}
        try:
            gen.schema = Schema.model_validate(manifest["schema"])
            gen.encoder = TabularEncoder.from_state(manifest["encoder"], gen.schema)
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(
                f"{Path(path) / MANIFEST}: schema or encoder state is damaged ({type(exc).__name__}); re-save the model"
            ) from None
        gen.module = build_checked(gen._build, state, path)
        return gen

    # -- what a family implements -------------------------------------------------
    def _build(self):
        raise NotImplementedError

    def _fit_encoded(self, x: np.ndarray, trainer: TrainerConfig, seed: int) -> dict[str, Any] | None:
        raise NotImplementedError

    def _sample(self, n: int, generator, fixed: dict[int, int]) -> np.ndarray:
        """`n` encoded rows drawn with the torch `generator`; `fixed` as in _fixed_categories."""
        raise NotImplementedError
