"""The stages of a run, as plain functions with typed inputs and outputs.

load -> split -> fit -> sample (shards) -> validate -> (gate: report["passed"]) -> publish.
`pipeline/run.py` only orders them, times them and publishes; `synthaug fit`, `sample` and
`report` call single stages. File I/O goes through `synthaug.io`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthaug.config.pipeline import GeneratorSection, PipelineConfig, SampleConfig, SourceConfig, SplitConfig
from synthaug.errors import BadInput
from synthaug.generators.base import MIN_ROWS, Generator, get_generator
from synthaug.io.shards import ShardInfo, ShardWriter
from synthaug.io.sources import data_hash, read_table
from synthaug.schema import Schema, infer_schema, read_overrides
from synthaug.training.config import TrainerConfig
from synthaug.validation.checks import ShardValidator, build_report
from synthaug.validation.gates import GatesConfig


@dataclass(frozen=True)
class Source:
    table: pa.Table
    schema: Schema
    path: str
    sha256: str


@dataclass(frozen=True)
class Split:
    train: pa.Table
    holdout: pa.Table | None


@dataclass(frozen=True)
class Balance:
    column: str
    shares: dict[Any, float]


def load(cfg: SourceConfig, *, target: str | None = None) -> Source:
    """Read the source and infer (or take) its schema; BadInput names what is wrong."""
    table = read_table(cfg.path, cfg.format)
    if table.num_rows < MIN_ROWS:
        raise BadInput(f"{cfg.path}: has {table.num_rows} row(s); synthaug needs at least {MIN_ROWS} to learn from")
    if cfg.sdv_metadata:
        if cfg.schema_path:
            raise BadInput("source.schema and source.sdv_metadata both set; give one of them")
        from synthaug.generators.sdv import schema_from_sdv_metadata  # the SDV interop lives in the adapter

        schema = schema_from_sdv_metadata(cfg.sdv_metadata, table)
    else:
        overrides = read_overrides(cfg.schema_path) if cfg.schema_path else {}
        schema = infer_schema(table, source=cfg.path, overrides=overrides, overrides_source=str(cfg.schema_path))
    if target and target not in table.column_names:
        raise BadInput(f"target '{target}' is not a column of {cfg.path}; columns there: {', '.join(table.column_names)}")
    return Source(table, schema, cfg.path, data_hash(cfg.path))


def split(source: Source, cfg: SplitConfig, *, target: str | None, seed: int) -> Split:
    """Seeded train/holdout split, stratified on the target when one is declared."""
    from sklearn.model_selection import train_test_split

    table = source.table
    if cfg.holdout == 0:
        return Split(table, None)
    index = np.arange(table.num_rows)
    labels = None
    if target and cfg.stratify:
        labels = np.asarray(table[target].to_pandas().astype(str))
        if np.unique(labels, return_counts=True)[1].min() < 2:
            labels = None  # a class with one row cannot be stratified
    try:
        train_idx, hold_idx = train_test_split(index, test_size=cfg.holdout, random_state=seed, stratify=labels)
    except ValueError:
        train_idx, hold_idx = train_test_split(index, test_size=cfg.holdout, random_state=seed)
    if len(train_idx) < MIN_ROWS:
        raise BadInput(f"split.holdout={cfg.holdout} leaves {len(train_idx)} training rows; lower it (need {MIN_ROWS})")
    return Split(table.take(np.sort(train_idx)), table.take(np.sort(hold_idx)))


def check_plan(config: PipelineConfig, source: Source, train: pd.DataFrame) -> tuple[type[Generator], Balance | None]:
    """Everything that can be refused before training: the family and what it is asked to do,
    conditions, rebalancing, the marker column."""
    from synthaug.augment import balance_shares
    from synthaug.generators.sampling import condition_filter

    cls = get_generator(config.generator.name)
    if cls.modality != "tabular":
        raise BadInput(f"generator '{cls.name}' is for {cls.modality} data; {source.path} is a table")
    sample = config.sample
    if sample.conditions:
        condition_filter(source.schema, sample.conditions)  # BadInput for an unknown column or value
    if sample.synthetic_column and sample.synthetic_column in source.schema.names:
        raise BadInput(
            f"sample.synthetic_column '{sample.synthetic_column}' is already a column of {source.path}; choose another name"
        )
    balance = None
    if config.augment.balance:
        if not cls.tags.rebalance:
            raise BadInput(f"augment.balance needs a family that can rebalance (vae, gan, rbm); '{cls.name}' cannot rebalance")
        cfg = config.augment.balance
        balance = Balance(cfg.column, balance_shares(cfg, source.schema, train))
    return cls, balance


def fit(train: pa.Table, schema: Schema, section: GeneratorSection, trainer: TrainerConfig, *, seed: int) -> Generator:
    return get_generator(section.name)(section.params).fit(train, schema, trainer, seed=seed)


def sample(
    generator: Generator,
    cfg: SampleConfig,
    run_dir: Path,
    *,
    seed: int,
    balance: Balance | None = None,
    on_shard=None,
) -> list[ShardInfo]:
    """Stream batches into zstd Parquet shards under run_dir/data/ (plain, or rebalanced)."""
    if balance is None:
        batches = generator.sample_batches(cfg.n_rows, seed=seed, conditions=cfg.conditions, batch_size=cfg.batch_size)
    else:
        batches = generator.sample_mixture(
            cfg.n_rows, column=balance.column, shares=balance.shares, seed=seed, conditions=cfg.conditions, batch_size=cfg.batch_size
        )
    writer = ShardWriter(run_dir, generator.schema.arrow_schema(), cfg.rows_per_shard, cfg.synthetic_column, on_shard=on_shard)
    for batch in batches:
        writer.write(batch)
    return writer.close()


def validator(config: PipelineConfig, schema: Schema, train: pd.DataFrame) -> ShardValidator:
    """The per-shard checks (GX suite from the training data), built before training so a bad
    expectation is refused early; called by `sample` as each shard is written."""
    return ShardValidator(
        schema,
        train,
        config.gates,
        config.name,
        rows_per_shard=config.sample.rows_per_shard,
        extra=config.validation.expectations,
        suite_path=config.validation.suite,
    )


def validate(
    shard_validator: ShardValidator,
    shard_paths: list[Path],
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    gates: GatesConfig,
    *,
    target: str | None,
    seed: int,
    metrics_rows: int,
    header: dict[str, Any],
    balance: Balance | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Metrics and gate verdicts. Returns (report, the real reference the fidelity metrics used,
    the synthetic rows they used)."""
    from synthaug.augment import reweight

    reference = reweight(train, balance.column, balance.shares, seed) if balance else None
    report, synthetic = build_report(
        shard_validator,
        shard_paths,
        train,
        holdout,
        gates,
        target=target,
        seed=seed,
        metrics_rows=metrics_rows,
        header=header,
        fidelity_real=reference,
    )
    return report, train if reference is None else reference, synthetic
