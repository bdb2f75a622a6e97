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
from synthaug.validation.gates import GatesConfig

PRESET_DIRS = {"generator": "generators", "trainer": "trainers", "gates": "gates"}
DEFAULT_GATES = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceConfig(_Strict):
    path: str
    format: Literal["auto", "csv", "parquet"] = "auto"
    schema_path: str | None = Field(None, alias="schema", description="schema JSON overriding inference")
    sdv_metadata: str | None = Field(None, description="SDV metadata JSON whose sdtypes set the column kinds")


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


class BalanceConfig(_Strict):
    column: str
    strategy: Literal["equalize", "complement", "ratios"] = Field(
        "equalize", description="equalize: equal synthetic counts; complement: fill each class up to the largest real class; ratios: as given"
    )
    ratios: dict[str, float] | None = Field(None, description="category -> share, for strategy 'ratios'")


class AugmentConfig(_Strict):
    balance: BalanceConfig | None = None


class ValidationConfig(_Strict):
    expectations: list[dict[str, Any]] = Field(default_factory=list, description="extra GX expectations: {expectation: name, kwargs: {...}}")
    suite: str | None = Field(None, description="an existing GX suite JSON used instead of the derived one")
    metrics_rows: int = Field(20_000, gt=0, description="synthetic rows sampled (seeded) for fidelity and privacy metrics")


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
    gates: GatesConfig = GatesConfig()
    output: OutputConfig

    def config_hash(self) -> str:
        """sha256 of everything that shapes the output (not where it goes, nor how it is shown).

        Generator params are resolved to the family's typed config when the pipeline is loaded,
        so `{}` and the defaults written out hash alike."""
        data = self.model_dump(mode="json", by_alias=True)
        data.pop("output")
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
    raw.setdefault("gates", DEFAULT_GATES)
    for key, kind in (("generator", "generator"), ("trainer", "trainer"), ("gates", "gates")):
        value = raw.get(key)
        if isinstance(value, str) and kind == "generator" and not _has_preset(kind, value, dirs):
            value = {"name": value}  # a registered family without a preset file: its defaults
        if isinstance(value, str):
            value = {"preset": value}
        if isinstance(value, dict) and "preset" in value:
            rest = {k: v for k, v in value.items() if k != "preset"}
            raw[key] = _merge(load_preset(kind, str(value["preset"]), dirs, where), rest)
    return raw


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
    try:
        config = PipelineConfig.model_validate(raw)
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


def describe_error(exc: ValidationError, where: str, model: type[BaseModel]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
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
