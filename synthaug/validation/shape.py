"""Cheap per-shard checks against the schema: Arrow types, category sets, numeric bounds."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

from synthaug.schema import Schema


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_shard(table: pa.Table, schema: Schema, shard: str) -> list[Check]:
    expected = schema.arrow_schema()
    checks = []
    same = table.select(expected.names).schema.equals(expected, check_metadata=False) if set(expected.names) <= set(table.column_names) else False
    checks.append(Check(f"{shard}: arrow schema", same, "" if same else f"got {table.schema}, want {expected}"))
    if not same:
        return checks
    for spec in schema.columns:
        col = table[spec.name]
        if spec.kind in ("categorical", "boolean") and spec.categories is not None:
            values = pc.unique(col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col).drop_null().to_pylist()
            unseen = sorted({v for v in values} - set(spec.categories), key=str)
            checks.append(Check(f"{shard}: {spec.name} categories", not unseen, f"unseen values {unseen[:5]}" if unseen else ""))
        elif spec.kind in ("continuous", "integer", "datetime") and spec.min is not None:
            numeric = col.cast(pa.int64()) if spec.kind == "datetime" else col
            lo, hi = pc.min(numeric).as_py(), pc.max(numeric).as_py()
            ok = lo is None or (lo >= spec.min and hi <= spec.max)
            checks.append(Check(f"{shard}: {spec.name} bounds", ok, "" if ok else f"[{lo}, {hi}] outside [{spec.min}, {spec.max}]"))
    return checks
