"""Checks for image generators (modality "image"), and the tiny image data they fit on.

The modality-neutral checks (`common.py`: seeded sampling, seeded fit, global RNG, save/load)
run on images too: `Context.sample` concatenates `ImageBatch`es and `context.same` compares them.
"""

from __future__ import annotations

import numpy as np

from synthaug.errors import BadInput
from synthaug.testing.context import BATCH, N_SAMPLE, Context, fail

TINY_IMAGES = 200  # images in the tiny data: 20 per digit


def tiny_images(n: int = TINY_IMAGES, seed: int = 0):
    """A class-balanced subset of scikit-learn's 8x8 digits (bundled with scikit-learn: no file,
    no network) as an `ImageSet`, `n // 10` images per digit, chosen with `seed`."""
    from sklearn.datasets import load_digits

    from synthaug.io.image_sources import ImageSet
    from synthaug.schema.image import infer_image_schema

    digits = load_digits()
    rng = np.random.default_rng(seed)
    per = max(1, n // 10)
    idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(digits.target == d))[:per] for d in range(10)]))
    images = np.rint(digits.images[idx] * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target[idx].astype(np.int64)
    names = [str(d) for d in range(10)]
    schema = infer_image_schema(images, labels, names, source_format="sklearn", notes=["pixel values 0..16 scaled to 0..255"])
    return ImageSet(images, labels, names, [f"digits-{i:05d}" for i in idx], schema)


def check_samples_match_schema(ctx: Context) -> None:
    """Right image count and batching; uint8 (N, H, W, C) with the schema's size and mode; int64
    labels among the trained classes; keys unique across batches."""
    name = "samples match schema"
    gen, schema = ctx.fitted, ctx.schema
    batches = list(gen.sample_batches(N_SAMPLE, seed=0, batch_size=BATCH))
    sizes = [len(b.labels) for b in batches]
    if sum(sizes) != N_SAMPLE or any(s > BATCH or s == 0 for s in sizes):
        raise fail(ctx, name, f"sample_batches({N_SAMPLE}, batch_size={BATCH}) yielded batches of {sizes} images")
    want = (schema.height, schema.width, schema.channels)
    for b in batches:
        if not isinstance(b.images, np.ndarray) or b.images.dtype != np.uint8 or b.images.shape[1:] != want:
            got = f"{getattr(b.images, 'dtype', type(b.images).__name__)} {getattr(b.images, 'shape', '')}"
            raise fail(ctx, name, f"images are {got}; want uint8 (N, {want[0]}, {want[1]}, {want[2]}) as the schema says")
        if b.labels.dtype != np.int64 or b.labels.shape != (len(b.images),):
            raise fail(ctx, name, f"labels are {b.labels.dtype} {b.labels.shape}; want int64 ({len(b.images)},)")
        if len(b.keys) != len(b.images):
            raise fail(ctx, name, f"{len(b.keys)} keys for {len(b.images)} images")
    labels = np.concatenate([b.labels for b in batches])
    trained = {i for i, c in enumerate(schema.class_counts.values()) if c}
    unseen = set(labels.tolist()) - trained
    if unseen:
        raise fail(ctx, name, f"sampled labels {sorted(unseen)} are not classes with training images ({sorted(trained)})")
    keys = [k for b in batches for k in b.keys]
    if len(set(keys)) != len(keys) or not all(isinstance(k, str) for k in keys):
        raise fail(ctx, name, f"keys must be distinct strings across batches; got e.g. {keys[:3]}")
    if all((b.images == batches[0].images[:1]).all() for b in batches):
        raise fail(ctx, name, "every sampled image is the same image")


def _condition_label(ctx: Context) -> tuple[int, str]:
    """The second most common class (not just the mode), as (index, name)."""
    counts = list(ctx.schema.class_counts.values())
    k = int(np.argsort(-np.asarray(counts), kind="stable")[1 if len(counts) > 1 else 0])
    return k, ctx.schema.label_names[k]


def check_conditions(ctx: Context) -> None:
    """conditions={label column: index} and {label column: name} yield only images of that class."""
    k, label_name = _condition_label(ctx)
    column = ctx.schema.label_column
    for value in (k, label_name):
        got = ctx.sample(seed=0, conditions={column: value})
        values = sorted(set(got.labels.tolist()))
        if len(got.labels) != N_SAMPLE or values != [k]:
            raise fail(
                ctx, "conditions", f"conditions={{{column!r}: {value!r}}} gave {len(got.labels)} images with labels {values}, want only {k}"
            )


def check_bad_conditions(ctx: Context) -> None:
    """An unknown column or label in conditions is BadInput naming it (and listing the labels)."""
    gen, column = ctx.fitted, ctx.schema.label_column
    n_classes = len(ctx.schema.label_names)
    bad = [
        ({"no_such_column_xyz": 1}, "no_such_column_xyz"),
        ({column: "never_seen_value_xyz"}, "never_seen_value_xyz"),
        ({column: n_classes + 7}, str(n_classes + 7)),
    ]
    for conditions, needle in bad:
        try:
            next(iter(gen.sample_batches(5, seed=0, conditions=conditions)))
        except BadInput as exc:
            if needle not in str(exc):
                raise fail(ctx, "bad conditions", f"BadInput for conditions={conditions} does not name '{needle}': {exc}") from None
            if needle != "no_such_column_xyz" and ctx.schema.label_names[-1] not in str(exc):
                raise fail(ctx, "bad conditions", f"BadInput for conditions={conditions} does not list the labels: {exc}") from None
        except Exception as exc:
            what = f"{type(exc).__name__}({exc})"
            raise fail(ctx, "bad conditions", f"conditions={conditions} raised {what}, not synthaug.errors.BadInput") from None
        else:
            raise fail(ctx, "bad conditions", f"conditions={conditions} were accepted; raise BadInput naming the column or label")


def check_fit_rejects_bad_data(ctx: Context) -> None:
    """Fewer than 10 images, or float images, are BadInput before any training."""
    data = ctx.images
    few = data.take(np.arange(9))
    cases = [("9 images", few, "10"), ("float images", (data.images.astype(np.float32), data.labels), "uint8")]
    for what, bad, needle in cases:
        try:
            ctx.new().fit(bad, ctx.schema, ctx.trainer, seed=0)
        except BadInput as exc:
            if needle not in str(exc):
                raise fail(ctx, "fit rejects bad data", f"BadInput for {what} does not say '{needle}': {exc}") from None
        except Exception as exc:
            raise fail(ctx, "fit rejects bad data", f"{what} raised {type(exc).__name__}({exc}), not BadInput") from None
        else:
            raise fail(ctx, "fit rejects bad data", f"fit() accepted {what}")


def check_rebalance(ctx: Context) -> None:
    """Tags(rebalance=True): sample_mixture gives exactly the requested count per label, mixed within batches."""
    names = ctx.schema.label_names
    a, b = names[0], names[1]
    batches = list(ctx.fitted.sample_mixture(40, column=ctx.schema.label_column, shares={a: 1, b: 3}, seed=0, batch_size=BATCH))
    labels = np.concatenate([x.labels for x in batches])
    counts = {names[k]: int(c) for k, c in zip(*np.unique(labels, return_counts=True))}
    if counts != {a: 10, b: 30}:
        raise fail(ctx, "rebalance", f"shares 1:3 over 40 images gave counts {counts}, want {{{a!r}: 10, {b!r}: 30}}")
    if all((np.diff(x.labels) >= 0).all() for x in batches):
        raise fail(ctx, "rebalance", "every batch is sorted by label; shuffle the labels within each batch")
    keys = [k for x in batches for k in x.keys]
    if len(set(keys)) != len(keys):
        raise fail(ctx, "rebalance", "keys repeat across the batches of sample_mixture")
