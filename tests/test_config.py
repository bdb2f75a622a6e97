import pytest
import yaml

from synthaug.config.pipeline import load_config
from synthaug.errors import BadInput


def write(tmp_path, raw) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


BASE = {"name": "t", "source": {"path": "x.csv"}, "sample": {"n_rows": 10}, "output": {"dir": "out/t"}}


def test_presets_merge_and_overrides_apply(tmp_path):
    raw = {**BASE, "generator": "vae_small", "trainer": {"preset": "fast", "max_epochs": 7}}
    config = load_config(write(tmp_path, raw), ["trainer.patience=3", "sample.n_rows=50", "generator.params.lr=0.01"])
    assert config.generator.name == "vae"
    # Params are resolved to the family's typed config: the preset, the override, then the defaults.
    assert {k: config.generator.params[k] for k in ("latent_dim", "hidden", "lr")} == {"latent_dim": 8, "hidden": [32], "lr": 0.01}
    assert config.generator.params["prior"] == "mixture"
    assert (config.trainer.max_epochs, config.trainer.patience, config.trainer.batch_size) == (7, 3, 256)
    assert config.sample.n_rows == 50


def test_override_can_switch_preset(tmp_path):
    config = load_config(write(tmp_path, {**BASE, "trainer": "fast"}), ["trainer=tiny"])
    assert (config.trainer.max_epochs, config.trainer.batch_size) == (15, 64)


def test_config_hash_ignores_output_dir(tmp_path):
    a = load_config(write(tmp_path, BASE))
    b = load_config(write(tmp_path, {**BASE, "output": {"dir": "elsewhere"}}))
    c = load_config(write(tmp_path, {**BASE, "seed": 1}))
    assert a.config_hash() == b.config_hash() != c.config_hash()


@pytest.mark.parametrize(
    "raw, overrides, message",
    [
        ({**BASE, "trainer": {"max_epoch": 5}}, [], r"unknown key 'trainer.max_epoch'; allowed keys there: max_epochs"),
        ({**BASE, "colour": 1}, [], r"unknown key 'colour'"),
        (BASE, ["trainer.max_epochs=many"], r"key 'trainer.max_epochs': .*integer.*'many'"),
        ({**BASE, "generator": {"name": "diffusion"}}, [], r"unknown generator 'diffusion'; available: .*vae"),
        ({**BASE, "generator": {"name": "vae", "params": {"latnt": 3}}}, [], r"unknown key 'generator.params.latnt'"),
        ({**BASE, "sample": {"n_rows": 0}}, [], r"key 'sample.n_rows': .*greater than 0"),
        ({**BASE, "sample": {"n_rows": -5}}, [], r"key 'sample.n_rows'"),
        ({**BASE, "trainer": "turbo"}, [], r"unknown trainer preset 'turbo'; presets in conf/trainers: .*fast"),
        ({k: v for k, v in BASE.items() if k != "output"}, [], r"missing key 'output'"),
        (BASE, ["nonsense"], r"override 'nonsense': write overrides as key=value"),
    ],
)
def test_bad_config_names_the_key(tmp_path, raw, overrides, message):
    with pytest.raises(BadInput, match=message) as err:
        load_config(write(tmp_path, raw), overrides)
    assert "p.yaml" in str(err.value) or "override" in str(err.value)
    assert "\n" not in str(err.value)


def test_invalid_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(BadInput, match="p.yaml: invalid YAML at line"):
        load_config(path)
