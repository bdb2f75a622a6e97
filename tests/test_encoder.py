import numpy as np
import pyarrow as pa
import pytest

from synthaug.schema import infer_schema
from synthaug.transforms.tabular import TabularEncoder
from tests.test_schema import mixed_table


def roundtrip(table: pa.Table) -> pa.Table:
    schema = infer_schema(table)
    df = table.to_pandas()
    enc = TabularEncoder().fit(df, schema)
    return enc.decode(enc.encode(df))


def test_penguins_roundtrip_is_exact(penguins_table):
    back = roundtrip(penguins_table)
    assert back.schema.equals(penguins_table.schema, check_metadata=False)
    assert back.equals(penguins_table.replace_schema_metadata(None))


def test_mixed_roundtrip_restores_types_nulls_and_tz():
    table = mixed_table()
    back = roundtrip(table)
    assert back.schema.equals(table.schema, check_metadata=False)
    for name in ("age", "score", "city", "active", "const"):
        assert back[name].to_pylist() == table[name].to_pylist(), name
    # Offsets are float32: datetimes come back on their 1 s grid, within 1e-6 of their range.
    got, want = (t["when"].cast(pa.int64()).to_numpy() for t in (back, table))
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[table["when"].type.unit]
    assert np.all(got % per_second == 0)
    assert np.abs(got - want).max() <= 1e-6 * (want.max() - want.min())
    # ids are regenerated, never copied
    assert set(back["user_id"].to_pylist()).isdisjoint(table["user_id"].to_pylist())
    assert len(set(back["code"].to_pylist())) == table.num_rows


def test_decode_clips_to_bounds_and_rounds(penguins_table):
    schema = infer_schema(penguins_table)
    df = penguins_table.to_pandas()
    enc = TabularEncoder().fit(df, schema)
    noisy = enc.encode(df)
    for span in enc.spans:
        if span.kind == "value":
            noisy[:, span.start] += np.random.default_rng(0).normal(0, 3, len(noisy))
    out = enc.decode(noisy).to_pandas()
    assert out["body_mass_g"].min() >= 2700 and out["body_mass_g"].max() <= 6300
    assert (out["body_mass_g"].dropna() % 1 == 0).all()
    assert np.allclose(out["bill_length_mm"].dropna() * 10, np.round(out["bill_length_mm"].dropna() * 10))


def test_encoder_state_roundtrip(penguins_table):
    schema = infer_schema(penguins_table)
    df = penguins_table.to_pandas()
    enc = TabularEncoder().fit(df, schema)
    again = TabularEncoder.from_state(enc.state_dict(), schema)
    assert np.array_equal(again.encode(df), enc.encode(df))


# -- issue 9: exact integers, extreme floats, float16 ------------------------------------
INT64 = np.iinfo(np.int64)


def test_int64_limits_and_uint64_above_2_63_roundtrip_exactly():
    n = 60
    table = pa.table(
        {
            "top": pa.array(INT64.max - np.arange(n) * 3, pa.int64()),
            "bottom": pa.array(INT64.min + np.arange(n) * 5, pa.int64()),
            "u_top": pa.array([2**64 - 1 - 2 * i for i in range(n)], pa.uint64()),
            "u_mid": pa.array([2**63 + 7 * i for i in range(n)], pa.uint64()),
            "i32": pa.array(np.iinfo(np.int32).max - np.arange(n), pa.int32()),
        }
    )
    back = roundtrip(table)
    assert back.equals(table)


def test_integers_with_nulls_stay_exact_from_an_arrow_table():
    n = 60
    table = pa.table(
        {
            "top": pa.array([None if i % 7 == 0 else int(INT64.max) - i for i in range(n)], pa.int64()),
            "u": pa.array([None if i % 5 == 0 else 2**64 - 1 - i for i in range(n)], pa.uint64()),
        }
    )
    enc = TabularEncoder().fit(table, infer_schema(table))
    assert enc.decode(enc.encode(table)).equals(table)


def test_integers_spanning_the_whole_range_stay_in_bounds():
    table = pa.table(
        {
            "w": pa.array([INT64.min, INT64.max, 0, 1, -1] * 10, pa.int64()),
            "u": pa.array([0, 2**64 - 1, 2**63, 5, 7] * 10, pa.uint64()),
        }
    )
    schema = infer_schema(table)
    enc = TabularEncoder().fit(table.to_pandas(), schema)
    noisy = enc.encode(table.to_pandas())
    for span in enc.spans:
        if span.kind == "value":  # push offsets to both ends: decoding must clip, not wrap
            noisy[:, span.start] = np.where(np.arange(len(noisy)) % 2, 5.0, -5.0)
    back = enc.decode(noisy)
    for name in ("w", "u"):
        values = back[name].to_pylist()
        assert back[name].type == table[name].type and back[name].null_count == 0
        assert all(schema.column(name).min <= v <= schema.column(name).max for v in values), name


def test_decoded_integers_are_clipped_in_integer_space():
    table = pa.table({"a": pa.array(INT64.max - np.arange(40), pa.int64()), "b": pa.array(np.arange(40), pa.uint8())})
    schema = infer_schema(table)
    enc = TabularEncoder().fit(table, schema)
    x = enc.encode(table)
    for span in enc.spans:
        if span.kind == "value":
            x[:, span.start] = 1.0  # the top of every mode: past the maximum for the top mode
    back = enc.decode(x)
    assert max(back["a"].to_pylist()) == INT64.max and max(back["b"].to_pylist()) <= 39


