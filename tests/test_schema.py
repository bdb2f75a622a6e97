import json
import re
import warnings
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from synthaug.errors import BadInput
from synthaug.schema import Schema, infer_schema, read_overrides


def mixed_table(n: int = 60) -> pa.Table:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "user_id": np.arange(1000, 1000 + n),
            "code": [f"U{i:04d}" for i in range(n)],
            "age": rng.integers(18, 90, n),
            "score": np.round(rng.normal(0, 1, n), 2),
            "city": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "active": rng.random(n) > 0.5,
            "when": pd.to_datetime(rng.integers(1_600_000_000, 1_700_000_000, n), unit="s").tz_localize("Europe/Paris"),
            "const": ["x"] * n,
        }
    )
    df.loc[::7, "score"] = np.nan
    return pa.Table.from_pandas(df, preserve_index=False)


def test_infers_every_kind():
    schema = infer_schema(mixed_table())
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "user_id": "id",
        "code": "id",
        "age": "integer",
        "score": "continuous",
        "city": "categorical",
        "active": "boolean",
        "when": "datetime",
        "const": "constant",
    }
    score = schema.column("score")
    assert score.decimals == 2 and 0.1 < score.null_rate < 0.2
    when = schema.column("when")
    assert when.tz == "Europe/Paris" and when.unit in ("ns", "us")
    assert schema.column("code").prefix == "U"
    assert schema.column("city").categories == ["a", "b", "c"]


def test_penguins_kinds(penguins_table):
    schema = infer_schema(penguins_table)
    assert schema.column("species").kind == "categorical"
    assert schema.column("flipper_length_mm").kind == "integer"
    assert schema.column("sex").categories == ["female", "male"]  # "NA" is missing, not a category
    assert schema.column("sex").null_rate > 0


def test_schema_json_roundtrip(tmp_path):
    table = mixed_table()
    schema = infer_schema(table)
    schema.save(tmp_path / "s.json")
    again = Schema.load(tmp_path / "s.json")
    assert again == schema
    assert again.arrow_schema().equals(table.schema, check_metadata=False)


def test_override_forces_kind_and_bounds(tmp_path, penguins_table):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"columns": {"year": {"kind": "categorical"}, "body_mass_g": {"min": 0}}}))
    schema = infer_schema(penguins_table, overrides=read_overrides(path))
    assert schema.column("year").kind == "categorical"
    assert schema.column("year").categories == [2007, 2008, 2009]
    assert schema.column("body_mass_g").min == 0


def test_override_naming_missing_column_is_bad_input(tmp_path, penguins_table):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"columns": {"wingspan": {"kind": "continuous"}}}))
    with pytest.raises(BadInput, match=r"o.json: column 'wingspan' is not in .*columns there are: species"):
        infer_schema(penguins_table, source="penguins.csv", overrides=read_overrides(path), overrides_source=str(path))


def test_override_impossible_kind_is_bad_input(penguins_table):
    with pytest.raises(BadInput, match="column 'species' .* cannot be kind 'continuous'"):
        infer_schema(penguins_table, overrides={"species": {"kind": "continuous"}})


def test_all_null_column_is_bad_input():
    table = pa.table({"a": [1.0, 2.0, 3.0], "b": pa.array([None, None, None], pa.float64())})
    with pytest.raises(BadInput, match="column 'b' is entirely null"):
        infer_schema(table, source="t.csv")


def test_inf_counts_as_missing():
    table = pa.table({"a": [1.0, np.inf, 3.0, -np.inf, 5.0], "b": ["x", "y", "x", "y", "x"]})
    spec = infer_schema(table).column("a")
    assert spec.max == 5.0 and spec.null_rate == pytest.approx(0.4)


# -- issue 9: exact bounds, types, overrides, notes ------------------------------------
INT64 = np.iinfo(np.int64)


def test_integer_bounds_are_exact_ints_in_json(tmp_path):
    table = pa.table(
        {
            "i": pa.array([INT64.min, INT64.max, 0], pa.int64()),
            "u": pa.array([2**63 + 1, 2**64 - 1, 2**63 + 5], pa.uint64()),
            "f": [0.5, 1.5, 2.5],
        }
    )
    schema = infer_schema(table)
    assert (schema.column("i").min, schema.column("i").max) == (INT64.min, INT64.max)
    assert (schema.column("u").min, schema.column("u").max) == (2**63 + 1, 2**64 - 1)
    assert isinstance(schema.column("f").min, float)
    raw = json.loads(schema.model_dump_json())
    assert raw["columns"][1]["max"] == 2**64 - 1  # an integer in the JSON text, not 1.8446744073709552e19
    schema.save(tmp_path / "s.json")
    assert Schema.load(tmp_path / "s.json").column("u").max == 2**64 - 1


