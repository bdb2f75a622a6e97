"""SDV adapters and SDV metadata interop (the contract checks themselves run in test_contract.py)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from synthaug.errors import BadInput
from synthaug.generators.sdv import SDVCTGAN, SDVTVAE, SDVGaussianCopula, schema_from_sdv_metadata, schema_to_sdv_metadata
from synthaug.schema import infer_schema
from synthaug.testing import TINY_TRAINER, tiny_table
from tests.conftest import PENGUINS, ROOT

SDV_REASON = "SDV is an optional extra (pip install 'synthaug[sdv]'); these tests drive SDV itself"


# -- metadata interop: plain dicts, no SDV needed -------------------------------------------
def test_schema_to_sdv_metadata_maps_every_kind():
    # Setup
    schema = infer_schema(tiny_table())

    # Run
    meta = schema_to_sdv_metadata(schema)

    # Assert
    columns = meta["tables"]["table"]["columns"]
    assert meta["METADATA_SPEC_VERSION"] == "V2"
    assert {k: v["sdtype"] for k, v in columns.items()} == {
        "row_id": "id",
        "species": "categorical",
        "island": "categorical",
        "length_mm": "numerical",
        "count": "numerical",
        "tagged": "boolean",
        "sex": "categorical",
        "seen": "datetime",
    }
    assert meta["tables"]["table"]["primary_key"] == "row_id"


def test_sdv_metadata_round_trip_gives_the_same_schema(penguins_table):
    # Setup
    schema = infer_schema(penguins_table)

    # Run
    back = schema_from_sdv_metadata(schema_to_sdv_metadata(schema), penguins_table)

    # Assert
    assert back == schema


def test_sdv_metadata_kinds_override_inference(penguins_table, tmp_path):
    # Setup: SDV says the year is a category and the (single-table, older format) file is on disk
    meta = {
        "METADATA_SPEC_VERSION": "SINGLE_TABLE_V1",
        "columns": {"year": {"sdtype": "categorical"}, "body_mass_g": {"sdtype": "numerical", "computer_representation": "Float"}},
    }
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(meta))

    # Run
    schema = schema_from_sdv_metadata(path, PENGUINS)

    # Assert
    assert infer_schema(penguins_table).column("year").kind == "integer"
    assert schema.column("year").kind == "categorical"
    assert schema.column("year").categories == [2007, 2008, 2009]
    assert schema.column("body_mass_g").kind == "continuous"
    assert schema.column("species").kind == "categorical"  # not in the metadata: inferred


def test_sdv_metadata_naming_a_missing_column_is_bad_input(penguins_table):
    # Setup
    meta = {"tables": {"penguins": {"columns": {"species": {"sdtype": "categorical"}, "beak_colour": {"sdtype": "categorical"}}}}}

    # Run / Assert
    with pytest.raises(BadInput, match="column 'beak_colour' is not in the data; columns there are: species, island"):
        schema_from_sdv_metadata(meta, penguins_table)


def test_sdv_metadata_with_several_tables_needs_a_table_name(penguins_table):
    # Setup
    meta = {"tables": {"a": {"columns": {"year": {"sdtype": "categorical"}}}, "b": {"columns": {}}}}

    # Run / Assert
    with pytest.raises(BadInput, match=r"describes tables \['a', 'b'\]; pass table_name="):
        schema_from_sdv_metadata(meta, penguins_table)
    assert schema_from_sdv_metadata(meta, penguins_table, table_name="a").column("year").kind == "categorical"


def test_unreadable_sdv_metadata_file_is_bad_input(tmp_path, penguins_table):
    # Setup
    path = tmp_path / "metadata.json"
    path.write_text("{not json")

    # Run / Assert
    with pytest.raises(BadInput, match="metadata.json: not valid JSON"):
        schema_from_sdv_metadata(path, penguins_table)
    with pytest.raises(BadInput, match="SDV metadata file not found"):
        schema_from_sdv_metadata(tmp_path / "nope.json", penguins_table)


# -- licence boundary -------------------------------------------------------------------------
def test_only_the_sdv_module_imports_sdv_ctgan_or_rdt():
    # Setup
    pattern = re.compile(r"^\s*(from|import)\s+(sdv|ctgan|rdt|copulas)\b", re.MULTILINE)

    # Run
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "synthaug").rglob("*.py") if p.name != "sdv.py" and pattern.search(p.read_text())
    ]

    # Assert
    assert offenders == []


def test_importing_the_adapters_does_not_import_sdv():
    # Run
    code = "import sys, synthaug.generators.sdv; print(sorted(m for m in ('sdv', 'ctgan', 'rdt') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout

    # Assert
    assert out.strip() == "[]"


def test_without_sdv_instantiating_says_how_to_install(monkeypatch):
    # Setup: pretend the extra is not installed
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sdv" else real(name, *a))

    # Run / Assert
    for cls in (SDVGaussianCopula, SDVCTGAN, SDVTVAE):
        with pytest.raises(BadInput, match=re.escape("install the extra: pip install 'synthaug[sdv]'")):
            cls()


# -- with SDV -----------------------------------------------------------------------------------
def test_our_metadata_is_valid_sdv_metadata_for_the_data():
    # Setup
    pytest.importorskip("sdv", reason=SDV_REASON)
    from sdv.metadata import Metadata

    table = tiny_table()
    meta = schema_to_sdv_metadata(infer_schema(table))

    # Run
    loaded = Metadata.load_from_dict(meta)
    loaded.validate()
    loaded.validate_data({"table": table.to_pandas()})

    # Assert
    assert loaded.to_dict()["tables"]["table"]["columns"] == meta["tables"]["table"]["columns"]


def test_metadata_detected_by_sdv_reads_back(penguins_table, tmp_path):
    # Setup: metadata as SDV itself detects and saves it
    pytest.importorskip("sdv", reason=SDV_REASON)
    from sdv.metadata import Metadata

    detected = Metadata.detect_from_dataframes({"penguins": penguins_table.to_pandas()})
    path = tmp_path / "metadata.json"
    detected.save_to_json(path)
    sdtypes = {k: v["sdtype"] for k, v in detected.to_dict()["tables"]["penguins"]["columns"].items()}

    # Run
    schema = schema_from_sdv_metadata(path, penguins_table)

    # Assert
    kinds = {c.name: c.kind for c in schema.columns}
    assert {k: kinds[k] for k, s in sdtypes.items() if s == "categorical"} == {
        k: "categorical" for k, s in sdtypes.items() if s == "categorical"
    }
    assert all(kinds[k] in ("continuous", "integer") for k, s in sdtypes.items() if s == "numerical")


def test_save_refuses_and_writes_nothing(tmp_path):
    # Setup
    pytest.importorskip("sdv", reason=SDV_REASON)
    gen = SDVGaussianCopula().fit(tiny_table(), trainer=TINY_TRAINER)

    # Run / Assert
    with pytest.raises(BadInput, match="cannot be saved: SDV synthesizers persist only by pickling"):
        gen.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()
    with pytest.raises(BadInput, match="cannot be loaded"):
        SDVGaussianCopula.load(tmp_path / "model")


def test_ctgan_takes_the_trainer_epoch_budget_unless_configured():
    # Setup
    pytest.importorskip("sdv", reason=SDV_REASON)
    table = tiny_table().select(["species", "tagged"])  # categories only: no per-column mixture fits

    # Run
    default = SDVCTGAN({"generator_dim": [16], "discriminator_dim": [16]}).fit(table, trainer=TINY_TRAINER)
    pinned = SDVCTGAN({"epochs": 1, "batch_size": 64, "generator_dim": [16], "discriminator_dim": [16]}).fit(table, trainer=TINY_TRAINER)

    # Assert: SDV's own record of the run (batch 64 is rounded down to a multiple of 2 * pac = 20)
    assert default.synthesizer.get_parameters()["epochs"] == TINY_TRAINER.max_epochs
    assert pinned.synthesizer.get_parameters()["epochs"] == 1
    assert pinned.synthesizer.get_parameters()["batch_size"] == 60


def test_sdv_samples_penguins_with_the_source_arrow_schema(penguins_table):
    # Setup
    pytest.importorskip("sdv", reason=SDV_REASON)
    schema = infer_schema(penguins_table)
    gen = SDVGaussianCopula().fit(penguins_table, schema, TINY_TRAINER, seed=0)

    # Run
    batches = list(gen.sample_batches(250, seed=3, batch_size=100, conditions={"island": "Dream"}))

    # Assert
    assert [b.num_rows for b in batches] == [100, 100, 50]
    assert all(b.schema.equals(penguins_table.schema, check_metadata=False) for b in batches)
    assert {v for b in batches for v in b["island"].to_pylist()} == {"Dream"}
    assert sum(b["sex"].null_count for b in batches) > 0  # penguins' missing sex survives as nulls


def test_cli_schema_sdv_export_and_import(tmp_path):
    from typer.testing import CliRunner

    from synthaug.cli import app
    from tests.conftest import PENGUINS

    runner = CliRunner()
    out = tmp_path / "metadata.json"
    assert runner.invoke(app, ["schema", str(PENGUINS), "--sdv", "--out", str(out)]).exit_code == 0
    meta = json.loads(out.read_text())
    meta["tables"]["table"]["columns"]["year"] = {"sdtype": "categorical"}
    out.write_text(json.dumps(meta))
    result = runner.invoke(app, ["schema", str(PENGUINS), "--from-sdv", str(out)])
    assert result.exit_code == 0
    kinds = {c["name"]: c["kind"] for c in json.loads(result.stdout)["columns"]}
    assert kinds["year"] == "categorical" and kinds["body_mass_g"] == "integer"


def test_pipeline_takes_sdv_metadata(tmp_path, write_pipeline):
    from synthaug.pipeline.run import run_pipeline

    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"METADATA_SPEC_VERSION": "V2", "tables": {"t": {"columns": {"year": {"sdtype": "categorical"}}}}}))
    from tests.conftest import PENGUINS

    result = run_pipeline(write_pipeline(source={"path": str(PENGUINS), "sdv_metadata": str(meta)}))
    schema = json.loads((result.path / "schema.json").read_text())
    assert next(c for c in schema["columns"] if c["name"] == "year")["kind"] == "categorical"


def test_pipeline_with_sdv_baseline_skips_model_save(write_pipeline):
    pytest.importorskip("sdv")
    from synthaug.pipeline.run import run_pipeline

    result = run_pipeline(write_pipeline(generator={"name": "sdv_gaussian_copula"}))
    assert result.status == "published" and not (result.path / "model").exists()
