"""`synthaug validate`: the pipeline's checks on real and synthetic data made elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from synthaug.errors import BadInput


def _aligned(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """Synthetic columns in the real order and, where a safe cast exists, the real types."""
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise BadInput(f"{path}: column '{missing[0]}' of the real data is missing; columns there: {', '.join(table.column_names)}")
    table = table.select(schema.names)
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return table  # the shard checks report the type difference


def validate_external(
    real: Path,
    synthetic: Path,
    *,
    holdout: Path | None,
    gates: str,
    target: str | None,
    out: Path,
    seed: int = 0,
    overwrite: bool = False,
    metrics_rows: int = 20_000,
) -> dict[str, Any]:
    import tempfile

    import pyarrow.parquet as pq

    from synthaug.config.pipeline import MIN_METRIC_ROWS, conf_dirs, load_preset
    from synthaug.io.artifacts import write_json, write_report
    from synthaug.io.publish import staged
    from synthaug.io.sources import read_table
    from synthaug.schema import infer_schema
    from synthaug.validation.checks import ShardValidator, build_report
    from synthaug.validation.gates import GatesConfig

    gates_cfg = GatesConfig(**load_preset("gates", gates, conf_dirs(), "--gates"))
    inputs = {"real data": real, "synthetic data": synthetic, "holdout": holdout}
    with staged(out, inputs=inputs, overwrite=overwrite, key="--out") as stage:
        real_table = read_table(real, key="--real")
        schema = infer_schema(real_table, source=str(real))
        if target and target not in schema.names:
            raise BadInput(f"--target '{target}' is not a column of {real}; columns there: {', '.join(schema.names)}")
        holdout_df = _aligned(read_table(holdout, key="--holdout"), real_table.schema, holdout).to_pandas() if holdout else None
        files = _synthetic_files(synthetic)
        train_df = real_table.to_pandas()
        validator = ShardValidator(schema, train_df, gates_cfg, run_name="validate")
        with tempfile.TemporaryDirectory() as tmp:
            # Each synthetic file is checked as one shard, re-written as Parquet in the real schema.
            shard_paths = []
            for i, f in enumerate(files):
                table = _aligned(read_table(f, key="--synthetic"), real_table.schema, f)
                path = Path(tmp) / f"{f.stem}-{i:05d}.parquet"
                pq.write_table(table, path)
                validator(path, table)
                shard_paths.append(path)
            rows = sum(pq.read_metadata(p).num_rows for p in shard_paths)
            if (gates_cfg.needs_fidelity() or gates_cfg.needs_privacy()) and rows < MIN_METRIC_ROWS:
                raise BadInput(
                    f"{synthetic}: {rows} synthetic row(s) are too few to measure the fidelity and privacy gates "
                    f"(at least {MIN_METRIC_ROWS}); pass more rows, or --gates none (per-shard checks only)"
                )
            header = {"name": f"validate {synthetic}", "rows": rows, "seed": seed}
            report, sample = build_report(
                validator,
                shard_paths,
                train_df,
                holdout_df,
                gates_cfg,
                target=target,
                seed=seed,
                metrics_rows=metrics_rows,
                header=header,
                skip_reasons={"holdout": "no --holdout", "target": "no --target"},
            )
        write_report(stage.path, report, validator, train_df, sample, schema)
        write_json(stage.path / "manifest.json", {"producer": "synthaug", "kind": "validate", "passed": report["passed"]})
        stage.publish()
    return report


def _synthetic_files(synthetic: Path) -> list[Path]:
    if not synthetic.exists():
        raise BadInput(f"{synthetic}: not found; check --synthetic")
    if synthetic.is_dir():
        files = sorted(p for p in synthetic.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        files = [p for p in files if p.suffix.lower() in (".parquet", ".pq", ".parq", ".csv", ".tsv")] or files
    else:
        files = [synthetic]
    if not files:
        raise BadInput(f"{synthetic}: no files to validate; pass a file or a folder of shards")
    return files
