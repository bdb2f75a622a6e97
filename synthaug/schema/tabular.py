"""Column kinds, schema inference from an Arrow table, and the schema JSON.

A schema records what each column is (its kind) and what the real data looked like
(bounds, categories, null rate), plus the source's exact Arrow schema so synthetic shards
can be written with the same names, order and types.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from synthaug.errors import BadInput
from synthaug.schema.rules import Rule, check_rules, discover_rules, labels, rule_violations

Kind = Literal["continuous", "integer", "categorical", "boolean", "datetime", "id", "constant"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|^key$)", re.IGNORECASE)
# Columns whose fields a user may set in a schema override file.
_OVERRIDABLE = {"kind", "min", "max", "decimals", "categories"}


class DataWarning(UserWarning):
    """Data that is read as asked but probably not as meant (the CLI shows these)."""


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind
    dtype: str  # the Arrow type, for people reading the JSON
    null_rate: float = 0.0
    # Bounds: exact ints for integer Arrow types (int64 and uint64 do not fit a float) and for
    # datetimes (integer ticks of `unit`); floats for floating columns.
    min: int | float | None = None
    max: int | float | None = None
    decimals: int | None = None  # continuous: digits after the point seen in the data
    categories: list[Any] | None = None
    value: Any = None  # constant columns (timestamps: integer ticks of `unit`; ns when unit is unset)
    unit: str | None = None  # datetime (and constant timestamp) tick unit (s, ms, us, ns)
    tz: str | None = None
    step: int | None = None  # datetime: every value is a multiple of this many ticks (a day, a second...)
    prefix: str | None = None  # id columns: common string prefix kept on new ids
    # Where min/max come from: "data" (observed in the training rows; validation widens them by a margin,
    # see validation/shape.py) or "declared" (a schema override set min or max; validated exactly).
    bounds: Literal["data", "declared"] = "data"

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("continuous", "integer", "datetime")


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    columns: list[ColumnSpec]
    arrow: str  # base64 of the source's Arrow schema (IPC), so shards match it exactly
    # Data read as asked but probably not as meant, one line each (e.g. a numeric column with a
    # few text cells, modelled as categorical): shown as warnings, kept for people reading schema.json.
    notes: list[str] = Field(default_factory=list)
    # Structure found in the data or declared by a person (synthaug.schema.rules): derived columns,
    # inequalities, category dependencies and allowed combinations, value granularity. Generation
    # keeps them; validation counts the rows that break them. Empty in schema files made before.
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules_fit_columns(self) -> Schema:
        check_rules(self.rules, self.columns)
        return self

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
        except ValidationError as exc:
            raise BadInput(f"{path}: not a synthaug schema JSON ({_validation_message(exc)})") from None
        except (OSError, ValueError) as exc:
            raise BadInput(f"{path}: not a synthaug schema JSON ({_first_line(exc)})") from None


def _validation_message(exc: ValidationError) -> str:
    """The first error of a pydantic ValidationError as one line: where, and what."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def arrow_to_base64(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _decimals(values: np.ndarray) -> int | None:
    """Fewest digits after the point that represent every value exactly (None if > 6)."""
    values = values[np.abs(values) < 2.0**52]  # larger doubles are whole numbers (and 1e308 * 10 overflows)
    with np.errstate(over="ignore", invalid="ignore"):
        for d in range(7):
            scaled = values * 10**d
            # Relative to each value: 1e-30 has more than 6 decimals, it is not 0 at 0 decimals.
            if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.abs(scaled)):
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


def _guess_kind(name: str, t: pa.DataType, n_unique: int, n_rows: int) -> str:
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
    if _is_text(t):
        # A string column with a distinct value in every row is a key, not a category.
        return "id" if n_unique == n_rows and n_rows >= 20 else "categorical"
    return "categorical"


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _check_kind(name: str, kind: str, t: pa.DataType, source: str) -> None:
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
    ok = {
        "continuous": numeric,
        "integer": numeric,
        "datetime": pa.types.is_timestamp(t),
        "boolean": pa.types.is_boolean(t),
        "id": pa.types.is_integer(t) or _is_text(t),
    }.get(kind, True)
    if not ok:
        raise BadInput(f"{source}: column '{name}' has Arrow type {t}, which cannot be kind '{kind}'; pick another kind or cast the column")


