"""Sampling pieces every tabular generator shares: seeded batches, conditions by bounded
rejection, and regenerated id columns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from synthaug.errors import BadInput
from synthaug.schema import ColumnSpec, Schema

# Rejection sampling for conditions draws at most this many rows per requested row.
MAX_REJECTION_FACTOR = 200


def batch_seed(seed: int, *path: int) -> int:
    """A 32-bit seed for batch `path` of a run seeded with `seed` (independent streams)."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0])


def condition_filter(schema: Schema, conditions: dict[str, Any]) -> Callable[[pa.Table], pa.ChunkedArray] | None:
    """Check conditions against the schema; return a table -> boolean mask function, or None."""
    if not conditions:
        return None
    import pyarrow.compute as pc

    tests = []
    for name, want in conditions.items():
        if name not in schema.names:
            raise BadInput(f"condition on unknown column '{name}'; columns are: {', '.join(schema.names)}")
        spec = schema.column(name)
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


def rejection_batches(
    draw: Callable[[int, int, int], pa.Table],
    n: int,
    *,
    schema: Schema,
    conditions: dict[str, Any] | None,
    batch_size: int,
    who: str,
) -> Iterator[pa.Table]:
    """Yield batches totalling `n` rows that meet `conditions`.

    `draw(k, batch_no, round_no)` returns k sampled rows as an Arrow table; rounds repeat until the
    batch is full or MAX_REJECTION_FACTOR rows per wanted row were drawn (then BadInput, not a hang).
    Ids are renumbered globally, since rejection drops rows.
    """
    if n <= 0:
        raise BadInput(f"n_rows must be > 0 (got {n})")
    accept = condition_filter(schema, conditions or {})
    done, batch_no = 0, 0
    while done < n:
        want = min(batch_size, n - done)
        parts, got, drawn, round_no = [], 0, 0, 0
        while got < want:
            if drawn > MAX_REJECTION_FACTOR * want:
                raise BadInput(
                    f"conditions {conditions} were met by {got} of {drawn} sampled rows; "
                    f"they are too rare for {who}: widen them or use a conditional family (gan, rbm)"
                )
            k = want - got if accept is None else max(4 * (want - got), 256)
            table = draw(k, batch_no, round_no)
            drawn, round_no = drawn + k, round_no + 1
            if accept is not None:
                table = table.filter(accept(table))
            parts.append(table.slice(0, want - got))
            got += parts[-1].num_rows
        yield renumber_ids(pa.concat_tables(parts), schema, done)
        done, batch_no = done + want, batch_no + 1


def new_ids(spec: ColumnSpec, t: pa.DataType, start: int, n: int) -> pa.Array:
    """Ids numbered start..start+n-1: past the real maximum for integers, prefix + 'syn' + number for strings."""
    index = np.arange(start, start + n)
    if pa.types.is_integer(t):
        return pa.array(_integer_ids(spec, t, start, n), type=t)
    return pa.array([f"{spec.prefix or ''}syn{i:08d}" for i in index], type=t)


def _integer_ids(spec: ColumnSpec, t: pa.DataType, start: int, n: int) -> np.ndarray:
    """New integer ids above the data's maximum, or below its minimum when the type has no room
    above; computed in Python integers so int64/uint64 limits never wrap."""
    info = np.iinfo(t.to_pandas_dtype())
    high, low = int(spec.max if spec.max is not None else 0), int(spec.min if spec.min is not None else 0)
    if high + start + n <= info.max:
        first, step = high + 1 + start, 1
    elif low - start - n >= info.min:
        first, step = low - 1 - start, -1
    else:
        raise BadInput(f"id column '{spec.name}' ({t}) has no room for {start + n} new ids outside the data's range")
    return np.arange(n, dtype=object) * step + first


def renumber_ids(table: pa.Table, schema: Schema, start: int) -> pa.Table:
    for spec in schema.columns:
        if spec.kind == "id":
            i = table.schema.get_field_index(spec.name)
            table = table.set_column(i, table.field(i), new_ids(spec, table.field(i).type, start, table.num_rows))
    return table


def apportion(n: int, weights: dict[Any, float]) -> dict[Any, int]:
    """Split n into integer counts proportional to weights (largest remainder; ties by order)."""
    keys = list(weights)
    w = np.array([max(float(weights[k]), 0.0) for k in keys])
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return dict(zip(keys, counts.tolist()))
