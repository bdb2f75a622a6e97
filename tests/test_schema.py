import json

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
