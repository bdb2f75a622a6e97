"""Great Expectations: a suite built from the real data, run on every synthetic shard, Data Docs.

great_expectations takes seconds to import, so it is imported inside functions. Validation
reuses one module-level ephemeral context (no files, no network) so each shard costs only the
validation itself.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthaug.errors import BadInput
from synthaug.schema import ColumnSpec, Schema
from synthaug.validation.shape import tolerant_bounds

SUITE_NAME = "synthaug"
NULL_TOLERANCE = 0.1  # absolute slack on the not-null fraction of columns that have nulls
NO_NULL_TOLERANCE = 0.001  # columns without nulls in the real data may have the odd null ...
# ... and, as no nulls in n training rows only bounds the true rate by about 3/n (the "rule of three",
# 95%), up to that share: fresh rows from a small source do hold the odd null.
_INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
_FLOATS = ["float16", "float32", "float64"]

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


def _short(value: Any) -> str:
    from synthaug.generators.base import short_repr

    return short_repr(value)


def _make(name: str, **kwargs: Any):
    cls = _expectation_class(name)
    try:
        return cls(**kwargs)
    except Exception as exc:  # pydantic errors are long; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"expectation '{name}' with kwargs {_short(kwargs)}: {first[:200]}; fix its kwargs") from None


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
    elif dtype == np.dtype(object):  # checked value by value: the Python type of the values
        types = sorted({type(_py(v)).__name__ for v in values.dropna().head(1000)})
    elif pd.api.types.is_string_dtype(dtype):
        types = ["str"]
    else:
        types = _INTS if spec.kind == "id" and dtype.kind in "iu" else [dtype.name]
    return _make("ExpectColumnValuesToBeInTypeList", column=spec.name, type_list=types)


def _iso(ticks: float, spec: ColumnSpec, ceil: bool) -> str:
    """Datetime bound as ISO text, widened to whole microseconds (GX parses to datetime); a bound
    beyond what pandas can hold becomes pandas' own limit."""
    try:
        ts = pd.Timestamp(int(ticks), unit=spec.unit or "ns", tz=spec.tz)
        ts = ts.ceil("us") if ceil else ts.floor("us")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        ts = pd.Timestamp("2262-04-11") if ceil else pd.Timestamp("1677-09-22")  # inside pandas' range in every tz
        ts = ts.tz_localize(spec.tz) if spec.tz else ts
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
    (numeric and datetime: declared bounds exactly, observed ones widened as in
    validation.shape.tolerant_bounds), not-null fraction, uniqueness (id, per shard);
    row count per shard when given. `extra` items ({"expectation": name, "kwargs": {...}})
    are added as they are.
    """
    gx = _gx()
    missing = [n for n in schema.names if n not in train_df.columns]
    if missing:
        raise BadInput(
            f"column '{missing[0]}' from the schema is not in the training data; columns there are: {', '.join(train_df.columns)}"
        )
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
            lo, hi = tolerant_bounds(spec)
            items.append(_make("ExpectColumnValuesToBeBetween", column=col, min_value=lo, max_value=hi))
        elif spec.kind == "datetime" and spec.min is not None:
            lo, hi = tolerant_bounds(spec)
            lo, hi = _iso(lo, spec, ceil=False), _iso(hi, spec, ceil=True)
            items.append(_make("ExpectColumnValuesToBeBetween", column=col, min_value=lo, max_value=hi))
        if spec.null_rate > 0:
            mostly = max(0.0, 1.0 - spec.null_rate - NULL_TOLERANCE)
        else:
            mostly = 1.0 - max(NO_NULL_TOLERANCE, 3.0 / max(len(train_df), 1))
        items.append(_make("ExpectColumnValuesToNotBeNull", column=col, mostly=round(mostly, 6)))
        if spec.kind == "id":
            items.append(_make("ExpectColumnValuesToBeUnique", column=col))
    for item in extra or []:
        if not isinstance(item, dict) or "expectation" not in item:
            raise BadInput(f'validation.expectations: {_short(item)}: expected {{"expectation": name, "kwargs": {{...}}}}')
        kwargs = item.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise BadInput(f"validation.expectations: '{item['expectation']}' kwargs must be a mapping (got {_short(kwargs)})")
        listed = kwargs.get("column_list")
        named = [kwargs.get(k) for k in ("column", "column_A", "column_B")] + (list(listed) if isinstance(listed, (list, tuple)) else [])
        unknown = [c for c in named if c is not None and c not in schema.names]
        if unknown:  # refused now, not after training as a failed shard
            raise BadInput(
                f"validation.expectations: '{item['expectation']}' names column {_short(unknown[0])}, which is not in the data; "
                f"columns are: {', '.join(schema.names)}"
            )
        items.append(_make(item["expectation"], **kwargs))
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
    suite = _gx().ExpectationSuite(name=raw["name"], expectations=expectations, meta=raw.get("meta") or None, notes=raw.get("notes"))
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
    res.meta["run_id"] = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
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
    """Render GX Data Docs for the suite and every shard's result into `site_dir`: safe and offline.

    A throwaway ephemeral context whose only site is that folder, so nothing is written elsewhere.

    Safe: GX writes some user text raw into the HTML (a column name becomes a section header as it
    is), so every string of the suite and the results is rendered with the five HTML-special
    characters replaced by look-alikes (`<` -> `‹`, `>` -> `›`, `&` -> `＆`, `"` -> `＂`, `'` -> `’`):
    nothing user-made can open a tag or an attribute, wherever GX puts it. The exact values stay in
    suite.json and results/*.json.

    Offline: GX pages load Bootstrap, jQuery and friends from CDNs, and GX does not ship them. Every
    `<script>` and every stylesheet, image or script fetched over the network is removed and a small
    inline stylesheet added (collapsed sections simply show); index.html, which GX fills by script,
    is rewritten as a plain list of the pages.
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
    name = safe_name(suite.name) or SUITE_NAME
    ctx = gx.get_context(mode="ephemeral")
    ctx.add_data_docs_site("local", site)
    ctx.suites.add(_suite_from_json({**_neutral(suite.to_json_dict()), "name": name}, name))  # a copy: the caller's suite stays unbound
    loader = ExpectationSuiteValidationResultSchema()
    for shard, result in results_by_shard.items():
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
            run_id=RunIdentifier(run_name=safe_name(shard), run_time=_run_time(result["gx"])),
            batch_identifier=safe_name(shard),
        )
        gx_json = _neutral(result["gx"])
        if "suite_name" in gx_json:
            gx_json["suite_name"] = name
        ctx.validation_results_store.set(key, loader.load(gx_json))
    ctx.build_data_docs(site_names=["local"])
    for page in Path(site_dir).rglob("*.html"):
        page.write_text(offline_page(page.read_text(encoding="utf-8")), encoding="utf-8")
    success = {safe_name(shard): bool(r.get("success")) for shard, r in results_by_shard.items()}
    (Path(site_dir) / "index.html").write_text(_index_page(Path(site_dir), name, success), encoding="utf-8")


_LOOKALIKES = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\uff06", '"': "\uff02", "'": "\u2019"})


def _neutral(value: Any) -> Any:
    """A copy of JSON-like data whose strings (keys too) hold no HTML-special character."""
    if isinstance(value, str):
        return value.translate(_LOOKALIKES)
    if isinstance(value, dict):
        return {_neutral(k): _neutral(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_neutral(v) for v in value]
    return value


DOCS_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222;line-height:1.4}"
    "a{color:#0b5ea8}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
    "ul.nav,ol{padding-left:1.2em}.nav-item{list-style:none}"
    ".badge{background:#eee;border-radius:3px;padding:0 4px;margin:0 1px;font-family:monospace}"
    ".alert{background:#f3f3f3;border:1px solid #ddd;padding:4px 8px;margin:8px 0}"
    ".text-danger,.fail{color:#b00020}.text-success,.pass{color:#176f2c}"
    ".fa,.fas,.far,.fab{display:none}.ge-section{margin-bottom:1.5em}img{max-width:100%}"
)
_SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_REMOTE_URL = re.compile(r"url\(\s*[\"']?\s*(?:https?:)?//[^)]*\)", re.IGNORECASE)
_REMOTE_TAG = re.compile(r"<(?:link|img|script|iframe|source|embed)\b[^>]*?(?:href|src)\s*=\s*[\"']?\s*(?:https?:)?//[^>]*>", re.IGNORECASE)


def offline_page(text: str) -> str:
    """A GX page without scripts or network fetches, with a small inline stylesheet."""
    text = _SCRIPT.sub("", text)
    text = _REMOTE_TAG.sub("", text)
    text = _REMOTE_URL.sub("none", text)  # CSS backgrounds fetched from the network
    style = f"<style>{DOCS_CSS}</style>"
    return text.replace("</head>", style + "</head>", 1) if "</head>" in text else style + text


def _index_page(site: Path, suite_name: str, success: dict[str, bool]) -> str:
    """The index GX builds with JavaScript, as plain HTML: the suite page and one row per shard."""
    import html

    suites = sorted(p.relative_to(site).as_posix() for p in (site / "expectations").rglob("*.html"))
    rows = []
    if (site / "validations").is_dir():
        for page in sorted((site / "validations").rglob("*.html")):
            rel = page.relative_to(site).as_posix()
            shard = page.stem
            verdict = success.get(shard)
            shown = "<span class='pass'>passed</span>" if verdict else "<span class='fail'>failed</span>" if verdict is False else ""
            rows.append(f"<tr><td><a href='{html.escape(rel, quote=True)}'>{html.escape(shard)}</a></td><td>{shown}</td></tr>")
    links = "".join(f"<li><a href='{html.escape(rel, quote=True)}'>{html.escape(Path(rel).stem)}</a></li>" for rel in suites)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Data Docs: expectation suite "
        f"{html.escape(suite_name)}</title><style>{DOCS_CSS}</style></head><body>"
        "<h1>Data Docs</h1><p>Made by Great Expectations for synthaug; works offline.</p>"
        f"<h2>Expectation suite</h2><ul>{links}</ul>"
        f"<h2>Validation results, one per shard</h2><table><tr><th>shard</th><th>result</th></tr>{''.join(rows)}</table>"
        "</body></html>"
    )


def _run_time(gx_json: dict) -> datetime | None:
    run_id = (gx_json.get("meta") or {}).get("run_id") or {}
    text = run_id.get("run_time") if isinstance(run_id, dict) else None
    return datetime.fromisoformat(text) if text else None


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
