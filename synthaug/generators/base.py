"""The generator contract every modality shares, capability tags, and the registry.

Registry: built-in families by name, plus any installed package that declares an entry point in
the group ``synthaug.generators`` (``name = "package.module:Class"``). Keys are unique across
modalities: tabular families have plain names (``vae``), other modalities are prefixed with
theirs (``image_vae``); an entry point cannot replace a built-in.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError

from synthaug.errors import BadInput
from synthaug.training.config import TrainerConfig, check_trainer

FORMAT_VERSION = 2  # 2: generator.json records the trainer settings and provenance ("fit")
MIN_ROWS = 10  # fewer training rows than this cannot be modelled
MANIFEST = "generator.json"

BUILTINS: dict[str, str] = {
    "vae": "synthaug.generators.tabular.vae:TabularVAE",
    "gan": "synthaug.generators.tabular.gan:TabularGAN",
    "rbm": "synthaug.generators.tabular.rbm:TabularRBM",
    "image_gan": "synthaug.generators.image.gan:ImageGAN",
    "image_vae": "synthaug.generators.image.vae:ImageVAE",
    "image_rbm": "synthaug.generators.image.rbm:ImageRBM",
    # SDV baselines (optional extra, BUSL-1.1): see synthaug/generators/sdv.py
    "sdv_gaussian_copula": "synthaug.generators.sdv:SDVGaussianCopula",
    "sdv_ctgan": "synthaug.generators.sdv:SDVCTGAN",
    "sdv_tvae": "synthaug.generators.sdv:SDVTVAE",
}
ENTRY_POINT_GROUP = "synthaug.generators"


@dataclass(frozen=True)
class Tags:
    """What a family can do; the pipeline and the contract checks read these, never hasattr().

    conditional: honours `conditions` natively (else only by rejection); rebalance: has
    `sample_mixture` for `augment.balance`; saves: save/load round-trips (else save refuses);
    dp: can train with differential privacy; multi_device: trains under DDP.
    expected_failures: contract check name -> why it is expected to fail.
    """

    conditional: bool = False
    rebalance: bool = False
    saves: bool = True
    dp: bool = False
    multi_device: bool = False
    expected_failures: dict[str, str] = field(default_factory=dict)


class Generator(ABC):
    """A generative model family. `__init__` stores the config only; `fit` learns and returns self.

    Subclasses implement `_check_data` (modality), `_fit`, `sample_batches`, `save` and `load`.
    """

    name: ClassVar[str]
    modality: ClassVar[Literal["tabular", "image"]]
    tags: ClassVar[Tags] = Tags()
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel | dict[str, Any] | None = None) -> None:
        self.config = config if isinstance(config, self.Config) else make_config(self.Config, config or {})
        self.fit_info: dict[str, Any] = {}

    def fit(self, data: Any, schema: Any = None, trainer: TrainerConfig | None = None, *, seed: int = 0) -> Generator:
        """Template: check the input and the trainer, learn (`_fit`), record how, return self."""
        trainer = trainer or TrainerConfig()
        check_trainer(trainer)
        if self.tags.multi_device is False and trainer.world_size > 1:
            raise BadInput(f"generator '{self.name}' cannot train on {trainer.world_size} devices; set trainer.devices=1")
        data, schema = self._check_data(data, schema)
        self.fit_info = {"seed": seed, "trainer": trainer.public(), "data_sha256": data_digest(data)}
        self.fit_info.update(self._fit(data, schema, trainer, seed=seed) or {})
        return self

    @abstractmethod
    def _check_data(self, data: Any, schema: Any) -> tuple[Any, Any]:
        """Training data in the modality's form, and its schema (inferred if not given); BadInput if unusable."""

    @abstractmethod
    def _fit(self, data: Any, schema: Any, trainer: TrainerConfig, *, seed: int) -> dict[str, Any] | None:
        """Learn; may return facts about training (best epoch, why it stopped) for fit_info."""

    @abstractmethod
    def sample_batches(self, n: int, *, seed: int = 0, conditions: dict[str, Any] | None = None, batch_size: int = 10_000) -> Iterator[Any]:
        """Yield batches totalling `n` (Arrow tables for tables); batch i seeded by (seed, i)."""

    @abstractmethod
    def save(self, path: str | Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path) -> Generator: ...


