"""Every bad input: exit code 2, one line naming the culprit, destination untouched."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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


# -- interrupted runs and internal errors ------------------------------------------------------------
def test_sigint_during_fit_exits_130_and_leaves_the_destination(tmp_path, write_pipeline, dest):
    # Setup: a run that would train for minutes, on a destination with an earlier output.
    import signal
    import time

    pipeline = write_pipeline(trainer={"preset": "tiny", "max_epochs": 100_000})
    before = tree(dest)
    err = tmp_path / "stderr.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # A shell may start background jobs with SIGINT ignored; the child gets the default handler back.
    with err.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "synthaug.cli", "run", str(pipeline), "--overwrite"],
            stdout=subprocess.DEVNULL,
            stderr=fh,
            cwd=tmp_path,
            env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            # Run: wait until training has started (staging folder made, "fit ..." logged), then Ctrl-C.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                staging = [p for p in dest.parent.iterdir() if ".staging-" in p.name]
                if staging and "fit ..." in err.read_text():
                    break
                time.sleep(0.2)
            assert proc.poll() is None, err.read_text()
            time.sleep(2.0)  # inside trainer.fit
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    # Assert: 130, one line saying so, nothing published, no staging folder left behind.
    text = err.read_text()
    assert code == 130, text
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert errors == ["error: interrupted; nothing was published"], text
    assert "Traceback" not in text
    assert tree(dest) == before
    assert [p.name for p in dest.parent.iterdir() if p.name != dest.name and not p.name.endswith(".lock")] == []


def test_internal_error_exits_3_with_a_crash_log(write_pipeline, dest, monkeypatch):
    from synthaug.pipeline import stages

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a stage")

    monkeypatch.setattr(stages, "fit", broken)
    before = tree(dest)
    result = run_cli("run", write_pipeline(), "--overwrite")
    assert result.exit_code == 3, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "internal error (RuntimeError: a bug in a stage)" in errors[0]
    log = Path(errors[0].rsplit("traceback in ", 1)[1])
    assert log.is_file() and "Traceback" in log.read_text() and "a bug in a stage" in log.read_text()
    assert tree(dest) == before
    log.unlink()


# -- gates that cannot be measured ---------------------------------------------------------------------
def test_evaluate_unmeasurable_gate_fails_unless_optional():
    from synthaug.validation.gates import GatesConfig, evaluate

    metrics = {
        "fidelity": {},
        "privacy": {},
        "skipped": {
            "fidelity.tstr_gap": "no target declared",
            "privacy.mia_auc": "privacy metrics need a holdout (set split.holdout > 0)",
        },
    }
    required = {g.name: g for g in evaluate(GatesConfig(tstr_gap_max=0.1, mia_auc_max=0.6), metrics)}
    assert not required["tstr_gap_max"].passed and not required["mia_auc_max"].passed
    assert required["mia_auc_max"].detail.startswith("skipped: privacy metrics need a holdout")
    optional = GatesConfig(tstr_gap_max=0.1, mia_auc_max=0.6, optional=["tstr_gap_max", "mia_auc_max"])
    worded = {g.name: g for g in evaluate(optional, metrics, reasons={"holdout": "no --holdout", "target": "no --target"})}
    assert worded["tstr_gap_max"].passed and worded["tstr_gap_max"].detail == "skipped: no --target"
    assert worded["mia_auc_max"].passed and worded["mia_auc_max"].detail == "skipped: no --holdout"
    # A metric that is just missing (a bug) still fails, optional or not.
    [missing] = evaluate(GatesConfig(dcr_share_max=0.6, optional=["dcr_share_max"]), {"privacy": {}, "skipped": {}})
    assert not missing.passed and missing.detail == "metric missing"


def test_gate_summary_and_lines():
    from synthaug.report.shell import gate_line, gate_summary

    gates = [
        {"name": "quality_min", "value": 0.8, "op": ">=", "threshold": 0.7, "passed": True, "detail": ""},
        {"name": "tstr_gap_max", "value": None, "op": "<=", "threshold": 0.15, "passed": True, "detail": "skipped: no --target"},
        {
            "name": "mia_auc_max",
            "value": None,
            "op": "<=",
            "threshold": 0.6,
            "passed": False,
            "detail": "skipped: no --holdout; the gates preset requires it (list it under optional: to allow skipping)",
        },
    ]
    assert gate_summary(gates) == "1 passed, 1 failed, 1 skipped: no --target"
    assert gate_line(gates[1]) == "SKIP tstr_gap_max: skipped (no --target); optional in the gates preset"
    assert gate_line(gates[2]).startswith("FAIL mia_auc_max: skipped (no --holdout); the gates preset requires it")


def test_shipped_presets_mark_only_tstr_optional():
    from synthaug.config.pipeline import load_preset, packaged_presets
    from synthaug.validation.gates import GatesConfig

    for name in ("default", "strict_privacy"):
        gates = GatesConfig(**load_preset("gates", name, [packaged_presets()], "test"))
        assert gates.optional == ["tstr_gap_max"], name


def test_no_holdout_fails_strict_privacy(write_pipeline, dest, one_thread):
    # The example: split.holdout=0 with strict_privacy used to publish with privacy "n/a".
    before = tree(dest)
    result = run_cli("run", write_pipeline(gates="strict_privacy"), "split.holdout=0", "--overwrite")
    assert result.exit_code == 1, result.output
    assert tree(dest) == before
    reason = "privacy metrics need a holdout (set split.holdout > 0)"
    for gate in ("dcr_share_max", "exact_match_excess_max", "mia_auc_max"):
        assert f"FAIL {gate}: skipped ({reason}); the gates preset requires it" in result.stderr
    assert "SKIP tstr_gap_max: skipped (no target declared)" in result.stderr
    summary = [line for line in result.stderr.splitlines() if line.startswith("gates: ")]
    assert len(summary) == 1 and summary[0].endswith("failed, 1 skipped: no target declared"), result.stderr
    [quarantined] = (dest.parent / "_quarantine").iterdir()
    report = json.loads((quarantined / "report.json").read_text())
    # (the tiny model may fail fidelity gates too; the privacy ones fail because they cannot be measured)
    assert {"dcr_share_max", "exact_match_excess_max", "mia_auc_max"} <= {g["name"] for g in report["gates"] if not g["passed"]}
    page = (quarantined / "report.html").read_text()
    assert "skipped (no target declared)" in page and "SKIP" in page
    junit = (quarantined / "junit.xml").read_text()
    assert '<skipped message="no target declared"' in junit


def test_optional_gate_is_reported_skipped_and_publishes(write_pipeline, one_thread):
    gates = {"dcr_share_max": 0.99, "mia_auc_max": 0.99, "optional": ["dcr_share_max", "mia_auc_max"]}
    result = run_cli("run", write_pipeline(gates=gates), "split.holdout=0")
    assert result.exit_code == 0, result.output
    assert "gates: 2 passed, 2 skipped: privacy metrics need a holdout (set split.holdout > 0)" in result.stderr


# -- a validator that accepts real data ------------------------------------------------------------------
@pytest.fixture
def three_parts(tmp_path, penguins_table):
    """The positive control: train, holdout and "synthetic" are disjoint draws of the same source."""
    order = np.random.default_rng(0).permutation(penguins_table.num_rows)
    thirds = np.array_split(order, 3)
    paths = {}
    for name, rows in zip(("train", "holdout", "synthetic"), thirds):
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(penguins_table.take(np.sort(rows)), paths[name])
    return paths


def validate_cli(paths, out, *extra):
    return run_cli("validate", "--real", paths["train"], "--synthetic", paths["synthetic"], "--out", out, *extra)


def test_fresh_real_rows_pass_the_validator(three_parts, tmp_path):
    from synthaug.io.sources import read_table

    # Fresh rows reach past the training extremes: the old exact bounds rejected them.
    train, synthetic = read_table(three_parts["train"]), read_table(three_parts["synthetic"])
    outside = [
        c
        for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
        if pc.max(synthetic[c]).as_py() > pc.max(train[c]).as_py() or pc.min(synthetic[c]).as_py() < pc.min(train[c]).as_py()
    ]
    assert outside, "the split no longer tests tails beyond the training range"
    result = validate_cli(three_parts, tmp_path / "report", "--holdout", three_parts["holdout"], "--target", "species")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    verdicts = {g["name"]: g["passed"] for g in report["gates"]}
    assert verdicts["shard_checks"] and verdicts["expectations"], report["gates"][:2]
    assert result.exit_code == 0, [g for g in report["gates"] if not g["passed"]]


def test_value_beyond_the_margin_still_fails(three_parts, tmp_path):
    from synthaug.io.sources import read_table

    train = read_table(three_parts["train"])
    lo, hi = pc.min(train["body_mass_g"]).as_py(), pc.max(train["body_mass_g"]).as_py()
    synthetic = read_table(three_parts["synthetic"])
    beyond = hi + 0.11 * (hi - lo)  # the margin is 10% of the observed range
    col = pc.if_else(pa.array(np.arange(synthetic.num_rows) == 0), beyond, synthetic["body_mass_g"])
    pq.write_table(synthetic.set_column(synthetic.schema.get_field_index("body_mass_g"), "body_mass_g", col), three_parts["synthetic"])
    result = validate_cli(three_parts, tmp_path / "report", "--holdout", three_parts["holdout"], "--gates", "none")
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    failed = {g["name"] for g in report["gates"] if not g["passed"]}
    assert failed == {"shard_checks", "expectations"}
    assert "body_mass_g bounds" in next(g["detail"] for g in report["gates"] if g["name"] == "shard_checks")


def test_validate_without_holdout_names_the_option(three_parts, tmp_path):
    result = validate_cli(three_parts, tmp_path / "report")
    assert result.exit_code == 1, result.output
    assert "FAIL mia_auc_max: skipped (no --holdout)" in result.stderr
    assert "SKIP tstr_gap_max: skipped (no --target)" in result.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    details = {g["name"]: g["detail"] for g in report["gates"]}
    assert details["tstr_gap_max"] == "skipped: no --target"
    assert details["dcr_share_max"].startswith("skipped: no --holdout;") and "split.holdout" not in json.dumps(report["gates"])


def test_declared_bounds_stay_exact_observed_bounds_widen():
    from synthaug.schema import ColumnSpec
    from synthaug.validation.shape import tolerant_bounds

    observed = ColumnSpec(name="x", kind="continuous", dtype="double", min=10.0, max=20.0)
    assert tolerant_bounds(observed) == pytest.approx((9.0, 21.0))
    declared = observed.model_copy(update={"bounds": "declared"})
    assert tolerant_bounds(declared) == (10.0, 20.0)
    ints = ColumnSpec(name="n", kind="integer", dtype="int64", min=0, max=15)
    assert tolerant_bounds(ints) == (-2, 17)  # 1.5 rounded outward
    edge = ColumnSpec(name="u", kind="integer", dtype="uint64", min=0, max=2**64 - 1)
    assert tolerant_bounds(edge) == (0, 2**64 - 1)  # exact, clipped to the type
    huge = ColumnSpec(name="h", kind="continuous", dtype="double", min=-1e308, max=1e308)
    lo, hi = tolerant_bounds(huge)
    assert np.isfinite(lo) and np.isfinite(hi)


def test_schema_override_bounds_are_declared(tmp_path):
    from synthaug.io.sources import read_table
    from synthaug.schema import infer_schema, read_overrides
    from synthaug.validation.expectations import build_suite

    override = tmp_path / "o.json"
    override.write_text('{"columns": {"body_mass_g": {"min": 2000, "max": 7000}}}')
    table = read_table(PENGUINS)
    schema = infer_schema(table, overrides=read_overrides(override))
    assert schema.column("body_mass_g").bounds == "declared" and schema.column("flipper_length_mm").bounds == "data"
    between = {
        e.column: (e.min_value, e.max_value)
        for e in build_suite(table.to_pandas(), schema).expectations
        if type(e).__name__ == "ExpectColumnValuesToBeBetween"
    }
    assert between["body_mass_g"] == (2000, 7000)
    lo, hi = pc.min(table["flipper_length_mm"]).as_py(), pc.max(table["flipper_length_mm"]).as_py()
    assert between["flipper_length_mm"][0] < lo and between["flipper_length_mm"][1] > hi
