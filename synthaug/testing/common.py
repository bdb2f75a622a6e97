"""Checks every generator must pass, whatever its modality."""

from __future__ import annotations

import tempfile
from pathlib import Path

from synthaug.errors import BadInput
from synthaug.generators.base import load_generator, make_config
from synthaug.testing.context import Context, fail, first_difference, same


def check_config(ctx: Context) -> None:
    """Config is a pydantic model with a default for every field; unknown keys are BadInput."""
    cls = ctx.cls
    name = "config"
    for attr in ("name", "modality", "Config"):
        if not hasattr(cls, attr):
            raise fail(ctx, name, f"class attribute '{attr}' is missing; see synthaug.generators.base.Generator")
    try:
        make_config(cls.Config, {})
    except BadInput as exc:
        raise fail(ctx, name, f"Config() without arguments fails ({exc}); give every field a default") from None
    try:
        cls({"no_such_key_xyz": 1})
    except BadInput as exc:
        if "no_such_key_xyz" not in str(exc):
            raise fail(ctx, name, f"the BadInput for an unknown config key does not name it: {exc}") from None
    else:
        raise fail(ctx, name, "an unknown config key was accepted; set model_config = ConfigDict(extra='forbid')")


def check_sample_before_fit(ctx: Context) -> None:
    """Sampling (or saving) an unfitted generator raises RuntimeError mentioning fit."""
    gen = ctx.new()
    for method in ("sample", "sample_batches"):
        if not hasattr(gen, method):
            continue
        try:
            next(iter(getattr(gen, method)(5, seed=0)))
        except RuntimeError as exc:
            if "fit" not in str(exc):
                raise fail(ctx, "sample before fit", f"{method}() raised RuntimeError({exc!r}), which does not mention fit") from None
        except Exception as exc:
            raise fail(
                ctx, "sample before fit", f"{method}() raised {type(exc).__name__}({exc}); raise RuntimeError saying to call fit"
            ) from None
        else:
            raise fail(ctx, "sample before fit", f"{method}() on an unfitted generator returned rows; it must raise RuntimeError")


def check_fit_returns_self(ctx: Context) -> None:
    ctx.fitted  # noqa: B018 - fits on first use
    if ctx._fit_returned is not ctx._fitted:
        raise fail(ctx, "fit returns self", f"fit() returned {type(ctx._fit_returned).__name__}, not the generator itself")


def check_seeded_sampling(ctx: Context) -> None:
    """The same seed gives identical samples (twice in a row); a different seed gives different ones."""
    a, b = ctx.sample(seed=7), ctx.sample(seed=7)
    if not same(a, b):
        raise fail(
            ctx, "seeded sampling", f"two samples with seed=7 differ ({first_difference(a, b)}); seed every draw from the seed argument"
        )
    c = ctx.sample(seed=8)
    if same(a, c):
        raise fail(ctx, "seeded sampling", "seed=7 and seed=8 gave identical samples; the seed argument is ignored")


def check_seeded_fit(ctx: Context) -> None:
    """Fitting twice with the same seed gives the same model (same samples)."""
    again, _ = ctx.refitted
    a, b = ctx.sample(seed=3), ctx.sample(again, seed=3)
    if not same(a, b):
        raise fail(
            ctx,
            "seeded fit",
            f"two fits with seed=0 sample differently ({first_difference(a, b)}); seed all training randomness from fit(seed=...)",
        )


def check_global_rng_untouched(ctx: Context) -> None:
    """fit and sample leave numpy's and torch's global random state as they found it (only the CLI seeds globally)."""
    _, changed = ctx.refitted
    if changed:
        raise fail(ctx, "global RNG untouched", f"fit/sample changed {changed}")


def check_save_refuses(ctx: Context) -> None:
    """Tags(saves=False): save() refuses with BadInput and writes nothing."""
    gen = ctx.fitted
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        try:
            gen.save(path)
        except BadInput as exc:
            if path.exists() and any(path.iterdir()):
                raise fail(ctx, "save refuses", f"save() refused ({exc}) but left files in {path}") from None
            return
        raise fail(ctx, "save refuses", "tags.saves is False but save() did not raise BadInput")


def check_save_load(ctx: Context) -> None:
    """save -> load (by the class and by load_generator) gives identical samples, without pickles."""
    gen = ctx.fitted
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        gen.save(path)
        pickles = [p.name for p in path.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib", ".cloudpickle")]
        if pickles:
            raise fail(ctx, "save/load", f"save() wrote pickles {pickles}; save config JSON + weights (no pickled code)")
        by_class = type(gen).load(path)
        by_registry = load_generator(path) if isinstance(ctx.target, str) else by_class
        want = ctx.sample(seed=5)
        for how, loaded in (("cls.load", by_class), ("load_generator", by_registry)):
            if not isinstance(loaded, type(gen)):
                raise fail(ctx, "save/load", f"{how}() returned {type(loaded).__name__}, not {type(gen).__name__}")
            got = ctx.sample(loaded, seed=5)
            if not same(want, got):
                raise fail(
                    ctx, "save/load", f"after {how}() the samples differ ({first_difference(want, got)}); save every piece of fitted state"
                )
