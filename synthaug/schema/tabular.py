"""Column kinds, schema inference from an Arrow table, and the schema JSON.

A schema records what each column is (its kind) and what the real data looked like
(bounds, categories, null rate), plus the source's exact Arrow schema so synthetic shards
can be written with the same names, order and types.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from synthaug.errors import BadInput

Kind = Literal["continuous", "integer", "categorical", "boolean", "datetime", "id", "constant"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|^key$)", re.IGNORECASE)
# Columns whose fields a user may set in a schema override file.
_OVERRIDABLE = {"kind", "min", "max", "decimals", "categories"}


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind
    dtype: str  # the Arrow type, for people reading the JSON
    null_rate: float = 0.0
    min: float | None = None  # numeric bounds; datetimes as integer ticks of `unit`
    max: float | None = None
    decimals: int | None = None  # continuous: digits after the point seen in the data
    categories: list[Any] | None = None
    value: Any = None  # constant columns
    unit: str | None = None  # datetime tick unit (s, ms, us, ns)
    tz: str | None = None
    step: int | None = None  # datetime: every value is a multiple of this many ticks (a day, a second...)
    prefix: str | None = None  # id columns: common string prefix kept on new ids

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("continuous", "integer", "datetime")


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    columns: list[ColumnSpec]
    arrow: str  # base64 of the source's Arrow schema (IPC), so shards match it exactly

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def arrow_schema(self) -> pa.Schema:
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.arrow)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValidationError, ValueError) as exc:
            raise BadInput(f"{path}: not a synthaug schema JSON ({_first_line(exc)})") from None


def arrow_to_base64(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _py(value: Any) -> Any:
    """numpy scalar -> plain Python value, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _decimals(values: np.ndarray) -> int | None:
    """Fewest digits after the point that represent every value exactly (None if > 6)."""
    for d in range(7):
        scaled = values * 10**d
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return d
    return None


_TICKS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _tick_step(ticks: np.ndarray, unit: str) -> int:
    """The coarsest of day/hour/minute/second/ms/us/tick that every timestamp is a multiple of."""
    per_s = _TICKS_PER_SECOND[unit]
    for seconds in (86400, 3600, 60, 1):
        if np.all(ticks % (seconds * per_s) == 0):
            return seconds * per_s
    for step in (per_s // 1000, per_s // 10**6):
        if step >= 1 and np.all(ticks % step == 0):
            return step
    return 1


def _guess_kind(name: str, t: pa.DataType, values: pd.Series, n_rows: int) -> str:
    n_unique = values.nunique()
    if n_unique == 1:
        return "constant"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_integer(t):
        unique_key = n_unique == n_rows
        return "id" if unique_key and _ID_NAME.search(name) else "integer"
    if pa.types.is_floating(t):
        return "continuous"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        # A string column with a distinct value in every row is a key, not a category.
        return "id" if n_unique == n_rows and n_rows >= 20 else "categorical"
    return "categorical"


def _check_kind(name: str, kind: str, t: pa.DataType, source: str) -> None:
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
    ok = {
        "continuous": numeric,
        "integer": numeric,
        "datetime": pa.types.is_timestamp(t),
        "boolean": pa.types.is_boolean(t),
        "id": pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t),
    }.get(kind, True)
    if not ok:
        raise BadInput(
            f"{source}: column '{name}' has Arrow type {t}, which cannot be kind '{kind}'; "
            f"pick another kind or cast the column"
        )


