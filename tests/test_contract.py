"""The generator contract (synthaug.testing) over every registered generator, and a real entry-point plugin."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tomllib
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.errors import BadInput
from synthaug.generators.base import available, get_generator
from synthaug.testing import check_generator, checks_for, generator_checks

PLUGIN = Path(__file__).parent / "plugin_fixture"
SDV_MISSING = importlib.util.find_spec("sdv") is None
# Smaller networks than the defaults where a default would make the suite slow on 2 cores.
# Keys a family's Config lacks are dropped (see _small), so a renamed field cannot break collection.
SMALL = {
    "gan": {"embedding_dim": 32, "generator_dim": [64], "discriminator_dim": [64]},
    "rbm": {"n_hidden": 32, "burn_in": 20, "thinning": 2, "n_chains": 50},
    "sdv_ctgan": {"embedding_dim": 32, "generator_dim": [64], "discriminator_dim": [64]},
    "sdv_tvae": {"embedding_dim": 16, "compress_dims": [32], "decompress_dims": [32]},
    "image_gan": {"latent_dim": 16, "label_dim": 8, "generator_channels": 8, "discriminator_channels": 8},
    "image_vae": {"latent_dim": 4, "label_dim": 4, "channels": 8, "prior_components": 2},
    "image_rbm": {"n_hidden": 32, "burn_in": 10, "thinning": 2, "n_chains": 20, "val_images": 50},
}


def _importable(name: str) -> str | None:
    """None if the registered class imports, else why not."""
    try:
        get_generator(name)
    except BadInput as exc:
        return str(exc)
    return None


def _small(name: str) -> dict | None:
    if name not in SMALL:
        return None
    fields = get_generator(name).Config.model_fields
    return {k: v for k, v in SMALL[name].items() if k in fields}


def _contract_params():
    for name in available():
        marks = []
        if name.startswith("sdv_") and SDV_MISSING:
            marks = [pytest.mark.skip(reason="SDV baselines need the optional extra: pip install 'synthaug[sdv]'")]
        elif (why := _importable(name)) is not None:
            marks = [pytest.mark.skip(reason=f"not importable (test_registered_generators_import fails): {why}")]
        config = _small(name) if not marks else None
        for check_name, check in generator_checks(name, config=config):
            yield pytest.param(check, id=f"{name}-{check_name}", marks=marks)


@pytest.mark.parametrize("check", list(_contract_params()))
def test_contract(check):
    check()


@pytest.mark.parametrize("name", list(available()))
def test_registered_generators_import(name):
    # Setup / Run
    why = _importable(name)

    # Assert
    assert why is None, why


# -- a third-party plugin through a real entry point ------------------------------------
@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """Make tests/plugin_fixture visible as an installed distribution, without pip.

    A `toy_synth-0.1.dist-info` folder (METADATA + the entry points of the fixture's
    pyproject.toml) and the module go into a temporary folder on sys.path; importlib.metadata
    finds distributions by scanning sys.path, so `available()` sees the entry point.
    """
    site = tmp_path / "site"
    dist = site / "toy_synth-0.1.dist-info"
    dist.mkdir(parents=True)
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, eps in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in eps.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    shutil.copy(PLUGIN / "toy_synth.py", site / "toy_synth.py")
    monkeypatch.syspath_prepend(str(site))  # also invalidates importlib's path caches
    yield site
    sys.modules.pop("toy_synth", None)


def test_plugin_entry_point_is_registered(toy_plugin):
    # Run
    registry = available()

    # Assert
    assert registry["toy"] == "toy_synth:ToyGenerator"
    assert get_generator("toy").__name__ == "ToyGenerator"


def test_plugin_listed_by_cli(toy_plugin):
    # Run
    result = CliRunner().invoke(app, ["generators"])

    # Assert
    assert result.exit_code == 0, result.output
    assert "toy  [tabular]  toy_synth:ToyGenerator" in result.output
    assert "smoothing = 1.0" in result.output


def test_plugin_passes_every_check(toy_plugin):
    # Run
    passed = check_generator("toy")

    # Assert
    assert passed == list(checks_for(get_generator("toy")))


def test_checks_catch_a_generator_that_ignores_the_seed(toy_plugin):
    # Setup
    from toy_synth import BrokenToy

    # Run
    with pytest.raises(AssertionError) as failed:
        check_generator(BrokenToy)

    # Assert
    message = str(failed.value)
    assert "[seeded_sampling]" in message and "seed=7" in message
    assert "[global_rng_untouched]" in message
    assert "[samples_match_schema]" not in message  # only what is broken is reported


def test_checks_catch_samples_with_the_wrong_arrow_type(toy_plugin):
    # Setup: a plugin that writes its integer column as float64
    from toy_synth import ToyGenerator

    class FloatCounts(ToyGenerator):
        name = "toy_float_counts"

        def sample_batches(self, *args, **kwargs):
            for t in super().sample_batches(*args, **kwargs):
                i = t.schema.get_field_index("count")
                yield t.set_column(i, pa.field("count", pa.float64()), t["count"].cast(pa.float64()))

    checks = dict(generator_checks(FloatCounts))
    checks["fit_returns_self"]()

    # Run / Assert
    with pytest.raises(AssertionError, match="column .count. is double, want int64"):
        checks["samples_match_schema"]()


def test_checks_catch_a_sample_that_does_not_refuse_before_fit(toy_plugin):
    # Setup: a plugin whose unfitted sample() quietly yields nothing
    from toy_synth import ToyGenerator

    class Silent(ToyGenerator):
        name = "toy_silent"

        def sample_batches(self, *args, **kwargs):
            if self.module is None:
                yield pa.table({})
                return
            yield from super().sample_batches(*args, **kwargs)

    checks = dict(generator_checks(Silent))

    # Run / Assert
    with pytest.raises(AssertionError, match="must raise RuntimeError"):
        checks["sample_before_fit"]()


def test_declared_expected_failures(toy_plugin):
    # Setup: the seed-ignoring toy, with its known failures declared
    from toy_synth import BrokenToy

    reason = "draws its noise from torch's global RNG"
    expected = {name: reason for name in ("seeded_sampling", "seeded_fit", "global_rng_untouched", "save_load")}

    # Run: the declared failures pass as expected; a check declared but passing is reported
    passed = check_generator(BrokenToy, expected_failures=expected)
    with pytest.raises(AssertionError, match="expected to fail .* but passed"):
        check_generator(BrokenToy, expected_failures={**expected, "config": "not really broken"})

    # Assert
    assert set(expected) <= set(passed)
