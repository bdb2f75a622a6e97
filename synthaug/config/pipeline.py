"""Pipeline YAML -> a frozen, validated PipelineConfig.

Order: read YAML -> expand presets from conf/ -> apply `key=value` overrides -> validate.
`generator`, `trainer` and `gates` may name a preset file (`trainer: fast` reads
conf/trainers/fast.yaml) or be a mapping, optionally with `preset:` plus keys that override it.
A pipeline without `gates` gets conf/gates/default.yaml. Unknown keys are errors naming their full path.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthaug.config.yaml import load_yaml_text, read_yaml
from synthaug.errors import BadInput
from synthaug.generators.base import short_repr
from synthaug.training.config import TrainerConfig
from synthaug.training.privacy import PrivacyConfig
from synthaug.validation.gates import GatesConfig
from synthaug.validation.image.gates import ImageGatesConfig

PRESET_DIRS = {"generator": "generators", "trainer": "trainers", "gates": "gates"}
MIN_METRIC_ROWS = 10  # fewer synthetic rows cannot be scored (3-fold detection, neighbours): refused before training
DEFAULT_GATES = {"tabular": "default", "image": "images"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ImageSourceConfig(_Strict):
    """How image sources are read (an image family's pipeline): size and mode every image is converted to."""

    size: tuple[int, int] | None = Field(None, description="[height, width]; default: the most common size in the source")
    mode: Literal["L", "RGB"] | None = Field(None, description="default: the most common mode in the source")
    format: Literal["imagefolder", "hf_parquet", "webdataset", "sklearn"] | None = Field(None, description="default: detected")


class SourceConfig(_Strict):
    path: str = Field(
        ..., description="a table (CSV, Parquet file or folder) or images (folder, HF Parquet, WebDataset tars, sklearn:digits)"
    )
    format: Literal["auto", "csv", "parquet"] = "auto"
    schema_path: str | None = Field(None, alias="schema", description="schema JSON overriding inference")
    sdv_metadata: str | None = Field(None, description="SDV metadata JSON whose sdtypes set the column kinds")
    image: ImageSourceConfig = ImageSourceConfig()


class SplitConfig(_Strict):
    holdout: float = Field(0.2, ge=0.0, lt=0.9, description="share of rows kept out of training, for validation")
    stratify: bool = True


class GeneratorSection(_Strict):
    name: str = "vae"
    params: dict[str, Any] = Field(default_factory=dict)


class SampleConfig(_Strict):
    n_rows: int = Field(..., gt=0)
    rows_per_shard: int = Field(100_000, gt=0)
    batch_size: int = Field(10_000, gt=0)
    synthetic_column: str | None = Field(None, description="add a bool column of this name set to true")
    conditions: dict[str, Any] | None = None
    format: Literal["parquet", "imagefolder", "hf_parquet", "webdataset"] | None = Field(
        None, description="shard format: parquet for tables; hf_parquet (default), imagefolder or webdataset for images"
    )


class BalanceConfig(_Strict):
    column: str
    strategy: Literal["equalize", "complement", "ratios"] = Field(
        "equalize",
        description="equalize: equal synthetic counts; complement: fill each class up to the largest real class; ratios: as given",
    )
    ratios: dict[str, float] | None = Field(None, description="category -> share, for strategy 'ratios'")


class AugmentConfig(_Strict):
    balance: BalanceConfig | None = None


class ValidationConfig(_Strict):
    expectations: list[dict[str, Any]] = Field(
        default_factory=list, description="extra GX expectations: {expectation: name, kwargs: {...}}"
    )
    suite: str | None = Field(None, description="an existing GX suite JSON used instead of the derived one")
    metrics_rows: int = Field(20_000, ge=MIN_METRIC_ROWS, description="synthetic rows sampled (seeded) for fidelity and privacy metrics")


class PrivacySection(PrivacyConfig):
    """`privacy:` in a pipeline: train with DP-SGD and record the spend in an epsilon ledger."""

    ledger: str | None = Field(None, description="the epsilon ledger file; default: <output parent>/epsilon-ledger.jsonl")
    max_epsilon: float | None = Field(None, gt=0, description="refuse a release whose epsilon is above this")
    max_total_epsilon: float | None = Field(None, gt=0, description="refuse a release that takes the source's total spend above this")

    def ledger_path(self, output_dir: str) -> Path:
        return Path(self.ledger) if self.ledger else Path(output_dir).parent / "epsilon-ledger.jsonl"


class CacheConfig(_Strict):
    """Stage cache (see synthaug/pipeline/cache.py): reuse a fitted model, or the whole published
    result, when nothing it depends on changed."""

    enabled: bool = True
    dir: str | None = Field(None, description="default: <output parent>/.synthaug-cache")


class OutputConfig(_Strict):
    dir: str


class PipelineConfig(_Strict):
    name: str = Field(..., min_length=1, max_length=200)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="same seed + same config => byte-identical shards")
    source: SourceConfig
    target: str | None = Field(None, description="label column: stratifies the split")
    split: SplitConfig = SplitConfig()
    generator: GeneratorSection = GeneratorSection()
    trainer: TrainerConfig = TrainerConfig()
    sample: SampleConfig
    augment: AugmentConfig = AugmentConfig()
    validation: ValidationConfig = ValidationConfig()
    privacy: PrivacySection | None = Field(None, description="differentially private training (tabular families)")
    cache: CacheConfig = CacheConfig()
    gates: GatesConfig | ImageGatesConfig = GatesConfig()  # ImageGatesConfig: image families (gates: images)
    output: OutputConfig

    def config_hash(self) -> str:
        """sha256 of everything that shapes the output (not its name or where it goes, nor how it is shown).

        Generator params are resolved to the family's typed config when the pipeline is loaded,
        so `{}` and the defaults written out hash alike."""
        data = self.model_dump(mode="json", by_alias=True)
        data.pop("output")
        data.pop("name")  # a label: two runs that differ only in name make the same rows
        data.pop("cache")
        data["trainer"] = self.trainer.public()
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def packaged_presets() -> Path:
    """The presets shipped inside the package (synthaug/config/presets), the last place looked."""
    from importlib.resources import files

    return Path(str(files("synthaug.config") / "presets"))


