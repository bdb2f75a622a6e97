"""Read a source table: a CSV file, a Parquet file, or a Parquet directory (hive partitions)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa

from synthaug.errors import BadInput

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}


def detect_format(path: Path, format: str = "auto") -> str:
    if format != "auto":
        return format
    if path.is_dir():
        return "parquet"
    if path.suffix.lower() in CSV_SUFFIXES:
        return "csv"
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    with path.open("rb") as fh:
        return "parquet" if fh.read(4) == b"PAR1" else "csv"


def read_table(path: str | Path, format: str = "auto", key: str = "source.path") -> pa.Table:
    """Read the whole source into an Arrow table; every failure is a one-line BadInput."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: file not found; check {key}")
    if path.is_file() and path.stat().st_size == 0:
        raise BadInput(f"{path}: file is empty; point {key} at a table with a header and rows")
    fmt = detect_format(path, format)
    try:
        table = _read_csv(path) if fmt == "csv" else _read_parquet(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        what = "CSV" if fmt == "csv" else "Parquet"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{path}: not a readable {what} file ({first}); re-export it or fix {key}") from None
    table = table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")])
    if table.num_columns == 0:
        raise BadInput(f"{path}: has no columns; point {key} at a table")
    if table.num_rows == 0:
        raise BadInput(f"{path}: has a header but no rows; add data rows")
    return table


def _read_csv(path: Path) -> pa.Table:
    from pyarrow import csv

    parse = csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    # "NA" and empty strings are missing values in string columns too, as pandas reads them.
    convert = csv.ConvertOptions(strings_can_be_null=True)
    return csv.read_csv(path, parse_options=parse, convert_options=convert)


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.dataset as ds

    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
        if not files:
            raise BadInput(f"{path}: directory holds no Parquet files; check source.path")
        return ds.dataset(path, format="parquet", partitioning="hive").to_table()
    import pyarrow.parquet as pq

    return pq.read_table(path)


def data_hash(path: str | Path) -> str:
    """sha256 over the source's bytes (every file of a directory, in path order)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
