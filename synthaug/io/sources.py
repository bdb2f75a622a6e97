"""Read a source table: a CSV file, a Parquet file, or a Parquet directory (hive partitions).

Every problem with the input is one line of BadInput naming the file, column or line. What
is read as asked but probably not as meant is a `DataWarning` (the CLI shows these).

- CSV: must be UTF-8 unless `encoding` says otherwise. The delimiter is detected among
  `, ; TAB |`: one that splits every sampled line into the same number (> 1) of fields,
  preferring `,` (TAB for .tsv), which is also used when none does. A one-column result
  whose name holds another of them is refused. Rows with the wrong number of fields are
  refused with their line number. Date columns are read as timestamp[s] (midnight) and
  time-of-day columns as strings, since those Arrow types cannot be modelled.
- Parquet folder: every file must have the same columns. Types may differ only by lossless
  widening (int32 -> int64, float32 -> float64, int16 -> float32, a null-typed column...);
  the folder is then read with the widened types and a DataWarning says so. Anything else
  is refused naming the file and the column. A hive partition key must not also be a
  column inside the files, and every file must sit under the same partition keys.
- Any source: column names must be unique and not empty.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import warnings
from pathlib import Path

import pyarrow as pa

from synthaug.errors import BadInput
from synthaug.schema.tabular import DataWarning, check_column_names

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
SNIFF_BYTES = 64 * 1024
_HIDDEN = (".", "_")  # pyarrow.dataset skips files and folders starting with these


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


def read_table(
    path: str | Path,
    format: str = "auto",
    key: str = "source.path",
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    null_values: list[str] | None = None,
) -> pa.Table:
    """Read the whole source into an Arrow table; every failure is a one-line BadInput.

    CSV only: `encoding` of the file's text, `delimiter` (None: detect), `null_values`: extra
    cell texts read as missing, on top of pyarrow's defaults ("", "NA", "null", "NaN", ...).
    """
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: file not found; check {key}")
    if path.is_file() and path.stat().st_size == 0:
        raise BadInput(f"{path}: file is empty; point {key} at a table with a header and rows")
    fmt = detect_format(path, format)
    try:
        if fmt == "csv":
            table = _read_csv(path, encoding=encoding, delimiter=delimiter, null_values=null_values)
        else:
            table = _read_parquet(path, key)
    except (pa.ArrowException, OSError) as exc:
        what = "CSV" if fmt == "csv" else "Parquet"
        raise BadInput(f"{path}: not a readable {what} file ({_first_line(exc)}); re-export it or fix {key}") from None
    table = table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")])
    if table.num_columns == 0:
        raise BadInput(f"{path}: has no columns; point {key} at a table")
    check_column_names(table.column_names, str(path))
    if table.num_rows == 0:
        raise BadInput(f"{path}: has a header but no rows; add data rows")
    return table


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- CSV -----------------------------------------------------------------------------
def _read_csv(path: Path, *, encoding: str, delimiter: str | None, null_values: list[str] | None) -> pa.Table:
    from pyarrow import csv as pacsv

    if delimiter is not None and len(delimiter) != 1:
        raise BadInput(f"{path}: delimiter must be one character (got {delimiter!r})")
    encoding = _check_encoding(path, encoding)
    default = "\t" if path.suffix.lower() == ".tsv" else ","
    sep = delimiter or _sniff_delimiter(path, encoding, default)
    bad_rows: list = []

    def on_bad_row(row) -> str:
        bad_rows.append(row)
        return "skip"  # collected, then refused below with a line number

    read = pacsv.ReadOptions(encoding=encoding)
    parse = pacsv.ParseOptions(delimiter=sep, invalid_row_handler=on_bad_row)
    # "NA" and empty strings are missing values in string columns too, as pandas reads them.
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    if null_values:
        convert.null_values = [*convert.null_values, *null_values]
    table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    if bad_rows:
        raise BadInput(_ragged_message(path, encoding, sep, table.num_columns, bad_rows))
    if delimiter is None:
        _refuse_one_packed_column(path, table, sep)
    return _modelable_csv_types(table)


def _check_encoding(path: Path, encoding: str) -> str:
    """The encoding to read with; BadInput for an unknown one or for UTF-8 that is not."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise BadInput(f"{path}: unknown text encoding '{encoding}'; use e.g. 'utf-8', 'latin-1' or 'cp1252'") from None
    if name != "utf-8":
        return encoding
    with path.open("rb") as fh:
        head = fh.read(2)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        raise BadInput(f"{path}: not UTF-8 (it starts with a UTF-16 byte-order mark); re-save it as UTF-8 or pass encoding='utf-16'")
    _check_utf8(path)
    return "utf-8"


