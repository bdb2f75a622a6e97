"""DP releases through the pipeline: epsilon in the manifest, the ledger commits, refunds and blocks."""

import json

import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.pipeline.run import run_pipeline
from synthaug.training.ledger import Ledger

runner = CliRunner()
DECLARED = {
    "columns": {
        "species": {"categories": ["Adelie", "Chinstrap", "Gentoo"]},
        "island": {"categories": ["Biscoe", "Dream", "Torgersen"]},
        "bill_length_mm": {"min": 30, "max": 60},
        "bill_depth_mm": {"min": 12, "max": 22},
        "flipper_length_mm": {"min": 170, "max": 235},
        "body_mass_g": {"min": 2500, "max": 6500},
        "sex": {"categories": ["female", "male"]},
        "year": {"min": 2007, "max": 2009},
    }
}


def _pipeline(write_pipeline, tmp_path, name="dp", epsilon=3.0, gates="none", **privacy):
    from tests.conftest import PENGUINS

    schema = tmp_path / "public.schema.json"
    schema.write_text(json.dumps(DECLARED))
    return write_pipeline(
        name=name,
        source={"path": str(PENGUINS), "schema": str(schema)},
        gates=gates,
        privacy={"epsilon": epsilon, "epochs": 3, "ledger": str(tmp_path / "ledger.jsonl"), **privacy},
    )


def test_dp_release_records_epsilon_and_commits_it(tmp_path, write_pipeline, one_thread):
    result = run_pipeline(_pipeline(write_pipeline, tmp_path))
    m = result.manifest
    assert result.status == "published"
    assert 0 < m["epsilon"] <= 3.0 and m["privacy"]["noise_multiplier"] > 0 and m["privacy"]["steps"] > 0
    assert "sha256" not in m["source"] and not (result.path / "split.json").exists()
    spent, _ = Ledger(tmp_path / "ledger.jsonl").spent(_sha(tmp_path), "row")
    assert spent == pytest.approx(m["epsilon"])


def _sha(tmp_path):
    from synthaug.io.sources import data_hash
    from tests.conftest import PENGUINS

    return data_hash(PENGUINS)


def test_ledger_blocks_the_release_that_would_overspend(tmp_path, write_pipeline, one_thread):
    first = _pipeline(write_pipeline, tmp_path, name="one", epsilon=3.0, max_total_epsilon=5.0)
    assert run_pipeline(first).status == "published"
    second = _pipeline(write_pipeline, tmp_path, name="two", epsilon=3.0, max_total_epsilon=5.0)
    result = runner.invoke(app, ["run", str(second)])
    assert result.exit_code == 2 and "max_total_epsilon" in result.stderr and "fit ..." not in result.stderr
    assert not (tmp_path / "out" / "two").exists()


def test_quarantined_dp_run_is_refunded_and_its_artifacts_deleted(tmp_path, write_pipeline, one_thread):
    result = run_pipeline(_pipeline(write_pipeline, tmp_path, name="q", gates={"quality_min": 0.999}))
    assert result.status == "quarantined"
    assert not (result.path / "model").exists() and not (result.path / "data").exists()
    assert Ledger(tmp_path / "ledger.jsonl").spent(_sha(tmp_path), "row")[0] == 0


def test_dp_without_declared_bounds_exits_2_naming_the_column(tmp_path, write_pipeline):
    path = write_pipeline(privacy={"epsilon": 3.0, "ledger": str(tmp_path / "ledger.jsonl")})
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2 and "has no declared" in result.stderr and "fit ..." not in result.stderr
    assert not (tmp_path / "ledger.jsonl").exists() or Ledger(tmp_path / "ledger.jsonl").spent(_sha(tmp_path), "row")[0] == 0


def test_ledger_command_prints_the_spend(tmp_path, write_pipeline, one_thread):
    from tests.conftest import PENGUINS

    run_pipeline(_pipeline(write_pipeline, tmp_path, name="l"))
    result = runner.invoke(app, ["ledger", str(PENGUINS), "--ledger", str(tmp_path / "ledger.jsonl")])
    assert result.exit_code == 0 and "committed" in result.stdout
    missing = runner.invoke(app, ["ledger", str(PENGUINS), "--ledger", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "no ledger there" in missing.stderr
