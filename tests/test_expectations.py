"""Great Expectations suite built from real data, validated shard by shard, with Data Docs."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pc
import pytest

from synthaug.errors import BadInput
from synthaug.io.artifacts import write_expectations
from synthaug.schema import infer_schema
from synthaug.validation.expectations import build_suite, load_suite, validate_shard

PENGUINS = Path(__file__).resolve().parents[1] / "data" / "penguins.csv"


@pytest.fixture(scope="module")
def penguins():
    table = pc.read_csv(PENGUINS)
    df, schema = table.to_pandas(), infer_schema(table)
    return df, schema, build_suite(df, schema, rows_per_shard=200)


def failures(result: dict) -> set[tuple[str, str | None]]:
    return {(r["expectation"], r["column"]) for r in result["results"] if not r["success"]}


def test_clean_shard_of_real_rows_passes(penguins):
    # Setup
    df, _, suite = penguins
    # Run
    result = validate_shard(df.iloc[:150], suite, run_name="part-00000")
    # Assert
    assert result["success"], failures(result)
    assert all(r["exception"] is None for r in result["results"])
    assert result["run_name"] == "part-00000"
    assert result["gx"]["meta"]["run_id"]["run_name"] == "part-00000"
    json.dumps({k: v for k, v in result.items() if k != "gx"})


def test_out_of_range_value_fails_between(penguins):
    # Setup
    df, _, suite = penguins
    shard = df.iloc[:100].copy()
    shard.loc[shard.index[7], "body_mass_g"] = 99_999.0
    # Run
    result = validate_shard(shard, suite, run_name="part-00001")
    # Assert
    assert not result["success"]
    assert failures(result) == {("expect_column_values_to_be_between", "body_mass_g")}
    failed = next(r for r in result["results"] if not r["success"])
    assert failed["unexpected_count"] == 1 and failed["partial_unexpected"] == [99_999.0]


def test_unseen_category_fails_value_set(penguins):
    df, _, suite = penguins
    shard = df.iloc[:100].copy()
    shard.loc[shard.index[2], "species"] = "Emperor"
    result = validate_shard(shard, suite, run_name="part-00002")
    assert failures(result) == {("expect_column_values_to_be_in_set", "species")}


def test_wrong_column_order_and_oversized_shard_fail(penguins):
    df, schema, suite = penguins
    swapped = df[[*reversed(schema.names)]].iloc[:50]
    assert ("expect_table_columns_to_match_ordered_list", None) in failures(validate_shard(swapped, suite, "swap"))
    assert failures(validate_shard(df, suite, "big")) == {("expect_table_row_count_to_be_between", None)}


def test_too_many_nulls_fail_not_null(penguins):
    df, _, suite = penguins
    shard = df.iloc[:100].copy()
    shard.loc[shard.index[:30], "bill_depth_mm"] = np.nan  # real rate is ~0.6%
    assert failures(validate_shard(shard, suite, "nulls")) == {("expect_column_values_to_not_be_null", "bill_depth_mm")}


def mixed_frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "user_id": [f"u{i:05d}" for i in range(n)],
            "when": pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC"),
            "local": pd.date_range("2021-01-01", periods=n, freq="D").astype("datetime64[us]"),
            "active": pd.array(rng.random(n) < 0.5, dtype=object),
            "visits": pd.array(rng.integers(0, 9, n).astype(float)),
            "plan": pd.Categorical(rng.choice(["free", "pro"], n)),
        }
    ).assign(
        active=lambda d: d["active"].where(rng.random(n) > 0.1, None),
        visits=lambda d: d["visits"].where(rng.random(n) > 0.1, np.nan),
    )


def test_mixed_kinds_clean_passes_and_late_datetime_fails():
    # Setup: via Arrow, as shards are written and read
    table = pa.Table.from_pandas(mixed_frame(), preserve_index=False).cast(
        pa.schema(
            [
                ("user_id", pa.string()),
                ("when", pa.timestamp("us", tz="UTC")),
                ("local", pa.timestamp("us")),
                ("active", pa.bool_()),
                ("visits", pa.int64()),
                ("plan", pa.dictionary(pa.int32(), pa.string())),
            ]
        )
    )
    schema = infer_schema(table)
    df = table.to_pandas()
    suite = build_suite(df, schema)
    no_nulls = df.dropna().astype({"visits": "int64", "active": "bool"})  # a shard without nulls changes dtypes
    late = df.copy()
    late.loc[5, "when"] = pd.Timestamp("2030-01-01", tz="UTC")
    # Run
    clean, clean_no_nulls, bad = (validate_shard(d, suite, name) for d, name in ((df, "a"), (no_nulls, "b"), (late, "c")))
    # Assert
    assert [c.kind for c in schema.columns] == ["id", "datetime", "datetime", "boolean", "integer", "categorical"]
    assert clean["success"], failures(clean)
    assert clean_no_nulls["success"], failures(clean_no_nulls)
    assert failures(bad) == {("expect_column_values_to_be_between", "when")}
    dup = df.copy()
    dup.loc[3, "user_id"] = dup.loc[4, "user_id"]
    assert failures(validate_shard(dup, suite, "d")) == {("expect_column_values_to_be_unique", "user_id")}


def test_extra_expectations_by_snake_or_camel_name(penguins):
    df, schema, _ = penguins
    extra = [
        {"expectation": "expect_column_mean_to_be_between", "kwargs": {"column": "body_mass_g", "min_value": 0, "max_value": 1}},
        {"expectation": "ExpectColumnValuesToBeBetween", "kwargs": {"column": "year", "min_value": 2008, "max_value": 2009}},
    ]
    suite = build_suite(df, schema, extra=extra)
    assert failures(validate_shard(df.iloc[:100], suite, "extra")) == {
        ("expect_column_mean_to_be_between", "body_mass_g"),
        ("expect_column_values_to_be_between", "year"),  # the schema's own year check passes
    }


def test_unknown_extra_expectation_is_bad_input(penguins):
    df, schema, _ = penguins
    with pytest.raises(BadInput, match="expect_unicorns"):
        build_suite(df, schema, extra=[{"expectation": "expect_unicorns", "kwargs": {}}])


def test_write_artifacts_and_load_suite_round_trip(penguins, tmp_path, monkeypatch):
    # Setup: run from an empty directory to catch anything written outside out_dir
    df, _, suite = penguins
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    bad = df.iloc[:100].copy()
    bad.loc[bad.index[0], "island"] = "Atlantis"
    results = {"part-00000": validate_shard(df.iloc[:100], suite, "part-00000"), "part-00001": validate_shard(bad, suite, "part-00001")}
    out = tmp_path / "expectations"
    # Run
    index = write_expectations(out, suite, results)
    reloaded = load_suite(out / "suite.json")
    # Assert
    assert index == out / "docs" / "index.html" and index.is_file()
    pages = sorted(p.name for p in (out / "docs" / "validations").rglob("*.html"))
    assert pages == ["part-00000.html", "part-00001.html"]
    assert "Atlantis" in next((out / "docs" / "validations").rglob("part-00001.html")).read_text()
    assert json.loads((out / "results" / "part-00001.json").read_text())["success"] is False
    assert list(cwd.iterdir()) == []
    assert len(reloaded.expectations) == len(suite.expectations)
    assert failures(validate_shard(bad, reloaded, "again")) == {("expect_column_values_to_be_in_set", "island")}


def test_load_suite_rejects_unknown_expectation(tmp_path):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"name": "s", "expectations": [{"type": "expect_unicorns", "kwargs": {}}]}))
    with pytest.raises(BadInput, match="expect_unicorns"):
        load_suite(path)
