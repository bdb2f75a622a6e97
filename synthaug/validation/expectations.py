"""Great Expectations: a suite built from the real data, run on every synthetic shard, Data Docs.

great_expectations takes seconds to import, so it is imported inside functions. Validation
reuses one module-level ephemeral context (no files, no network) so each shard costs only the
validation itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthaug.errors import BadInput
from synthaug.schema import ColumnSpec, Schema

SUITE_NAME = "synthaug"
NULL_TOLERANCE = 0.1  # absolute slack on the not-null fraction of columns that have nulls
NO_NULL_TOLERANCE = 0.001  # columns without nulls in the real data may have the odd null
_INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
_FLOATS = ["float32", "float64"]

_validator: Any = None  # the cached batch definition on an ephemeral context


def _gx():
    import great_expectations as gx

    return gx


def _expectation_class(name: str) -> type:
    """An expectation class from a snake_case or CamelCase name; BadInput if unknown."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.expectation import Expectation

    camel = name if "_" not in name else "".join(p.capitalize() for p in name.split("_"))
    cls = getattr(gxe, camel, None)
    if not (isinstance(cls, type) and issubclass(cls, Expectation)):
        raise BadInput(
            f"unknown Great Expectations expectation '{name}'; use a name from "
            f"great_expectations.expectations, e.g. expect_column_values_to_be_between"
        )
    return cls


def _make(name: str, **kwargs: Any):
    cls = _expectation_class(name)
    try:
        return cls(**kwargs)
    except Exception as exc:  # pydantic errors are long; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"expectation '{name}' with kwargs {kwargs}: {first}; fix its kwargs") from None


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _type_expectation(spec: ColumnSpec, values: pd.Series):
    """Column type as the pandas datasource reports it; numeric kinds allow int <-> float
    because a shard's nulls turn an Arrow int64 column into float64 in pandas."""
    dtype = values.dtype
    if spec.kind == "datetime":
        tz = isinstance(dtype, pd.DatetimeTZDtype)
        return _make("ExpectColumnValuesToBeOfType", column=spec.name, type_="Timestamp" if tz else "datetime64")
    if isinstance(dtype, pd.CategoricalDtype):
        return _make("ExpectColumnValuesToBeOfType", column=spec.name, type_="CategoricalDtypeType")
    if spec.kind in ("continuous", "integer"):
        types = _FLOATS + _INTS
    elif spec.kind == "boolean":
        types = ["bool"]  # an object column (bool with nulls) is checked value by value
    elif dtype == object:  # checked value by value: the Python type of the values
        types = sorted({type(_py(v)).__name__ for v in values.dropna().head(1000)})
    elif pd.api.types.is_string_dtype(dtype):
        types = ["str"]
    else:
        types = _INTS if spec.kind == "id" and dtype.kind in "iu" else [dtype.name]
    return _make("ExpectColumnValuesToBeInTypeList", column=spec.name, type_list=types)


def _iso(ticks: float, spec: ColumnSpec, ceil: bool) -> str:
    """Datetime bound as ISO text, widened to whole microseconds (GX parses to datetime)."""
    ts = pd.Timestamp(int(ticks), unit=spec.unit or "ns", tz=spec.tz)
    ts = ts.ceil("us") if ceil else ts.floor("us")
    return ts.isoformat()


def build_suite(
    train_df: pd.DataFrame,
    schema: Schema,
    extra: list[dict] | None = None,
    rows_per_shard: int | None = None,
    name: str = SUITE_NAME,
):
    """An ExpectationSuite from the real training data and its schema.

    Columns and order; per column type, value set (categorical / boolean / constant), bounds
    (numeric and datetime, from the schema), not-null fraction, uniqueness (id, per shard);
    row count per shard when given. `extra` items ({"expectation": name, "kwargs": {...}})
    are added as they are.
    """
    gx = _gx()
    missing = [n for n in schema.names if n not in train_df.columns]
    if missing:
        raise BadInput(f"column '{missing[0]}' from the schema is not in the training data; columns there are: {', '.join(train_df.columns)}")
    items = [_make("ExpectTableColumnsToMatchOrderedList", column_list=schema.names)]
    if rows_per_shard:
        items.append(_make("ExpectTableRowCountToBeBetween", min_value=1, max_value=int(rows_per_shard)))
    for spec in schema.columns:
        col = spec.name
        items.append(_type_expectation(spec, train_df[col]))
        if spec.kind in ("categorical", "boolean") and spec.categories is not None:
            items.append(_make("ExpectColumnValuesToBeInSet", column=col, value_set=list(spec.categories)))
        elif spec.kind == "constant" and spec.value is not None and not spec.tz and not spec.unit:
            if not pd.api.types.is_datetime64_any_dtype(train_df[col].dtype):
                items.append(_make("ExpectColumnValuesToBeInSet", column=col, value_set=[spec.value]))
        if spec.kind in ("continuous", "integer") and spec.min is not None:
            items.append(_make("ExpectColumnValuesToBeBetween", column=col, min_value=spec.min, max_value=spec.max))
        elif spec.kind == "datetime" and spec.min is not None:
            lo, hi = _iso(spec.min, spec, ceil=False), _iso(spec.max, spec, ceil=True)
            items.append(_make("ExpectColumnValuesToBeBetween", column=col, min_value=lo, max_value=hi))
        if spec.null_rate > 0:
            mostly = max(0.0, 1.0 - spec.null_rate - NULL_TOLERANCE)
        else:
            mostly = 1.0 - NO_NULL_TOLERANCE
        items.append(_make("ExpectColumnValuesToNotBeNull", column=col, mostly=round(mostly, 6)))
        if spec.kind == "id":
            items.append(_make("ExpectColumnValuesToBeUnique", column=col))
    for item in extra or []:
        if not isinstance(item, dict) or "expectation" not in item:
            raise BadInput(f'extra expectation {item!r}: expected {{"expectation": name, "kwargs": {{...}}}}')
        items.append(_make(item["expectation"], **(item.get("kwargs") or {})))
    return gx.ExpectationSuite(name=name, expectations=items)  # no context needed this way