def data_digest(data: Any) -> str | None:
    """sha256 of the training data as the generator saw it (Arrow IPC for tables)."""
    import hashlib

    import pyarrow as pa

    if isinstance(data, pa.Table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        return hashlib.sha256(sink.getvalue()).hexdigest()
    return None


def make_config(config_cls: type[BaseModel], params: dict[str, Any], where: str = "generator.params") -> BaseModel:
    if not isinstance(params, dict):
        raise BadInput(f"key '{where}': expected a mapping of settings (got {type(params).__name__})")
    try:
        return config_cls(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in (where, *err["loc"]))
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(config_cls.model_fields)
            raise BadInput(f"unknown key '{key}'; allowed keys there: {allowed}") from None
        raise BadInput(f"key '{key}': {err['msg']} (got {short_repr(err.get('input'))})") from None


def short_repr(value: Any, limit: int = 80) -> str:
    """repr() capped, so an error about a huge value stays one short line."""
    text = reprlib_repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reprlib_repr(value: Any) -> str:
    import reprlib

    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlevel = 60, 60, 6, 6, 3
    return r.repr(value)


# -- registry ------------------------------------------------------------------
def available() -> dict[str, str]:
    """Registry key -> 'module:Class', built-ins first, then entry points (which cannot replace a built-in)."""
    found = dict(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def get_generator(name: str) -> type[Generator]:
    registry = available()
    if name not in registry:
        raise BadInput(
            f"key 'generator.name': unknown generator '{name}'; available: {', '.join(sorted(registry))} (see `synthaug generators`)"
        )
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
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{file}: corrupt model manifest ({exc}); re-run the pipeline to save the model again") from None
    if not isinstance(manifest, dict):
        raise BadInput(f"{file}: corrupt model manifest (not a JSON object); re-run the pipeline to save the model again")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BadInput(f"{file}: model format version {version!r} is newer than this synthaug reads ({FORMAT_VERSION}); upgrade synthaug")
    for key in ("name", "config"):
        if key not in manifest:
            raise BadInput(f"{file}: model manifest has no '{key}'; the file is damaged, re-save the model")
    return manifest


def load_generator(path: str | Path) -> Generator:
    """Load any saved generator; its family comes from the manifest."""
    manifest = read_manifest(path)
    return get_generator(str(manifest["name"])).load(path)


# -- saving and loading torch-based families -------------------------------------------
WEIGHTS = "weights.pt"


def write_model(path: str | Path, generator: Generator, state: dict[str, Any], module) -> None:
    """generator.json (format version, family, config, how it was fitted + library versions, and the
    family's own `state`) and weights.pt (the module's state dict, loaded with weights_only=True)."""
    import torch

    from synthaug.io.artifacts import versions

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": generator.name,
        "modality": generator.modality,
        "config": generator.config.model_dump(mode="json"),
        "fit": {**generator.fit_info, "versions": versions()},
        **state,
    }
    (path / MANIFEST).write_text(json.dumps(manifest, indent=1))
    torch.save(module.state_dict(), path / WEIGHTS)


def read_model(cls: type[Generator], path: str | Path, keys: tuple[str, ...]) -> tuple[dict[str, Any], dict]:
    """generator.json (checked: this family, the `keys` present) and the weights' state dict."""
    import torch

    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("name") != cls.name:
        raise BadInput(f"{path}: holds a '{manifest.get('name')}' model, not '{cls.name}'; use synthaug.load_generator")
    for key in keys:
        if key not in manifest:
            raise BadInput(f"{path / MANIFEST}: has no '{key}'; the model folder is damaged, re-save the model")
    try:
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise BadInput(f"{path / WEIGHTS}: weights cannot be read ({type(exc).__name__}); the file is corrupt, re-save the model") from None
    if not isinstance(state, dict):
        raise BadInput(f"{path / WEIGHTS}: holds {type(state).__name__}, not a state dict; the file is corrupt, re-save the model")
    return manifest, state


def build_checked(build, state: dict, path: str | Path):
    """Build the module on the meta device first (no memory), compare every tensor's shape with the
    saved weights, and only then build it for real, loaded with them: a small generator.json asking
    for huge layers fails here instead of exhausting memory."""
    import torch

    with torch.device("meta"):
        probe = build()
    want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if want != got:
        diff = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got.get(k)]
        raise BadInput(
            f"{path}: generator.json does not match weights.pt (first difference: '{diff[0]}'); the model folder "
            "is damaged or mixed from two models, re-save it"
        )
    with torch.random.fork_rng(devices=[]):  # initial weights are overwritten; leave the global stream alone
        module = build()
    module.load_state_dict(state)
    return module.eval()
