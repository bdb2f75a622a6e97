"""Structure rules (issue 10): discovered in the data, kept by generation, gated by validation."""

import importlib.util
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from synthaug.config.pipeline import conf_dirs, load_preset
from synthaug.errors import BadInput
from synthaug.generators.base import get_generator
from synthaug.schema import Schema, infer_schema, read_overrides
from synthaug.schema.rules import apply_rules, discover_rules, frame_of, labels, multiple_shares, rule_violations
from synthaug.training.config import TrainerConfig
from synthaug.validation.checks import compute_metrics
from synthaug.validation.gates import GatesConfig, evaluate

TINY_TRAINER = TrainerConfig(max_epochs=5, batch_size=64, patience=0, progress_bar=False)
CODES = [f"C{i:02d}" for i in range(20)]
PARENT = {code: "ABCDE"[i % 5] for i, code in enumerate(CODES)}
ALLOWED_SHAPES = {"red": {"circle", "square"}, "green": {"triangle"}, "blue": {"circle", "square", "triangle"}}


def planted_table(n: int = 600, seed: int = 0) -> pa.Table:
    """Known structure next to plain noise columns."""
    rng = np.random.default_rng(seed)
    price = np.round(rng.uniform(1, 100, n), 2)
    qty = rng.integers(1, 21, n)
    part_a, part_b = rng.integers(0, 500, n), rng.integers(0, 300, n)
    amount = np.where(rng.random(n) < 0.8, rng.integers(1, 51, n) * 100, rng.integers(100, 5001, n))  # 80% on 100s
    code = rng.choice(CODES, n)
    color = rng.choice(list(ALLOWED_SHAPES), n)
    shape = [rng.choice(sorted(ALLOWED_SHAPES[c])) for c in color]
    return pa.table(
        {
            "price": price,
            "qty": qty,
            "total": np.round(price * qty, 2),  # a product, rounded to cents
            "part_a": part_a,
            "part_b": part_b,
            "both": part_a + part_b,  # a sum
            "amount": amount,
            "discount": np.round(price * rng.uniform(0, 1, n), 2),  # discount <= price
            "code": code,
            "parent": [PARENT[c] for c in code],  # a hierarchy: code -> parent
            "color": color,
            "shape": shape,  # some color x shape pairs never occur
            "noise": rng.normal(0, 1, n),
            "count": rng.integers(0, 1000, n),
        }
    )