def _check_utf8(path: Path) -> None:
    """BadInput at the first byte that is not valid UTF-8 (pyarrow would read it as binary)."""
    pos, line, carry = 0, 1, b""
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            buf = carry + chunk
            try:
                buf.decode("utf-8")
                good = len(buf)
            except UnicodeDecodeError as exc:
                cut_at_chunk_end = exc.end == len(buf) and exc.reason == "unexpected end of data" and chunk
                if not cut_at_chunk_end:
                    at = pos + exc.start
                    line += buf[: exc.start].count(b"\n")
                    raise BadInput(
                        f"{path}: not UTF-8 (byte 0x{buf[exc.start]:02x} at offset {at}, line {line}); "
                        f"re-save it as UTF-8 or pass encoding='latin-1' (or 'cp1252')"
                    ) from None
                good = exc.start  # a character split by the chunk boundary: finish it next round
            line += buf[:good].count(b"\n")
            pos, carry = pos + good, buf[good:]
            if not chunk:
                return


def _sample_text(path: Path, encoding: str) -> tuple[str, bool]:
    """The start of the file as text, and whether the file goes on past it."""
    with path.open("rb") as fh:
        raw = fh.read(SNIFF_BYTES)
        more = bool(fh.read(1))
    return raw.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="ignore"), more


def _sniff_delimiter(path: Path, encoding: str, default: str) -> str:
    """The delimiter that splits every sampled record into the same number (> 1) of fields."""
    text, more = _sample_text(path, encoding)
    consistent = {}
    for sep in DELIMITERS:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=sep) if row]
        rows = rows[:-1] if more and len(rows) > 1 else rows  # the sample cut through the last one
        counts = {len(row) for row in rows}
        if len(counts) == 1 and (n := counts.pop()) > 1:
            consistent[sep] = n
    if default in consistent or not consistent:
        return default
    return max(consistent, key=lambda s: consistent[s])  # dict order breaks ties: , ; tab |


def _refuse_one_packed_column(path: Path, table: pa.Table, sep: str) -> None:
    """A one-column CSV whose name holds another delimiter was most likely split wrongly."""
    if table.num_columns != 1:
        return
    name = table.column_names[0]
    other = [d for d in DELIMITERS if d != sep and d in name]
    if other:
        d = other[0]
        raise BadInput(
            f"{path}: read as one column named {name!r}, which looks {_DELIMITER_NAMES[d]}-separated, but its lines "
            f"do not all split into the same number of fields; fix the ragged lines or pass delimiter={d!r}"
        )


def _ragged_message(path: Path, encoding: str, sep: str, n_fields: int, bad_rows: list) -> str:
    first = bad_rows[0]
    line = _line_of_record(path, encoding, sep, n_fields) or first.number
    where = f"line {line}" if line else f"a line ({first.text[:40]!r})"
    extra = len(bad_rows) - 1
    more = f" (and {extra} more such line{'s' if extra > 1 else ''})" if extra else ""
    return (
        f"{path}: {where} has {first.actual_columns} fields but the header has {first.expected_columns}{more}; "
        f"fix those lines, or quote fields that contain {_DELIMITER_NAMES.get(sep, repr(sep))}"
    )


def _line_of_record(path: Path, encoding: str, sep: str, n_fields: int) -> int | None:
    """Physical line number of the first record whose field count differs from the header's."""
    try:
        with path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=sep)
            for row in reader:
                if row and len(row) != n_fields:
                    return reader.line_num
    except (csv.Error, UnicodeDecodeError, LookupError):
        return None
    return None


def _modelable_csv_types(table: pa.Table) -> pa.Table:
    """CSV text inferred as date32 -> timestamp[s]; time of day -> the text itself."""
    for i, field in enumerate(table.schema):
        t = field.type
        if pa.types.is_date(t):
            table = table.set_column(i, pa.field(field.name, pa.timestamp("s")), table.column(i).cast(pa.timestamp("s")))
        elif pa.types.is_time(t):
            table = table.set_column(i, pa.field(field.name, pa.string()), table.column(i).cast(pa.string()))
    return table


# -- Parquet ------------------------------------------------------------------------
def _read_parquet(path: Path, key: str) -> pa.Table:
    import pyarrow.parquet as pq

    if path.is_dir():
        return _read_parquet_dir(path, key)
    check_column_names(pq.read_schema(path).names, str(path))
    return pq.read_table(path)


def _parquet_files(root: Path) -> list[Path]:
    files = []
    for p in sorted(root.rglob("*")):
        parts = p.relative_to(root).parts
        if p.is_file() and not any(part.startswith(_HIDDEN) for part in parts):
            files.append(p)
    return files


def _partition_keys(root: Path, file: Path) -> list[str]:
    return [part.split("=", 1)[0] for part in file.relative_to(root).parts[:-1] if "=" in part]


