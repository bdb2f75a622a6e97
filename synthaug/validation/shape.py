"""Cheap per-shard checks against the schema: Arrow types, category sets, numeric bounds.

Bounds. A column's min/max in the schema are either declared (a schema override set them: checked
exactly) or observed in the training rows. Observed bounds are only a sample's extremes: fresh rows
from the same source (and honest samples from a model that does not clamp) fall a little outside
them. So validation widens observed bounds by BOUNDS_MARGIN of the observed range on each side
(integer and datetime bounds outward to whole ticks), never past the column type's own limits.
The same rule is used here and in the Great Expectations suite (expectations.build_suite).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthaug.schema import ColumnSpec, Schema

BOUNDS_MARGIN = 0.10  # share of the observed range added on each side of observed (not declared) bounds


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def tolerant_bounds(spec: ColumnSpec) -> tuple[int | float | None, int | float | None]:
    """The bounds a shard's values must lie within: declared ones exactly, observed ones widened.

    Integer columns and datetimes (integer ticks) widen outward in exact integer arithmetic, so
    int64/uint64 bounds never pass through a float; the result is clipped to the Arrow type's range.
    """
    lo, hi = spec.min, spec.max
    if lo is None or hi is None or getattr(spec, "bounds", "data") == "declared":
        return lo, hi
    if isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool):
        span = hi - lo
        margin = -(-span // 10) if span else max(1, abs(hi) // 10)  # ceil(span * 0.10): BOUNDS_MARGIN in integers
        lo, hi = lo - margin, hi + margin
        limits = _int_limits(spec.dtype)
        return (max(lo, limits[0]), min(hi, limits[1])) if limits else (lo, hi)
    lo, hi = float(lo), float(hi)
    span = hi - lo
    margin = BOUNDS_MARGIN * span if span > 0 else BOUNDS_MARGIN * abs(hi)
    top = float(np.finfo(np.float64).max)
    wide_lo, wide_hi = lo - margin, hi + margin
    if spec.kind == "integer":  # an integer column held as floats (e.g. read from CSV): whole numbers, outward
        wide_lo, wide_hi = float(np.floor(wide_lo)), float(np.ceil(wide_hi))
    # ±1e308 data: the margin overflows to inf; the float's own limit is the widest bound.
    return (max(wide_lo, -top) if np.isfinite(wide_lo) else -top, min(wide_hi, top) if np.isfinite(wide_hi) else top)


def _int_limits(dtype: str) -> tuple[int, int] | None:
    name = str(dtype).lower()
    for bits in (8, 16, 32, 64):
        if name == f"int{bits}":
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if name == f"uint{bits}":
            return 0, 2**bits - 1
    return None


def check_shard(table: pa.Table, schema: Schema, shard: str) -> list[Check]:
    expected = schema.arrow_schema()
    checks = []
    same = (
        table.select(expected.names).schema.equals(expected, check_metadata=False)
        if set(expected.names) <= set(table.column_names)
        else False
    )
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
            numeric = _numeric(col, spec)
            lo, hi = pc.min(numeric).as_py(), pc.max(numeric).as_py()
            want_lo, want_hi = tolerant_bounds(spec)
            ok = lo is None or (lo >= want_lo and hi <= want_hi)
            declared = getattr(spec, "bounds", "data") == "declared"
            how = "declared" if declared else f"observed [{spec.min}, {spec.max}] widened by {BOUNDS_MARGIN:.0%}"
            checks.append(Check(f"{shard}: {spec.name} bounds", ok, "" if ok else f"[{lo}, {hi}] outside [{want_lo}, {want_hi}] ({how})"))
    return checks


def _numeric(col: pa.ChunkedArray, spec: ColumnSpec) -> pa.ChunkedArray:
    """Values min/max can be taken of: datetimes as int64 ticks, float16 as float32 (Arrow has no
    min/max kernel for halffloat), NaN as missing."""
    if spec.kind == "datetime":
        return col.cast(pa.int64())
    if pa.types.is_float16(col.type):
        col = col.cast(pa.float32())
    if pa.types.is_floating(col.type):
        col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
    return col
