"""Bad sources (issue 9): each is a one-line BadInput naming the file, column or line, or is read
correctly and said so; never a traceback, never a silently wrong table."""

import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthaug.errors import BadInput
from synthaug.io.sources import read_table
from synthaug.schema import infer_schema
from synthaug.schema.tabular import DataWarning
from tests.conftest import PENGUINS


def bad_input(path, **kwargs) -> str:
    """The one-line message read_table gives for `path`."""
    with pytest.raises(BadInput) as err:
        read_table(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def write(path, text: str):
    path.write_text(text)
    return path


# -- CSV: delimiters --------------------------------------------------------------
@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_delimiter_is_detected(tmp_path, sep):
    path = write(tmp_path / "t.csv", f"a{sep}b{sep}c\n1{sep}x{sep}2.5\n3{sep}y{sep}4.5\n")
    table = read_table(path)
    assert table.column_names == ["a", "b", "c"]
    assert table["c"].to_pylist() == [2.5, 4.5]


def test_delimiter_detection_copes_with_quoted_line_breaks(tmp_path):
    path = write(tmp_path / "t.csv", 'note;n\n"two\nlines";1\nplain;2\n')
    assert read_table(path).to_pydict() == {"note": ["two\nlines", "plain"], "n": [1, 2]}


def test_semicolon_csv_with_decimal_commas_is_split_on_semicolons_and_noted(tmp_path):
    path = write(tmp_path / "eu.csv", "price;n\n1,5;2\n3,25;4\n2,0;5\n")
    table = read_table(path)
    assert table.column_names == ["price", "n"]
    with pytest.warns(DataWarning, match="column 'price': values look like numbers written with a comma"):
        schema = infer_schema(table, source="eu.csv")
    assert "decimal point" in schema.notes[0]


def test_one_packed_column_is_refused_when_lines_are_ragged(tmp_path):
    path = write(tmp_path / "t.csv", "a;b;c\n1;2;3\n4;5\n")
    message = bad_input(path)
    assert "read as one column named 'a;b;c'" in message and "delimiter=';'" in message


def test_explicit_delimiter_wins(tmp_path):
    path = write(tmp_path / "t.csv", "a;b\n1;2\n")
    assert read_table(path, delimiter=",").column_names == ["a;b"]


def test_delimiter_must_be_one_character(tmp_path):
    path = write(tmp_path / "t.csv", "a;b\n1;2\n")
    assert "delimiter must be one character (got ';;')" in bad_input(path, delimiter=";;")


def test_quoted_comma_in_a_single_column_header_is_fine(tmp_path):
    path = write(tmp_path / "t.csv", '"a,b"\n1\n2\n')
    assert read_table(path).column_names == ["a,b"]


# -- CSV: ragged rows, names ------------------------------------------------------
def test_ragged_rows_name_the_line(tmp_path):
    path = write(tmp_path / "t.csv", "a,b\n" + "1,2\n" * 5 + '"x\ny",3\n' + "4,5,6\n" + "7,8,9\n")
    message = bad_input(path)
    # header 1, five rows 2-6, a quoted field over lines 7-8, the bad row on line 9
    assert "line 9 has 3 fields but the header has 2 (and 1 more such line)" in message
    assert str(path) in message


@pytest.mark.parametrize(
    "header, message",
    [
        ("a,a,b", "column name 'a' occurs 2 times"),
        ("a,,b", "column 2 has an empty name"),
        ("a, ,b", "column 2 has an empty name"),
        (",a,b", "column 1 has an empty name (a CSV written with pandas' index"),
        ("a,b,", "column 3 has an empty name (a delimiter at the end of every line"),
    ],
)
def test_bad_csv_header_names(tmp_path, header, message):
    path = write(tmp_path / "t.csv", f"{header}\n1,2,3\n4,5,6\n")
    assert message in bad_input(path)


def test_duplicate_names_in_a_table_given_directly():
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])
    with pytest.raises(BadInput, match="t.parquet: column name 'a' occurs 2 times"):
        infer_schema(table, source="t.parquet")


