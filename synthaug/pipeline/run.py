"""Orchestration of one run: order the stages, time them, stage and publish (or quarantine).

The destination is checked and locked before any work (io.publish.staged); everything that can
reject the input happens before training; a gate failure quarantines; publish is atomic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from synthaug.config.pipeline import PipelineConfig, load_config
from synthaug.io.artifacts import write_report
from synthaug.io.manifest import RunManifest, ShardRecord, write_manifest
from synthaug.io.publish import staged
from synthaug.pipeline import stages


@dataclass
class RunResult:
    status: str  # "published" | "quarantined"
    path: Path
    manifest: dict = field(repr=False)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "published" else 1


@contextmanager
def _timed(timings: dict[str, float], stage: str, log: Callable[[str], None]) -> Iterator[None]:
    log(f"{stage} ...")
    start = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - start, 3)


def inputs_of(config: PipelineConfig, pipeline_file: str | Path | None = None) -> dict[str, str | None]:
    """Every path a run reads; the destination may not be, contain or sit inside any of them."""
    return {
        "source": config.source.path,
        "schema file": config.source.schema_path,
        "SDV metadata": config.source.sdv_metadata,
        "expectation suite": config.validation.suite,
        "pipeline file": str(pipeline_file) if pipeline_file else None,
    }


def run_pipeline(
    config: PipelineConfig | str | Path,
    *,
    overrides: tuple[str, ...] | list[str] = (),
    overwrite: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
    pipeline_file: str | Path | None = None,
) -> RunResult:
    """Run a pipeline. Raises BadInput (nothing written at the destination) on bad input."""
    if not isinstance(config, PipelineConfig):
        pipeline_file = config
        config = load_config(config, overrides)
    timings: dict[str, float] = {}
    with staged(config.output.dir, inputs=inputs_of(config, pipeline_file), overwrite=overwrite, log=log) as stage:
        with _timed(timings, "load", log):
            source = stages.load(config.source, target=config.target)
            parts = stages.split(source, config.split, target=config.target, seed=config.seed)
            train_df = parts.train.to_pandas()
            holdout_df = parts.holdout.to_pandas() if parts.holdout is not None else None
            _, balance = stages.check_plan(config, source, train_df)
            shard_validator = stages.validator(config, source.schema, train_df)
        trainer = config.trainer.model_copy(update={"checkpoint_dir": str(stage.path / "checkpoints")})
        with _timed(timings, "fit", log):
            generator = stages.fit(parts.train, source.schema, config.generator, trainer, seed=config.seed)
        generator.fit_info["source"] = {"path": source.path, "sha256": source.sha256}
        if generator.tags.saves:
            generator.save(stage.path / "model")
        source.schema.save(stage.path / "schema.json")
        with _timed(timings, "sample", log):
            shards = stages.sample(generator, config.sample, stage.path, seed=config.seed, balance=balance, on_shard=shard_validator)
        header = {
            "name": config.name,
            "generator": config.generator.name,
            "seed": config.seed,
            "config_hash": config.config_hash(),
            "rows": sum(s.rows for s in shards),
        }
        with _timed(timings, "validate", log):
            report, reference, synthetic = stages.validate(
                shard_validator,
                [stage.path / s.path for s in shards],
                train_df,
                holdout_df,
                config.gates,
                target=config.target,
                seed=config.seed,
                metrics_rows=config.validation.metrics_rows,
                header=header,
                balance=balance,
            )
            write_report(stage.path, report, shard_validator, reference, synthetic, source.schema)
        passed = report["passed"]
        manifest = RunManifest(
            kind="run",
            status="published" if passed else "quarantined",
            **header,
            shards=[ShardRecord(**s.to_dict()) for s in shards],
            config=config.model_dump(mode="json", by_alias=True),
            source={"path": source.path, "sha256": source.sha256, "rows": source.table.num_rows},
            split={"train_rows": parts.train.num_rows, "holdout_rows": parts.holdout.num_rows if parts.holdout is not None else 0},
            balance={"column": balance.column, "shares": {str(k): v for k, v in balance.shares.items()}} if balance else None,
            fit={k: v for k, v in generator.fit_info.items() if k != "source"},
            gates=report["gates"],
            timings=timings,
        )
        write_manifest(stage.path, manifest)
        where = stage.publish() if passed else stage.quarantine()
        return RunResult(manifest.status, where, manifest.model_dump(mode="json"))