def _supported(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _supported(t.value_type)
    return (
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_timestamp(t)
    )


def _describe(name: str, kind: str, field: pa.Field, values: pd.Series, null_rate: float) -> ColumnSpec:
    t = field.type
    spec = ColumnSpec(name=name, kind=kind, dtype=str(t), null_rate=round(float(null_rate), 6))
    if kind == "constant":
        spec.value = _py(values.iloc[0])
        if pa.types.is_timestamp(t):
            spec.value = int(pd.Timestamp(spec.value).value)  # ns ticks; JSON-safe
    elif kind in ("continuous", "integer"):
        arr = values.to_numpy(dtype=float)
        spec.min, spec.max = float(arr.min()), float(arr.max())
        if kind == "continuous":
            spec.decimals = _decimals(arr)
    elif kind == "datetime":
        spec.unit, spec.tz = t.unit, (str(t.tz) if t.tz else None)
        ticks = pa.array(values, type=t).cast(pa.int64()).to_numpy()
        spec.min, spec.max = float(ticks.min()), float(ticks.max())
        spec.step = _tick_step(ticks, t.unit)
    elif kind in ("categorical", "boolean"):
        cats = pd.unique(values)
        if isinstance(values.dtype, pd.CategoricalDtype):
            cats = [c for c in values.cat.categories if c in set(cats)]
        spec.categories = sorted((_py(c) for c in cats), key=lambda c: (str(type(c)), c))
    elif kind == "id":
        strings = values.astype(str)
        prefix = _common_prefix(strings.tolist()) if pa.types.is_string(t) or pa.types.is_large_string(t) else None
        spec.prefix = prefix
        if pa.types.is_integer(t):
            spec.min, spec.max = float(values.min()), float(values.max())
    return spec


def _common_prefix(values: list[str]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    n = 0
    while n < min(len(lo), len(hi)) and lo[n] == hi[n]:
        n += 1
    return re.sub(r"\d+$", "", lo[:n])


def infer_schema(
    table: pa.Table,
    *,
    source: str = "data",
    overrides: dict[str, dict[str, Any]] | None = None,
    overrides_source: str = "schema override",
) -> Schema:
    """Infer one ColumnSpec per column; `overrides` maps column name -> fields to force."""
    overrides = overrides or {}
    unknown = [n for n in overrides if n not in table.column_names]
    if unknown:
        raise BadInput(
            f"{overrides_source}: column '{unknown[0]}' is not in {source}; "
            f"columns there are: {', '.join(table.column_names)}"
        )
    df = table.to_pandas()
    n_rows = len(df)
    columns = []
    for field in table.schema:
        name, t = field.name, field.type
        if not _supported(t):
            raise BadInput(
                f"{source}: column '{name}' has unsupported Arrow type {t}; "
                f"cast it to a number, string, bool or timestamp, or drop it"
            )
        values = df[name]
        if pd.api.types.is_float_dtype(values.dtype):
            values = values.replace([np.inf, -np.inf], np.nan)  # inf is treated as missing
        nonnull = values.dropna()
        if nonnull.empty:
            raise BadInput(f"{source}: column '{name}' is entirely null; drop it or fill it before running")
        base_type = t.value_type if pa.types.is_dictionary(t) else t
        override = overrides.get(name, {})
        bad = set(override) - _OVERRIDABLE
        if bad:
            raise BadInput(
                f"{overrides_source}: column '{name}' sets '{sorted(bad)[0]}'; "
                f"a schema override may set only: {', '.join(sorted(_OVERRIDABLE))}"
            )
        kind = override.get("kind") or _guess_kind(name, base_type, nonnull, n_rows)
        if kind not in KINDS:
            raise BadInput(f"{overrides_source}: column '{name}' has kind '{kind}'; kinds are: {', '.join(KINDS)}")
        _check_kind(name, kind, base_type, overrides_source if "kind" in override else source)
        null_rate = 1.0 - len(nonnull) / n_rows
        spec = _describe(name, kind, field, nonnull, null_rate)
        for key in ("min", "max", "decimals", "categories"):
            if key in override:
                setattr(spec, key, override[key])
        columns.append(spec)
    plain = pa.schema([f for f in table.schema], metadata=_non_pandas_metadata(table.schema))
    return Schema(columns=columns, arrow=arrow_to_base64(plain))


def _non_pandas_metadata(schema: pa.Schema) -> dict[bytes, bytes] | None:
    meta = {k: v for k, v in (schema.metadata or {}).items() if k != b"pandas"}
    return meta or None


def read_overrides(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a schema override file: a saved synthaug schema or {"columns": {name: {field: value}}}."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: schema file not found; fix the path in source.schema")
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not valid JSON ({_first_line(exc)}); fix the file") from None
    columns = raw.get("columns") if isinstance(raw, dict) else None
    if isinstance(columns, list):  # a full saved schema: keep what a user may override
        return {c["name"]: {k: v for k, v in c.items() if k in _OVERRIDABLE} for c in columns}
    if isinstance(columns, dict) and all(isinstance(v, dict) for v in columns.values()):
        return columns
    raise BadInput(f'{path}: expected {{"columns": {{"<name>": {{"kind": ...}}}}}}; see README "Schema"')
