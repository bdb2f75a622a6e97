"""The public contract kit: the same checks over every registered generator, chosen by its
modality and tags (as scikit-learn's ``parametrize_with_checks``)::

    import pytest
    from synthaug.testing import check_generator, generator_checks

    @pytest.mark.parametrize("check_name, check", generator_checks("my_family"))
    def test_contract(check_name, check):
        check()

    # or, all at once (raises AssertionError listing every failed check):
    check_generator(MyGenerator, config={"hidden": [16]})

Nothing here imports pytest: failures are plain ``AssertionError`` with a message naming the
check, the generator and what to fix. The checks share one fitted model per
``generator_checks`` call (fitted on first use), so a whole suite costs a handful of fits.

Which checks run: the common ones for every generator; a modality's own (tabular: Arrow
schema, bounds, conditions, input checks; image: size, mode, dtype and labels of the batches,
conditions by label index or name, input checks; both: seeded sampling and fit, global RNG left
alone); and by tags: ``saves`` -> save/load round trip,
otherwise ``save_refuses`` (e.g. the SDV baselines, which only pickle); ``rebalance`` ->
``sample_mixture`` counts. Tiny data per modality: ``tiny_table()`` (tabular),
``tiny_images()`` (200 of scikit-learn's 8x8 digits). A check a family is known to fail is declared in
``Tags(expected_failures={"check_name": "why"})`` or passed as ``expected_failures=``: it then
passes when the check fails, and fails when the check unexpectedly passes (remove the entry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from synthaug.generators.base import Generator
from synthaug.testing import common, image, tabular
from synthaug.testing.context import Context
from synthaug.testing.data import tiny_table
from synthaug.testing.image import tiny_images
from synthaug.training.config import TrainerConfig

__all__ = ["TINY_TRAINER", "check_generator", "checks_for", "generator_checks", "tiny_images", "tiny_table"]

# A few epochs, no validation split, no progress bar: every check fits in seconds on 2 CPU cores.
TINY_TRAINER = TrainerConfig(max_epochs=3, batch_size=64, patience=0, val_fraction=0.0, progress_bar=False)

COMMON: dict[str, Callable[[Context], None]] = {
    "config": common.check_config,
    "sample_before_fit": common.check_sample_before_fit,
    "fit_returns_self": common.check_fit_returns_self,
}
BY_MODALITY: dict[str, dict[str, Callable[[Context], None]]] = {
    "tabular": {
        "samples_match_schema": tabular.check_samples_match_schema,
        "seeded_sampling": common.check_seeded_sampling,
        "seeded_fit": common.check_seeded_fit,
        "global_rng_untouched": common.check_global_rng_untouched,
        "conditions": tabular.check_conditions,
        "bad_conditions": tabular.check_bad_conditions,
        "fit_rejects_missing_column": tabular.check_fit_rejects_missing_column,
    },
    "image": {
        "samples_match_schema": image.check_samples_match_schema,
        "seeded_sampling": common.check_seeded_sampling,
        "seeded_fit": common.check_seeded_fit,
        "global_rng_untouched": common.check_global_rng_untouched,
        "conditions": image.check_conditions,
        "bad_conditions": image.check_bad_conditions,
        "fit_rejects_bad_data": image.check_fit_rejects_bad_data,
    },
}


def checks_for(cls: type[Generator]) -> dict[str, Callable[[Context], None]]:
    """The checks that apply to `cls`, by its modality and tags, in a fixed order."""
    checks = dict(COMMON)
    checks.update(BY_MODALITY.get(cls.modality, {}))
    if cls.tags.saves:
        checks["save_load"] = common.check_save_load
    else:
        checks["save_refuses"] = common.check_save_refuses
    if cls.tags.rebalance and cls.modality == "tabular":
        checks["rebalance"] = tabular.check_rebalance
    if cls.tags.rebalance and cls.modality == "image":
        checks["rebalance"] = image.check_rebalance
    return checks


def _expecting_failure(name: str, check: Callable[[], None], reason: str) -> Callable[[], None]:
    def run() -> None:
        try:
            check()
        except AssertionError:
            return  # failed, as declared
        raise AssertionError(f"check '{name}' was expected to fail ({reason}) but passed; remove it from expected_failures")

    return run


def generator_checks(
    name_or_cls: str | type[Generator],
    data: pa.Table | pd.DataFrame | None = None,
    *,
    config: Any = None,
    trainer: TrainerConfig | None = None,
    expected_failures: dict[str, str] | None = None,
) -> Iterator[tuple[str, Callable[[], None]]]:
    """Yield (check_name, check) pairs; each check() raises AssertionError on failure.

    The generator is fitted only when a check runs (the class is resolved now, to choose the
    checks). `data` defaults to the modality's tiny data, `config` to the family's defaults,
    `trainer` to `TINY_TRAINER`.
    """
    ctx = Context(name_or_cls, data, config, trainer or TINY_TRAINER)
    xfail = {**ctx.cls.tags.expected_failures, **(expected_failures or {})}
    for check_name, check in checks_for(ctx.cls).items():
        run = lambda c=check: c(ctx)  # noqa: E731
        yield check_name, (_expecting_failure(check_name, run, xfail[check_name]) if check_name in xfail else run)


def check_generator(
    name_or_cls: str | type[Generator],
    data: pa.Table | pd.DataFrame | None = None,
    *,
    config: Any = None,
    trainer: TrainerConfig | None = None,
    expected_failures: dict[str, str] | None = None,
) -> list[str]:
    """Run every applicable check; return the names of those that passed, or raise one AssertionError listing all failures."""
    failures, passed = [], []
    pairs = list(generator_checks(name_or_cls, data, config=config, trainer=trainer, expected_failures=expected_failures))
    for check_name, check in pairs:
        try:
            check()
        except AssertionError as exc:
            failures.append(f"[{check_name}] {exc}")
        except Exception as exc:  # a crash is a failure too, reported with the others
            failures.append(f"[{check_name}] crashed: {type(exc).__name__}: {exc}")
        else:
            passed.append(check_name)
    if failures:
        raise AssertionError(f"{len(failures)} of {len(pairs)} contract checks failed:\n" + "\n".join(failures))
    return passed
