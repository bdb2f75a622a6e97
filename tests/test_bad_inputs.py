"""The bad-input catalogue (issue 9): every bad input exits 2 with ONE `error: ` line on stderr that
names the file, column or key and says what to do; nothing is written at the destination and the
inputs are left as they were. Checks that can be made before training are (no "fit ..." in the log).

Each table below is one class of defect; a new member of a class is one more line in its table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from tests.conftest import PENGUINS, ROOT, tree

runner = CliRunner()
MAX_ERROR_CHARS = 620  # an error line about a huge value stays short (cli.MAX_MESSAGE)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(result, *needles):
    """Exit 2, exactly one `error: ` line (short, naming every needle), no traceback, no training."""
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.stderr
    assert len(errors[0]) <= MAX_ERROR_CHARS, f"{len(errors[0])} chars: {errors[0][:300]}"
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "fit ..." not in result.stderr, "refused only after training started"
    return errors[0]


def snapshot(*paths: Path) -> dict:
    """Bytes of every file under the given paths (files or folders), to prove they did not change."""
    out = {}
    for p in paths:
        p = Path(p)
        out[str(p)] = p.read_bytes() if p.is_file() else tree(p)
    return out


@pytest.fixture
def dest(tmp_path):
    """The destination of every bad run, holding an earlier synthaug output that must survive."""
    path = tmp_path / "out" / "tiny"
    path.mkdir(parents=True)
    (path / "earlier.txt").write_text("keep me")
    (path / "manifest.json").write_text('{"producer": "synthaug"}')
    return path


def nothing_new_beside(dest: Path) -> None:
    """No staging folder or quarantine left next to the destination."""
    leftovers = [p.name for p in dest.parent.iterdir() if p.name != dest.name and not p.name.endswith(".lock")]
    assert not leftovers, leftovers


# -- 1. config values: range, type, machine, plan ------------------------------------------------
HUGE_LIST = "[" + ",".join(["123456789"] * 20_000) + "]"
CONFIG_CASES = {
    "negative seed": (["seed=-1"], ["key 'seed'", "greater than or equal to 0"]),
    "huge seed": (["seed=18446744073709551616"], ["key 'seed'", "less than or equal to"]),
    "seed as text": (["seed=abc"], ["key 'seed'"]),
    "gpu without a gpu": (["trainer.accelerator=gpu"], ["trainer.accelerator=gpu", "no CUDA GPU", "accelerator=cpu"]),
    "unknown accelerator": (["trainer.accelerator=tpu"], ["trainer.accelerator 'tpu' is unknown"]),
    "two devices, plain ddp": (["trainer.devices=2", "trainer.strategy=ddp"], ["trainer.strategy=ddp", "ddp_spawn", "ddp_fork"]),
    "two devices, auto strategy": (["trainer.devices=2"], ["trainer.strategy=auto", "ddp_spawn"]),
    "zero epochs": (["trainer.max_epochs=0"], ["key 'trainer.max_epochs'"]),
    "rows_per_shard zero": (["sample.rows_per_shard=0"], ["key 'sample.rows_per_shard'", "greater than 0"]),
    "rows_per_shard negative": (["sample.rows_per_shard=-5"], ["key 'sample.rows_per_shard'", "greater than 0"]),
    "batch_size zero": (["sample.batch_size=0"], ["key 'sample.batch_size'"]),
    "n_rows negative": (["sample.n_rows=-1"], ["key 'sample.n_rows'"]),
    "holdout too large": (["split.holdout=0.95"], ["key 'split.holdout'"]),
    "synthetic_column clashes": (
        ["sample.synthetic_column=species"],
        ["sample.synthetic_column 'species'", "already a column", "another name"],
    ),
    "condition on unknown column": (["sample.conditions={wingspan: 3}"], ["sample.conditions", "'wingspan'", "columns are"]),
    "condition on unseen category": (["sample.conditions={species: Emperor}"], ["sample.conditions", "'Emperor'", "never occurs"]),
    "condition range outside the data": (
        ["sample.conditions={bill_length_mm: [1000, 2000]}"],
        ["sample.conditions", "bill_length_mm", "outside"],
    ),
    "condition range reversed": (["sample.conditions={bill_length_mm: [45, 40]}"], ["sample.conditions", "bill_length_mm", "low <= high"]),
    "condition range of text": (["sample.conditions={bill_length_mm: [a, 50]}"], ["sample.conditions", "bill_length_mm", "numbers"]),
    "condition range of three": (["sample.conditions={bill_length_mm: [1, 2, 3]}"], ["sample.conditions", "bill_length_mm", "[low, high]"]),
    "condition on a range of a category": (["sample.conditions={species: [1, 2]}"], ["sample.conditions", "species"]),
    "balance on unknown column": (["augment.balance={column: wingspan}"], ["wingspan"]),
    "unknown generator param": (["generator.params.latent=3"], ["latent"]),
    "invalid value with a huge repr": ([f"trainer.max_epochs={HUGE_LIST}"], ["key 'trainer.max_epochs'", "..."]),
    "huge name": (["name=" + "x" * 50_000], ["key 'name'", "at most 200"]),
    "huge accelerator": (["trainer.accelerator=" + "x" * 50_000], ["trainer.accelerator", "use cpu, gpu"]),
    "huge generator param": ([f"generator.params.latent_dim={HUGE_LIST}"], ["generator.params.latent_dim", "..."]),
    "override without =": (["trainer.max_epochs"], ["key=value"]),
    "override into a value": (["seed.x=1"], ["'seed' is not a section"]),
    "unknown gates preset": (["gates=nope"], ["unknown gates preset 'nope'"]),
    "two nodes": (["trainer.num_nodes=2"], ["2 processes", "ddp_spawn"]),
    "whole-network half precision": (["trainer.precision=16-true"], ["trainer.precision=16-true", "32-true"]),
    "double precision": (["trainer.precision=64-true"], ["trainer.precision=64-true", "32-true"]),
    "unknown precision": (["trainer.precision=bogus"], ["trainer.precision=bogus"]),
    "metrics on one row": (["validation.metrics_rows=1"], ["key 'validation.metrics_rows'"]),
    "too few rows to measure the gates": (["sample.n_rows=2", "gates=default"], ["sample.n_rows=2", "gates: none"]),
    "extra expectation on an unknown column": (
        ["validation.expectations=[{expectation: expect_column_values_to_be_between, kwargs: {column: nope, min_value: 1}}]"],
        ["validation.expectations", "'nope'", "columns are"],
    ),
    "unknown extra expectation": (["validation.expectations=[{expectation: expect_magic}]"], ["expect_magic"]),
    "gates not a mapping": (["gates=5"], ["key 'gates'"]),
    "unknown optional gate": (["gates.optional=[mia_auc]"], ["gates.optional", "'mia_auc' is not a gate"]),
    "image gate on a table": (["gates.frechet_ratio_max=2"], ["gates.frechet_ratio_max applies to images, not tables", "gates: default"]),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_value(case, write_pipeline, dest):
    overrides, needles = CONFIG_CASES[case]
    pipeline = write_pipeline(target="species")
    inputs = snapshot(pipeline, PENGUINS)
    before = tree(dest)
    result = invoke("run", pipeline, *overrides, "--overwrite")
    assert_refused(result, *needles)
    assert tree(dest) == before and snapshot(pipeline, PENGUINS) == inputs
    nothing_new_beside(dest)


# -- 2. destinations that name no folder of their own -------------------------------------------
@pytest.mark.parametrize("target", [".", "sub/..", "/proc", "/", ""])
def test_output_dir_without_a_name_of_its_own(target, tmp_path, write_pipeline, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    pipeline = write_pipeline(output={"dir": target})
    before = tree(tmp_path)
    result = invoke("run", pipeline, "--overwrite")
    assert_refused(result, f"output.dir '{target}'", "choose a")
    assert tree(tmp_path) == before


# -- 3. the pipeline YAML itself ----------------------------------------------------------------
BOMB_ALIASES = "\n".join(  # the classic: 9 levels of 10 references, about 1.5 KB
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    + ["name: *a9"]
)
BOMB_FEW_ALIASES = "\n".join(  # under the alias limit, still 9**8 values once expanded: caught by size
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    + ["name: *a7"]
)
YAML_CASES = {
    "duplicate key": ("name: a\nname: b\n", ["duplicate key 'name'", "line 2", "keep one"]),
    "duplicate nested key": ("name: a\ntrainer:\n  max_epochs: 1\n  max_epochs: 2\n", ["duplicate key 'max_epochs'", "line 4"]),
    "alias bomb": (BOMB_ALIASES, ["aliases"]),
    "alias bomb under the alias limit": (BOMB_FEW_ALIASES, ["aliases expand"]),
    "not a mapping": ("- a\n- b\n", ["expected a mapping"]),
    "syntax error": ("name: [unclosed\n", ["invalid YAML", "fix the file"]),
    "python object tag": ("name: !!python/object/apply:os.system [echo hi]\n", ["invalid YAML"]),
    "empty file": ("", ["missing key"]),
    "unknown top-level key": ("name: a\nsed: 1\n", ["unknown key 'sed'", "allowed keys"]),
}


@pytest.mark.parametrize("case", YAML_CASES)
def test_bad_pipeline_yaml(case, tmp_path, dest):
    text, needles = YAML_CASES[case]
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(text)
    before = tree(dest)
    message = assert_refused(invoke("run", pipeline, "--overwrite"), str(pipeline), *needles)
    assert "lol" not in message  # the error never prints the expanded value
    assert tree(dest) == before


def test_pipeline_yaml_not_utf8(tmp_path):
    pipeline = tmp_path / "latin.yaml"
    pipeline.write_bytes("name: café\n".encode("latin-1"))
    assert_refused(invoke("run", pipeline), "latin.yaml", "not UTF-8")


def test_pipeline_path_is_a_folder(tmp_path):
    assert_refused(invoke("run", tmp_path), "is a folder")


@pytest.mark.parametrize("bomb", [BOMB_ALIASES, BOMB_FEW_ALIASES], ids=["many aliases", "few aliases"])
def test_alias_bomb_fails_fast_in_small_memory(bomb, tmp_path):
    # In a fresh process: peak memory (ru_maxrss) and time from just before loading to the refusal.
    pipeline = tmp_path / "bomb.yaml"
    pipeline.write_text(bomb)
    assert len(bomb) <= 1600
    code = textwrap.dedent(
        f"""
        import resource, time
        from synthaug.config.pipeline import load_config
        from synthaug.errors import BadInput
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            load_config({str(pipeline)!r})
        except BadInput as exc:
            message = str(exc)
        else:
            raise SystemExit("accepted")
        seconds = time.perf_counter() - start
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown_kb, seconds, len(message))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    grown_kb, seconds, message_len = out.stdout.split()
    assert int(grown_kb) < 20_000, f"peak memory grew by {grown_kb} KB"
    assert float(seconds) < 2.0 and int(message_len) < MAX_ERROR_CHARS


