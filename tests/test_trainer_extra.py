"""trainer.extra reaches pl.Trainer (callbacks by import path); wrong keys are refused before training."""

import pytest

from synthaug.errors import BadInput
from synthaug.generators.base import get_generator
from synthaug.testing import tiny_table
from synthaug.training.config import TrainerConfig

CALLS = []


def make_counter():
    import pytorch_lightning as pl

    class Counter(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            CALLS.append(trainer.current_epoch)

    return Counter()


class CounterFactory:
    """Built from `tests.test_trainer_extra:CounterFactory` by import path."""

    def __new__(cls):
        return make_counter()


def test_callbacks_and_keywords_reach_the_trainer(one_thread):
    CALLS.clear()
    trainer = TrainerConfig(
        max_epochs=2,
        batch_size=32,
        patience=0,
        progress_bar=False,
        extra={"gradient_clip_val": 0.5, "callbacks": ["tests.test_trainer_extra:CounterFactory"]},
    )
    get_generator("vae")({"latent_dim": 4, "hidden": [8]}).fit(tiny_table(80), trainer=trainer, seed=0)
    assert CALLS == [0, 1]


@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"max_epochs": 3}, "set it as trainer.max_epochs"),
        ({"no_such_keyword": 1}, "not a pl.Trainer keyword"),
        ({"callbacks": ["no.such.module:Callback"]}, "cannot build 'no.such.module:Callback'"),
    ],
)
def test_bad_extra_is_refused(extra, needle):
    trainer = TrainerConfig(max_epochs=1, progress_bar=False, extra=extra)
    with pytest.raises(BadInput, match=needle):
        get_generator("vae")({"latent_dim": 4, "hidden": [8]}).fit(tiny_table(60), trainer=trainer, seed=0)
