"""Rebalancing through conditional sampling: augment.balance in the pipeline."""

import json

import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.generators.sampling import apportion
from synthaug.pipeline.run import run_pipeline


def test_apportion_is_exact_and_proportional():
    assert apportion(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert apportion(7, {"a": 0.5, "b": 0.25, "c": 0.25}) == {"a": 3, "b": 2, "c": 2}  # remainders .5 < .75
    assert sum(apportion(1001, {"x": 0.3, "y": 0.7}).values()) == 1001


def species_counts(result):
    table = ds.dataset(result.path / "data", format="parquet").to_table()
    return table, table["species"].value_counts().to_pylist()


def test_equalize_gives_equal_classes_in_mixed_shards(write_pipeline):
    result = run_pipeline(write_pipeline(augment={"balance": {"column": "species", "strategy": "equalize"}}))
    table, counts = species_counts(result)
    assert sorted(c["counts"] for c in counts) == [100, 100, 100]
    first_shard = table.slice(0, 128)["species"].unique().to_pylist()
    assert len(first_shard) == 3  # shuffled, not sorted by class
    assert result.manifest["balance"]["column"] == "species"


def test_complement_fills_up_to_the_largest_class(write_pipeline, penguins_table):
    result = run_pipeline(write_pipeline(augment={"balance": {"column": "species", "strategy": "complement"}}))
    _, counts = species_counts(result)
    got = {c["values"]: c["counts"] for c in counts}
    assert "Adelie" not in got  # the largest real class needs no top-up
    assert got["Chinstrap"] > got["Gentoo"]  # Chinstrap is the rarest real class
    assert sum(got.values()) == 300


def test_ratios_and_balanced_runs_are_reproducible(write_pipeline):
    raw = {"balance": {"column": "species", "strategy": "ratios", "ratios": {"Chinstrap": 2, "Gentoo": 1}}}
    first = run_pipeline(write_pipeline(name="a", augment=raw))
    second = run_pipeline(write_pipeline(name="b", augment=raw))
    _, counts = species_counts(first)
    assert {c["values"]: c["counts"] for c in counts} == {"Chinstrap": 200, "Gentoo": 100}
    assert [s["sha256"] for s in first.manifest["shards"]] == [s["sha256"] for s in second.manifest["shards"]]


@pytest.mark.parametrize(
    "balance, needle",
    [
        ({"column": "wingspan"}, "augment.balance.column 'wingspan' is not a column"),
        ({"column": "body_mass_g"}, "needs a categorical or boolean column"),
        ({"column": "species", "strategy": "ratios", "ratios": {"Emperor": 1}}, "'Emperor' is not a category of 'species'"),
        ({"column": "species", "strategy": "ratios"}, "augment.balance.ratios is empty"),
        ({"column": "species", "strategy": "sorted"}, "key 'augment.balance.strategy'"),
    ],
)
def test_bad_balance_is_bad_input(write_pipeline, balance, needle, tmp_path):
    result = CliRunner().invoke(app, ["run", str(write_pipeline(augment={"balance": balance}))])
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert not (tmp_path / "out" / "tiny").exists()


def test_rebalanced_fidelity_uses_reweighted_reference(write_pipeline):
    result = run_pipeline(write_pipeline(augment={"balance": {"column": "species"}}, gates={"column_shapes_min": 0.0}))
    report = json.loads((result.path / "report.json").read_text())
    shape = report["metrics"]["fidelity"]["quality"]["column_shape_scores"]["species"]
    assert shape > 0.9  # equal classes vs real rows resampled to equal classes


def test_balance_with_a_baseline_that_cannot_condition(write_pipeline):
    pytest.importorskip("sdv")
    config = write_pipeline(generator={"name": "sdv_gaussian_copula"}, augment={"balance": {"column": "species"}})
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 2 and "cannot rebalance" in result.stderr