def conf_dirs(pipeline_path: Path | None = None) -> list[Path]:
    """Where presets are looked up, first match wins: $SYNTHAUG_CONF, ./conf, the pipeline's
    ../conf (a project's own presets), then the presets shipped inside the package."""
    dirs = []
    if os.environ.get("SYNTHAUG_CONF"):
        dirs.append(Path(os.environ["SYNTHAUG_CONF"]))
    dirs.append(Path.cwd() / "conf")
    if pipeline_path is not None:
        dirs.append(pipeline_path.resolve().parent.parent / "conf")
    dirs.append(packaged_presets())
    return dirs


def load_preset(kind: str, name: str, dirs: list[Path], where: str) -> dict[str, Any]:
    sub = PRESET_DIRS[kind]
    for d in dirs:
        f = d / sub / f"{name}.yaml"
        if f.is_file():
            data = _read_yaml(f)
            if "preset" in data:  # a preset may build on another one
                base = load_preset(kind, str(data.pop("preset")), dirs, str(f))
                data = _merge(base, data)
            return data
    known = sorted({p.stem for d in dirs for p in (d / sub).glob("*.yaml")})
    raise BadInput(f"{where}: unknown {kind} preset '{name}'; presets in conf/{sub}: {', '.join(known) or 'none'}")


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of keys at the top level")
    return data


def _expand(raw: dict[str, Any], dirs: list[Path], where: str) -> dict[str, Any]:
    for key, kind in (("generator", "generator"), ("trainer", "trainer"), ("gates", "gates")):
        if key == "gates":
            raw.setdefault("gates", DEFAULT_GATES[_modality(raw)])
        value = raw.get(key)
        if isinstance(value, str) and kind == "generator" and not _has_preset(kind, value, dirs):
            value = raw[key] = {"name": value}  # a registered family without a preset file: its defaults
        if isinstance(value, str):
            value = {"preset": value}
        if isinstance(value, dict) and "preset" in value:
            rest = {k: v for k, v in value.items() if k != "preset"}
            raw[key] = _merge(load_preset(kind, str(value["preset"]), dirs, where), rest)
    return raw