# -- 4. source data -----------------------------------------------------------------------------
def latin1_csv(d: Path) -> Path:
    rows = ["city,temp"] + [f"{c},{i}" for i, c in enumerate(["Zürich", "Köln", "Málaga", "Genève"] * 5)]
    path = d / "latin.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    return path


def duplicate_names_csv(d: Path) -> Path:
    path = d / "dup.csv"
    path.write_text("a,a,b\n" + "".join(f"{i},{i * 2},{'xy'[i % 2]}\n" for i in range(30)))
    return path


def hive_clash(d: Path) -> Path:
    root = d / "hive"
    part = root / "a=1"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"a": list(range(20)), "b": [float(i) for i in range(20)]}), part / "x.parquet")
    return root


SOURCE_CASES = {
    "latin-1 csv": (latin1_csv, ["latin.csv", "not UTF-8", "encoding='latin-1'"]),
    "duplicate column names": (duplicate_names_csv, ["dup.csv", "'a'"]),
    "hive key clashes with a column": (hive_clash, ["hive", "'a'"]),
}


@pytest.mark.parametrize("case", SOURCE_CASES)
def test_bad_source_data(case, tmp_path, write_pipeline, dest):
    make, needles = SOURCE_CASES[case]
    source = make(tmp_path)
    inputs = snapshot(source)
    before = tree(dest)
    assert_refused(invoke("run", write_pipeline(source=source), "--overwrite"), *needles)
    assert tree(dest) == before and snapshot(source) == inputs


