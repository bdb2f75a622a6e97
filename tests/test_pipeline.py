"""End to end on the bundled penguins table with a tiny VAE."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from synthaug.pipeline.run import run_pipeline
from tests.conftest import PENGUINS, ROOT, tree


def test_run_publishes_schema_identical_shards(tmp_path, write_pipeline, penguins_table):
    source = tmp_path / "penguins.parquet"
    pq.write_table(penguins_table, source)
    result = run_pipeline(write_pipeline(source=source))
    out = result.path
    assert result.status == "published" and result.exit_code == 0
    shards = sorted((out / "data").glob("part-*.parquet"))
    assert [p.name for p in shards] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [pq.read_metadata(p).num_rows for p in shards] == [128, 128, 44]
    assert pq.read_metadata(shards[0]).row_group(0).column(0).compression == "ZSTD"
    # Real and synthetic read back as one dataset.
    combined = ds.dataset([str(source), *map(str, shards)], format="parquet").to_table()
    assert combined.num_rows == 344 + 300
    for p in shards:
        assert pq.read_schema(p).equals(penguins_table.schema, check_metadata=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["rows"] for s in manifest["shards"]] == [128, 128, 44]
    assert manifest["split"] == {"train_rows": 275, "holdout_rows": 69}
    assert {"seed", "config_hash", "source", "versions", "timings"} <= manifest.keys()
    assert (out / "model" / "generator.json").is_file() and (out / "schema.json").is_file()
    assert list((out / "checkpoints").glob("*.ckpt"))
    assert not [p for p in out.parent.iterdir() if ".staging-" in p.name or ".old-" in p.name]  # no staging left


def test_same_seed_gives_byte_identical_shards(tmp_path, write_pipeline):
    first = run_pipeline(write_pipeline(name="a")).manifest
    second = run_pipeline(write_pipeline(name="b")).manifest
    other_seed = run_pipeline(write_pipeline(name="c", seed=1)).manifest
    sha = lambda m: [s["sha256"] for s in m["shards"]]  # noqa: E731
    assert sha(first) == sha(second)
    assert sha(first) != sha(other_seed)


def test_synthetic_marker_column(write_pipeline):
    out = run_pipeline(write_pipeline(sample={"synthetic_column": "is_synthetic"})).path
    table = ds.dataset(out / "data", format="parquet").to_table()
    assert table.column_names[-1] == "is_synthetic" and all(table["is_synthetic"].to_pylist())


def test_overwrite_replaces_destination(write_pipeline):
    path = write_pipeline()
    out = run_pipeline(path).path
    (out / "stale.txt").write_text("old")
    run_pipeline(path, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "manifest.json").exists()


def test_killed_run_leaves_destination_unchanged(tmp_path, write_pipeline):
    # Setup: a destination with earlier content and a run that samples for a long time.
    path = write_pipeline(sample={"n_rows": 20_000_000, "rows_per_shard": 20_000, "batch_size": 20_000})
    dest = tmp_path / "out" / "tiny"
    dest.mkdir(parents=True)
    (dest / "earlier.txt").write_text("keep me")
    (dest / "manifest.json").write_text('{"producer": "synthaug"}')  # an earlier synthaug output
    before = tree(dest)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "synthaug.cli", "run", str(path), "--overwrite", "-q"], env=env)
    # Run: wait until shards are being written in staging, then kill -9.
    deadline = time.time() + 120
    while time.time() < deadline and not list(dest.parent.glob(".tiny.staging-*/data/part-00002.parquet")):
        assert proc.poll() is None, "run ended before it could be killed"
        time.sleep(0.2)
    assert list(dest.parent.glob(".tiny.staging-*/data/part-00002.parquet")), "sampling never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Assert: the destination is exactly as it was.
    assert tree(dest) == before


def test_source_sha_recorded(write_pipeline):
    manifest = run_pipeline(write_pipeline()).manifest
    import hashlib

    assert manifest["source"]["sha256"] == hashlib.sha256(b"penguins.csv" + Path(PENGUINS).read_bytes()).hexdigest()


def test_shards_carry_provenance_and_the_run_keeps_its_split(write_pipeline, penguins_table):
    import numpy as np

    from synthaug.validation.evaluate import evaluate

    result = run_pipeline(write_pipeline())
    out = result.path
    meta = json.loads(pq.read_schema(out / "data" / "part-00000.parquet").metadata[b"synthaug"])
    assert meta["producer"] == "synthaug" and meta["generator"] == "vae" and meta["seed"] == 0
    assert meta["config_hash"] == result.manifest["config_hash"]
    # The split as row indices: the report's privacy metrics can be reproduced from it.
    split = json.loads((out / "split.json").read_text())
    train, holdout = penguins_table.take(split["train_index"]), penguins_table.take(split["holdout_index"])
    assert len(split["train_index"]) == result.manifest["split"]["train_rows"] and not set(split["train_index"]) & set(
        split["holdout_index"]
    )
    synthetic = ds.dataset(str(out / "data"), format="parquet").to_table()
    again = evaluate(train, synthetic, holdout=holdout, gates={"dcr_share_max": 1.0})
    report = json.loads((out / "report.json").read_text())
    if "dcr_share" in report["metrics"].get("privacy", {}):
        assert np.isclose(again["metrics"]["privacy"]["dcr_share"], report["metrics"]["privacy"]["dcr_share"])