def _modality(raw: dict[str, Any]) -> str:
    """The modality of the pipeline's generator (its default gates differ); tabular if unknown."""
    from synthaug.generators.base import available, get_generator

    name = raw.get("generator", {}).get("name", "vae") if isinstance(raw.get("generator"), dict) else "vae"
    if name not in available():
        return "tabular"  # validate_config names the unknown generator
    try:
        return get_generator(str(name)).modality
    except BadInput:
        return "tabular"


def _has_preset(kind: str, name: str, dirs: list[Path]) -> bool:
    return any((d / PRESET_DIRS[kind] / f"{name}.yaml").is_file() for d in dirs)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_override(raw: dict[str, Any], override: str) -> None:
    """`a.b.c=value`: value parsed as YAML (so numbers, bools, lists work)."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise BadInput(f"override '{override}': write overrides as key=value, e.g. trainer.max_epochs=5")
    try:
        value = load_yaml_text(text, f"override '{override}'")
    except BadInput:
        value = text
    parts = key.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise BadInput(f"override '{override}': '{'.'.join(parts[: i + 1])}' is not a section")
        node = nxt
    node[parts[-1]] = value


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "not found"
        raise BadInput(f"{path}: pipeline file {what}; pass a pipeline YAML, e.g. pipelines/penguins.yaml")
    dirs = conf_dirs(path)
    raw = _expand(_read_yaml(path), dirs, str(path))
    for override in overrides:
        apply_override(raw, override)
        raw = _expand(raw, dirs, f"override '{override}'")
    return validate_config(raw, str(path))


def validate_config(raw: dict[str, Any], where: str) -> PipelineConfig:
    # The gates section is read as the generator's modality asks (a table's gates, or an image's), so
    # an image gate in a table's pipeline is an unknown key, not a silent switch to image gates.
    image = _modality(raw) == "image"
    gates_model, other_model = (ImageGatesConfig, GatesConfig) if image else (GatesConfig, ImageGatesConfig)
    section = {**raw}
    if "gates" in raw:
        try:
            section["gates"] = gates_model.model_validate(raw["gates"])
        except ValidationError as exc:
            extra = next((e for e in exc.errors() if e["type"] == "extra_forbidden" and len(e["loc"]) == 1), None)
            if extra and str(extra["loc"][0]) in other_model.model_fields:
                this, other, preset = ("images", "tables", "images") if image else ("tables", "images", "default")
                raise BadInput(f"{where}: gates.{extra['loc'][0]} applies to {other}, not {this}; use gates: {preset} (or none)") from None
            raise BadInput(describe_error(exc, where, gates_model, prefix=("gates",))) from None
    try:
        config = PipelineConfig.model_validate(section)
    except ValidationError as exc:
        raise BadInput(describe_error(exc, where, PipelineConfig)) from None
    from synthaug.generators.base import get_generator, make_config

    try:
        cls = get_generator(config.generator.name)
        params = make_config(cls.Config, config.generator.params).model_dump(mode="json")
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None
    # The resolved, typed values: what the manifest records and the config hash covers.
    return config.model_copy(update={"generator": config.generator.model_copy(update={"params": params})})


def describe_error(exc: ValidationError, where: str, model: type[BaseModel], prefix: tuple[str, ...] = ()) -> str:
    """One line for the first error; an unknown key comes first (a misspelt key is often why
    another one is "missing"). `prefix`: where `model` sits in the pipeline (("gates",))."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    key = ".".join([*prefix, *loc])
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{where}: unknown key '{key}'; allowed keys there: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"{where}: missing key '{key}'; add it (see README, 'A pipeline YAML')"
    return f"{where}: key '{key}': {err['msg']} (got {short_repr(err.get('input'))})"


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    for part in loc:
        field = model.model_fields.get(part) or next((f for f in model.model_fields.values() if f.alias == part), None)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return [f.alias or name for name, f in model.model_fields.items()]