def load_suite(path: str | Path):
    """Read a GX ExpectationSuite JSON (as written by write_artifacts or by GX itself)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: cannot read a Great Expectations suite JSON ({exc}); fix the path or the file") from None
    return _suite_from_json(raw, str(path))


_CONFIG_KEYS = ("type", "kwargs", "meta", "notes", "description", "severity")


def _suite_from_json(raw: dict, source: str):
    """A fresh suite (no ids, no owning context) from suite JSON; BadInput on a bad expectation."""
    if not isinstance(raw, dict) or not raw.get("name") or not isinstance(raw.get("expectations"), list):
        raise BadInput(f'{source}: not a Great Expectations suite (needs "name" and "expectations")')
    expectations = []
    for e in raw["expectations"]:
        if not isinstance(e, dict) or "type" not in e:
            raise BadInput(f"{source}: expectation {e!r} has no type")
        _expectation_class(e["type"])  # BadInput naming an unknown one
        expectations.append({k: e[k] for k in _CONFIG_KEYS if e.get(k) is not None})
    suite = _gx().ExpectationSuite(
        name=raw["name"], expectations=expectations, meta=raw.get("meta") or None, notes=raw.get("notes")
    )
    if len(suite.expectations) != len(expectations):  # GX logs and drops invalid ones
        raise BadInput(f"{source}: some expectations have invalid kwargs; check them against the GX docs")
    return suite


def _batch_definition():
    """One ephemeral context + pandas dataframe asset, made once per process."""
    global _validator
    if _validator is None:
        gx = _gx()
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
        asset = ctx.data_sources.add_pandas("synthaug").add_dataframe_asset("shard")
        _validator = asset.add_batch_definition_whole_dataframe("whole")
    return _validator


def validate_shard(df: pd.DataFrame, suite, run_name: str) -> dict:
    """Validate one DataFrame (a shard) with result_format SUMMARY.

    Returns {success, run_name, statistics, results: [{expectation, column, success, observed,
    unexpected_count, unexpected_percent, partial_unexpected, exception}], gx: the GX result JSON}.
    """
    from great_expectations.core.run_identifier import RunIdentifier

    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    res = batch.validate(suite, result_format="SUMMARY")
    res.meta["run_id"] = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    res.meta["shard"] = run_name
    rows = []
    for r in res.results:
        cfg = r.expectation_config
        out = r.result or {}
        raised = _exception_message(r.exception_info)
        rows.append(
            {
                "expectation": cfg.type,
                "column": cfg.kwargs.get("column"),
                "success": bool(r.success),
                "observed": _jsonable(out.get("observed_value")),
                "unexpected_count": out.get("unexpected_count"),
                "unexpected_percent": out.get("unexpected_percent"),
                "partial_unexpected": _jsonable(out.get("partial_unexpected_list", [])[:10]),
                "exception": raised,
            }
        )
    return {
        "success": bool(res.success),
        "run_name": run_name,
        "statistics": _jsonable(dict(res.statistics)),
        "results": rows,
        "gx": res.to_json_dict(),
    }


def _exception_message(info: dict) -> str | None:
    """GX nests exception info by metric when a metric fails; flatten to one message."""
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    for v in info.values():
        if isinstance(v, dict) and v.get("raised_exception"):
            return v.get("exception_message")
    return None


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def render_data_docs(suite, results_by_shard: dict[str, dict], site_dir: Path) -> None:
    """Render GX Data Docs for the suite and every shard's result into `site_dir`.

    A throwaway ephemeral context whose only site is that folder, so nothing is written elsewhere.
    """
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    gx = _gx()
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    ctx = gx.get_context(mode="ephemeral")
    ctx.add_data_docs_site("local", site)
    ctx.suites.add(_suite_from_json(suite.to_json_dict(), suite.name))  # a copy: the caller's suite stays unbound
    loader = ExpectationSuiteValidationResultSchema()
    for shard, result in results_by_shard.items():
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
            run_id=RunIdentifier(run_name=safe_name(shard), run_time=_run_time(result["gx"])),
            batch_identifier=safe_name(shard),
        )
        ctx.validation_results_store.set(key, loader.load(result["gx"]))
    ctx.build_data_docs(site_names=["local"])


def _run_time(gx_json: dict) -> datetime | None:
    run_id = (gx_json.get("meta") or {}).get("run_id") or {}
    text = run_id.get("run_time") if isinstance(run_id, dict) else None
    return datetime.fromisoformat(text) if text else None


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
