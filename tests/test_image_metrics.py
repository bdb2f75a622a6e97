"""Image metrics on scikit-learn's 8x8 digits: feature net, Fréchet distance, PRDC, TSTR, memorisation, k-NN."""

import json
import tracemalloc

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

from synthaug.errors import BadInput
from synthaug.validation import privacy as tabular_privacy
from synthaug.validation.image import features as features_module
from synthaug.validation.image import fit_feature_net, frechet_distance, image_metrics, image_privacy, prdc, tstr
from synthaug.validation.image.knn import ball_counts, block_slices, kth_neighbour_distance

EPOCHS = 10  # ~1 s on one core; enough for > 0.95 holdout accuracy on digits


@pytest.fixture(scope="module")
def digits():
    """Digits as uint8 (N, 8, 8, 1), split in stratified halves: (train, y_train, holdout, y_holdout)."""
    data = load_digits()
    images = np.round(data.images * 255 / 16).astype(np.uint8)[..., None]
    y = data.target
    x_tr, x_ho, y_tr, y_ho = train_test_split(images, y, test_size=0.5, random_state=0, stratify=y)
    return x_tr, y_tr, x_ho, y_ho


@pytest.fixture(scope="module")
def net(digits):
    x_tr, y_tr, _, _ = digits
    return fit_feature_net(x_tr, y_tr, 10, seed=0, max_epochs=EPOCHS)


@pytest.fixture(scope="module")
def features(digits, net):
    x_tr, _, x_ho, _ = digits
    return net.features(x_tr), net.features(x_ho)


def uniform_noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# --- feature net -------------------------------------------------------------------------------


def test_feature_net_classifies_unseen_digits(digits, net):
    _, _, x_ho, y_ho = digits
    assert net.accuracy(x_ho, y_ho) > 0.9
    assert net.validation_accuracy > 0.9  # selected on its own split of the training images


def test_feature_net_is_seeded_without_touching_global_rng(digits):
    # Setup
    x_tr, y_tr, x_ho, _ = digits
    before = torch.random.get_rng_state()
    # Run
    a = fit_feature_net(x_tr[:300], y_tr[:300], 10, seed=3, max_epochs=2).features(x_ho[:50])
    b = fit_feature_net(x_tr[:300], y_tr[:300], 10, seed=3, max_epochs=2).features(x_ho[:50])
    c = fit_feature_net(x_tr[:300], y_tr[:300], 10, seed=4, max_epochs=2).features(x_ho[:50])
    # Assert
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_feature_net_keeps_its_best_validation_epoch(digits):
    # Setup: shuffled labels, so the validation loss bottoms out early and then climbs
    x_tr, y_tr, _, _ = digits
    x, y = x_tr[:400], np.random.default_rng(0).permutation(y_tr[:400])
    # Run
    fitted = fit_feature_net(x, y, 10, seed=0, max_epochs=30, patience=3)
    # Assert: stopped early, picked the lowest validation loss, and holds that epoch's weights
    losses = [h["val_loss"] for h in fitted.history]
    assert len(losses) < 30 and fitted.best_epoch == int(np.argmin(losses)) < len(losses) - 1
    _, val = features_module._split(y, fitted.recipe["val_fraction"], 0)
    with torch.no_grad():
        logits = fitted.module(torch.as_tensor(x[val]))
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y[val]))
    assert float(loss) == pytest.approx(min(losses), rel=1e-5)


@pytest.mark.parametrize("shape", [(40, 8, 8, 1), (40, 12, 20, 3), (12, 64, 64, 3)])
def test_feature_net_takes_any_size_and_l_or_rgb(shape):
    images = uniform_noise(shape)
    labels = np.arange(shape[0]) % 3
    fitted = fit_feature_net(images, labels, 3, seed=0, max_epochs=1)
    assert fitted.features(images).shape == (shape[0], fitted.feature_dim)
    assert fitted.predict(images).shape == (shape[0],)
    assert fitted.features(images[:0]).shape == (0, fitted.feature_dim)


@pytest.mark.parametrize(
    "images",
    [np.zeros((4, 8, 8, 1), np.float32), np.zeros((4, 8, 8), np.uint8), np.zeros((4, 8, 8, 2), np.uint8), np.zeros((4, 7, 9, 1), np.uint8)],
)
def test_feature_net_rejects_bad_images_clearly(images):
    with pytest.raises(BadInput, match=r"\(N, H, W, C\)|C in \{1, 3\}"):
        fit_feature_net(images, np.zeros(4, np.int64), 2, seed=0)


