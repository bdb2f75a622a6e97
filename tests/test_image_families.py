"""Image families (image_gan, image_vae, image_rbm) on scikit-learn's 8x8 digits: quality against a
trivial baseline, conditioning, the epoch score, best checkpoints, save/load safety, bad input.

Each family is fitted once (module fixture, small nets, ~20 epochs, ~10-20 s on one thread) and
shared by the tests that need a fitted model; the bad-input tests fail before any training.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthaug.errors import BadInput
from synthaug.generators.base import get_generator
from synthaug.generators.image.fidelity import ImageFidelity
from synthaug.generators.image.gan import ImageGANModule
from synthaug.generators.image.rbm import ImageRBMModule
from synthaug.generators.image.vae import ImageVAEModule
from synthaug.io.image_sources import ImageSet
from synthaug.io.images import read_images
from synthaug.schema.image import infer_image_schema
from synthaug.training.config import TrainerConfig
from synthaug.transforms.image import ImageTransform
from synthaug.validation.image import fit_feature_net, frechet_distance

# family -> (LightningModule class, small config, epochs, config field that sizes a layer, its largest allowed value)
FAMILIES = {
    "image_gan": (
        ImageGANModule,
        {"latent_dim": 32, "generator_channels": 16, "discriminator_channels": 16, "val_images": 200},
        25,
        "generator_channels",
        256,
    ),
    "image_vae": (ImageVAEModule, {"latent_dim": 8, "channels": 16, "lr": 2e-3, "val_images": 200}, 20, "channels", 256),
    "image_rbm": (ImageRBMModule, {"n_hidden": 128, "lr": 1e-2, "burn_in": 50, "val_images": 200}, 25, "n_hidden", 65_536),
}


@pytest.fixture(scope="module")
def digits() -> tuple[ImageSet, ImageSet]:
    """All 1,797 digits, split 70 / 30 (stratified, seeded) into training images and a holdout."""
    from sklearn.model_selection import train_test_split

    data = read_images("sklearn:digits")
    train, holdout = train_test_split(np.arange(len(data)), test_size=0.3, random_state=0, stratify=data.labels)
    return data.take(train), data.take(holdout)


@pytest.fixture(scope="module")
def judge(digits):
    """A classifier trained on real training digits (> 0.95 holdout accuracy): features and labels."""
    train, _ = digits
    return fit_feature_net(train.images, train.labels, 10, seed=0, max_epochs=5)


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request, digits, tmp_path_factory, one_thread):
    """(name, fitted generator, checkpoint folder): one fit per family, epochs picked on validation images."""
    name = request.param
    _, config, epochs, _, _ = FAMILIES[name]
    train, _ = digits
    checkpoints = tmp_path_factory.mktemp(name) / "checkpoints"
    trainer = TrainerConfig(max_epochs=epochs, batch_size=64, patience=0, progress_bar=False, checkpoint_dir=str(checkpoints))
    return name, get_generator(name)(config).fit(train, trainer=trainer, seed=0), checkpoints


def per_class_gaussian(train: ImageSet, labels: np.ndarray, seed: int) -> np.ndarray:
    """The trivial baseline: each class's mean image plus Gaussian noise with its per-pixel std."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(labels), *train.images.shape[1:]), dtype=np.uint8)
    for c in np.unique(labels):
        real = train.images[train.labels == c].astype(np.float64)
        noisy = real.mean(0) + rng.normal(size=(int((labels == c).sum()), *real.shape[1:])) * real.std(0)
        out[labels == c] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return out


# -- quality -----------------------------------------------------------------------------------


def test_family_beats_a_per_class_gaussian_baseline(fitted, digits, judge):
    # Setup
    name, gen, _ = fitted
    train, holdout = digits
    real = judge.features(holdout.images)

    # Run
    batch = next(gen.sample_batches(500, seed=1, batch_size=500))
    baseline = per_class_gaussian(train, batch.labels, seed=1)

    # Assert: closer to unseen real digits than the baseline, in the judge's features
    fd_model = frechet_distance(real, judge.features(batch.images))
    fd_baseline = frechet_distance(real, judge.features(baseline))
    assert fd_model < fd_baseline, f"{name}: Fréchet distance {fd_model:.3f} is not below the baseline's {fd_baseline:.3f}"
    assert gen.fit_info["monitor"] == "val_loss" and gen.fit_info["best_epoch"] is not None  # picked on the image score


def test_conditioned_samples_show_the_requested_digit(fitted, judge):
    # Setup
    name, gen, _ = fitted

    # Run: by index for even digits, by label name for odd ones
    agree = []
    for digit in range(10):
        batch = next(gen.sample_batches(30, seed=2, conditions={"label": digit if digit % 2 == 0 else str(digit)}))
        assert (batch.labels == digit).all()
        agree.append(judge.accuracy(batch.images, batch.labels))

    # Assert
    assert np.mean(agree) >= 0.6, f"{name}: the judge agrees with the requested digit for {np.mean(agree):.2f} ({np.round(agree, 2)})"


