"""Write synthetic batches as zstd Parquet shards of a fixed row count, streaming."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SHARD_NAME = "part-{:05d}.parquet"


@dataclass(frozen=True)
class ShardInfo:
    path: str  # relative to the run directory
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ShardWriter:
    """Buffers at most one shard of rows; `write` takes Arrow tables, `close` returns the shards.

    `on_shard(path, table)` runs after each shard is written (validation hooks in here).
    """

    def __init__(
        self,
        run_dir: Path,
        schema: pa.Schema,
        rows_per_shard: int,
        synthetic_column: str | None = None,
        on_shard=None,
        provenance: dict | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.data_dir = self.run_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        if synthetic_column:
            self.schema = schema.append(pa.field(synthetic_column, pa.bool_(), nullable=False))
        if provenance:
            # Parquet key-value metadata "synthaug": who made these rows, readable after any concat.
            # Deterministic content (no run id or time), so the same seed still gives the same bytes.
            meta = dict(self.schema.metadata or {})
            meta[b"synthaug"] = json.dumps(provenance, sort_keys=True).encode()
            self.schema = self.schema.with_metadata(meta)
        self.synthetic_column = synthetic_column
        self.rows_per_shard = rows_per_shard
        self.on_shard = on_shard
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.shards: list[ShardInfo] = []

    def write(self, table: pa.Table) -> None:
        if self.synthetic_column:
            table = table.append_column(self.schema.field(self.synthetic_column), pa.array([True] * table.num_rows))
        self.buffer.append(table)
        self.buffered += table.num_rows
        while self.buffered >= self.rows_per_shard:
            whole = pa.concat_tables(self.buffer)
            self._flush(whole.slice(0, self.rows_per_shard))
            rest = whole.slice(self.rows_per_shard)
            self.buffer, self.buffered = [rest], rest.num_rows

    def close(self) -> list[ShardInfo]:
        if self.buffered:
            self._flush(pa.concat_tables(self.buffer))
        self.buffer, self.buffered = [], 0
        return self.shards

    def _flush(self, table: pa.Table) -> None:
        table = table.cast(self.schema).combine_chunks()
        path = self.data_dir / SHARD_NAME.format(len(self.shards))
        pq.write_table(table, path, compression="zstd")
        rel = str(path.relative_to(self.run_dir))
        self.shards.append(ShardInfo(rel, table.num_rows, path.stat().st_size, sha256_file(path)))
        if self.on_shard:
            self.on_shard(path, table)