# --- Fréchet distance --------------------------------------------------------------------------


def test_frechet_distance_ranks_real_above_noise_and_class_means(digits, net, features):
    # Setup: the training features in two halves; noise; every image replaced by its class mean
    x_tr, y_tr, _, _ = digits
    f_tr, _ = features
    means = np.stack([x_tr[y_tr == c].mean(axis=0) for c in range(10)])
    f_means = net.features(np.round(means[y_tr]).astype(np.uint8))
    f_noise = net.features(uniform_noise(x_tr.shape))
    # Run
    real_real = frechet_distance(f_tr[::2], f_tr[1::2])
    # Assert
    assert real_real * 5 < frechet_distance(f_tr, f_means)
    assert real_real * 20 < frechet_distance(f_tr, f_noise)


def test_frechet_distance_is_zero_for_identical_sets_symmetric_and_exact_on_shifts(features):
    f_tr, f_ho = features
    scale = np.trace(np.cov(f_tr, rowvar=False))
    assert frechet_distance(f_tr, f_tr) <= 1e-8 * scale
    assert frechet_distance(f_tr, f_ho) == pytest.approx(frechet_distance(f_ho, f_tr), rel=1e-6)
    # A pure shift by c in every dimension leaves the covariance: d^2 = |c|^2 exactly.
    assert frechet_distance(f_tr, f_tr + 0.5) == pytest.approx(0.25 * f_tr.shape[1], rel=1e-6)


# --- precision / recall / density / coverage ---------------------------------------------------


def brute_prdc(real, fake, k):
    """Naeem et al. (2020), straight from full distance matrices."""
    rr, ff, fr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
    real_r = np.sort(rr, axis=1)[:, k]  # column 0 is the point itself
    fake_r = np.sort(ff, axis=1)[:, k]
    inside = fr <= real_r[None, :]
    return {
        "precision": inside.any(axis=1).mean(),
        "recall": (fr <= fake_r[:, None]).any(axis=0).mean(),
        "density": inside.sum() / (k * len(fake)),
        "coverage": (fr.min(axis=0) <= real_r).mean(),
    }


def test_prdc_matches_brute_force_with_tiny_blocks(monkeypatch):
    # Setup: blocks of 3 rows force many passes; a duplicated point sits on both sides
    monkeypatch.setattr(tabular_privacy, "_BLOCK", 100)
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 4)), rng.normal(0.5, 1.2, size=(45, 4))
    fake[7] = real[11]
    # Run
    got = prdc(real, fake, k=5)
    # Assert
    for name, value in brute_prdc(real, fake, 5).items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_prdc_identical_noise_and_dropped_modes(digits, net, features):
    # Setup
    x_tr, _, _, y_ho = digits
    f_tr, f_ho = features
    f_noise = net.features(uniform_noise(x_tr.shape))
    # Run
    same = prdc(f_tr, f_tr)
    noise = prdc(f_tr, f_noise)
    full, dropped = prdc(f_tr, f_ho), prdc(f_tr, f_ho[y_ho < 5])
    # Assert
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert noise["precision"] < 0.1
    assert dropped["recall"] < full["recall"] - 0.3
    assert dropped["coverage"] < full["coverage"] - 0.3


# --- TSTR --------------------------------------------------------------------------------------


def test_tstr_on_real_digits_is_close_to_train_on_real(digits, net):
    # Setup: half of the holdout plays "synthetic", the other half is the test set
    _, _, x_ho, y_ho = digits
    # Run
    result = tstr(net, x_ho[::2], y_ho[::2], x_ho[1::2], y_ho[1::2], seed=0)
    # Assert
    assert result["real_accuracy"] > 0.9
    assert abs(result["gap"]) < 0.05
    assert result["gap"] == pytest.approx(result["real_accuracy"] - result["synthetic_accuracy"])


def test_tstr_on_shuffled_labels_is_near_chance(digits, net):
    _, _, x_ho, y_ho = digits
    shuffled = np.random.default_rng(0).permutation(y_ho[::2])
    result = tstr(net, x_ho[::2], shuffled, x_ho[1::2], y_ho[1::2], seed=0)
    assert result["synthetic_accuracy"] < 0.25  # chance is 0.1
    assert result["gap"] > 0.65