def test_epoch_score_punishes_images_of_the_wrong_class(digits, judge):
    # Setup: holdout digits scored as if generated for their own labels, then for shuffled labels
    _, holdout = digits
    transform = ImageTransform((8, 8), "L")
    half = len(holdout) // 2
    score = ImageFidelity(judge, transform, holdout.images[:half], holdout.labels[:half], 10, n_generated=half)
    other, other_labels = holdout.images[half:], holdout.labels[half:]
    pools = {c: list(other[other_labels == c]) for c in range(10)}
    matched = np.stack([pools[c][i % len(pools[c])] for i, c in enumerate(score.labels)])  # other digits, wanted labels
    shuffled = matched[np.random.default_rng(0).permutation(half)]

    # Run
    good = score.score(torch.from_numpy(transform.encode(matched)))
    bad = score.score(torch.from_numpy(transform.encode(shuffled)))

    # Assert: same images, same plain Fréchet distance, but the wrong labels cost
    assert good["label_accuracy"] > 0.9 and bad["label_accuracy"] < 0.3
    assert bad["frechet_distance"] == pytest.approx(good["frechet_distance"])
    assert bad["fidelity_gap"] > 2 * good["fidelity_gap"]


# -- checkpoints and saved models ----------------------------------------------------------------


def test_best_checkpoint_reloads_as_the_module(fitted):
    # Setup
    name, gen, checkpoints = fitted
    module_cls = FAMILIES[name][0]

    # Run
    module = module_cls.load_from_checkpoint(checkpoints / "best.ckpt", map_location="cpu").eval()

    # Assert: the best epoch's weights, which fit restored (the VAE's prior is fitted after training)
    fitted_state = gen.module.state_dict()
    for key, value in module.state_dict().items():
        if not key.startswith("prior_"):
            assert torch.equal(value, fitted_state[key]), f"{name}: checkpoint tensor '{key}' differs from the fitted model's"
    images = module.generate(torch.arange(10), torch.Generator().manual_seed(0))
    assert images.shape == (10, 1, 8, 8)


def test_tampered_manifest_is_refused_before_allocating(fitted, tmp_path, monkeypatch):
    # Setup: a saved model whose generator.json asks for the widest layer its config allows
    name, gen, _ = fitted
    cls = type(gen)
    field, huge = FAMILIES[name][3], FAMILIES[name][4]
    gen.save(tmp_path / "model")
    manifest_file = tmp_path / "model" / "generator.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["config"][field] = huge
    manifest_file.write_text(json.dumps(manifest))
    built_on = []
    real_build = cls._build

    def spy(self):
        module = real_build(self)
        built_on.append(next(module.parameters()).device.type)
        return module

    monkeypatch.setattr(cls, "_build", spy)

    # Run / Assert
    with pytest.raises(BadInput, match="does not match weights.pt"):
        cls.load(tmp_path / "model")
    assert built_on == ["meta"]  # compared on the meta device, never built for real


def test_tampered_image_size_is_refused_before_building(fitted, tmp_path, monkeypatch):
    # Setup: generator.json claims 4096x4096 images
    name, gen, _ = fitted
    cls = type(gen)
    gen.save(tmp_path / "model")
    manifest_file = tmp_path / "model" / "generator.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["schema"]["height"] = manifest["schema"]["width"] = 4096
    manifest["transform"]["size"] = [4096, 4096]
    manifest_file.write_text(json.dumps(manifest))
    monkeypatch.setattr(cls, "_build", lambda self: pytest.fail("built a module for a refused size"))

    # Run / Assert
    with pytest.raises(BadInput, match="4096x4096"):
        cls.load(tmp_path / "model")


