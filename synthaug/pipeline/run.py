"""Orchestration of one run: order the stages, time them, stage and publish (or quarantine).

The destination is checked and locked before any work (io.publish.staged); everything that can
reject the input happens before training; a gate failure quarantines; publish is atomic.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from synthaug.config.pipeline import PipelineConfig, load_config
from synthaug.io.artifacts import write_json, write_report
from synthaug.io.manifest import RunManifest, ShardRecord, write_manifest
from synthaug.io.publish import staged
from synthaug.pipeline import cache, stages


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


def _header(config: PipelineConfig, shards) -> dict:
    """What the report and the manifest both start with."""
    rows = sum(s.rows for s in shards)
    return {"name": config.name, "generator": config.generator.name, "seed": config.seed, "config_hash": config.config_hash(), "rows": rows}


def provenance_of(config: PipelineConfig, generator: str) -> dict:
    from synthaug import __version__

    return {
        "producer": "synthaug",
        "version": __version__,
        "generator": generator,
        "seed": config.seed,
        "config_hash": config.config_hash(),
    }


def split_record(source, parts) -> dict:
    """The exact split as row indices into the source (not the rows: the run dir may be released),
    so `synthaug validate` can be rerun on the same split."""
    n = source.table.num_rows
    holdout = [] if parts.holdout_index is None else parts.holdout_index.tolist()
    return {"source_sha256": source.sha256, "rows": n, "train_index": parts.train_index.tolist(), "holdout_index": holdout}


def run_pipeline(
    config: PipelineConfig | str | Path,
    *,
    overrides: tuple[str, ...] | list[str] = (),
    overwrite: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
    pipeline_file: str | Path | None = None,
    force: bool = False,
) -> RunResult:
    """Run a pipeline. Raises BadInput (nothing written at the destination) on bad input."""
    if not isinstance(config, PipelineConfig):
        pipeline_file = config
        config = load_config(config, overrides)
    from synthaug.generators.base import get_generator

    timings: dict[str, float] = {}
    if not force and (done := _already_published(config, log)) is not None:
        return done  # nothing would change: no lock, no staging, no --overwrite needed
    with staged(config.output.dir, inputs=inputs_of(config, pipeline_file), overwrite=overwrite, log=log) as stage:
        if get_generator(config.generator.name).modality == "image":
            return _run_images(config, stage, timings, log)
        with _timed(timings, "load", log):
            source = stages.load(config.source, target=config.target)
            parts = stages.split(source, config.split, target=config.target, seed=config.seed)
            train_df = parts.train.to_pandas()
            holdout_df = parts.holdout.to_pandas() if parts.holdout is not None else None
            _, balance = stages.check_plan(config, source, train_df)
            declared = stages.check_privacy(config, source, parts.train.num_rows) if config.privacy else None
            # DP mode: the suite's bounds and categories are the declared (public) ones, as the model's.
            shard_validator = stages.validator(config, stages.model_schema(source.schema, declared), train_df)
        keys = _keys(config, source.sha256)
        trainer = config.trainer.model_copy(update={"checkpoint_dir": str(stage.path / "checkpoints")})
        with _reservation(config, source, parts, log) as budget:
            return _fit_sample_validate(
                config,
                stage,
                timings,
                log,
                source,
                parts,
                train_df,
                holdout_df,
                balance,
                shard_validator,
                trainer,
                declared,
                budget,
                keys,
                force,
            )


def _keys(config: PipelineConfig, source_sha256: str) -> tuple[str, str] | None:
    """(fit key, run key), or None when the cache is off (or the run is DP: never cached)."""
    if not config.cache.enabled or config.privacy is not None:
        return None
    fit = cache.fit_key(config, source_sha256)
    return fit, cache.run_key(config, fit)


def _already_published(config: PipelineConfig, log) -> RunResult | None:
    """The published result at output.dir, if this config and data made it and its shards still
    verify (only the source's bytes are hashed: no training, sampling or validation)."""
    from synthaug.io.sources import data_hash

    source = Path(config.source.path)
    if not (config.cache.enabled and config.privacy is None and source.exists()):
        return None
    keys = _keys(config, data_hash(source))
    done = cache.up_to_date(config, keys[1])
    if done is None:
        return None
    log(f"up to date: {config.output.dir} was made by this config and data (run key {keys[1][:12]}); nothing to run")
    return RunResult("published", Path(config.output.dir).absolute(), done)


@contextmanager
def _reservation(config: PipelineConfig, source, parts, log):
    """DP mode: reserve the run's epsilon in the ledger before training; commit it if the run is
    published, refund it if it fails or is quarantined (its DP artifacts are then deleted, so the
    refund is sound). Without privacy: nothing."""
    if config.privacy is None:
        yield None
        return
    import uuid

    from synthaug.training.privacy import reserve_budget

    ledger = config.privacy.ledger_path(config.output.dir)
    reservation = reserve_budget(
        config.privacy,
        ledger=str(ledger),
        source_sha256=source.sha256,
        n_rows=parts.train.num_rows,
        run_id=f"{config.name}-{uuid.uuid4().hex[:12]}",
        max_epsilon=config.privacy.max_epsilon,
        max_total_epsilon=config.privacy.max_total_epsilon,
    )
    log(f"privacy: reserved epsilon {config.privacy.epsilon:g} in {ledger}")
    budget = {"reservation": reservation, "ledger": str(ledger), "committed": False}
    try:
        yield budget
    finally:
        if not budget["committed"]:
            reservation.refund()
            log(f"privacy: refunded epsilon {config.privacy.epsilon:g} (run not published)")


def _fit_sample_validate(
    config, stage, timings, log, source, parts, train_df, holdout_df, balance, shard_validator, trainer, declared, budget, keys, force
):
    """fit -> sample -> validate -> publish or quarantine, inside the destination's staging folder."""
    dp = config.privacy is not None
    generator = cache.load_model(config, keys[0], log) if keys and not force else None
    if generator is not None:
        log(f"fit: cached (key {keys[0][:12]})")
        timings["fit"] = 0.0
    else:
        with _timed(timings, "fit", log):
            generator = stages.fit(
                parts.train, source.schema, config.generator, trainer, seed=config.seed, privacy=config.privacy, declared=declared
            )
    fit_cached = "cached" in generator.fit_info
    # DP mode publishes nothing computed from the real rows outside the budget: no source hash,
    # and the model's schema (declared bounds and categories) instead of the inferred one.
    generator.fit_info["source"] = {"path": source.path} if dp else {"path": source.path, "sha256": source.sha256}
    if generator.tags.saves:
        generator.save(stage.path / "model")
        if keys and not fit_cached:
            cache.store_model(config, keys[0], stage.path / "model")
    (generator.schema if dp else source.schema).save(stage.path / "schema.json")
    with _timed(timings, "sample", log):
        provenance = provenance_of(config, generator.name)
        shards = stages.sample(
            generator, config.sample, stage.path, seed=config.seed, balance=balance, on_shard=shard_validator, provenance=provenance
        )
    if not dp:  # which rows trained a DP model is what DP protects: not published
        write_json(stage.path / "split.json", split_record(source, parts))
    header = _header(config, shards)
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
        source={"path": source.path, "rows": source.table.num_rows, **({} if dp else {"sha256": source.sha256})},
        split={"train_rows": parts.train.num_rows, "holdout_rows": parts.holdout.num_rows if parts.holdout is not None else 0},
        balance={"column": balance.column, "shares": {str(k): v for k, v in balance.shares.items()}} if balance else None,
        fit={k: v for k, v in generator.fit_info.items() if k not in ("source", "privacy")},
        epsilon=generator.fit_info["privacy"]["epsilon"] if dp else None,
        privacy={**generator.fit_info["privacy"], "ledger": budget["ledger"], "run_id": budget["reservation"].run_id} if dp else None,
        gates=report["gates"],
        timings=timings,
    )
    write_manifest(stage.path, manifest)
    if keys:
        write_json(stage.path / "synthaug.lock", cache.lock_record(keys[0], keys[1], shards, fit_cached))
    if not passed:
        if dp:  # the refund is sound only if the DP-trained artifacts go too
            for part in ("model", "data", "checkpoints"):
                shutil.rmtree(stage.path / part, ignore_errors=True)
        return RunResult(manifest.status, stage.quarantine(), manifest.model_dump(mode="json"))
    where = stage.publish()
    if dp:
        spent = generator.fit_info["privacy"]
        budget["reservation"].commit(epsilon=spent["epsilon"], delta=spent["delta"])
        budget["committed"] = True
    return RunResult(manifest.status, where, manifest.model_dump(mode="json"))


