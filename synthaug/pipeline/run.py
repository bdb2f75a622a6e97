"""One run: load -> split -> fit -> sample -> write shards -> validate -> publish or quarantine."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pyarrow as pa

from synthaug.augment import balance_shares, reweight
from synthaug.config.pipeline import PipelineConfig, load_config
from synthaug.errors import BadInput
from synthaug.generators.base import MIN_ROWS, get_generator
from synthaug.io.publish import check_destination, discard, make_staging, publish, quarantine
from synthaug.io.shards import ShardWriter
from synthaug.io.sources import data_hash, read_table
from synthaug.schema import Schema, infer_schema, read_overrides
from synthaug.validation.checks import ShardValidator, finish

VERSIONED = ("synthaug", "torch", "pytorch-lightning", "pandas", "pyarrow", "numpy", "scikit-learn", "great-expectations", "sdmetrics")


@dataclass
class RunResult:
    status: str  # "published" | "quarantined"
    path: Path
    manifest: dict = field(repr=False)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "published" else 1


def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def load_source(config: PipelineConfig) -> tuple[pa.Table, Schema]:
    table = read_table(config.source.path, config.source.format)
    if table.num_rows < MIN_ROWS:
        raise BadInput(f"{config.source.path}: has {table.num_rows} row(s); synthaug needs at least {MIN_ROWS} to learn from")
    if config.source.sdv_metadata:
        if config.source.schema_path:
            raise BadInput("source.schema and source.sdv_metadata both set; give one of them")
        from synthaug.generators.sdv import schema_from_sdv_metadata  # the SDV interop lives in the adapter

        schema = schema_from_sdv_metadata(config.source.sdv_metadata, table)
    else:
        overrides = read_overrides(config.source.schema_path) if config.source.schema_path else {}
        schema = infer_schema(table, source=config.source.path, overrides=overrides, overrides_source=str(config.source.schema_path))
    if config.target and config.target not in table.column_names:
        raise BadInput(f"target '{config.target}' is not a column of {config.source.path}; columns there: {', '.join(table.column_names)}")
    return table, schema


def split(table: pa.Table, config: PipelineConfig) -> tuple[pa.Table, pa.Table | None]:
    """Seeded train/holdout split, stratified on the target when one is declared."""
    from sklearn.model_selection import train_test_split

    if config.split.holdout == 0:
        return table, None
    index = np.arange(table.num_rows)
    labels = None
    if config.target and config.split.stratify:
        labels = np.asarray(table[config.target].to_pandas().astype(str))
        if np.unique(labels, return_counts=True)[1].min() < 2:
            labels = None  # a class with one row cannot be stratified
    try:
        train_idx, hold_idx = train_test_split(index, test_size=config.split.holdout, random_state=config.seed, stratify=labels)
    except ValueError:
        train_idx, hold_idx = train_test_split(index, test_size=config.split.holdout, random_state=config.seed)
    if len(train_idx) < MIN_ROWS:
        raise BadInput(f"split.holdout={config.split.holdout} leaves {len(train_idx)} training rows; lower it (need {MIN_ROWS})")
    return table.take(np.sort(train_idx)), table.take(np.sort(hold_idx))


def _batches(generator, config: PipelineConfig, shares: dict | None):
    """The sampling stream: plain, or rebalanced on `augment.balance.column`."""
    sample = config.sample
    if shares is None:
        return generator.sample_tables(sample.n_rows, seed=config.seed, conditions=sample.conditions, batch_size=sample.batch_size)
    return generator.sample_mixture(
        sample.n_rows, column=config.augment.balance.column, shares=shares, seed=config.seed, conditions=sample.conditions, batch_size=sample.batch_size
    )


@contextmanager
def _timed(timings: dict[str, float], stage: str, log: Callable[[str], None]):
    log(f"{stage} ...")
    start = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - start, 3)


def run_pipeline(
    config: PipelineConfig | str | Path,
    *,
    overrides: tuple[str, ...] | list[str] = (),
    overwrite: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> RunResult:
    """Run a pipeline. Raises BadInput (nothing written at the destination) on bad input."""
    if not isinstance(config, PipelineConfig):
        config = load_config(config, overrides)
    dest = Path(config.output.dir)
    check_destination(dest, overwrite)
    timings: dict[str, float] = {}
    # Everything that can reject the input happens before training, so bad input fails fast.
    with _timed(timings, "load", log):
        table, schema = load_source(config)
        train, holdout = split(table, config)
        train_df = train.to_pandas()
        balance = config.augment.balance
        shares = balance_shares(balance, schema, train_df) if balance else None
        generator = get_generator(config.generator.name)(config.generator.params)
        if balance and not hasattr(generator, "sample_mixture"):
            raise BadInput(f"augment.balance needs a synthaug family (vae, gan, rbm); '{config.generator.name}' cannot rebalance")
        validator = ShardValidator(
            schema,
            train_df,
            config.gates,
            config.name,
            rows_per_shard=config.sample.rows_per_shard,
            extra=config.validation.expectations,
            suite_path=config.validation.suite,
        )
    staging = make_staging(dest)
    try:
        trainer = config.trainer.model_copy(update={"checkpoint_dir": str(staging / "checkpoints")})
        with _timed(timings, "fit", log):
            generator.fit(train, schema, trainer, seed=config.seed)
        if generator.supports_save:
            generator.save(staging / "model")
        schema.save(staging / "schema.json")
        with _timed(timings, "sample", log):
            writer = ShardWriter(
                staging, schema.arrow_schema(), config.sample.rows_per_shard, config.sample.synthetic_column, on_shard=validator
            )
            for batch in _batches(generator, config, shares):
                writer.write(batch)
            shards = writer.close()
        header = {
            "name": config.name,
            "generator": config.generator.name,
            "seed": config.seed,
            "config_hash": config.config_hash(),
            "rows": sum(s.rows for s in shards),
        }
        with _timed(timings, "validate", log):
            report = finish(
                staging,
                validator,
                [staging / s.path for s in shards],
                train_df,
                holdout.to_pandas() if holdout is not None else None,
                config.gates,
                target=config.target,
                seed=config.seed,
                metrics_rows=config.validation.metrics_rows,
                header=header,
                fidelity_real=reweight(train_df, balance.column, shares, config.seed) if balance else None,
            )
        passed = report["passed"]
        manifest = {
            **header,
            "status": "published" if passed else "quarantined",
            "config": config.model_dump(mode="json", by_alias=True),
            "source": {"path": config.source.path, "sha256": data_hash(config.source.path), "rows": table.num_rows},
            "split": {"train_rows": train.num_rows, "holdout_rows": holdout.num_rows if holdout is not None else 0},
            "shards": [s.to_dict() for s in shards],
            "balance": {"column": balance.column, "shares": {str(k): v for k, v in shares.items()}} if balance else None,
            "epsilon": None,  # differential privacy is not used by this run
            "gates": report["gates"],
            "versions": versions(),
            "timings": timings,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if not passed:
            where = quarantine(staging, dest)
            return RunResult("quarantined", where, manifest)
        publish(staging, dest)
        return RunResult("published", dest, manifest)
    except BaseException:
        discard(staging)
        raise
