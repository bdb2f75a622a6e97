"""Image pipelines end to end: sklearn digits -> a tiny image VAE -> shards in each format that
real clients read -> image checks and gates -> publish; bad image input fails before training."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from synthaug.cli import app
from synthaug.pipeline.run import run_pipeline

runner = CliRunner()
TINY = {"name": "image_vae", "params": {"latent_dim": 4, "label_dim": 4, "channels": 8, "val_images": 100}}


@pytest.fixture
def digits_pipeline(tmp_path):
    def write(name="digits", **sections):
        raw = {
            "name": name,
            "seed": 0,
            "source": {"path": "sklearn:digits"},
            "generator": TINY,
            "trainer": {"max_epochs": 2, "batch_size": 128, "patience": 0, "progress_bar": False, "max_steps_per_epoch": 5},
            "gates": {"expectations": False},  # a 2-epoch model draws a few odd images; the suite is tested below
            "sample": {"n_rows": 120, "rows_per_shard": 50, "batch_size": 40},
            "output": {"dir": str(tmp_path / "out" / name)},
        }
        for key, value in sections.items():
            raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


def test_hf_parquet_shards_load_in_datasets_as_the_source(digits_pipeline, one_thread):
    datasets = pytest.importorskip("datasets")
    result = run_pipeline(digits_pipeline())
    assert result.status == "published", result.manifest["gates"]
    out = result.path
    files = sorted((out / "data").glob("train-*.parquet"))
    assert [f.name for f in files] == ["train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet"]
    ds = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["label"].names == [str(i) for i in range(10)]
    assert len(ds) == 120 and ds[0]["image"].size == (8, 8)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["producer"] == "synthaug" and [s["rows"] for s in manifest["shards"]] == [50, 50, 20]
    assert (out / "report.html").read_text().count("<img") >= 10  # a real and a synthetic grid per class


def test_same_seed_gives_byte_identical_image_shards(digits_pipeline, one_thread):
    first = run_pipeline(digits_pipeline(name="a", sample={"format": "webdataset"})).manifest
    second = run_pipeline(digits_pipeline(name="b", sample={"format": "webdataset"})).manifest
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]


def test_imagefolder_rebalanced_to_a_rare_class(digits_pipeline, tmp_path, one_thread):
    path = digits_pipeline(
        sample={"format": "imagefolder"}, augment={"balance": {"column": "label", "strategy": "ratios", "ratios": {"3": 1}}}
    )
    result = run_pipeline(path)
    assert result.status == "published", result.manifest["gates"]
    assert sorted(p.name for p in (result.path / "data").iterdir()) == ["3"]
    assert len(list((result.path / "data" / "3").glob("*.png"))) == 120


@pytest.mark.parametrize(
    "sections, needle",
    [
        ({"sample": {"conditions": {"label": "eleven"}}}, "label 'eleven'"),
        ({"sample": {"conditions": {"species": "Adelie"}}}, "condition on 'label' only"),
        ({"gates": {"quality_min": 0.5}}, "gates.quality_min applies to tables"),
        ({"sample": {"format": "parquet"}}, "sample.format=parquet is for tables"),
        ({"augment": {"balance": {"column": "colour"}}}, "augment.balance.column 'colour'"),
    ],
)
def test_bad_image_config_fails_before_training(digits_pipeline, sections, needle):
    result = runner.invoke(app, ["run", str(digits_pipeline(**sections))])
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "fit ..." not in result.stderr


def test_image_suite_passes_fresh_real_images_and_fails_noise():
    import numpy as np

    from synthaug.io.images import read_images
    from synthaug.pipeline import images
    from synthaug.validation.expectations import validate_shard

    digits = read_images("sklearn:digits")
    train, fresh = digits.take(np.arange(0, 1200)), digits.take(np.arange(1200, 1797))
    suite = images.expectation_suite(train)
    meta = images.metadata(fresh.images, fresh.labels, fresh.keys, fresh.label_names)
    assert validate_shard(meta, suite, "fresh")["success"]
    noise = np.random.default_rng(0).integers(0, 256, fresh.images.shape, dtype=np.uint8)
    bad = validate_shard(images.metadata(noise, fresh.labels, fresh.keys, fresh.label_names), suite, "noise")
    failed = {r["column"] for r in bad["results"] if not r["success"]}
    assert "pixel_mean" in failed or "pixel_std" in failed