def _run_images(config: PipelineConfig, stage, timings: dict[str, float], log: Callable[[str], None]) -> RunResult:
    """The image run: the same stages and publish as a table, with image sources, shards and checks."""
    from synthaug.io.artifacts import write_image_report
    from synthaug.pipeline import images

    with _timed(timings, "load", log):
        source = images.load(config.source)
        train, holdout = images.split(source, config.split, seed=config.seed)
        _, balance, gates = images.check_plan(config, source)
    trainer = config.trainer.model_copy(update={"checkpoint_dir": str(stage.path / "checkpoints")})
    with _timed(timings, "fit", log):
        generator = stages.fit(train, train.schema, config.generator, trainer, seed=config.seed)
    generator.fit_info["source"] = {"path": source.path, "sha256": source.sha256}
    generator.save(stage.path / "model")
    source.images.schema.save(stage.path / "schema.json")
    fmt = config.sample.format or "hf_parquet"
    with _timed(timings, "sample", log):
        shards, synth, labels, meta = images.sample(
            generator, config.sample, stage.path, train.label_names, seed=config.seed, balance=balance
        )
    header = _header(config, shards)
    with _timed(timings, "validate", log):
        report, suite, results = images.validate(
            train, holdout, synth, labels, meta, gates, run_dir=stage.path, fmt=fmt, n=config.sample.n_rows, seed=config.seed, header=header
        )
        write_image_report(stage.path, report, suite, results, train, synth, labels)
    passed = report["passed"]
    manifest = RunManifest(
        kind="run",
        status="published" if passed else "quarantined",
        **header,
        shards=[ShardRecord(**s.to_dict()) for s in shards],
        config=config.model_dump(mode="json", by_alias=True),
        source={"path": source.path, "sha256": source.sha256, "rows": len(source.images), "format": fmt},
        split={"train_rows": len(train), "holdout_rows": 0 if holdout is None else len(holdout)},
        balance={"column": balance.column, "shares": {str(k): v for k, v in balance.shares.items()}} if balance else None,
        fit={k: v for k, v in generator.fit_info.items() if k != "source"},
        gates=report["gates"],
        timings=timings,
    )
    write_manifest(stage.path, manifest)
    where = stage.publish() if passed else stage.quarantine()
    return RunResult(manifest.status, where, manifest.model_dump(mode="json"))
