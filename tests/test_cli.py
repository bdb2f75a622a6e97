"""Every bad input: exit code 2, one line naming the culprit, destination untouched."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from tests.conftest import PENGUINS, ROOT, tree

runner = CliRunner()


def run_cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_bad_input(result, *needles):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture
def dest(tmp_path):
    """The destination every bad run would write to; holds earlier content that must survive."""
    path = tmp_path / "out" / "tiny"
    path.mkdir(parents=True)
    (path / "earlier.txt").write_text("keep me")
    (path / "manifest.json").write_text('{"producer": "synthaug"}')  # an earlier output --overwrite may replace
    return path


def table_file(tmp_path, name, columns):
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


BAD_SOURCES = {
    "missing file": (lambda d: d / "nope.csv", ["nope.csv", "file not found"]),
    "empty file": (lambda d: (d / "e.csv").write_bytes(b"") and None or d / "e.csv", ["e.csv", "file is empty"]),
    "header only": (lambda d: (d / "h.csv").write_text("a,b\n") and None or d / "h.csv", ["h.csv", "header but no rows"]),
    "all-null column": (
        lambda d: table_file(d, "n.parquet", {"a": list(range(20)), "b": pa.array([None] * 20, pa.float64())}),
        ["n.parquet", "column 'b' is entirely null"],
    ),
    "one row": (lambda d: (d / "o.csv").write_text("a,b\n1,x\n") and None or d / "o.csv", ["o.csv", "1 row(s)", "at least"]),
    "corrupt parquet": (
        lambda d: (d / "c.parquet").write_bytes(b"PAR1" + bytes(300)) and None or d / "c.parquet",
        ["c.parquet", "not a readable Parquet file"],
    ),
}


@pytest.mark.parametrize("case", BAD_SOURCES)
def test_bad_source(case, tmp_path, write_pipeline, dest):
    make, needles = BAD_SOURCES[case]
    before = tree(dest)
    result = run_cli("run", write_pipeline(source=make(tmp_path)), "--overwrite")
    assert_bad_input(result, *needles)
    assert tree(dest) == before


@pytest.mark.parametrize(
    "override, needles",
    [
        ("trainer.max_epoch=5", ["unknown key 'trainer.max_epoch'"]),
        ("trainer.max_epochs=lots", ["key 'trainer.max_epochs'", "integer"]),
        ("generator.name=nope", ["unknown generator 'nope'", "available"]),
        ("sample.n_rows=0", ["key 'sample.n_rows'"]),
        ("source.schema=missing.json", ["missing.json", "schema file not found"]),
        ("target=wingspan", ["target 'wingspan'", "columns there"]),
    ],
)
def test_bad_config(override, needles, write_pipeline, dest):
    before = tree(dest)
    result = run_cli("run", write_pipeline(), override, "--overwrite")
    assert_bad_input(result, *needles)
    assert tree(dest) == before


def test_schema_override_with_unknown_column(tmp_path, write_pipeline, dest):
    schema = tmp_path / "schema.json"
    schema.write_text('{"columns": {"wingspan": {"kind": "continuous"}}}')
    before = tree(dest)
    result = run_cli("run", write_pipeline(source={"path": str(PENGUINS), "schema": str(schema)}), "--overwrite")
    assert_bad_input(result, "schema.json", "column 'wingspan' is not in", "columns there are")
    assert tree(dest) == before


def test_non_empty_destination_without_overwrite(write_pipeline, dest):
    before = tree(dest)
    result = run_cli("run", write_pipeline())
    assert_bad_input(result, str(dest), "not empty", "--overwrite")
    assert tree(dest) == before


def test_unwritable_destination(tmp_path, write_pipeline):
    # /proc refuses new folders even for root; a chmod-ed folder covers non-root users.
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    targets = [Path("/proc/synthaug-test/out")] + ([locked / "out"] if os.geteuid() != 0 else [])
    for target in targets:
        result = run_cli("run", write_pipeline(output={"dir": str(target)}))
        assert_bad_input(result, str(target), "choose another output.dir")
        assert not target.exists()


def test_destination_is_a_file(tmp_path, write_pipeline):
    target = tmp_path / "afile"
    target.write_text("x")
    result = run_cli("run", write_pipeline(output={"dir": str(target)}), "--overwrite")
    assert_bad_input(result, "afile", "is a file")
    assert target.read_text() == "x"


def test_nan_and_inf_are_handled(tmp_path, write_pipeline):
    path = tmp_path / "x.csv"
    rows = ["a,b"] + [f"{v},{'xy'[i % 2]}" for i, v in enumerate([1.5, "nan", "inf", "-inf", 2.5] * 6)]
    path.write_text("\n".join(rows) + "\n")
    result = run_cli("run", write_pipeline(source=path))
    assert result.exit_code == 0, result.output
    out = pq.read_table(tmp_path / "out" / "tiny" / "data" / "part-00000.parquet").to_pandas()
    finite = out["a"].dropna()
    assert finite.between(1.5, 2.5).all()


def test_cli_run_and_sample_from_saved_model(tmp_path, write_pipeline):
    result = run_cli("run", write_pipeline())
    assert result.exit_code == 0, result.output
    model = tmp_path / "out" / "tiny" / "model"
    result = run_cli("sample", model, "-n", 1000, "--out", tmp_path / "more", "--rows-per-shard", 400)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "more" / "data").iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]


def test_sample_bad_model_dir(tmp_path):
    (tmp_path / "m").mkdir()
    result = run_cli("sample", tmp_path / "m", "-n", 10, "--out", tmp_path / "o")
    assert_bad_input(result, "not a saved synthaug model")
    assert not (tmp_path / "o").exists()


def test_generators_lists_config_fields():
    result = run_cli("generators")
    assert result.exit_code == 0
    assert "vae" in result.output and "latent_dim = 32" in result.output


def test_help_does_not_import_torch():
    code = "import sys; from synthaug.cli import app; assert 'torch' not in sys.modules and 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