def _read_parquet_dir(root: Path, key: str) -> pa.Table:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    files = _parquet_files(root)
    if not files:
        raise BadInput(f"{root}: directory holds no Parquet files; check {key}")
    schemas = []
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"{f}: not a readable Parquet file ({_first_line(exc)}); remove it from {root} or re-export it") from None
        check_column_names(schema.names, str(f))
        schemas.append(schema)
    _check_partition_keys(root, files, schemas)
    _check_same_columns(root, files, schemas, key)
    unified = _unify(root, files, schemas)
    found = ds.dataset([str(f) for f in files], format="parquet", partitioning="hive", partition_base_dir=str(root))
    keys = [found.schema.field(k) for k in _partition_keys(root, files[0])]
    full = pa.schema([*unified, *keys], metadata=unified.metadata)
    dataset = ds.dataset([str(f) for f in files], schema=full, format="parquet", partitioning="hive", partition_base_dir=str(root))
    return dataset.to_table()


def _check_partition_keys(root: Path, files: list[Path], schemas: list[pa.Schema]) -> None:
    first = _partition_keys(root, files[0])
    for f, schema in zip(files, schemas):
        keys = _partition_keys(root, f)
        clash = [k for k in keys if k in schema.names]
        if clash:
            raise BadInput(
                f"{f}: partition key '{clash[0]}' (from its folder name) is also a column inside the file; "
                f"rename the folder key or drop the column from the files"
            )
        if keys != first:
            raise BadInput(
                f"{f}: sits under partition keys [{', '.join(keys)}] but {files[0]} under [{', '.join(first)}]; "
                f"rows would get null keys: put every file at the same partition depth"
            )


def _data_columns(schema: pa.Schema) -> list[str]:
    """Column names without pandas' index columns (read_table drops those anyway)."""
    return [n for n in schema.names if not n.startswith("__index_level_")]


def _check_same_columns(root: Path, files: list[Path], schemas: list[pa.Schema], key: str) -> None:
    want = _data_columns(schemas[0])
    for f, schema in zip(files[1:], schemas[1:]):
        have = _data_columns(schema)
        missing = [n for n in want if n not in have]
        extra = [n for n in have if n not in want]
        if missing or extra:
            diff = "; ".join(
                part
                for part in (
                    f"lacks {', '.join(map(repr, missing))}" if missing else "",
                    f"adds {', '.join(map(repr, extra))}" if extra else "",
                )
                if part
            )
            raise BadInput(
                f"{f}: has different columns from {files[0].relative_to(root)} ({diff}); "
                f"rewrite the files with one set of columns, or point {key} at files that share them"
            )


def _unify(root: Path, files: list[Path], schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for every file: equal types, or a lossless widening (announced)."""
    first = schemas[0]
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowException, TypeError):
        unified = None
    fields, widened = [], []
    for name in _data_columns(first):
        types = [schema.field(name).type for schema in schemas]
        target = unified.field(name).type if unified is not None else types[0]
        if not all(_lossless(t, target) for t in types):
            f, t = next(((f, t) for f, t in zip(files, types) if t != types[0]), (files[0], types[0]))
            raise BadInput(
                f"{f}: column '{name}' is {t} there but {types[0]} in {files[0].relative_to(root)}; cast it to one type in every file"
            )
        was = sorted({str(t) for t in types if t != target})
        if was:
            widened.append(f"'{name}' as {target} (also stored as {', '.join(was)})")
        fields.append(unified.field(name) if unified is not None else first.field(name))
    if widened:
        message = f"{root}: files store columns with different types; read losslessly widened: {'; '.join(widened)}"
        warnings.warn(message, DataWarning, stacklevel=5)
    return pa.schema(fields, metadata=first.metadata)


_MANTISSA_BITS = {16: 11, 32: 24, 64: 53}


def _lossless(t: pa.DataType, target: pa.DataType) -> bool:
    """Can every value of type `t` be stored exactly as `target`?"""
    if t == target or pa.types.is_null(t):
        return True
    if pa.types.is_dictionary(t) and pa.types.is_dictionary(target):  # e.g. pandas categoricals with more levels
        return _lossless(t.index_type, target.index_type) and _lossless(t.value_type, target.value_type)
    if pa.types.is_integer(t) and pa.types.is_integer(target):
        if pa.types.is_signed_integer(t) == pa.types.is_signed_integer(target):
            return target.bit_width >= t.bit_width
        return pa.types.is_unsigned_integer(t) and target.bit_width > t.bit_width
    if pa.types.is_integer(t) and pa.types.is_floating(target):
        return t.bit_width < _MANTISSA_BITS[target.bit_width]
    if pa.types.is_floating(t) and pa.types.is_floating(target):
        return target.bit_width >= t.bit_width
    if pa.types.is_timestamp(t) and pa.types.is_timestamp(target):
        units = ["s", "ms", "us", "ns"]
        return t.tz == target.tz and units.index(target.unit) >= units.index(t.unit)
    stretch = {pa.string(): pa.large_string(), pa.binary(): pa.large_binary()}
    return stretch.get(t) == target


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
