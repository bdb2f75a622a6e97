"""The `synthaug` command: parse, call a stage or the pipeline, map the outcome to an exit code.

Exit codes: 0 published / passed; 1 a gate failed (shards quarantined); 2 bad input or config
(one line naming the file, column or key); 3 internal error (a bug: the traceback goes to a log
file); 130 interrupted. Heavy libraries are imported inside commands so --help stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Validated synthetic data from GANs, VAEs and RBMs.")

EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130


MAX_MESSAGE = 600  # an error about a huge value stays one short line: its head and its advice (the tail)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    message = message.replace("\r", " ").replace("\n", " ")  # one line, whatever the message holds
    if len(message) > MAX_MESSAGE:
        message = f"{message[:400]} ... {message[-(MAX_MESSAGE - 405) :]}"
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _guard(fn):
    """Run a command body: BadInput -> one line, exit 2; Ctrl-C -> exit 130; any other exception is
    a bug -> exit 3 with the traceback in a log file, so exit 1 keeps meaning "a gate failed"."""
    from synthaug.errors import BadInput

    try:
        return fn()
    except typer.Exit:
        raise
    except BadInput as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else "bad input", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was published", EXIT_INTERRUPTED)
    except SystemExit as exc:  # a library that turns Ctrl-C into exit(1) (Lightning does) is still Ctrl-C
        if isinstance(exc.__context__, KeyboardInterrupt):
            _fail("interrupted; nothing was published", EXIT_INTERRUPTED)
        raise
    except Exception as exc:  # noqa: BLE001 - the top-level guard
        log = _crash_log(exc)
        _fail(f"internal error ({type(exc).__name__}: {str(exc)[:200]}); traceback in {log}", EXIT_INTERNAL)


def _crash_log(exc: BaseException) -> str:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="synthaug-crash-", suffix=".log")
    with open(fd, "w") as fh:
        fh.write("".join(traceback.format_exception(exc)))
    return path


def _version(value: bool) -> None:
    if value:
        from synthaug import __version__

        typer.echo(f"synthaug {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version and exit"),
) -> None:
    """Validated synthetic data from GANs, VAEs and RBMs."""


def _console(quiet: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="pipeline YAML, e.g. pipelines/penguins.yaml"),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. trainer.max_epochs=5"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace output.dir if it holds an earlier synthaug output"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
    force: bool = typer.Option(False, "--force", help="run every stage even if the stage cache holds its result (and refresh the cache)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="neither read nor write the stage cache"),
) -> None:
    """Run a pipeline: fit, sample shards, validate, publish (stages whose inputs did not change come from the cache)."""

    def body():
        from synthaug.config.pipeline import load_config
        from synthaug.pipeline.run import run_pipeline

        console = _console(quiet)
        config = load_config(pipeline, [*(overrides or []), *(["cache.enabled=false"] if no_cache else [])])
        if quiet:
            config = config.model_copy(update={"trainer": config.trainer.model_copy(update={"progress_bar": False})})
        result = run_pipeline(
            config, overwrite=overwrite, log=lambda m: console.print(f"[bold]{m}[/bold]"), pipeline_file=pipeline, force=force
        )
        m = result.manifest
        _print_gates(m["gates"])
        if result.status == "published":
            typer.echo(f"published {m['rows']} rows in {len(m['shards'])} shard(s) to {result.path}")
        else:
            typer.echo(f"gates failed; shards quarantined in {result.path}", err=True)
        raise typer.Exit(result.exit_code)

    _guard(body)


def _print_gates(gates: list[dict]) -> None:
    """On stderr: a line per failed (and per skipped) gate, then `gates: 6 passed, 4 skipped: no --holdout`."""
    from synthaug.report.shell import gate_line, gate_status, gate_summary

    for g in gates:
        if gate_status(g) != "passed":
            typer.echo(gate_line(g), err=True)
    if gates:
        typer.echo(f"gates: {gate_summary(gates)}", err=True)


@app.command()
def fit(
    pipeline: Path = typer.Argument(..., help="pipeline YAML"),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides"),
    out: Path = typer.Option(..., "--out", help="folder for the saved model (generator.json + weights)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace --out if it holds an earlier synthaug model"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Only the fit stage of a pipeline: load, split, train, save the model (sample it with `synthaug sample`)."""

    def body():
        from synthaug.config.pipeline import load_config
        from synthaug.io.artifacts import write_json
        from synthaug.io.publish import staged
        from synthaug.pipeline import stages
        from synthaug.pipeline.run import inputs_of

        config = load_config(pipeline, overrides or [])
        if quiet:
            config = config.model_copy(update={"trainer": config.trainer.model_copy(update={"progress_bar": False})})
        with staged(out, inputs=inputs_of(config, pipeline), overwrite=overwrite, key="--out") as stage:
            source = stages.load(config.source, target=config.target)
            parts = stages.split(source, config.split, target=config.target, seed=config.seed)
            cls, _ = stages.check_plan(config, source, parts.train.to_pandas())
            if not cls.tags.saves:
                _fail(f"generator '{cls.name}' cannot be saved, so `synthaug fit` has nothing to write; use `synthaug run`")
            generator = stages.fit(parts.train, source.schema, config.generator, config.trainer, seed=config.seed)
            generator.fit_info["source"] = {"path": source.path, "sha256": source.sha256}
            generator.save(stage.path)
            write_json(stage.path / "manifest.json", {"producer": "synthaug", "kind": "model", "name": config.name})
            stage.publish()
        typer.echo(f"saved a fitted '{config.generator.name}' model to {out}")

    _guard(body)


