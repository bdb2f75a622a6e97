"""Gates end to end, with negative controls: copies, shuffled columns, broken shards."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.config.pipeline import conf_dirs, load_preset
from synthaug.pipeline.run import run_pipeline
from synthaug.validation.gates import GatesConfig
from tests.conftest import ROOT, tree

runner = CliRunner()


@pytest.fixture
def real_split(tmp_path, penguins_table):
    """Equal-sized train and holdout Parquet files of the penguins table."""
    order = np.random.default_rng(0).permutation(penguins_table.num_rows)
    train, holdout = penguins_table.take(np.sort(order[:172])), penguins_table.take(np.sort(order[172:]))
    pq.write_table(train, tmp_path / "train.parquet")
    pq.write_table(holdout, tmp_path / "holdout.parquet")
    return train, holdout


def within_train(holdout: pa.Table, train: pa.Table) -> pa.Table:
    """Holdout rows inside the training bounds (the suite's limits), complete in every column."""
    keep = pc.is_valid(holdout["sex"])
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        lo, hi = pc.min(train[name]), pc.max(train[name])
        keep = pc.and_(keep, pc.and_(pc.greater_equal(holdout[name], lo), pc.less_equal(holdout[name], hi)))
    return holdout.filter(pc.fill_null(keep, False))


def validate(tmp_path, synthetic: pa.Table, *extra):
    pq.write_table(synthetic, tmp_path / "synthetic.parquet")
    args = [
        "validate",
        "--real",
        tmp_path / "train.parquet",
        "--synthetic",
        tmp_path / "synthetic.parquet",
        "--holdout",
        tmp_path / "holdout.parquet",
        "--out",
        tmp_path / "report",
        "--overwrite",
        *extra,
    ]
    result = runner.invoke(app, [str(a) for a in args])
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    failed = {g["name"] for g in report["gates"] if not g["passed"]}
    return result, report, failed


def test_copied_training_rows_fail_privacy(tmp_path, real_split):
    train, _ = real_split
    result, report, failed = validate(tmp_path, train)
    assert result.exit_code == 1
    assert {"dcr_share_max", "exact_match_excess_max", "mia_auc_max"} <= failed
    assert "FAIL dcr_share_max" in result.stderr and "must be <= 0.6" in result.stderr


def test_shuffled_columns_fail_pair_trends_or_detection(tmp_path, real_split):
    train, _ = real_split
    rng = np.random.default_rng(1)
    shuffled = pa.table({name: train[name].take(rng.permutation(train.num_rows)) for name in train.column_names})
    result, report, failed = validate(tmp_path, shuffled)
    assert result.exit_code == 1
    assert failed & {"pair_trends_min", "detection_auc_max"}
    assert "column_shapes_min" not in failed  # the marginals are perfect


def test_fresh_real_rows_pass(tmp_path, real_split):
    # A perfect generator emits new rows from the same distribution, within the training bounds.
    train, holdout = real_split
    result, report, failed = validate(tmp_path, within_train(holdout, train), "--target", "species")
    assert result.exit_code == 0, failed
    assert report["metrics"]["fidelity"]["tstr"]["real"]["accuracy"] > 0.9


@pytest.mark.parametrize("corrupt", ["out_of_range", "unseen_category"])
def test_broken_shard_fails_expectations(tmp_path, real_split, corrupt):
    train, holdout = real_split
    holdout = within_train(holdout, train)
    if corrupt == "out_of_range":
        col = pc.if_else(pa.array(np.arange(holdout.num_rows) == 0), 99999, holdout["body_mass_g"])
        broken = holdout.set_column(holdout.schema.get_field_index("body_mass_g"), "body_mass_g", col)
    else:
        col = pc.if_else(pa.array(np.arange(holdout.num_rows) == 0), "Emperor", holdout["species"])
        broken = holdout.set_column(0, "species", col)
    result, report, failed = validate(tmp_path, broken)
    assert result.exit_code == 1
    assert "expectations" in failed and "shard_checks" in failed
    names = {r["expectation"] for shard in report["expectations_detail"].values() for r in shard["results"] if not r["success"]}
    assert names == ({"expect_column_values_to_be_between"} if corrupt == "out_of_range" else {"expect_column_values_to_be_in_set"})


def test_reports_for_people_and_ci(tmp_path, real_split):
    _, holdout = real_split
    validate(tmp_path, holdout)
    out = tmp_path / "report"
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 3 and "dcr_share_max" in html
    suites = ET.parse(out / "junit.xml").getroot()
    names = {s.get("name") for s in suites}
    assert {"gates", "checks"} <= names and any(n.startswith("expectations.") for n in names)
    gate_cases = [c.get("name") for s in suites if s.get("name") == "gates" for c in s]
    assert "mia_auc_max" in gate_cases and "expectations" in gate_cases
    assert (out / "expectations" / "docs" / "index.html").is_file()


def test_quarantine_on_failed_gate(tmp_path, write_pipeline):
    dest = tmp_path / "out" / "tiny"
    dest.mkdir(parents=True)
    (dest / "earlier.txt").write_text("keep")
    (dest / "manifest.json").write_text('{"producer": "synthaug"}')  # an earlier synthaug output
    before = tree(dest)
    result = runner.invoke(app, ["run", str(write_pipeline(gates={"quality_min": 0.999})), "--overwrite", "-q"])
    assert result.exit_code == 1
    assert "FAIL quality_min" in result.stderr and "must be >= 0.999" in result.stderr
    assert tree(dest) == before
    [quarantined] = (tmp_path / "out" / "_quarantine").iterdir()
    assert quarantined.name.startswith("tiny-") and (quarantined / "report.json").is_file()
    assert len(list((quarantined / "data").glob("*.parquet"))) == 3


def test_demo_pipeline_passes_default_gates(tmp_path):
    result = run_pipeline(ROOT / "pipelines" / "penguins.yaml", overrides=[f"output.dir={tmp_path / 'demo'}", "trainer.progress_bar=false"])
    failed = [g for g in result.manifest["gates"] if not g["passed"]]
    assert result.status == "published", failed
    names = {g["name"] for g in result.manifest["gates"]}
    assert {"expectations", "quality_min", "detection_auc_max", "tstr_gap_max", "dcr_share_max", "mia_auc_max"} <= names


def test_gate_presets():
    strict = GatesConfig(**load_preset("gates", "strict_privacy", conf_dirs(), "test"))
    default = GatesConfig(**load_preset("gates", "default", conf_dirs(), "test"))
    assert strict.mia_auc_max < default.mia_auc_max and strict.quality_min == default.quality_min


def test_unknown_gate_key_is_bad_input(write_pipeline):
    result = runner.invoke(app, ["run", str(write_pipeline(gates={"mia_auc": 0.5}))])
    assert result.exit_code == 2 and "unknown key 'gates.mia_auc'" in result.stderr


def test_pipeline_extra_expectation_and_existing_suite(tmp_path, write_pipeline):
    # A user expectation the synthetic penguins cannot meet quarantines the run ...
    extra = [{"expectation": "expect_column_values_to_be_between", "kwargs": {"column": "body_mass_g", "max_value": 3000}}]
    result = run_pipeline(write_pipeline(name="extra", validation={"expectations": extra}))
    assert result.status == "quarantined"
    failing = {g["name"] for g in result.manifest["gates"] if not g["passed"]}
    assert failing == {"expectations"}
    # ... and the suite it saved can be given back as an existing suite, with the same verdict.
    suite = next((tmp_path / "out" / "_quarantine").iterdir()) / "expectations" / "suite.json"
    again = run_pipeline(write_pipeline(name="suite", validation={"suite": str(suite)}))
    assert again.status == "quarantined"


def test_unknown_user_expectation_fails_before_training(tmp_path, write_pipeline):
    extra = [{"expectation": "expect_penguins_to_fly", "kwargs": {}}]
    result = runner.invoke(app, ["run", str(write_pipeline(validation={"expectations": extra}))])
    assert result.exit_code == 2 and "expect_penguins_to_fly" in result.stderr
    assert "fit ..." not in result.stderr  # rejected while loading, before any training
    assert not (tmp_path / "out").exists() or not [p for p in (tmp_path / "out").iterdir() if p.suffix != ".lock"]