def _supported(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _supported(t.value_type)
    return (
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)  # float16 too: modelled in float64, written back as float16
        or _is_text(t)
        or pa.types.is_timestamp(t)
    )


def _unsupported_hint(t: pa.DataType) -> str:
    """What to do with a column whose Arrow type cannot be modelled."""
    if pa.types.is_dictionary(t):
        return _unsupported_hint(t.value_type)
    if pa.types.is_date(t):
        return "cast it to timestamp[s] (dates in a CSV are read that way)"
    if pa.types.is_time(t):
        return "cast it to string, or to an integer count of seconds"
    if pa.types.is_decimal(t):
        return "cast it to float64 (or to string, to keep every digit as a category)"
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return "cast it to int64 (a count of its unit)"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "decode it to string if it is text, else drop it"
    if pa.types.is_nested(t):
        return "flatten it into one column per field or element, or drop it"
    return "cast it to a number, string, bool or timestamp, or drop it"


def _observed(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column's present values, dictionary-decoded; NaN and +-inf count as missing."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_floating(col.type):
        return col.filter(pc.is_finite(col))  # drops nulls too
    return col.drop_null()


def _bounds(values: pa.ChunkedArray) -> tuple[int | float, int | float]:
    """Exact min and max: Python ints for integer and timestamp columns, floats otherwise."""
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    elif pa.types.is_float16(values.type):
        values = values.cast(pa.float64())  # exact; no min_max kernel for float16
    lo, hi = pc.min_max(values).values()
    return lo.as_py(), hi.as_py()


def _describe(name: str, kind: str, t: pa.DataType, values: pa.ChunkedArray, null_rate: float) -> ColumnSpec:
    """A ColumnSpec from the column's present values (`t` is the dictionary-decoded type)."""
    spec = ColumnSpec(name=name, kind=kind, dtype=str(t), null_rate=round(float(null_rate), 6))
    if kind == "constant":
        if pa.types.is_timestamp(t):  # integer ticks of the column's own unit: JSON-safe and exact
            spec.unit, spec.tz = t.unit, (str(t.tz) if t.tz else None)
            spec.value = values.cast(pa.int64())[0].as_py()
        else:
            spec.value = values[0].as_py()
    elif kind in ("continuous", "integer"):
        spec.min, spec.max = _bounds(values)
        if kind == "continuous":
            spec.decimals = _decimals(values.cast(pa.float64()).to_numpy())
    elif kind == "datetime":
        spec.unit, spec.tz = t.unit, (str(t.tz) if t.tz else None)
        spec.min, spec.max = _bounds(values)
        spec.step = _tick_step(values.cast(pa.int64()).to_numpy(), t.unit)
    elif kind in ("categorical", "boolean"):
        cats = pc.unique(values).to_pylist()
        spec.categories = sorted(cats, key=lambda c: (str(type(c)), c))
    elif kind == "id":
        if _is_text(t):
            lo, hi = (v.as_py() for v in pc.min_max(values).values())
            spec.prefix = _common_prefix(lo, hi)
        if pa.types.is_integer(t):
            spec.min, spec.max = _bounds(values)
    return spec


def _common_prefix(lo: str, hi: str) -> str:
    """The prefix shared by every value (that of the smallest and largest), without trailing digits."""
    n = 0
    while n < min(len(lo), len(hi)) and lo[n] == hi[n]:
        n += 1
    return re.sub(r"\d+$", "", lo[:n])


# A string column is worth a note when at most this share of its values are not numbers.
MAX_NON_NUMBER_SHARE = 0.1


def _text_number_note(name: str, values: pa.ChunkedArray, n_unique: int) -> str | None:
    """A note for a text column that is nearly all numbers: a few stray cells made it categorical."""
    counts = pc.value_counts(values)
    text = pd.Series(counts.field("values").to_pylist(), dtype=object).str.strip()
    n = pd.Series(counts.field("counts").to_numpy())
    total = int(n.sum())
    for as_number, how in ((text, ""), (text.str.replace(",", ".", regex=False), "comma")):  # noqa: B007 - `how` is read after the loop
        number = pd.to_numeric(as_number, errors="coerce").notna()
        bad = int(n[~number].sum())
        if n[number].sum() and bad <= MAX_NON_NUMBER_SHARE * total:
            break
    else:
        return None
    if how == "comma":
        sample = ", ".join(repr(v) for v in text[number & text.str.contains(",", regex=False)].head(2))
        return (
            f"column '{name}': values look like numbers written with a comma ({sample}), so it is modelled as "
            f"categorical with {n_unique} categories; re-save the file with '.' as the decimal point and no thousands separators"
        )
    if bad == 0:
        return None  # every value is a number kept as text on purpose (codes, zip codes ...)
    odd = pd.Series(n[~number].to_numpy(), index=text[~number]).sort_values(ascending=False, kind="stable")
    shown = ", ".join(f"{v!r} x{c}" for v, c in odd.head(3).items()) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
    return (
        f"column '{name}': {bad} of {total} values are not numbers ({shown}), so it is modelled as categorical "
        f"with {n_unique} categories; declare them missing (NA, an empty cell, or read_table null_values=[...]) "
        f"or fix them to model it as a number"
    )


_PANDAS_INDEX = re.compile(r"^Unnamed: \d+$")


def check_column_names(names: list[str], where: str) -> None:
    """BadInput for an empty or duplicated column name: columns are addressed by name everywhere."""
    for i, name in enumerate(names):
        if not name.strip():
            hint = ""
            if i == 0:
                hint = " (a CSV written with pandas' index has an unnamed first column: write it with index=False)"
            elif i == len(names) - 1:
                hint = " (a delimiter at the end of every line makes an unnamed last column)"
            raise BadInput(f"{where}: column {i + 1} has an empty name{hint}; give every column a name")
    dup = [n for n, k in Counter(names).items() if k > 1]
    if dup:
        raise BadInput(f"{where}: column name '{dup[0]}' occurs {names.count(dup[0])} times; rename the columns so each name is unique")


def infer_schema(
    table: pa.Table,
    *,
    source: str = "data",
    overrides: dict[str, dict[str, Any]] | None = None,
    overrides_source: str = "schema override",
    discover: bool = True,
    seed: int = 0,
) -> Schema:
    """Infer one ColumnSpec per column; `overrides` maps column name -> fields to force.

    Structure rules (synthaug.schema.rules) are discovered on a seeded sample unless `discover`
    is False or the override file says otherwise (`read_overrides` carries its rules: a saved
    schema's rule list is used as it is; a `{"columns": ..., "rules": [...]}` file adds declared
    rules to the discovered ones, replacing a discovered rule of the same kind on the same
    columns; `"discover_rules": false` keeps only the declared ones).

    Data read as asked but probably not as meant becomes a note in `Schema.notes`, also
    issued as a DataWarning.
    """
    overrides = overrides if overrides is not None else {}  # an empty Overrides may still carry rules
    check_column_names(table.column_names, source)
    if table.num_rows == 0:
        raise BadInput(f"{source}: has no rows; a schema is inferred from data")
    unknown = [n for n in overrides if n not in table.column_names]
    if unknown:
        raise BadInput(f"{overrides_source}: column '{unknown[0]}' is not in {source}; columns there are: {', '.join(table.column_names)}")
    notes: list[str] = []
    columns = [
        _infer_column(field, table.column(field.name), table.num_rows, overrides.get(field.name, {}), source, overrides_source, notes)
        for field in table.schema
    ]
    rules = _rules(table, columns, overrides, overrides_source, discover=discover, seed=seed, notes=notes)
    for note in notes:
        warnings.warn(f"{source}: {note}", DataWarning, stacklevel=2)
    plain = pa.schema([f for f in table.schema], metadata=_non_pandas_metadata(table.schema))
    return Schema(columns=columns, arrow=arrow_to_base64(plain), notes=notes, rules=rules)


def _rule_identity(rule: Any) -> tuple:
    """Rules that say the same kind of thing about the same columns (one derivation per column)."""
    if rule.kind == "derived":
        return (rule.kind, rule.column)
    return (rule.kind, *sorted(rule.used()))


def _rules(
    table: pa.Table, columns: list[ColumnSpec], overrides: Any, where: str, *, discover: bool, seed: int, notes: list[str]
) -> list[Any]:
    """Discovered rules, merged with those an override file declares, checked against the columns."""
    declared = getattr(overrides, "rules", None)
    found: list[Any] = []
    if discover and getattr(overrides, "discover_rules", True):
        found, discovery_notes = discover_rules(table, columns, seed=seed)
        notes += discovery_notes
    if declared is not None:
        try:
            given = TypeAdapter(list[Rule]).validate_python(declared)
        except ValidationError as exc:
            hint = 'see README "Schema" for the rule kinds and their fields'
            raise BadInput(f"{where}: rules.{_validation_message(exc)}; {hint}") from None
        replaced = {_rule_identity(r) for r in given}
        found = [r for r in found if _rule_identity(r) not in replaced] + given
    try:
        check_rules(found, columns)
    except ValueError as exc:
        raise BadInput(f"{where}: {exc}; fix or remove that rule") from None
    specs = {c.name: c for c in columns}
    for rule, label in zip(found, labels(found)):
        if rule.origin == "declared" and rule.hard:
            broken = int(rule_violations(table, rule, specs).sum())
            if broken:
                notes.append(
                    f"declared rule '{label}' is broken by {broken} of {table.num_rows} rows of the data; generated rows will keep it"
                )
    return found


def _infer_column(
    field: pa.Field, col: pa.ChunkedArray, n_rows: int, override: dict[str, Any], source: str, overrides_source: str, notes: list[str]
) -> ColumnSpec:
    name, t = field.name, field.type
    if not pa.types.is_null(t) and not _supported(t):
        raise BadInput(f"{source}: column '{name}' has unsupported Arrow type {t}; {_unsupported_hint(t)}")
    values = _observed(col) if not pa.types.is_null(t) else col
    if pa.types.is_null(t) or len(values) == 0:
        raise BadInput(f"{source}: column '{name}' is entirely null; drop it or fill it before running")
    bad = set(override) - _OVERRIDABLE
    if bad:
        raise BadInput(
            f"{overrides_source}: column '{name}' sets '{sorted(bad)[0]}'; "
            f"a schema override may set only: {', '.join(sorted(_OVERRIDABLE))}"
        )
    base_type = values.type  # dictionary-decoded
    n_unique = pc.count_distinct(values).as_py()
    kind = override.get("kind") or _guess_kind(name, base_type, n_unique, n_rows)
    if kind not in KINDS:
        raise BadInput(f"{overrides_source}: column '{name}' has kind '{kind}'; kinds are: {', '.join(KINDS)}")
    _check_kind(name, kind, base_type, overrides_source if "kind" in override else source)
    spec = _describe(name, kind, base_type, values, 1.0 - len(values) / n_rows)
    spec = _apply_override(spec, base_type, override, overrides_source)
    if kind == "categorical" and _is_text(t):  # plain text only: a dictionary column is categorical on purpose
        note = _text_number_note(name, values, n_unique)
        notes += [note] if note else []
    if _PANDAS_INDEX.match(name):
        notes.append(f"column '{name}' looks like a pandas index saved into the file; drop it unless it is data")
    return spec


def _apply_override(spec: ColumnSpec, t: pa.DataType, override: dict[str, Any], where: str) -> ColumnSpec:
    """The spec with the override's min/max/decimals/categories, checked like the rest of the schema."""
    fields = {k: override[k] for k in ("min", "max", "decimals", "categories") if k in override}
    if "min" in fields or "max" in fields:
        fields["bounds"] = "declared"
    if not fields:
        return spec
    try:
        spec = ColumnSpec.model_validate({**spec.model_dump(), **fields})
    except ValidationError as exc:
        key = str(exc.errors()[0]["loc"][0])
        raise BadInput(f"{where}: column '{spec.name}' has {key} {fields.get(key)!r}; {_WANTED[key]}") from None
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise BadInput(f"{where}: column '{spec.name}' has min {spec.min} above max {spec.max}; swap or fix them")
    if "categories" in fields and spec.categories is not None:
        try:  # stored as the column's own values, so they compare equal to the data (2007.0 -> 2007)
            spec.categories = pa.array(spec.categories).cast(t).to_pylist()
        except (pa.ArrowException, TypeError, ValueError):
            raise BadInput(
                f"{where}: column '{spec.name}' has categories {spec.categories[:5]!r}, which are not {t} values; "
                f"list values of the column's own type"
            ) from None
    return spec


_WANTED = {
    "min": "give a number",
    "max": "give a number",
    "decimals": "give a whole number of digits",
    "categories": "give a list of values",
}


def _non_pandas_metadata(schema: pa.Schema) -> dict[bytes, bytes] | None:
    meta = {k: v for k, v in (schema.metadata or {}).items() if k != b"pandas"}
    return meta or None


class Overrides(dict):
    """Column overrides (name -> fields to force), plus the rules an override file declares.

    `rules` is None when the file has no "rules" key; `discover_rules` says whether inference
    still discovers rules (False for a saved schema that lists its rules: that list is the
    whole truth, so deleting a rule there removes it).
    """

    def __init__(self, columns: Any = (), *, rules: list[Any] | None = None, discover_rules: bool = True) -> None:
        super().__init__(columns)
        self.rules = rules
        self.discover_rules = discover_rules


def read_overrides(path: str | Path) -> Overrides:
    """Read a schema override file: a saved synthaug schema, or
    {"columns": {name: {field: value}}, "rules": [...], "discover_rules": true}
    (every key optional, at least one of columns and rules)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: schema file not found; fix the path in source.schema")
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not valid JSON ({_first_line(exc)}); fix the file") from None
    columns = raw.get("columns") if isinstance(raw, dict) else None
    rules = raw.get("rules") if isinstance(raw, dict) else None
    if rules is not None and not isinstance(rules, list):
        example = '{"kind": "inequality", "left": ..., "right": ...}'
        raise BadInput(f'{path}: "rules" must be a list of rule objects ({example}); see README "Schema"')
    discover = raw.get("discover_rules") if isinstance(raw, dict) else None
    if discover is not None and not isinstance(discover, bool):
        raise BadInput(f'{path}: "discover_rules" must be true or false')
    if isinstance(columns, list):  # a full saved schema: keep what a user may override, and its rules as listed
        fields = {c["name"]: {k: v for k, v in c.items() if k in _OVERRIDABLE} for c in columns}
        return Overrides(fields, rules=rules, discover_rules=(rules is None) if discover is None else discover)
    if isinstance(columns, dict) and all(isinstance(v, dict) for v in columns.values()):
        return Overrides(columns, rules=rules, discover_rules=True if discover is None else discover)
    if columns is None and rules is not None:
        return Overrides({}, rules=rules, discover_rules=True if discover is None else discover)
    raise BadInput(f'{path}: expected {{"columns": {{"<name>": {{"kind": ...}}}}}} and/or {{"rules": [...]}}; see README "Schema"')