@app.command()
def sample(
    model_dir: Path = typer.Argument(..., help="a saved model folder, e.g. out/penguins/model"),
    n: int = typer.Option(..., "-n", "--n-rows", help="rows to generate"),
    out: Path = typer.Option(..., "--out", help="destination folder for the shards"),
    seed: int = typer.Option(0, "--seed"),
    rows_per_shard: int = typer.Option(100_000, "--rows-per-shard"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace --out if it holds an earlier synthaug output"),
) -> None:
    """Sample Parquet shards from a saved model."""

    def body():
        from synthaug.config.pipeline import SampleConfig
        from synthaug.generators.base import load_generator
        from synthaug.io.manifest import RunManifest, ShardRecord, write_manifest
        from synthaug.io.publish import staged
        from synthaug.pipeline import stages

        if n <= 0:
            _fail(f"-n must be > 0 (got {n})")
        if rows_per_shard <= 0:
            _fail(f"--rows-per-shard must be > 0 (got {rows_per_shard})")
        if not 0 <= seed < 2**32:
            _fail(f"--seed must be in [0, 2**32) (got {seed})")
        with staged(out, inputs={"model": model_dir}, overwrite=overwrite, key="--out") as stage:
            gen = load_generator(model_dir)
            cfg = SampleConfig(n_rows=n, rows_per_shard=rows_per_shard)
            shards = stages.sample(gen, cfg, stage.path, seed=seed)
            manifest = RunManifest(
                kind="sample",
                name=model_dir.name,
                status="published",
                generator=gen.name,
                seed=seed,
                rows=sum(s.rows for s in shards),
                shards=[ShardRecord(**s.to_dict()) for s in shards],
                config=cfg.model_dump(mode="json"),
                source={"model": str(model_dir)},
                fit=gen.fit_info or None,
            )
            write_manifest(stage.path, manifest)
            stage.publish()
        typer.echo(f"wrote {n} rows in {len(shards)} shard(s) to {out}")

    _guard(body)


@app.command()
def validate(
    real: Path = typer.Option(..., "--real", help="real training data (CSV, Parquet file or folder)"),
    synthetic: Path = typer.Option(..., "--synthetic", help="synthetic data: a file, or a folder whose files are checked as shards"),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="real rows not used to train the generator (enables privacy metrics)"),
    gates: str = typer.Option("default", "--gates", help="a gates preset (default, strict_privacy, none, or your conf/gates/)"),
    target: Optional[str] = typer.Option(None, "--target", help="label column for TSTR"),
    out: Path = typer.Option(Path("validation"), "--out", help="folder for report.json, report.html, junit.xml, expectations/"),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace --out if it holds an earlier synthaug report"),
) -> None:
    """Run the gates on synthetic data made elsewhere; exit 0 if all pass, 1 if any fails."""

    def body():
        from synthaug.validation.external import validate_external

        if not 0 <= seed < 2**32:
            _fail(f"--seed must be in [0, 2**32) (got {seed})")
        if holdout is not None and real.exists() and holdout.exists() and real.resolve() == holdout.resolve():
            _fail(f"--holdout {holdout} is the --real data itself; pass rows the generator never saw (or leave --holdout out)")
        report = validate_external(real, synthetic, holdout=holdout, gates=gates, target=target, out=out, seed=seed, overwrite=overwrite)
        _print_gates(report["gates"])
        if report["passed"]:
            typer.echo(f"all gates passed; report in {out}")
            raise typer.Exit(0)
        typer.echo(f"gates failed; report in {out}", err=True)
        raise typer.Exit(EXIT_GATE_FAILED)

    _guard(body)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run's output folder, e.g. out/penguins"),
    out: Path = typer.Option(..., "--out", help="folder for the new report.json, report.html, junit.xml, expectations/"),
    gates: Optional[str] = typer.Option(None, "--gates", help="judge with these gates instead of the run's own"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace --out if it holds an earlier synthaug report"),
) -> None:
    """Only the validate stage: rerun the checks on a finished run's shards with its recorded split; exit 0 or 1."""

    def body():
        from synthaug.pipeline.report import rerun_report

        result = rerun_report(run_dir, out, gates=gates, overwrite=overwrite)
        _print_gates(result["gates"])
        typer.echo(f"report in {out}", err=not result["passed"])
        raise typer.Exit(0 if result["passed"] else EXIT_GATE_FAILED)

    _guard(body)