def noise_table(n: int, seed: int) -> pa.Table:
    """Independent columns of every kind: no rule holds here."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "a": np.round(rng.normal(50, 10, n), 2),
            "b": np.round(rng.uniform(0, 100, n), 1),
            "c": rng.integers(0, 1000, n),
            "d": rng.integers(1, 7, n),
            "e": rng.exponential(100, n),
            "f": rng.choice(list("abcde"), n),
            "g": rng.choice(list("xyz"), n),
            "h": rng.choice([f"k{i}" for i in range(30)], n),
            "i": rng.choice(["p", "q"], n, p=[0.9, 0.1]),
        }
    )


@pytest.fixture(scope="module")
def planted():
    table = planted_table()
    return table, infer_schema(table)


def by_kind(schema: Schema, kind: str) -> list:
    return [r for r in schema.rules if r.kind == kind]


def hard_violations(table: pa.Table, schema: Schema) -> dict[str, int]:
    specs = {c.name: c for c in schema.columns}
    frame = frame_of(table)
    return {label: int(rule_violations(frame, r, specs).sum()) for r, label in zip(schema.rules, labels(schema.rules)) if r.hard}


# -- discovery -----------------------------------------------------------------------------
def test_discovery_finds_planted_structure(planted):
    _, schema = planted
    derived = {r.column: r for r in by_kind(schema, "derived")}
    assert set(derived) == {"total", "both"}
    total = derived["total"]
    assert (total.op, sorted(total.inputs), total.factor) == ("product", ["price", "qty"], 1.0)
    both = derived["both"]
    assert (both.op, sorted(both.inputs), both.coefficients, both.intercept) == ("linear", ["part_a", "part_b"], None, 0.0)

    (granularity,) = by_kind(schema, "granularity")
    assert granularity.column == "amount"
    shares = {lvl.step: lvl.share for lvl in granularity.levels}
    assert shares.get(100) == pytest.approx(0.8, abs=0.05)

    inequalities = {(r.left, r.right) for r in by_kind(schema, "inequality")}
    assert ("discount", "price") in inequalities
    assert all("noise" not in pair and "count" not in pair for pair in inequalities)

    (fd,) = by_kind(schema, "functional_dependency")
    assert (fd.determinant, fd.dependent) == ("code", "parent")
    assert dict(fd.mapping) == PARENT

    (allowed,) = by_kind(schema, "allowed_combinations")
    assert allowed.columns == ("color", "shape")
    assert {tuple(p) for p in allowed.pairs} == {(c, s) for c, shapes in ALLOWED_SHAPES.items() for s in shapes}
    assert all(r.origin == "discovered" for r in schema.rules)
    assert not any({"noise", "count"} & set(r.used()) for r in schema.rules)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("n", [400, 5000])
def test_no_rules_on_independent_noise(seed, n):
    assert infer_schema(noise_table(n, seed)).rules == []


def test_discovery_skips_ids_and_constants_and_tolerates_nulls():
    rng = np.random.default_rng(5)
    n = 500
    a, b = rng.integers(0, 100, n).astype(float), rng.integers(0, 100, n).astype(float)
    total = a + b
    a[rng.random(n) < 0.1] = np.nan
    total[rng.random(n) < 0.1] = np.nan
    table = pa.table(
        {
            "row_id": np.arange(n),
            "row_id_copy": np.arange(n) + 1,  # would be "row_id + 1" if ids were searched
            "const": [7] * n,
            "a": pa.array(a, mask=np.isnan(a)),
            "b": b,
            "total": pa.array(total, mask=np.isnan(total)),
        }
    )
    schema = infer_schema(table, overrides={"row_id_copy": {"kind": "id"}})
    assert {r.label() for r in schema.rules} == {"derived: total = a + b"}


def test_discovery_of_a_bigger_table_runs_on_a_bounded_sample():
    table = pa.concat_tables([planted_table(5000, seed) for seed in range(6)])  # 30k rows: sampled
    schema = infer_schema(table)
    assert {r.label() for r in by_kind(schema, "derived")} == {"derived: total = price * qty", "derived: both = part_a + part_b"}
    assert dict(by_kind(schema, "functional_dependency")[0].mapping) == PARENT


def test_discovery_stops_at_its_time_cap_and_says_so(planted):
    table, schema = planted
    rules, notes = discover_rules(table, schema.columns, max_seconds=0.0)
    assert rules == [] and len(notes) == 1 and "stopped at its 0 s cap" in notes[0]


def test_penguins_species_island_is_discovered(penguins_table):
    schema = infer_schema(penguins_table)
    (rule,) = [r for r in by_kind(schema, "allowed_combinations") if set(r.columns) == {"species", "island"}]
    seen = {tuple(p) for p in zip(penguins_table["species"].to_pylist(), penguins_table["island"].to_pylist())}
    assert {tuple(p) for p in rule.pairs} == seen  # Gentoo only on Biscoe, Chinstrap only on Dream
    assert ("Gentoo", "Dream") not in {tuple(p) for p in rule.pairs}


# -- schema.json ---------------------------------------------------------------------------
def test_schema_json_round_trip_keeps_rules(tmp_path, planted):
    _, schema = planted
    schema.save(tmp_path / "schema.json")
    again = Schema.load(tmp_path / "schema.json")
    assert again.rules == schema.rules and again == schema
    raw = json.loads((tmp_path / "schema.json").read_text())
    assert {r["kind"] for r in raw["rules"]} == {"granularity", "derived", "inequality", "functional_dependency", "allowed_combinations"}
    del raw["rules"]  # a schema file written before rules existed still loads
    (tmp_path / "old.json").write_text(json.dumps(raw))
    assert Schema.load(tmp_path / "old.json").rules == []


def test_override_file_removes_and_adds_rules(tmp_path, planted):
    table, schema = planted
    raw = json.loads(schema.model_dump_json())
    raw["rules"] = [r for r in raw["rules"] if r["kind"] != "inequality"]  # a person deletes the inequalities ...
    raw["rules"].append({"kind": "inequality", "left": "part_b", "right": "both"})  # ... and declares one
    (tmp_path / "edited.json").write_text(json.dumps(raw))
    edited = infer_schema(table, overrides=read_overrides(tmp_path / "edited.json"))
    assert [r.label() for r in by_kind(edited, "inequality")] == ["inequality: part_b <= both"]
    assert by_kind(edited, "inequality")[0].origin == "declared"
    assert len(edited.rules) == len(schema.rules) - len(by_kind(schema, "inequality")) + 1

    # The short form: declared rules only, discovery off.
    short_form = {"rules": [{"kind": "inequality", "left": "qty", "right": "total"}], "discover_rules": False}
    (tmp_path / "short.json").write_text(json.dumps(short_form))
    short = infer_schema(table, overrides=read_overrides(tmp_path / "short.json"))
    assert [r.label() for r in short.rules] == ["inequality: qty <= total"]


def test_bad_declared_rule_is_bad_input(tmp_path, planted):
    table, _ = planted
    (tmp_path / "bad.json").write_text(json.dumps({"rules": [{"kind": "inequality", "left": "price", "right": "wingspan"}]}))
    with pytest.raises(BadInput, match=r"bad.json: rule .*inequality: price <= wingspan.*column 'wingspan' is not in the schema"):
        infer_schema(table, overrides=read_overrides(tmp_path / "bad.json"), overrides_source=str(tmp_path / "bad.json"))
    (tmp_path / "typo.json").write_text(json.dumps({"rules": [{"kind": "inequality", "left": "price", "rigth": "total"}]}))
    with pytest.raises(BadInput, match=r"typo.json: rules.0.inequality"):
        infer_schema(table, overrides=read_overrides(tmp_path / "typo.json"), overrides_source=str(tmp_path / "typo.json"))


# -- enforcement ---------------------------------------------------------------------------
def broken_rows(table: pa.Table, seed: int = 1) -> pa.Table:
    """The planted table with every rule broken in known rows."""
    rng = np.random.default_rng(seed)
    n = table.num_rows
    df = table.to_pandas()
    df["total"] = np.round(rng.uniform(1, 2000, n), 2)
    df["both"] = rng.integers(0, 800, n)
    df.loc[::2, "parent"] = "A"  # four codes in five have another parent
    df.loc[df["color"] == "green", "shape"] = "circle"  # green is only ever a triangle
    df["discount"] = np.where(np.arange(n) % 3 == 0, df["price"] + 5.0, df["discount"])
    df["amount"] = np.where(df["amount"] % 100 == 0, df["amount"] + 37, df["amount"])
    return pa.Table.from_pandas(df, schema=table.schema, preserve_index=False)


def test_apply_rules_makes_rows_comply_and_counts_repairs(planted):
    table, schema = planted
    bad = broken_rows(table)
    before = hard_violations(bad, schema)
    assert all(before[label] > 0 for label in before if "discount <= total" not in label)
    fixed, counts = apply_rules(bad, schema, 0)
    assert fixed.num_rows == bad.num_rows and fixed.schema.equals(table.schema)
    assert all(v == 0 for v in hard_violations(fixed, schema).values()), hard_violations(fixed, schema)
    for label in (
        "derived: total = price * qty",
        "derived: both = part_a + part_b",
        "inequality: discount <= price",
        "functional_dependency: code -> parent",
        "allowed_combinations: color x shape",
    ):
        assert counts[label] == before[label], (label, counts)  # each broken row repaired once, and counted
    assert counts["granularity: amount"] > 0
    shares = multiple_shares(frame_of(fixed).floats("amount"), by_kind(schema, "granularity")[0])
    assert shares[100.0] == pytest.approx(0.8, abs=0.08)
    # Untouched columns stay byte-identical; the same seed repairs the same way.
    assert fixed["noise"].equals(bad["noise"]) and fixed["code"].equals(bad["code"])
    assert apply_rules(bad, schema, 0)[0].equals(fixed)


def test_apply_rules_keeps_conditioned_columns(planted):
    table, schema = planted
    bad = broken_rows(table)
    fixed, _ = apply_rules(bad, schema, 0, fixed={"shape"})
    assert fixed["shape"].equals(bad["shape"])  # the condition's column stays; the color moved instead
    assert hard_violations(fixed, schema)["allowed_combinations: color x shape"] == 0


@pytest.fixture(scope="module")
def fitted_vae(planted, one_thread):
    table, schema = planted
    return get_generator("vae")({"latent_dim": 8, "hidden": [32]}).fit(table, schema, TINY_TRAINER, seed=0)


def test_vae_rows_keep_every_rule(planted, fitted_vae):
    _, schema = planted
    rows = pa.concat_tables(list(fitted_vae.sample_batches(3000, seed=1, batch_size=1000)))
    assert rows.num_rows == 3000
    assert hard_violations(rows, schema) == {label: 0 for label in hard_violations(rows, schema)}
    rule = by_kind(schema, "granularity")[0]
    got = multiple_shares(frame_of(rows).floats("amount"), rule)
    for level in rule.levels:
        assert got[float(level.step)] == pytest.approx(level.share, abs=0.05)
    assert fitted_vae.rule_repairs["derived: total = price * qty"] > 0  # the model alone does not get it
    again = pa.concat_tables(list(fitted_vae.sample_batches(3000, seed=1, batch_size=1000)))
    assert again.equals(rows)


def test_conditions_and_rules_together(fitted_vae, planted):
    _, schema = planted
    rows = pa.concat_tables(list(fitted_vae.sample_batches(300, seed=2, conditions={"shape": "triangle"})))
    assert set(rows["shape"].to_pylist()) == {"triangle"}
    assert set(rows["color"].to_pylist()) <= {"green", "blue"}
    assert sum(hard_violations(rows, schema).values()) == 0


def test_penguins_rows_keep_species_on_their_islands(penguins_table, one_thread):
    gen = get_generator("vae")({"latent_dim": 8, "hidden": [32]}).fit(penguins_table, trainer=TINY_TRAINER, seed=0)
    rows = pa.concat_tables(list(gen.sample_batches(2000, seed=0)))
    pairs = set(zip(rows["species"].to_pylist(), rows["island"].to_pylist()))
    seen = set(zip(penguins_table["species"].to_pylist(), penguins_table["island"].to_pylist()))
    assert pairs <= seen
    assert pc.sum(pc.equal(rows["species"], "Gentoo")).as_py() > 0


@pytest.mark.skipif(importlib.util.find_spec("sdv") is None, reason="the sdv extra is not installed")
def test_sdv_output_keeps_rules(planted):
    table, schema = planted
    gen = get_generator("sdv_gaussian_copula")().fit(table, schema, TINY_TRAINER, seed=0)
    rows = pa.concat_tables(list(gen.sample_batches(1000, seed=0)))
    assert sum(hard_violations(rows, schema).values()) == 0
    assert gen.rule_repairs["derived: total = price * qty"] > 0


# -- validity metrics and gates ------------------------------------------------------------
VALIDITY_GATES = GatesConfig(expectations=False, novel_combination_excess_max=0.01, rule_violation_max=0.01)


def split(table: pa.Table, seed: int = 0):
    order = np.random.default_rng(seed).permutation(table.num_rows)
    half = table.num_rows // 2
    return table.take(np.sort(order[:half])).to_pandas(), table.take(np.sort(order[half:])).to_pandas()


def verdicts(train, holdout, synthetic, schema) -> tuple[dict, dict[str, bool]]:
    metrics = compute_metrics(train, holdout, synthetic, schema, VALIDITY_GATES)
    return metrics["validity"], {g.name: g.passed for g in evaluate(VALIDITY_GATES, metrics)}


def test_validity_gates_fail_on_shuffled_species_and_pass_on_real_rows(penguins_table):
    schema = infer_schema(penguins_table)
    train, holdout = split(penguins_table)
    metrics, passed = verdicts(train, holdout, train, schema)
    assert passed == {"novel_combination_excess_max": True, "rule_violation_max": True}
    assert metrics["novel_combination_rate"] == 0 and metrics["rule_violation"] == 0

    shuffled = train.copy()
    shuffled["species"] = shuffled["species"].sample(frac=1.0, random_state=0).to_numpy()
    metrics, passed = verdicts(train, holdout, shuffled, schema)
    assert passed == {"novel_combination_excess_max": False, "rule_violation_max": False}
    assert metrics["novel_combination_excess"] > 0.1
    assert metrics["rule_violations"]["allowed_combinations: species x island"] > 0.1
    assert metrics["holdout_novel_combination_rate"] is not None


def test_rule_violation_gate_fails_on_broken_numbers(planted):
    table, schema = planted
    train, holdout = split(table)
    _, passed = verdicts(train, holdout, train, schema)
    assert passed["rule_violation_max"]
    metrics, passed = verdicts(train, holdout, broken_rows(table).to_pandas(), schema)
    assert not passed["rule_violation_max"]
    assert metrics["rule_violations"]["derived: total = price * qty"] > 0.9
    assert metrics["granularity_tv"]["amount"] > 0.5


def test_validity_without_holdout_reports_the_raw_rate(penguins_table):
    schema = infer_schema(penguins_table)
    train = penguins_table.to_pandas()
    metrics, _ = verdicts(train, None, train, schema)
    assert metrics["holdout_novel_combination_rate"] is None and "no holdout" in metrics["note"]


def test_presets_carry_the_validity_gates():
    for name in ("default", "strict_privacy"):
        gates = GatesConfig(**load_preset("gates", name, conf_dirs(), "gates"))
        assert gates.novel_combination_excess_max == 0.01 and gates.rule_violation_max == 0.01