def test_datetime_bounds_are_integer_ticks():
    table = pa.table({"t": pa.array([1, 2**62, 5], pa.timestamp("ns")), "x": [1, 2, 3]})
    spec = infer_schema(table).column("t")
    assert (spec.min, spec.max) == (1, 2**62) and isinstance(spec.max, int)


def test_constant_timestamp_keeps_ticks_of_its_unit():
    table = pa.table({"t": pa.array([4_000_000_000] * 3, pa.timestamp("s", tz="UTC")), "x": [1, 2, 3]})
    spec = infer_schema(table).column("t")
    assert (spec.kind, spec.value, spec.unit, spec.tz) == ("constant", 4_000_000_000, "s", "UTC")  # seconds, not ns


@pytest.mark.parametrize(
    "array, hint",
    [
        (pa.array([[1], [2]], pa.list_(pa.int64())), "flatten it"),
        (pa.array([{"a": 1}, {"a": 2}]), "flatten it"),
        (pa.array([b"a", b"b"]), "decode it to string"),
        (pa.array([Decimal("1.50"), Decimal("2.25")], pa.decimal128(10, 2)), "cast it to float64"),
        (pa.array([18262, 18263], pa.int32()).cast(pa.date32()), "cast it to timestamp[s]"),
        (pa.array([1, 2], pa.time64("us")), "cast it to string"),
        (pa.array([1, 2], pa.duration("s")), "cast it to int64"),
    ],
)
def test_unsupported_types_say_what_to_do(array, hint):
    with pytest.raises(BadInput, match=rf"t.parquet: column 'c' has unsupported Arrow type .*; {re.escape(hint)}"):
        infer_schema(pa.table({"c": array, "d": [1, 2]}), source="t.parquet")


def test_null_typed_column_is_entirely_null():
    with pytest.raises(BadInput, match="column 'c' is entirely null"):
        infer_schema(pa.table({"c": pa.array([None, None]), "d": [1, 2]}), source="t.csv")


def test_float16_is_supported():
    table = pa.table({"h": pa.array(np.array([0.5, -65504, 65504, 0.1], dtype=np.float16)), "x": [1, 2, 3, 4]})
    spec = infer_schema(table).column("h")
    assert (spec.kind, spec.dtype, spec.min, spec.max) == ("continuous", "halffloat", -65504.0, 65504.0)


def test_huge_and_tiny_floats_give_finite_bounds_without_warnings():
    table = pa.table({"big": [1e308, -1e308, 1.7976931348623157e308, 5.5], "tiny": [1e-30, 2e-30, 0.0, 4e-30]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schema = infer_schema(table)
    assert schema.column("big").max == 1.7976931348623157e308 and schema.column("big").decimals == 1
    assert schema.column("tiny").decimals is None  # not 0: that would round every value to 0.0


@pytest.mark.parametrize(
    "override, message",
    [
        ({"min": 5, "max": 1}, "column 'a' has min 5 above max 1"),
        ({"min": "low"}, "column 'a' has min 'low'; give a number"),
        ({"kind": "categorical", "categories": "abc"}, "has categories 'abc'; give a list of values"),
        ({"kind": "categorical", "categories": ["x", "y"]}, r"has categories \['x', 'y'\], which are not int64 values"),
    ],
)
def test_bad_override_values(override, message):
    table = pa.table({"a": pa.array([1, 2, 3]), "b": ["x", "y", "x"]})
    with pytest.raises(BadInput, match=rf"o.json: {message}" if message.startswith("column") else message):
        infer_schema(table, overrides={"a": override}, overrides_source="o.json")


def test_override_categories_take_the_column_type():
    table = pa.table({"a": pa.array([1, 2, 3]), "b": ["x", "y", "x"]})
    spec = infer_schema(table, overrides={"a": {"kind": "categorical", "categories": [1.0, 2.0, 3.0]}}).column("a")
    assert spec.categories == [1, 2, 3] and all(isinstance(c, int) for c in spec.categories)


def test_pandas_index_column_is_noted():
    table = pa.table({"Unnamed: 0": [0, 1, 2], "b": ["x", "y", "x"]})
    with pytest.warns(UserWarning, match="looks like a pandas index"):
        assert len(infer_schema(table).notes) == 1


def test_empty_table_is_bad_input():
    with pytest.raises(BadInput, match="t.csv: has no rows"):
        infer_schema(pa.table({"a": pa.array([], pa.int64())}), source="t.csv")


def test_old_schema_json_without_notes_and_with_float_bounds_loads(tmp_path):
    raw = json.loads(infer_schema(mixed_table()).model_dump_json())
    del raw["notes"]
    raw["columns"][2]["min"] = float(raw["columns"][2]["min"])
    (tmp_path / "old.json").write_text(json.dumps(raw))
    schema = Schema.load(tmp_path / "old.json")
    assert schema.notes == [] and isinstance(schema.column("age").min, float)