# --- privacy -----------------------------------------------------------------------------------


def test_copies_of_training_images_are_flagged(digits, net):
    # Setup
    x_tr, _, x_ho, _ = digits
    synth = x_tr[::-1].copy()
    # Run
    result = image_privacy(net, x_tr, synth, x_ho, seed=0)
    # Assert
    assert result["dcr_share_pixel"] > 0.99 and result["dcr_share_feature"] > 0.99
    assert result["exact_duplicate_excess"] > 0.99
    assert result["near_duplicate_excess"] > 0.3
    pair = result["closest_pairs"][0]
    assert len(result["closest_pairs"]) == 8 and pair["pixel_distance"] == 0.0
    np.testing.assert_array_equal(synth[pair["synthetic_index"]], x_tr[pair["train_index"]])


def test_unseen_real_images_are_not_flagged(digits, net):
    # Setup: the holdout itself repeats 45 training images, so its own duplicate rate is 5%
    x_tr, _, x_ho, _ = digits
    holdout = x_ho.copy()
    holdout[:45] = x_tr[:45]
    # Run
    result = image_privacy(net, x_tr, holdout.copy(), holdout, seed=0)
    # Assert
    assert result["dcr_share_pixel"] <= 0.55 and result["dcr_share_feature"] <= 0.55
    assert result["holdout_exact_duplicate_rate"] == pytest.approx(45 / len(holdout))
    assert abs(result["exact_duplicate_excess"]) < 0.01
    assert abs(result["near_duplicate_excess"]) < 0.01


# --- bounded memory ----------------------------------------------------------------------------


def test_knn_blocks_stay_under_the_cap_on_3000_by_3000(monkeypatch):
    # The default cap already splits 3000 x 3000 (9.0M distances > 2**23) into blocks.
    slices = list(block_slices(3000, 3000))
    assert len(slices) > 1 and all((s.stop - s.start) * 3000 <= tabular_privacy._BLOCK for s in slices)
    assert [s.start for s in slices[1:]] == [s.stop for s in slices[:-1]] and slices[-1].stop == 3000

    # With a 2 MB cap the whole PRDC pass must peak far below one full 3000 x 3000 float64 matrix.
    monkeypatch.setattr(tabular_privacy, "_BLOCK", 2**18)
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(3000, 8)), rng.normal(size=(3000, 8))
    tracemalloc.start()
    try:
        real_r, fake_r = kth_neighbour_distance(real, 5), kth_neighbour_distance(fake, 5)
        ball_counts(real, fake, real_r, fake_r)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3000 * 3000 * 8 / 8
    exact, _ = NearestNeighbors(n_neighbors=6).fit(real).kneighbors(real)
    np.testing.assert_allclose(real_r, exact[:, 5], rtol=1e-9)


# --- entry point -------------------------------------------------------------------------------


def test_image_metrics_is_json_and_lists_what_it_skipped(digits):
    # Setup: small subsets, few epochs; the point is the wiring, not the numbers
    x_tr, y_tr, x_ho, y_ho = digits
    train, y_train, synth, y_synth = x_tr[:300], y_tr[:300], x_tr[300:500], y_tr[300:500]
    # Run
    full = image_metrics(train, y_train, x_ho[:200], y_ho[:200], synth, y_synth, 10, seed=0, max_epochs=3)
    bare = image_metrics(train, y_train, None, None, synth, None, 10, seed=0, max_epochs=3)
    # Assert
    json.dumps(full, allow_nan=False)
    json.dumps(bare, allow_nan=False)
    assert full["skipped"] == {}
    fidelity_keys = {"frechet_distance", "frechet_distance_holdout", "precision", "recall", "density", "coverage"}
    assert fidelity_keys <= set(full["fidelity"])
    assert set(full["tstr"]) >= {"real_accuracy", "synthetic_accuracy", "gap"}
    assert full["class_counts"]["synthetic"] == np.bincount(y_synth, minlength=10).tolist()
    assert len(full["pixel_stats"]) == 10 and "dcr_share_pixel" in full["privacy"]
    assert {"tstr", "pixel_stats", "dcr_share", "frechet_distance_holdout"} <= set(bare["skipped"])
    assert "tstr" not in bare and "dcr_share_pixel" not in bare["privacy"]
    with pytest.raises(BadInput, match="shape"):
        image_metrics(train, y_train, None, None, uniform_noise((5, 8, 8, 3)), None, 10)
