"""Checks for tabular generators: Arrow schema, values within the data's, conditions, input checks."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synthaug.errors import BadInput
from synthaug.schema import Schema
from synthaug.testing.context import BATCH, N_SAMPLE, Context, fail, schema_difference


def check_samples_match_schema(ctx: Context) -> None:
    """Right row count and batching; Arrow schema equal to the source; values within what the data showed."""
    name = "samples match schema"
    gen = ctx.fitted
    if not hasattr(gen, "sample_batches"):
        raise fail(ctx, name, "tabular generators must provide sample_batches(n, *, seed, conditions, batch_size) yielding Arrow tables")
    batches = list(gen.sample_batches(N_SAMPLE, seed=0, batch_size=BATCH))
    sizes = [b.num_rows for b in batches]
    if sum(sizes) != N_SAMPLE or any(s > BATCH or s == 0 for s in sizes):
        raise fail(ctx, name, f"sample_batches({N_SAMPLE}, batch_size={BATCH}) yielded batches of {sizes} rows")
    table = pa.concat_tables(batches)
    schema = ctx.schema
    expected = schema.arrow_schema()
    if not table.schema.equals(expected, check_metadata=False):
        raise fail(ctx, name, f"Arrow schema differs from the source's: {schema_difference(table.schema, expected)}")
    frames = list(gen.sample(N_SAMPLE, seed=0, batch_size=BATCH))
    if not all(isinstance(f, pd.DataFrame) for f in frames) or sum(len(f) for f in frames) != N_SAMPLE:
        raise fail(ctx, name, f"sample() must yield DataFrames totalling {N_SAMPLE} rows")
    if list(frames[0].columns) != schema.names:
        raise fail(ctx, name, f"sample() columns {list(frames[0].columns)} are not the schema's {schema.names}")
    for spec in schema.columns:
        col = table[spec.name]
        if spec.null_rate == 0 and col.null_count:
            raise fail(ctx, name, f"column '{spec.name}' has no nulls in the data but {col.null_count} in the samples")
        if spec.kind in ("categorical", "boolean"):
            dense = col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
            unseen = set(pc.unique(dense).drop_null().to_pylist()) - set(spec.categories or [])
            if unseen:
                raise fail(ctx, name, f"column '{spec.name}' has values never seen in the data: {sorted(unseen, key=str)[:5]}")
        elif spec.kind == "constant":
            values = set(col.drop_null().cast(pa.int64()).to_pylist() if pa.types.is_timestamp(col.type) else col.drop_null().to_pylist())
            if values - {spec.value}:
                raise fail(ctx, name, f"constant column '{spec.name}' has values {sorted(values, key=str)[:5]}, want only {spec.value!r}")
        elif spec.kind in ("continuous", "integer", "datetime"):
            numeric = col.cast(pa.int64()) if spec.kind == "datetime" else col
            lo, hi = pc.min(numeric).as_py(), pc.max(numeric).as_py()
            if lo is not None and (lo < spec.min or hi > spec.max):
                raise fail(ctx, name, f"column '{spec.name}' ranges over [{lo}, {hi}], outside the data's [{spec.min}, {spec.max}]")
        elif spec.kind == "id":
            if pc.count_distinct(col).as_py() != table.num_rows:
                raise fail(ctx, name, f"id column '{spec.name}' repeats values across the {table.num_rows} sampled rows")


def _condition_column(schema: Schema, table: pa.Table) -> tuple[str, Any] | None:
    """A categorical column and its second most common category (not just the mode)."""
    for spec in schema.columns:
        if spec.kind == "categorical" and spec.categories and len(spec.categories) >= 2 and spec.null_rate == 0:
            counts = table[spec.name].to_pandas().value_counts()
            return spec.name, counts.index[1 if len(counts) > 1 else 0]
    return None


def check_conditions(ctx: Context) -> None:
    """conditions={column: category} yields only rows with that category."""
    found = _condition_column(ctx.schema, ctx.table)
    if found is None:
        return  # nothing to condition on in this data
    column, value = found
    table = ctx.sample(seed=0, conditions={column: value})
    values = set(table[column].to_pylist())
    if table.num_rows != N_SAMPLE or values != {value}:
        raise fail(
            ctx, "conditions", f"conditions={{{column!r}: {value!r}}} gave {table.num_rows} rows with values {sorted(values, key=str)}"
        )


def check_bad_conditions(ctx: Context) -> None:
    """An unknown column or an unseen category in conditions is BadInput naming it."""
    gen = ctx.fitted
    found = _condition_column(ctx.schema, ctx.table)
    bad = [({"no_such_column_xyz": 1}, "no_such_column_xyz")]
    if found:
        bad.append(({found[0]: "never_seen_value_xyz"}, "never_seen_value_xyz"))
    for conditions, needle in bad:
        try:
            next(iter(gen.sample_batches(5, seed=0, conditions=conditions)))
        except BadInput as exc:
            if needle not in str(exc):
                raise fail(ctx, "bad conditions", f"BadInput for conditions={conditions} does not name '{needle}': {exc}") from None
        except Exception as exc:
            raise fail(
                ctx, "bad conditions", f"conditions={conditions} raised {type(exc).__name__}({exc}), not synthaug.errors.BadInput"
            ) from None
        else:
            raise fail(ctx, "bad conditions", f"conditions={conditions} were accepted; raise BadInput naming the column or value")


def check_fit_rejects_missing_column(ctx: Context) -> None:
    """A schema naming a column the data lacks is BadInput naming it."""
    data = ctx.table
    dropped = data.column_names[-1]
    try:
        ctx.new().fit(data.drop_columns([dropped]), ctx.schema, ctx.trainer, seed=0)
    except BadInput as exc:
        if dropped not in str(exc):
            raise fail(ctx, "fit rejects missing column", f"BadInput does not name the missing column '{dropped}': {exc}") from None
    except Exception as exc:
        raise fail(ctx, "fit rejects missing column", f"raised {type(exc).__name__}({exc}), not BadInput naming '{dropped}'") from None
    else:
        raise fail(ctx, "fit rejects missing column", f"fit() accepted data without the schema's column '{dropped}'")


def check_rebalance(ctx: Context) -> None:
    """Tags(rebalance=True): sample_mixture gives exactly the requested count per category, mixed."""
    found = _condition_column(ctx.schema, ctx.table)
    if found is None:
        return
    column = found[0]
    categories = list(ctx.schema.column(column).categories)[:2]
    batches = list(ctx.fitted.sample_mixture(40, column=column, shares={categories[0]: 1, categories[1]: 3}, seed=0, batch_size=BATCH))
    table = pa.concat_tables(batches)
    counts = pd.Series(table[column].to_pylist()).value_counts().to_dict()
    if counts != {categories[0]: 10, categories[1]: 30}:
        raise fail(ctx, "rebalance", f"shares 1:3 over 40 rows gave counts {counts}, want {{{categories[0]!r}: 10, {categories[1]!r}: 30}}")