def test_huge_and_tiny_floats_encode_and_decode_within_bounds():
    table = pa.table(
        {
            "big": pa.array([1e308, -1e308, 1.7976931348623157e308, 0.0, 5.5] * 10),
            "tiny": pa.array([1e-30, 2e-30, 3.5e-30, 0.0, 4e-30] * 10),
        }
    )
    schema = infer_schema(table)
    enc = TabularEncoder().fit(table.to_pandas(), schema)
    x = enc.encode(table.to_pandas())
    assert np.isfinite(x).all()
    back = enc.decode(x).to_pandas()
    for name in ("big", "tiny"):
        spec = schema.column(name)
        assert np.isfinite(back[name]).all() and back[name].between(spec.min, spec.max).all(), name
    assert np.allclose(back["tiny"], table["tiny"].to_numpy(), rtol=1e-5, atol=1e-35)  # not all rounded to 0
    assert back["big"].max() > 1.7e308 and back["big"].min() < -0.9e308


def test_float16_roundtrips_exactly_with_nulls():
    values = np.random.default_rng(0).normal(0, 300, 200).astype(np.float16)
    arr = pa.array(values, mask=np.arange(200) % 9 == 0)
    table = pa.table({"h": arr, "g": pa.array(np.arange(200) % 3)})
    back = roundtrip(table)
    assert back.schema.field("h").type == pa.float16()
    assert back["h"].to_pylist() == table["h"].to_pylist()


def test_inf_is_encoded_as_missing():
    table = pa.table({"a": [1.0, np.inf, 3.0, -np.inf, 5.0, 2.0]})
    schema = infer_schema(table)
    enc = TabularEncoder().fit(table.to_pandas(), schema)
    null = next(s for s in enc.spans if s.role == "null")
    flags = enc.encode(table.to_pandas())[:, null.start + 1]
    assert flags.tolist() == [0, 1, 0, 1, 0, 0]
    assert enc.decode(enc.encode(table.to_pandas()))["a"].to_pylist() == [1.0, None, 3.0, None, 5.0, 2.0]


def test_large_uint64_categories_and_constants_decode_exactly():
    table = pa.table({"c": pa.array([2**64 - 1, 2**63 + 1] * 5, pa.uint64()), "k": pa.array([2**64 - 2] * 10, pa.uint64())})
    schema = infer_schema(table, overrides={"c": {"kind": "categorical"}})
    assert schema.column("k").kind == "constant"
    enc = TabularEncoder().fit(table.to_pandas(), schema)
    assert enc.decode(enc.encode(table.to_pandas())).equals(table)


def test_constant_timestamp_in_seconds_decodes_to_its_value():
    table = pa.table({"t": pa.array([4_000_000_000] * 5, pa.timestamp("s")), "x": [1, 2, 3, 4, 5]})
    assert roundtrip(table).equals(table)


def test_continuous_override_on_integers_rounds_instead_of_truncating():
    table = pa.table({"a": pa.array(np.arange(100) * 3, pa.int64())})
    schema = infer_schema(table, overrides={"a": {"kind": "continuous"}})
    enc = TabularEncoder().fit(table, schema)
    assert enc.decode(enc.encode(table)).equals(table)


def test_state_with_integer_origin_survives_json(penguins_table):
    import json

    table = pa.table({"u": pa.array([2**64 - 1 - i for i in range(30)], pa.uint64())})
    schema = infer_schema(table)
    enc = TabularEncoder().fit(table, schema)
    again = TabularEncoder.from_state(json.loads(json.dumps(enc.state_dict())), schema)
    assert again.decode(again.encode(table)).equals(table)


# -- issue 10: narrow pandas codes added to column offsets --------------------------------
def wide_frame(levels: int) -> tuple[pa.Table, list[str]]:
    """A categorical with `levels` levels, then a 3-level one placed after it."""
    wide = [f"w{i:03d}" for i in range(levels)]
    tail = ["a", "b", "c"]
    n = levels * 3
    return pa.table({"wide": [wide[i % levels] for i in range(n)], "tail": [tail[i % 3] for i in range(n)]}), tail


@pytest.mark.parametrize("levels", [126, 140])  # 126: int8 wraps past 127 silently; 140: OverflowError
def test_mixed_encoder_one_hot_after_many_features(levels):
    from synthaug.validation.encoding import MixedEncoder

    table, tail = wide_frame(levels)
    df = table.to_pandas()
    x = MixedEncoder(infer_schema(table)).fit_transform(df)
    assert x.shape == (len(df), levels + 3)
    assert (x.sum(axis=1) == 2).all()  # exactly one level of each column
    expect = df["tail"].map({c: i for i, c in enumerate(tail)}).to_numpy()
    assert (x[:, levels:].argmax(axis=1) == expect).all()


def test_tabular_encoder_one_hot_after_many_features():
    table, tail = wide_frame(140)
    back = roundtrip(table)
    assert back.equals(table)
