"""The stage cache: nothing changed -> nothing runs; n_rows changed -> sample only; data changed ->
fit again; a corrupted entry is detected and rebuilt. Measured by the stage log, not by timing."""

import json
import shutil

from synthaug.pipeline.run import run_pipeline
from tests.conftest import PENGUINS


def _run(path, **kw):
    logged = []
    result = run_pipeline(path, log=logged.append, **kw)
    return result, logged


def test_rerun_with_nothing_changed_runs_nothing(write_pipeline, one_thread):
    path = write_pipeline(cache={"enabled": True})
    first, log1 = _run(path)
    second, log2 = _run(path, overwrite=True)
    assert "fit ..." in log1 and any(m.startswith("up to date") for m in log2)
    assert "fit ..." not in log2 and "sample ..." not in log2
    assert second.manifest["shards"] == first.manifest["shards"]
    lock = json.loads((first.path / "synthaug.lock").read_text())
    assert set(lock) >= {"fit_key", "run_key", "code", "shards"}


def test_changed_n_rows_samples_again_without_fitting(write_pipeline, one_thread):
    first, _ = _run(write_pipeline(cache={"enabled": True}))
    again, log = _run(write_pipeline(cache={"enabled": True}, sample={"n_rows": 200}), overwrite=True)
    assert any(m.startswith("fit: cached") for m in log) and "fit ..." not in log and "sample ..." in log
    assert again.manifest["rows"] == 200 and again.manifest["fit"]["cached"]


def test_changed_data_fits_again(tmp_path, write_pipeline, one_thread):
    data = tmp_path / "penguins.csv"
    shutil.copy(PENGUINS, data)
    _run(write_pipeline(source=data, cache={"enabled": True}))
    data.write_text(data.read_text().replace("Torgersen", "Torgersen Island"))
    _, log = _run(write_pipeline(source=data, cache={"enabled": True}), overwrite=True)
    assert "fit ..." in log


def test_corrupted_cache_entry_is_rebuilt(tmp_path, write_pipeline, one_thread):
    first, _ = _run(write_pipeline(cache={"enabled": True}))
    (entry,) = (tmp_path / "out" / ".synthaug-cache" / "fit").iterdir()
    (entry / "model" / "weights.pt").write_bytes(b"not the weights")
    _, log = _run(write_pipeline(cache={"enabled": True}, sample={"n_rows": 100}), overwrite=True)
    assert any("corrupt" in m for m in log) and "fit ..." in log
    entry_files = json.loads((entry / "entry.json").read_text())["files"]
    assert entry_files  # stored again after the fresh fit


def test_cli_force_and_no_cache(write_pipeline, tmp_path, one_thread):
    from typer.testing import CliRunner

    from synthaug.cli import app

    runner = CliRunner()
    path = write_pipeline(cache={"enabled": True})
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    again = runner.invoke(app, ["run", str(path), "--overwrite"])
    assert again.exit_code == 0 and "up to date" in again.stderr
    forced = runner.invoke(app, ["run", str(path), "--overwrite", "--force"])
    assert forced.exit_code == 0 and "fit ..." in forced.stderr and "up to date" not in forced.stderr
    shutil.rmtree(tmp_path / "out" / ".synthaug-cache")
    plain = runner.invoke(app, ["run", str(path), "--overwrite", "--no-cache"])
    assert plain.exit_code == 0 and "fit ..." in plain.stderr
    assert not (tmp_path / "out" / ".synthaug-cache").exists()


def test_rerun_after_a_run_needs_no_overwrite_when_nothing_changed(write_pipeline, one_thread):
    # `make demo` then `synthaug run pipelines/penguins.yaml`: nothing to do, so nothing to refuse.
    from typer.testing import CliRunner

    from synthaug.cli import app

    runner = CliRunner()
    path = write_pipeline(cache={"enabled": True})
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    again = runner.invoke(app, ["run", str(path)])
    assert again.exit_code == 0 and "up to date" in again.stderr
    changed = runner.invoke(app, ["run", str(path), "sample.n_rows=100"])
    assert changed.exit_code == 2 and "--overwrite" in changed.stderr  # a real change still needs --overwrite