@pytest.mark.parametrize("damage", [b"not a torch file", None])
def test_corrupt_weights_are_refused(fitted, tmp_path, damage):
    # Setup: garbage bytes, or the real file cut in half
    name, gen, _ = fitted
    gen.save(tmp_path / "model")
    weights = tmp_path / "model" / "weights.pt"
    weights.write_bytes(damage if damage is not None else weights.read_bytes()[: weights.stat().st_size // 2])

    # Run / Assert
    with pytest.raises(BadInput, match="weights.pt: weights cannot be read"):
        type(gen).load(tmp_path / "model")


def test_unknown_condition_label_names_it_and_lists_the_labels(fitted):
    # Setup
    name, gen, _ = fitted

    # Run / Assert
    with pytest.raises(BadInput, match=r"label 'seven' is not one of this model's labels; labels are: 0, 1, 2"):
        gen.sample_batches(5, seed=0, conditions={"label": "seven"})
    with pytest.raises(BadInput, match="label 10 is not one of"):
        gen.sample_mixture(5, shares={"1": 1, 10: 1}, seed=0)


# -- bad input (refused before any training) ---------------------------------------------------


def image_set(n: int, side: int, mode: str = "L") -> ImageSet:
    """`n` random images of side x side, labels cycling over three classes."""
    images = np.random.default_rng(0).integers(0, 256, size=(n, side, side, 1 if mode == "L" else 3), dtype=np.uint8)
    labels = np.arange(n) % 3
    schema = infer_image_schema(images, labels, ["a", "b", "c"], source_format="imagefolder")
    return ImageSet(images, labels, ["a", "b", "c"], [f"k{i}" for i in range(n)], schema)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_too_few_images_are_refused(name):
    with pytest.raises(BadInput, match=f"training data has 9 images; {name} needs at least 10"):
        get_generator(name)().fit(image_set(9, 8), seed=0)


@pytest.mark.parametrize(
    "name, side, mode, message",
    [
        ("image_gan", 9, "L", "images are 9x9; it takes sides up to 64 that halve"),
        ("image_vae", 9, "L", "images are 9x9; it takes sides up to 64 that halve"),
        ("image_gan", 72, "L", "images are 72x72"),
        ("image_rbm", 72, "L", "72x72x1 = 5184 pixel values; a dense RBM takes at most 4096"),
        ("image_rbm", 40, "RGB", "40x40x3 = 4800 pixel values"),
        ("image_rbm", 6, "L", "images are 6x6; every family needs at least 8x8"),
    ],
)
def test_unsupported_sizes_are_refused(name, side, mode, message):
    with pytest.raises(BadInput, match=message):
        get_generator(name)().fit(image_set(12, side, mode), seed=0)


def test_arrays_without_a_schema_are_refused():
    data = image_set(12, 8)
    with pytest.raises(BadInput, match="images given as arrays need schema=ImageSchema"):
        get_generator("image_vae")().fit((data.images, data.labels), seed=0)
    with pytest.raises(BadInput, match=r"labels must be class indices in \[0, 3\)"):
        get_generator("image_vae")().fit((data.images, data.labels + 5), data.schema, seed=0)


# -- the contract kit catches a broken image family --------------------------------------------


def test_image_checks_catch_a_family_that_ignores_conditions(one_thread):
    # Setup: a VAE that drops the condition and samples every label
    from synthaug.generators.image.vae import ImageVAE
    from synthaug.testing import generator_checks

    class Unconditioned(ImageVAE):
        name = "image_vae_unconditioned"

        def _condition_label(self, conditions):
            super()._condition_label(conditions)  # still refuses bad ones
            return None

    checks = dict(generator_checks(Unconditioned, config={"latent_dim": 4, "label_dim": 4, "channels": 8}))

    # Run / Assert
    checks["bad_conditions"]()
    with pytest.raises(AssertionError, match=r"conditions=\{'label': \d\} gave 50 images with labels \[0, 1, 2"):
        checks["conditions"]()


@pytest.mark.parametrize(
    "name, config",
    [
        ("image_gan", {"latent_dim": 8, "generator_channels": 8, "discriminator_channels": 8, "val_images": 40}),
        ("image_vae", {"latent_dim": 4, "channels": 8, "val_images": 40}),
        ("image_rbm", {"n_hidden": 16, "burn_in": 5, "thinning": 1, "n_chains": 20, "val_images": 40}),
    ],
)
def test_two_process_ddp_fit(name, config):
    # Setup: two CPU processes (gloo), the scoring net and chains replicated on each rank
    from synthaug.testing import tiny_images

    trainer = TrainerConfig(
        max_epochs=2,
        batch_size=32,
        patience=0,
        val_fraction=0.2,
        progress_bar=False,
        devices=2,
        strategy="ddp_fork",
        min_steps_per_epoch=2,
        max_steps_per_epoch=2,
    )
    gen = get_generator(name)(config)

    # Run
    gen.fit(tiny_images(), trainer=trainer, seed=0)

    # Assert: the main process holds trained weights and samples the schema's images
    initial = gen._build_seeded(0).state_dict()  # the weights training started from
    moved = [k for k, a in gen.module.state_dict().items() if a.is_floating_point() and k != "b" and not torch.equal(a, initial[k])]
    assert moved, "the main process did not receive the trained weights"
    batch = next(gen.sample_batches(20, seed=1, conditions={"label": 3}))
    assert batch.images.shape == (20, 8, 8, 1) and (batch.labels == 3).all()
