import pyarrow.parquet as pq
import pytest

from synthaug.errors import BadInput
from synthaug.io.sources import read_table
from tests.conftest import PENGUINS


def test_reads_csv_parquet_file_and_hive_directory(tmp_path, penguins_table):
    pq.write_table(penguins_table, tmp_path / "p.parquet")
    pq.write_to_dataset(penguins_table, tmp_path / "ds", partition_cols=["island"])
    assert read_table(PENGUINS).num_rows == 344
    assert read_table(tmp_path / "p.parquet").equals(penguins_table)
    from_dir = read_table(tmp_path / "ds")
    assert from_dir.num_rows == 344 and "island" in from_dir.column_names


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "file not found; check source.path"),
        (b"", "file is empty"),
        (b"a,b,c\n", "has a header but no rows"),
    ],
)
def test_bad_csv_files(tmp_path, content, message):
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInput, match=message) as err:
        read_table(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1" + b"\x00garbage" * 50)
    with pytest.raises(BadInput, match=r"t.parquet: not a readable Parquet file .*re-export it"):
        read_table(path)


def test_empty_parquet_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(BadInput, match="holds no Parquet files"):
        read_table(tmp_path / "d")