# -- CSV: encodings ---------------------------------------------------------------
def test_latin1_csv_is_refused_with_the_byte_and_offset(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("name,n\ncaf\xe9,1\nb,2\n".encode("latin-1"))
    message = bad_input(path)
    assert f"{path}: not UTF-8 (byte 0xe9 at offset 10, line 2)" in message
    assert "encoding='latin-1'" in message


def test_latin1_csv_reads_with_its_encoding(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("name;n\ncaf\xe9;1\nb;2\n".encode("cp1252"))
    assert read_table(path, encoding="cp1252").to_pydict() == {"name": ["café", "b"], "n": [1, 2]}


def test_non_utf8_byte_beyond_the_first_chunk(tmp_path):
    path = tmp_path / "t.csv"
    body = "".join(f"r{i:07d},{i}\n" for i in range(150_000))  # 1.8 MB: past the 1 MB read chunk
    path.write_bytes(("name,n\n" + body).encode() + "\xe9,1\n".encode("latin-1"))
    assert f"offset {len(body) + 7}, line {150_002})" in bad_input(path)


def test_utf8_character_split_by_the_chunk_boundary_is_fine(tmp_path):
    path = tmp_path / "t.csv"
    filler = "x" * ((1 << 20) - len("name,n\n") - 1)  # é's two bytes straddle the 1 MB mark
    path.write_bytes(f"name,n\n{filler}é,1\nb,2\n".encode())
    assert read_table(path).num_rows == 2


def test_utf16_and_unknown_encodings(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16"))
    assert "UTF-16 byte-order mark" in bad_input(path)
    assert read_table(path, encoding="utf-16").to_pydict() == {"a": [1], "b": [2]}
    assert "unknown text encoding 'klingon'" in bad_input(path, encoding="klingon")


def test_utf8_bom_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa;b\n1;2\n".encode())
    assert read_table(path).column_names == ["a", "b"]


# -- CSV: values --------------------------------------------------------------------
def penguins_with_unknown_masses(tmp_path):
    lines = PENGUINS.read_text().splitlines()
    for i in (5, 9):  # two body masses become "unknown" (2 of the 342 present values)
        cells = lines[i].split(",")
        cells[5] = "unknown"
        lines[i] = ",".join(cells)
    return write(tmp_path / "p.csv", "\n".join(lines) + "\n")


def test_a_few_text_cells_in_a_numeric_column_are_noted_not_changed(tmp_path):
    path = penguins_with_unknown_masses(tmp_path)
    with pytest.warns(DataWarning, match=r"column 'body_mass_g': 2 of 342 values are not numbers \('unknown' x2\)"):
        schema = infer_schema(read_table(path), source=str(path))
    spec = schema.column("body_mass_g")
    assert spec.kind == "categorical" and "unknown" in spec.categories  # the data is kept as it is
    assert schema.notes == [n for n in schema.notes if "body_mass_g" in n] and len(schema.notes) == 1
    assert "declare them missing" in schema.notes[0]
    assert '"notes"' in schema.model_dump_json()


def test_null_values_make_such_a_column_numeric(tmp_path):
    path = penguins_with_unknown_masses(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        schema = infer_schema(read_table(path, null_values=["unknown"]))
    assert schema.column("body_mass_g").kind == "integer" and schema.notes == []


def test_all_number_text_and_plain_categories_get_no_note():
    table = pa.table({"zip": ["02134", "10001", "02134"], "species": ["a", "b", "a"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert infer_schema(table).notes == []


def test_csv_dates_become_timestamps_and_times_text(tmp_path):
    path = write(tmp_path / "t.csv", "d,t,v\n2020-01-01,12:00:00,1\n2020-01-05,13:30:00,2\n2020-02-01,14:00:00,3\n")
    table = read_table(path)
    assert table.schema.field("d").type == pa.timestamp("s") and table.schema.field("t").type == pa.string()
    spec = infer_schema(table).column("d")
    assert spec.kind == "datetime" and spec.step == 86400 and spec.min == 1577836800


def test_empty_csv_column_is_entirely_null(tmp_path):
    path = write(tmp_path / "t.csv", "a,b\n1,\n2,\n")
    with pytest.raises(BadInput, match="column 'b' is entirely null; drop it"):
        infer_schema(read_table(path), source=str(path))


# -- Parquet folders --------------------------------------------------------------
def folder(tmp_path, *tables, names=None):
    root = tmp_path / "ds"
    for i, table in enumerate(tables):
        path = root / (names[i] if names else f"part-{i}.parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    return root


def test_folder_with_different_columns_is_refused_naming_file_and_columns(tmp_path):
    root = folder(tmp_path, pa.table({"a": [1, 2], "b": [1.0, 2.0]}), pa.table({"a": [3, 4], "c": ["x", "y"]}))
    message = bad_input(root)
    assert f"{root / 'part-1.parquet'}: has different columns from part-0.parquet (lacks 'b'; adds 'c')" in message


def test_folder_with_widened_types_is_read_widened_and_said(tmp_path):
    root = folder(
        tmp_path,
        pa.table({"a": pa.array([1, 2], pa.int32()), "f": pa.array([1.5, None], pa.float32()), "n": pa.array([None, None], pa.null())}),
        pa.table({"f": pa.array([2.5, 3.0]), "a": pa.array([3, 2**40], pa.int64()), "n": ["u", "v"]}),
    )
    with pytest.warns(DataWarning, match=r"read losslessly widened: 'a' as int64 \(also stored as int32\); 'f' as double"):
        table = read_table(root)
    assert table.schema.names == ["a", "f", "n"]
    assert table.to_pydict() == {"a": [1, 2, 3, 2**40], "f": [1.5, None, 2.5, 3.0], "n": [None, None, "u", "v"]}


@pytest.mark.parametrize(
    "second, message",
    [
        (pa.table({"a": pa.array([1.5])}), "column 'a' is double there but int64 in part-0.parquet"),  # int64 -> double rounds
        (pa.table({"a": ["x"]}), "column 'a' is string there but int64 in part-0.parquet"),
    ],
)
def test_folder_with_incompatible_types_is_refused(tmp_path, second, message):
    root = folder(tmp_path, pa.table({"a": pa.array([1, 2], pa.int64())}), second)
    text = bad_input(root)
    assert str(root / "part-1.parquet") in text and message in text


def test_partition_key_that_is_also_a_column_is_refused(tmp_path):
    root = folder(tmp_path, pa.table({"a": [1, 2], "k": pa.array([1, 1], pa.int32())}), names=["k=1/p.parquet"])
    assert "partition key 'k' (from its folder name) is also a column inside the file" in bad_input(root)


def test_files_at_different_partition_depths_are_refused(tmp_path):
    root = folder(tmp_path, pa.table({"a": [1]}), pa.table({"a": [2]}), names=["k=1/p.parquet", "q.parquet"])
    assert "rows would get null keys" in bad_input(root)


def test_non_parquet_file_in_a_folder_is_named(tmp_path):
    root = folder(tmp_path, pa.table({"a": [1, 2]}))
    (root / "README.md").write_text("about this data")
    (root / "_SUCCESS").write_text("")  # skipped, as pyarrow.dataset skips it
    assert f"{root / 'README.md'}: not a readable Parquet file" in bad_input(root)


def test_pandas_index_columns_do_not_count_as_a_difference(tmp_path):
    import pandas as pd

    root = folder(
        tmp_path,
        pa.Table.from_pandas(pd.DataFrame({"a": [1, 2]}, index=[5, 6])),  # stores __index_level_0__
        pa.Table.from_pandas(pd.DataFrame({"a": [3]})),
    )
    assert read_table(root).to_pydict() == {"a": [1, 2, 3]}


def test_duplicate_names_in_parquet(tmp_path):
    dup = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])
    pq.write_table(dup, tmp_path / "d.parquet")
    assert "column name 'a' occurs 2 times" in bad_input(tmp_path / "d.parquet")
    root = folder(tmp_path, dup)
    assert str(root / "part-0.parquet") in bad_input(root)


def test_pandas_categoricals_with_wider_codes_in_one_file_are_read(tmp_path):
    import pandas as pd

    root = folder(
        tmp_path,
        pa.Table.from_pandas(pd.DataFrame({"c": pd.Categorical(["a", "b"])})),  # int8 codes
        pa.Table.from_pandas(pd.DataFrame({"c": pd.Categorical([f"x{i}" for i in range(300)])})),  # int16 codes
    )
    with pytest.warns(DataWarning, match="'c' as dictionary<values=string, indices=int16"):
        table = read_table(root)
    assert table.num_rows == 302 and table["c"].to_pylist()[:3] == ["a", "b", "x0"]