def semicolon_csv(d: Path) -> Path:
    path = d / "semi.csv"
    rows = ["a;b;c"] + [f"{i};{i * 0.5};{'xyz'[i % 3]}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    return path


def float16_parquet(d: Path) -> Path:
    path = d / "half.parquet"
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"h": pa.array(rng.normal(size=60).astype(np.float16)), "c": ["xy"[i % 2] for i in range(60)]}), path)
    return path


def extreme_floats(d: Path) -> Path:
    path = d / "extreme.parquet"
    pq.write_table(pa.table({"v": [1e308, -1e308] * 15 + [0.5] * 10, "c": ["xy"[i % 2] for i in range(40)]}), path)
    return path


WORKING_SOURCES = {
    "semicolon-separated csv": (semicolon_csv, ["a", "b", "c"]),
    "float16 column": (float16_parquet, ["h", "c"]),
    "floats near the float64 limits": (extreme_floats, ["v", "c"]),
}


@pytest.mark.parametrize("case", list(WORKING_SOURCES))
def test_unusual_but_valid_source_works(case, tmp_path, write_pipeline, one_thread):
    make, columns = WORKING_SOURCES[case]
    source = make(tmp_path)
    inputs = snapshot(source)
    result = invoke("run", write_pipeline(source=source), "-q")
    assert result.exit_code == 0, result.output
    shard = pq.read_table(tmp_path / "out" / "tiny" / "data" / "part-00000.parquet")
    assert shard.column_names == columns
    if case == "float16 column":
        assert shard.schema.field("h").type == pa.float16()
    if case == "floats near the float64 limits":
        assert np.isfinite(shard["v"].to_numpy()).all()
    assert snapshot(source) == inputs