@app.command()
def ledger(
    source: Path = typer.Argument(..., help="the source data whose DP releases to list (CSV, Parquet file or folder)"),
    ledger_file: Path = typer.Option(Path("epsilon-ledger.jsonl"), "--ledger", help="the ledger file (privacy.ledger)"),
    unit: Optional[str] = typer.Option(None, "--unit", help="privacy unit (row)"),
) -> None:
    """Print the epsilon spent on a source by DP releases, run by run (basic composition: sums)."""

    def body():
        from synthaug.io.sources import data_hash
        from synthaug.training.ledger import Ledger

        if not ledger_file.is_file():
            _fail(f"{ledger_file}: no ledger there; pass --ledger <file> (privacy.ledger of your pipelines)")
        if not source.exists():
            _fail(f"{source}: not found; pass the source data the releases were made from")
        typer.echo(Ledger(ledger_file).describe(data_hash(source), unit))

    _guard(body)


@app.command()
def generators() -> None:
    """List the registered generators with their modality, tags, config fields and defaults."""

    def body():
        from synthaug.generators.base import available, get_generator

        for name, target in available().items():
            try:
                cls = get_generator(name)
            except Exception as exc:  # an entry point that fails to import is listed, not fatal
                typer.echo(f"{name}  ({target})  unavailable: {exc}")
                continue
            tags = ", ".join(k for k, v in vars(cls.tags).items() if v is True)
            typer.echo(f"{name}  [{cls.modality}]  {target}" + (f"  tags: {tags}" if tags else ""))
            for field, info in cls.Config.model_fields.items():
                default = info.get_default(call_default_factory=True)
                typer.echo(f"    {field} = {default!r}" + (f"  # {info.description}" if info.description else ""))

    _guard(body)


@app.command()
def schema(
    data: Path = typer.Argument(..., help="CSV, Parquet file or Parquet folder"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the schema JSON here instead of stdout"),
    from_sdv: Optional[Path] = typer.Option(None, "--from-sdv", help="take column kinds from this SDV metadata JSON"),
    sdv: bool = typer.Option(False, "--sdv", help="write SDV metadata JSON instead of a synthaug schema"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing --out file"),
) -> None:
    """Infer a schema JSON from a table (edit it and pass it as source.schema); SDV metadata in or out."""

    def body():
        import json

        from synthaug.io.artifacts import write_text
        from synthaug.io.publish import check_output_file
        from synthaug.io.sources import read_table
        from synthaug.schema import infer_schema

        if out is not None:
            check_output_file(out, inputs={"data": data, "SDV metadata": from_sdv}, overwrite=overwrite, key="--out")
        table = read_table(data, key="DATA")
        if from_sdv:
            from synthaug.generators.sdv import schema_from_sdv_metadata

            inferred = schema_from_sdv_metadata(from_sdv, table)
        else:
            inferred = infer_schema(table, source=str(data))
        if sdv:
            from synthaug.generators.sdv import schema_to_sdv_metadata

            text = json.dumps(schema_to_sdv_metadata(inferred), indent=2)
        else:
            text = inferred.model_dump_json(indent=2)
        if out:
            write_text(out, text)
        else:
            typer.echo(text)

    _guard(body)


def main() -> None:
    app(prog_name="synthaug")


if __name__ == "__main__":
    sys.exit(main())
