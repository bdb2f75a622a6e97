"""The `synthaug` command. Heavy libraries are imported inside commands so --help stays fast.

Exit codes: 0 published; 1 a gate failed (shards quarantined); 2 bad input or config.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Validated synthetic data from GANs, VAEs and RBMs.")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _guard(fn):
    """Run a command body; BadInput becomes a one-line error and exit code 2."""
    from synthaug.errors import BadInput

    try:
        return fn()
    except BadInput as exc:
        _fail(str(exc), 2)


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="pipeline YAML, e.g. pipelines/penguins.yaml"),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. trainer.max_epochs=5"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a non-empty output.dir"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
) -> None:
    """Run a pipeline: fit, sample shards, validate, publish."""

    def body():
        from rich.console import Console

        from synthaug.config.pipeline import load_config
        from synthaug.pipeline.run import run_pipeline

        console = Console(stderr=True, quiet=quiet)
        config = load_config(pipeline, overrides or [])
        if quiet:
            config = config.model_copy(update={"trainer": config.trainer.model_copy(update={"progress_bar": False})})
        result = run_pipeline(config, overwrite=overwrite, log=lambda m: console.print(f"[bold]{m}[/bold]"))
        m = result.manifest
        if result.status == "published":
            typer.echo(f"published {m['rows']} rows in {len(m['shards'])} shard(s) to {result.path}")
        else:
            _print_failed_gates(m["gates"])
            typer.echo(f"gates failed; shards quarantined in {result.path}", err=True)
        raise typer.Exit(result.exit_code)

    _guard(body)


def _print_failed_gates(gates: list[dict]) -> None:
    from synthaug.validation.gates import GateResult

    for g in gates:
        if not g["passed"]:
            typer.echo(GateResult(**g).line(), err=True)


@app.command()
def sample(
    model_dir: Path = typer.Argument(..., help="a saved model folder, e.g. out/penguins/model"),
    n: int = typer.Option(..., "-n", "--n-rows", help="rows to generate"),
    out: Path = typer.Option(..., "--out", help="destination folder for the shards"),
    seed: int = typer.Option(0, "--seed"),
    rows_per_shard: int = typer.Option(100_000, "--rows-per-shard"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Sample Parquet shards from a saved model."""

    def body():
        import json

        from synthaug.generators.base import load_generator
        from synthaug.io.publish import check_destination, discard, make_staging, publish
        from synthaug.io.shards import ShardWriter

        if n <= 0:
            _fail(f"-n must be > 0 (got {n})")
        check_destination(out, overwrite, key="--out")
        gen = load_generator(model_dir)
        staging = make_staging(out, key="--out")
        try:
            writer = ShardWriter(staging, gen.schema.arrow_schema(), rows_per_shard)
            for batch in gen.sample_tables(n, seed=seed):
                writer.write(batch)
            shards = writer.close()
            manifest = {"model": str(model_dir), "seed": seed, "rows": n, "shards": [s.to_dict() for s in shards]}
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
            publish(staging, out)
        except BaseException:
            discard(staging)
            raise
        typer.echo(f"wrote {n} rows in {len(shards)} shard(s) to {out}")

    _guard(body)


@app.command()
def validate(
    real: Path = typer.Option(..., "--real", help="real training data (CSV, Parquet file or folder)"),
    synthetic: Path = typer.Option(..., "--synthetic", help="synthetic data: a file, or a folder whose files are checked as shards"),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="real rows not used to train the generator (enables privacy metrics)"),
    gates: str = typer.Option("default", "--gates", help="a preset in conf/gates/"),
    target: Optional[str] = typer.Option(None, "--target", help="label column for TSTR"),
    out: Path = typer.Option(Path("validation"), "--out", help="folder for report.json, report.html, junit.xml, expectations/"),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Run the gates on synthetic data made elsewhere; exit 0 if all pass, 1 if any fails."""

    def body():
        from synthaug.validation.external import validate_external

        report = validate_external(real, synthetic, holdout=holdout, gates=gates, target=target, out=out, seed=seed, overwrite=overwrite)
        if report["passed"]:
            typer.echo(f"all gates passed; report in {out}")
            raise typer.Exit(0)
        _print_failed_gates(report["gates"])
        typer.echo(f"gates failed; report in {out}", err=True)
        raise typer.Exit(1)

    _guard(body)


@app.command()
def generators() -> None:
    """List the registered generators with their config fields and defaults."""

    def body():
        from synthaug.generators.base import available, get_generator

        for name, target in available().items():
            try:
                cls = get_generator(name)
            except Exception as exc:  # an entry point that fails to import is listed, not fatal
                typer.echo(f"{name}  ({target})  unavailable: {exc}")
                continue
            typer.echo(f"{name}  [{cls.modality}]  {target}")
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
) -> None:
    """Infer a schema JSON from a table (edit it and pass it as source.schema); SDV metadata in or out."""

    def body():
        import json

        from synthaug.io.sources import read_table
        from synthaug.schema import infer_schema

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
            out.write_text(text)
        else:
            typer.echo(text)

    _guard(body)


def main() -> None:
    app(prog_name="synthaug")


if __name__ == "__main__":
    sys.exit(main())