# -- 5. `synthaug sample` and saved models ---------------------------------------------------------
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny VAE fitted on the penguins and saved (seconds); tests corrupt copies of it."""
    import torch

    from synthaug.generators.base import get_generator
    from synthaug.io.sources import read_table
    from synthaug.training.config import TrainerConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tmp_path_factory.mktemp("model") / "model"
        vae = get_generator("vae")({"latent_dim": 4, "hidden": [16]})
        vae.fit(read_table(PENGUINS), trainer=TrainerConfig(max_epochs=1, patience=0, progress_bar=False), seed=0)
        vae.save(path)
    finally:
        torch.set_num_threads(threads)
    return path


def _edit_manifest(model: Path, edit) -> None:
    file = model / "generator.json"
    data = json.loads(file.read_text())
    edit(data)
    file.write_text(json.dumps(data))


def _set_hidden(data):
    data["config"]["hidden"] = [100_000, 100_000]


MODEL_CASES = {
    "no schema": (lambda m: _edit_manifest(m, lambda d: d.pop("schema")), ["generator.json", "no 'schema'", "re-save"]),
    "no name": (lambda m: _edit_manifest(m, lambda d: d.pop("name")), ["generator.json", "no 'name'", "re-save"]),
    "no config": (lambda m: _edit_manifest(m, lambda d: d.pop("config")), ["generator.json", "no 'config'"]),
    "unknown family": (lambda m: _edit_manifest(m, lambda d: d.update(name="nope")), ["unknown generator 'nope'"]),
    "newer format": (lambda m: _edit_manifest(m, lambda d: d.update(format_version=99)), ["generator.json", "upgrade synthaug"]),
    "not JSON": (lambda m: (m / "generator.json").write_text("{not json"), ["generator.json", "corrupt model manifest"]),
    "JSON list": (lambda m: (m / "generator.json").write_text("[1, 2]"), ["generator.json", "not a JSON object"]),
    "bad config value": (lambda m: _edit_manifest(m, lambda d: d["config"].update(latent_dim=-3)), ["latent_dim"]),
    "damaged schema": (lambda m: _edit_manifest(m, lambda d: d.update(schema={"columns": 3})), ["generator.json", "damaged"]),
    "huge layers": (lambda m: _edit_manifest(m, _set_hidden), ["generator.json does not match weights.pt"]),
    "corrupt weights": (lambda m: (m / "weights.pt").write_bytes(b"\x00" * 100), ["weights.pt", "corrupt"]),
    "missing weights": (lambda m: (m / "weights.pt").unlink(), ["weights.pt"]),
    "no manifest": (lambda m: (m / "generator.json").unlink(), ["not a saved synthaug model"]),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_damaged_model_folder(case, tmp_path, saved_model):
    model = tmp_path / "model"
    shutil.copytree(saved_model, model)
    edit, needles = MODEL_CASES[case]
    edit(model)
    before = snapshot(model)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))\n"  # a 100000x100000 layer would need 40 GB
        "from synthaug.cli import main\n"
        f"sys.argv = ['synthaug', 'sample', {str(model)!r}, '-n', '10', '--out', {str(tmp_path / 'o')!r}]\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert not (tmp_path / "o").exists() and snapshot(model) == before


SAMPLE_CASES = {
    "rows-per-shard zero": (["-n", "10", "--rows-per-shard", "0"], ["--rows-per-shard", "> 0"]),
    "rows-per-shard negative": (["-n", "10", "--rows-per-shard", "-4"], ["--rows-per-shard", "> 0"]),
    "zero rows": (["-n", "0"], ["-n", "> 0"]),
    "negative rows": (["-n", "-5"], ["-n", "> 0"]),
    "negative seed": (["-n", "10", "--seed", "-1"], ["--seed"]),
    "huge seed": (["-n", "10", "--seed", str(2**40)], ["--seed"]),
}


@pytest.mark.parametrize("case", SAMPLE_CASES)
def test_bad_sample_options(case, tmp_path, saved_model):
    args, needles = SAMPLE_CASES[case]
    before = snapshot(saved_model)
    assert_refused(invoke("sample", saved_model, "--out", tmp_path / "o", *args), *needles)
    assert not (tmp_path / "o").exists() and snapshot(saved_model) == before


@pytest.mark.parametrize("where", ["model itself", "inside the model", "parent of the model"])
def test_sample_out_may_not_touch_the_model(where, tmp_path, saved_model):
    model = tmp_path / "run" / "model"
    shutil.copytree(saved_model, model)
    (model.parent / "manifest.json").write_text('{"producer": "synthaug"}')
    out = {"model itself": model, "inside the model": model / "more", "parent of the model": model.parent}[where]
    before = snapshot(model.parent)
    assert_refused(invoke("sample", model, "-n", 10, "--out", out, "--overwrite"), "--out")
    assert snapshot(model.parent) == before


# -- 6. `synthaug schema --out` -------------------------------------------------------------------
def test_schema_out_is_a_folder(tmp_path):
    (tmp_path / "folder").mkdir()
    assert_refused(invoke("schema", PENGUINS, "--out", tmp_path / "folder"), "--out", "is a folder")
    assert tree(tmp_path / "folder") == {}


def test_schema_out_is_the_source(tmp_path):
    source = tmp_path / "p.csv"
    shutil.copy(PENGUINS, source)
    before = source.read_bytes()
    for flags in ([], ["--overwrite"]):
        assert_refused(invoke("schema", source, "--out", source, *flags), "--out", "p.csv")
        assert source.read_bytes() == before


def test_schema_out_exists_without_overwrite(tmp_path):
    out = tmp_path / "s.json"
    out.write_text("mine")
    assert_refused(invoke("schema", PENGUINS, "--out", out), "s.json", "exists", "--overwrite")
    assert out.read_text() == "mine"
    assert invoke("schema", PENGUINS, "--out", out, "--overwrite").exit_code == 0
    assert json.loads(out.read_text())["columns"]


def test_schema_of_missing_data(tmp_path):
    assert_refused(invoke("schema", tmp_path / "nope.csv"), "nope.csv")


# -- 7. `synthaug validate` -------------------------------------------------------------------------
@pytest.fixture
def validate_inputs(tmp_path, penguins_table):
    order = np.random.default_rng(0).permutation(penguins_table.num_rows)
    paths = {}
    for name, rows in (("train", order[:150]), ("holdout", order[150:250]), ("synthetic", order[250:])):
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(penguins_table.take(np.sort(rows)), paths[name])
    return paths


VALIDATE_CASES = {
    "out is the synthetic data": (lambda p: ["--out", p["synthetic"], "--overwrite"], ["--out", "synthetic"]),
    "unknown target": (lambda p: ["--target", "wingspan"], ["--target 'wingspan'", "columns there"]),
    "unknown gates preset": (lambda p: ["--gates", "nope"], ["--gates", "'nope'"]),
    "missing synthetic": (lambda p: ["--synthetic", p["synthetic"].with_name("nope.parquet")], ["nope.parquet", "--synthetic"]),
    "two synthetic rows": (lambda p: ["--synthetic", two_rows(p["synthetic"])], ["2 synthetic row(s)", "--gates none"]),
    "negative seed": (lambda p: ["--seed", "-1"], ["--seed"]),
    "holdout is the real data": (lambda p: ["--holdout", p["train"]], ["--holdout", "is the --real data"]),
}


def two_rows(path: Path) -> Path:
    small = path.with_name("two.parquet")
    pq.write_table(pq.read_table(path).slice(0, 2), small)
    return small


@pytest.mark.parametrize("case", VALIDATE_CASES)
def test_bad_validate_options(case, tmp_path, validate_inputs):
    p = validate_inputs
    extra, needles = VALIDATE_CASES[case]
    base = {"--real": p["train"], "--synthetic": p["synthetic"], "--holdout": p["holdout"], "--out": tmp_path / "report"}
    args = extra(p)
    for flag in list(base):
        if flag in args:
            base.pop(flag)
    inputs = snapshot(*p.values())
    result = invoke("validate", *[x for kv in base.items() for x in kv], *args)
    assert_refused(result, *needles)
    assert snapshot(*p.values()) == inputs and not (tmp_path / "report").exists()
