"""`synthaug report` reruns the validate stage on a finished run and reproduces its metrics."""

import json

from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.pipeline.run import run_pipeline

runner = CliRunner()


def test_report_reproduces_the_runs_metrics(tmp_path, write_pipeline, one_thread):
    # Setup: a run with fidelity and privacy gates
    gates = {"quality_min": 0.1, "dcr_share_max": 1.0, "mia_auc_max": 1.0}
    run = run_pipeline(write_pipeline(gates=gates, target="species")).path

    # Run
    result = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "again")])

    # Assert: same verdicts and the same numbers from the recorded split
    assert result.exit_code == 0, result.output
    before = json.loads((run / "report.json").read_text())
    after = json.loads((tmp_path / "again" / "report.json").read_text())
    assert [(g["name"], g["value"]) for g in after["gates"]] == [(g["name"], g["value"]) for g in before["gates"]]
    assert (tmp_path / "again" / "report.html").is_file()


def test_report_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "x").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "x"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "not a synthaug table run" in result.stderr
