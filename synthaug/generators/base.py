"""The generator contract, the trainer settings every family takes, and the registry.

Registry: built-in families by name, plus any installed package that declares an entry point
in the group ``synthaug.generators`` (``name = "package.module:Class"``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthaug.errors import BadInput

FORMAT_VERSION = 1
MIN_ROWS = 10  # fewer training rows than this cannot be modelled
MANIFEST = "generator.json"

BUILTINS: dict[str, str] = {
    "vae": "synthaug.generators.tabular.vae:TabularVAE",
    "gan": "synthaug.generators.tabular.gan:TabularGAN",
    "rbm": "synthaug.generators.tabular.rbm:TabularRBM",
    # SDV baselines (optional extra, BUSL-1.1): see synthaug/generators/sdv.py
    "sdv_gaussian_copula": "synthaug.generators.sdv:SDVGaussianCopula",
    "sdv_ctgan": "synthaug.generators.sdv:SDVCTGAN",
    "sdv_tvae": "synthaug.generators.sdv:SDVTVAE",
}
ENTRY_POINT_GROUP = "synthaug.generators"


class TrainerConfig(BaseModel):
    """How to train: shared by every family; presets live in conf/trainers/."""

    model_config = ConfigDict(extra="forbid")

    max_epochs: int = Field(300, gt=0)
    batch_size: int = Field(500, gt=0)
    patience: int = Field(30, ge=0, description="epochs without improvement before stopping; 0 disables")
    val_fraction: float = Field(0.1, ge=0.0, lt=0.5, description="share of training rows used to pick the best epoch")
    min_steps_per_epoch: int = Field(10, gt=0, description="small tables: an epoch repeats passes until this many steps")
    max_steps_per_epoch: int = Field(200, gt=0, description="large tables: an epoch ends after this many steps, so epochs stay comparable")
    progress_bar: bool = True
    deterministic: bool = True
    accelerator: str = "cpu"
    devices: int = Field(1, gt=0)
    strategy: str = "auto"
    max_minutes: float | None = Field(None, gt=0)
    checkpoint_dir: str | None = Field(None, description="set by the pipeline: <run>/checkpoints")


class Generator(ABC):
    """A generative model family. `__init__` stores the config only; `fit` learns and returns self."""

    name: ClassVar[str]
    modality: ClassVar[Literal["tabular", "image"]]
    Config: ClassVar[type[BaseModel]]
    supports_save: ClassVar[bool] = True  # False: save() refuses (e.g. SDV baselines, which only pickle)

    def __init__(self, config: BaseModel | dict[str, Any] | None = None) -> None:
        self.config = config if isinstance(config, self.Config) else make_config(self.Config, config or {})

    def _checked_input(self, data: Any, schema: Any = None) -> tuple[Any, Any]:
        """Training data as an Arrow table, and its schema (inferred if not given); BadInput if unusable."""
        import pyarrow as pa

        from synthaug.schema import infer_schema

        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        if table.num_rows < MIN_ROWS:
            raise BadInput(f"training data has {table.num_rows} rows; {self.name} needs at least {MIN_ROWS}")
        schema = schema or infer_schema(table)
        missing = [c for c in schema.names if c not in table.column_names]
        if missing:
            raise BadInput(f"column '{missing[0]}' of the schema is not in the training data; columns there: {', '.join(table.column_names)}")
        return table, schema

    @abstractmethod
    def fit(self, data: Any, schema: Any = None, trainer: TrainerConfig | None = None, *, seed: int = 0) -> Generator: ...

    def sample(self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000) -> Iterator[Any]:
        """Yield pandas DataFrames (at most `batch_size` rows each) totalling `n` rows."""
        for table in self.sample_tables(n, seed=seed, conditions=conditions, batch_size=batch_size):
            yield table.to_pandas()

    @abstractmethod
    def sample_tables(self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000) -> Iterator[Any]:
        """Yield Arrow tables with the source's exact schema; batch i seeded by (seed, i)."""

    @abstractmethod
    def save(self, path: str | Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path) -> Generator: ...


def make_config(config_cls: type[BaseModel], params: dict[str, Any], where: str = "generator.params") -> BaseModel:
    try:
        return config_cls(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in (where, *err["loc"]))
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(config_cls.model_fields)
            raise BadInput(f"unknown key '{key}'; allowed keys there: {allowed}") from None
        raise BadInput(f"key '{key}': {err['msg']} (got {err.get('input')!r})") from None


# -- registry ------------------------------------------------------------------
def available() -> dict[str, str]:
    """Registry key -> 'module:Class', built-ins first, then entry points."""
    found = dict(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def get_generator(name: str) -> type[Generator]:
    registry = available()
    if name not in registry:
        raise BadInput(f"key 'generator.name': unknown generator '{name}'; available: {', '.join(sorted(registry))} (see `synthaug generators`)")
    module, _, attr = registry[name].partition(":")
    try:
        cls = getattr(import_module(module), attr)
    except ImportError as exc:
        raise BadInput(f"generator '{name}' cannot be imported ({exc}); install its extra, e.g. pip install 'synthaug[sdv]'") from None
    return cls


# -- saved models --------------------------------------------------------------
def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    file = path / MANIFEST
    if not file.is_file():
        raise BadInput(f"{path}: not a saved synthaug model (no {MANIFEST}); pass the model/ folder of a run")
    try:
        manifest = json.loads(file.read_text())
    except ValueError as exc:
        raise BadInput(f"{file}: corrupt model manifest ({exc}); re-run the pipeline to save the model again") from None
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BadInput(
            f"{file}: model format version {version!r} is newer than this synthaug reads ({FORMAT_VERSION}); upgrade synthaug"
        )
    return manifest


def load_generator(path: str | Path) -> Generator:
    """Load any saved generator; its family comes from the manifest."""
    manifest = read_manifest(path)
    return get_generator(manifest["name"]).load(path)
