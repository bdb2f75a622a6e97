"""`synthaug report RUN_DIR --out DIR`: the validate stage again, on a published (or quarantined)
run's shards, with the run's own config and its recorded train/holdout split; for a reviewer who
wants to reproduce every metric, or to apply other gates to an existing run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthaug.errors import BadInput


def rerun_report(run_dir: Path, out: Path, *, gates: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    import numpy as np

    from synthaug.config.pipeline import PipelineConfig, conf_dirs, load_preset
    from synthaug.io.artifacts import write_json, write_report
    from synthaug.io.publish import staged
    from synthaug.pipeline import stages
    from synthaug.validation.gates import GatesConfig

    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        split = json.loads((run_dir / "split.json").read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{run_dir}: not a synthaug table run with a recorded split ({exc}); pass a run's output folder") from None
    if manifest.get("producer") != "synthaug" or manifest.get("kind") != "run" or not manifest.get("config"):
        raise BadInput(f"{run_dir}/manifest.json: not the manifest of a synthaug run; pass a run's output folder")
    config = PipelineConfig.model_validate(manifest["config"])
    if gates:
        config = config.model_copy(update={"gates": GatesConfig(**load_preset("gates", gates, conf_dirs(), "--gates"))})
    with staged(out, inputs={"run": run_dir, "source": config.source.path}, overwrite=overwrite, key="--out") as stage:
        source = stages.load(config.source, target=config.target)
        if source.sha256 != split["source_sha256"]:
            raise BadInput(f"{config.source.path}: changed since the run (sha256 differs); the recorded split no longer applies")
        train = source.table.take(np.asarray(split["train_index"], dtype=np.int64)).to_pandas()
        holdout_idx = np.asarray(split["holdout_index"], dtype=np.int64)
        holdout = source.table.take(holdout_idx).to_pandas() if len(holdout_idx) else None
        validator = stages.validator(config, source.schema, train)
        shard_paths = [run_dir / s["path"] for s in manifest["shards"]]
        for path in shard_paths:
            import pyarrow.parquet as pq

            validator(path, pq.read_table(path))
        header = {k: manifest[k] for k in ("name", "generator", "seed", "config_hash", "rows")}
        balance = manifest.get("balance")
        report, reference, synthetic = stages.validate(
            validator,
            shard_paths,
            train,
            holdout,
            config.gates,
            target=config.target,
            seed=config.seed,
            metrics_rows=config.validation.metrics_rows,
            header=header,
            balance=None if not balance else stages.Balance(balance["column"], balance["shares"]),
        )
        write_report(stage.path, report, validator, reference, synthetic, source.schema)
        write_json(
            stage.path / "manifest.json", {"producer": "synthaug", "kind": "report", "run": str(run_dir), "passed": report["passed"]}
        )
        stage.publish()
    return report
