"""Differentially private training of the tabular families: DP-SGD through Opacus, and DP-safe preprocessing.

A family trains privately when a `PrivacyConfig` is set before `fit` (a fit-time option, not a
hyperparameter, so the family's `Config` is unchanged)::

    gen = get_generator("vae")(params).with_privacy(PrivacyConfig(epsilon=3.0), declared)
    gen.fit(train, schema, trainer, seed=0)
    gen.fit_info["privacy"]   # noise multiplier, sample rate, steps, accountant, epsilon spent (<= target)

`declared` holds the public facts about each column (the `columns` of a schema override file):
{name: {"kind": ..., "min": ..., "max": ..., "categories": [...], "decimals": ..., "nullable": bool}}.

What is private, and how (the guarantee is (epsilon, delta)-DP for adding or removing one training row):

- **Training**: DP-SGD (Abadi et al. 2016). Every step draws a Poisson batch (each row with
  probability q = batch_size / n; opacus `UniformWithReplacementSampler`), computes per-example
  gradients, clips each to `max_grad_norm`, sums, adds N(0, (noise_multiplier * max_grad_norm)^2)
  and divides by the expected batch size (opacus `DPOptimizer`). The noise multiplier is
  calibrated (opacus `get_noise_multiplier`) so the accountant's epsilon after the fixed
  schedule of ceil(epochs / q) steps is at most the target. No early stopping, no epoch selection,
  no validation rows: the last weights are kept.
- **Preprocessing**: nothing is measured on the data. Column kinds, bounds and categories come from
  the declared schema (or, for kinds and booleans, from the Arrow type); numeric columns are
  encoded with fixed equal-width modes over the declared [min, max] (no mixture fitted on the
  data); every column gets a null indicator unless declared `nullable: false` (no null rate is
  read); only declared structure rules are kept. `dp_preprocessing_plan` says where each
  statistic came from and refuses (BadInput) a column that would need a data statistic.
- **Not covered**: the number of training rows n (used in q and delta="auto", as Opacus does);
  the column names and Arrow types (treated as public structure); anything the pipeline computes
  on real rows outside `fit` (split, GX suite, reports, source hashes).

Per-example gradients come from Opacus' hooks (`GradSampleModule`, the GAN critic, whose
parameters all sit in `nn.Linear` layers) or from `per_sample_grads` (torch.func vmap(grad), the
engine Opacus itself falls back to), for models whose parameters are used outside `forward`
(the VAE's output scales, the RBM's energy). Either way the clipping, noise, Poisson sampling and
accounting are Opacus'.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from synthaug.errors import BadInput
from synthaug.schema import ColumnSpec, Schema
from synthaug.transforms.tabular import TabularEncoder

AUTO_DELTA_CAP = 1e-5
NOISE_STREAM = 0x4E4F4953  # the random stream of the DP noise ("NOIS")
SAMPLE_STREAM = 0x53414D50  # the random stream of the Poisson batches ("SAMP")
TEMPLATE_HINT = (
    "`synthaug schema DATA --out schema.json` writes a template, but its values come from the data: replace them with public ones"
)


class PrivacyConfig(BaseModel):
    """Differential privacy of one training run (the pipeline's `privacy:` section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float = Field(..., gt=0, description="target epsilon of the whole run; the accountant's value after training is at most this")
    delta: float | Literal["auto"] = Field("auto", description="target delta; auto = min(1e-5, 1 / (n * sqrt(n))) for n training rows")
    max_grad_norm: float = Field(1.0, gt=0, description="per-example gradient clipping norm")
    accountant: Literal["rdp", "prv"] = Field("rdp", description="opacus accountant: Renyi DP, or privacy random variables (tighter)")
    epochs: int = Field(
        30, gt=0, le=10_000, description="fixed schedule: expected passes over the training rows (steps = ceil(epochs / q))"
    )
    unit: str = Field("row", description="privacy unit: 'row' (one row = one person); a user-id column is not supported yet")
    numeric_modes: int = Field(
        1,
        ge=1,
        le=64,
        description="fixed equal-width modes per numeric column over its declared [min, max] (replaces the data-fitted mixture)",
    )

    @field_validator("epsilon", "max_grad_norm")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("delta")
    @classmethod
    def _delta(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            return v
        if not (math.isfinite(v) and 0 < v < 1):
            raise ValueError("must be 'auto' or a number in (0, 1)")
        return v


def resolve_delta(delta: float | str, n_rows: int) -> float:
    """`delta: auto` -> min(1e-5, 1 / (n * sqrt(n))): well below 1/n, so no row is likely released as is."""
    if delta == "auto":
        return min(AUTO_DELTA_CAP, 1.0 / (n_rows * math.sqrt(n_rows)))
    return float(delta)


def reserve_budget(
    config: PrivacyConfig,
    *,
    ledger: str | Any,
    source_sha256: str,
    n_rows: int,
    run_id: str,
    max_epsilon: float | None = None,
    max_total_epsilon: float | None = None,
):
    """Before training: refuse a run above `max_epsilon` (per run), then reserve its target
    (epsilon, delta) in the ledger under `max_total_epsilon` (all releases of the source).
    Returns the `Reservation` to commit (with the epsilon actually spent) on publish, or refund."""
    from synthaug.training.ledger import Ledger

    if max_epsilon is not None and config.epsilon > max_epsilon:
        raise BadInput(f"privacy.epsilon={config.epsilon:g} is above max_epsilon={max_epsilon:g} per release; lower privacy.epsilon")
    book = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    return book.reserve(
        source_sha256,
        config.unit,
        config.epsilon,
        resolve_delta(config.delta, n_rows),
        run_id,
        max_total_epsilon,
        mechanism="DP-SGD (Poisson-subsampled Gaussian, opacus)",
        accountant=config.accountant,
    )


def check_unit(config: PrivacyConfig, schema: Schema) -> None:
    """Only row-level privacy is implemented; a user-id column is refused with what to do."""
    if config.unit == "row":
        return
    if config.unit in schema.names:
        raise BadInput(
            f"privacy.unit='{config.unit}': user-level privacy (all rows of one {config.unit} together) is not implemented yet; "
            "use privacy.unit=row and keep one row per person"
        )
    raise BadInput(f"privacy.unit='{config.unit}' is neither 'row' nor a column of the data; use privacy.unit=row")


# -- DP-safe preprocessing -------------------------------------------------------------------
_TYPE_KIND = "arrow type"


def _type_kind(t: pa.DataType) -> str:
    """The kind an Arrow type implies without looking at values (inference also uses counts: not in DP mode)."""
    t = t.value_type if pa.types.is_dictionary(t) else t
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "continuous"
    return "categorical"


def _declared_of(declared: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    value = (declared or {}).get(name) or {}
    if not isinstance(value, Mapping):
        raise BadInput(f"declared schema: column '{name}' must map to fields such as min, max, categories (got {type(value).__name__})")
    return dict(value)


def dp_preprocessing_plan(schema: Schema, declared: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Where every statistic the encoder and the saved schema use comes from, per column, in DP mode.

    Sources: "declared" (the user's schema file), "arrow type" (the column's type, public
    structure), "fixed" (a data-independent choice). Nothing comes from the data. Raises
    BadInput, naming the column and what to declare, when a statistic would need the data.
    """
    unknown = sorted(set(declared or {}) - set(schema.names))
    if unknown:
        raise BadInput(f"declared schema: column '{unknown[0]}' is not in the data; columns there: {', '.join(schema.names)}")
    arrow = schema.arrow_schema()
    plan: dict[str, dict[str, str]] = {}
    for name in schema.names:
        d = _declared_of(declared, name)
        t = arrow.field(name).type
        kind = d.get("kind") or _type_kind(t)
        entry = {"kind": "declared" if "kind" in d else _TYPE_KIND}
        nullable = d.get("nullable", True)
        if kind in ("continuous", "integer", "datetime"):
            if d.get("min") is None or d.get("max") is None:
                what = "min/max (in ticks of its unit)" if kind == "datetime" else "min/max"
                raise BadInput(
                    f"column '{name}' has no declared {what}; DP mode needs public bounds: add them to your schema file "
                    f'(source.schema: {{"columns": {{"{name}": {{"min": ..., "max": ...}}}}}}); {TEMPLATE_HINT}'
                )
            if not (isinstance(d["min"], (int, float)) and isinstance(d["max"], (int, float))) or not d["min"] <= d["max"]:
                raise BadInput(
                    f"declared schema: column '{name}' has min {d['min']!r} and max {d['max']!r}; give two numbers with min <= max"
                )
            entry.update(min="declared", max="declared", modes="fixed: equal-width modes over the declared bounds")
            entry["decimals"] = "declared" if d.get("decimals") is not None else "fixed: not rounded"
        elif kind == "categorical":
            if not d.get("categories"):
                raise BadInput(
                    f"column '{name}' has no declared categories; DP mode needs the public list of its categories "
                    f'(a rare category\'s existence is private): add them to your schema file (source.schema: {{"columns": {{"{name}": '
                    f'{{"categories": [...]}}}}}}), or declare "kind": "id" for a key column; {TEMPLATE_HINT}'
                )
            entry["categories"] = "declared"
        elif kind == "boolean":
            entry["categories"] = _TYPE_KIND
        elif kind == "id":
            entry["new ids"] = "fixed: numbered from the declared min/max" if d.get("max") is not None else "fixed: numbered from 0"
            nullable = False
        else:  # constant: its value would be read from the data
            raise BadInput(
                f"column '{name}' is declared constant, whose value DP mode cannot read from the data; declare it "
                f'"kind": "categorical" with "categories": [<the value>], or drop the column'
            )
        if kind == "id":
            entry["nulls"] = "fixed: none (id)"
        else:
            entry["nulls"] = "declared not nullable" if nullable is False else "fixed: may be null (no null rate read)"
        plan[name] = entry
    return plan


def dp_schema(schema: Schema, declared: Mapping[str, Any] | None) -> Schema:
    """The schema a DP model is trained with and saved with: names, order and Arrow types of the
    source; kinds, bounds and categories as declared; null_rate 1.0 = "may be null" (not measured);
    only declared structure rules (discovered ones were read off the data)."""
    dp_preprocessing_plan(schema, declared)  # refuses what would need the data
    arrow = schema.arrow_schema()
    columns = []
    for name in schema.names:
        d = _declared_of(declared, name)
        t = arrow.field(name).type
        base = t.value_type if pa.types.is_dictionary(t) else t
        kind = d.get("kind") or _type_kind(t)
        nullable = d.get("nullable", True) is not False and kind != "id"
        spec = ColumnSpec(name=name, kind=kind, dtype=str(base), null_rate=1.0 if nullable else 0.0)
        if kind in ("continuous", "integer", "datetime", "id"):
            spec.min, spec.max = d.get("min"), d.get("max")
            if pa.types.is_integer(base) or pa.types.is_timestamp(base):  # integer bounds, as inference stores them
                spec.min = None if spec.min is None else math.ceil(spec.min)
                spec.max = None if spec.max is None else math.floor(spec.max)
        if kind == "continuous":
            spec.decimals = d.get("decimals")
        if kind == "datetime":
            spec.unit, spec.tz = base.unit, (str(base.tz) if base.tz else None)
        if kind == "categorical":
            try:
                spec.categories = pa.array(list(d["categories"])).cast(base).to_pylist()
            except (pa.ArrowException, TypeError, ValueError):
                raise BadInput(
                    f"declared schema: column '{name}' has categories {list(d['categories'])[:5]!r}, which are not {base} values; "
                    "list values of the column's own type"
                ) from None
        elif kind == "boolean":
            spec.categories = [False, True]
        columns.append(spec)
    note = (
        "DP mode: kinds, bounds and categories are declared (or follow the Arrow type); null_rate 1.0 means "
        "'may be null' (not measured); only declared rules are kept"
    )
    rules = [r for r in schema.rules if r.origin == "declared"]
    return Schema(columns=columns, arrow=schema.arrow, notes=[note], rules=rules)


def dp_encoder(schema: Schema, modes: int = 1) -> TabularEncoder:
    """A TabularEncoder whose state comes from `schema` alone (a `dp_schema`): numeric columns get
    `modes` fixed equal-width modes over [min, max] (a value's mode is the nearest centre, its
    offset the position inside that mode, so values inside the bounds round-trip and values
    outside are clamped to them); categories as declared; a null indicator per nullable column."""
    from synthaug.transforms import tabular as T  # its private helpers keep integer columns exact, as fit does

    arrow = schema.arrow_schema()
    columns: dict[str, dict[str, Any]] = {}
    for spec in schema.columns:
        state: dict[str, Any] = {"has_nulls": spec.null_rate > 0}
        if spec.is_numeric:
            t = arrow.field(spec.name).type
            if T._is_exact(t):
                signed = T._signed(t)
                lo_key, hi_key = T._key_bounds(spec, t)
                origin = lo_key - (1 << 63) if signed else lo_key
                if spec.kind != "datetime" and T._plain_float_range(origin, hi_key - lo_key):
                    origin = 0
                state["origin"] = origin
                o = T._key(origin, signed)
                lo, hi = float(lo_key - o), float(hi_key - o)  # Python ints: exact, no wrap-around
            else:
                scale = T._float_scale(np.array([spec.min, spec.max], dtype=float))
                state["scale"] = scale
                lo, hi = float(spec.min) / scale, float(spec.max) / scale
            width = (hi - lo) / modes if hi > lo else 1.0
            means = lo + width * (np.arange(modes) + 0.5) if hi > lo else np.full(modes, lo)
            state.update(means=means.tolist(), stds=[width / 8.0] * modes, weights=[1.0 / modes] * modes, fill=(lo + hi) / 2.0)
        elif spec.kind in ("categorical", "boolean"):
            state["categories"] = list(spec.categories or [])
        columns[spec.name] = state
    return TabularEncoder.from_state({"columns": columns}, schema)


# -- DP-SGD ---------------------------------------------------------------------------------------
def calibrate_noise(config: PrivacyConfig, sample_rate: float, steps: int, delta: float) -> float:
    """The smallest noise multiplier (opacus binary search, 0.01 tolerance) whose epsilon after
    `steps` Poisson-subsampled Gaussian steps is at most the target."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": a looser bound, still valid
        try:
            return float(
                get_noise_multiplier(
                    target_epsilon=config.epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps, accountant=config.accountant
                )
            )
        except ValueError:
            raise BadInput(
                f"privacy.epsilon={config.epsilon} cannot be reached in {steps} steps at sample rate {sample_rate:.3g} "
                f"(delta {delta:.3g}) with any noise; raise privacy.epsilon, lower privacy.epochs, or try privacy.accountant=prv"
            ) from None


def epsilon_of(accountant: str, history: list[tuple[float, float, int]], delta: float) -> float:
    """Epsilon of a mechanism history [(noise_multiplier, sample_rate, steps)] under an opacus accountant."""
    from opacus.accountants import create_accountant

    acc = create_accountant(accountant)
    acc.history = list(history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(acc.get_epsilon(delta)) if history else 0.0


class DPSGD:
    """One private optimiser: Poisson batches of `n_rows`, per-example clipping and Gaussian noise
    (opacus DPOptimizer, seeded), and the accountant (stepped by the optimiser's hook).

    Per step: `batches()` gives the sampled row indices; set per-example gradients (Opacus hooks
    fill `p.grad_sample`, or pass `grad_samples`), then `step(public=...)`: clip, sum, noise,
    divide by the expected batch size, add `public` gradients (terms computed without any real
    row, e.g. a GAN critic's fake batch), and step the wrapped optimiser.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        config: PrivacyConfig,
        *,
        n_rows: int,
        batch_size: int,
        seed: int,
        noise_multiplier: float | None = None,
    ) -> None:
        from opacus.accountants import create_accountant
        from opacus.optimizers import DPOptimizer
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler

        self.config = config
        self.n_rows = n_rows
        self.expected_batch = max(1, min(batch_size, n_rows))
        self.sample_rate = self.expected_batch / n_rows
        self.steps = math.ceil(config.epochs / self.sample_rate)
        self.steps_per_epoch = math.ceil(1 / self.sample_rate)
        self.delta = resolve_delta(config.delta, n_rows)
        if noise_multiplier is None:
            noise_multiplier = calibrate_noise(config, self.sample_rate, self.steps, self.delta)
        self.noise_multiplier = noise_multiplier
        self.accountant = create_accountant(config.accountant)
        self.optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=config.max_grad_norm,
            expected_batch_size=self.expected_batch,
            loss_reduction="mean",
            generator=torch.Generator().manual_seed(_stream(seed, NOISE_STREAM)),
        )
        self.optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        self.sampler = UniformWithReplacementSampler(
            num_samples=n_rows,
            sample_rate=self.sample_rate,
            generator=torch.Generator().manual_seed(_stream(seed, SAMPLE_STREAM)),
            steps=self.steps,
        )
        self.taken = 0
        self.stopped = f"fixed DP schedule ({self.steps} steps)"

    @property
    def params(self) -> list[nn.Parameter]:
        return self.optimizer.params

    def batches(self, max_minutes: float | None = None) -> Iterator[torch.Tensor]:
        """Row indices of each step's Poisson batch (possibly empty); stops early (spending less)
        only at the time limit."""
        start = time.monotonic()
        for idx in self.sampler:
            if max_minutes and time.monotonic() - start > 60 * max_minutes:
                self.stopped = f"time limit ({max_minutes} min) after {self.taken} of {self.steps} steps"
                return
            yield torch.as_tensor(idx, dtype=torch.long)

    def step(
        self,
        grad_samples: Mapping[nn.Parameter, torch.Tensor] | None = None,
        public: Mapping[nn.Parameter, torch.Tensor] | None = None,
    ) -> None:
        for p, g in (grad_samples or {}).items():
            p.grad_sample = g
        for p in self.params:
            if getattr(p, "grad_sample", None) is None:  # empty batch, or a parameter the batch did not reach
                p.grad_sample = p.new_zeros((0, *p.shape))
        if self.optimizer.pre_step():  # clip, sum, noise, / expected batch; the accountant steps here
            for p, g in (public or {}).items():
                p.grad = p.grad + g
            self.optimizer.original_optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.taken += 1

    def spent(self) -> float:
        return epsilon_of(self.config.accountant, self.accountant.history, self.delta)

    def report(self, private: str) -> dict[str, Any]:
        """What fit_info["privacy"] records; refuses (RuntimeError) a spend above the target."""
        spent = self.spent()
        if spent > self.config.epsilon * (1 + 1e-9):
            raise RuntimeError(f"DP training spent epsilon {spent} above the target {self.config.epsilon}; this is a bug")
        for p in self.params:  # opacus bookkeeping attributes, so the module pickles and copies cleanly
            for attr in ("grad_sample", "summed_grad", "_forward_counter", "_current_grad_sample"):
                if hasattr(p, attr):
                    delattr(p, attr)
        return {
            "mechanism": "DP-SGD (Poisson-subsampled Gaussian, opacus)",
            "private": private,
            "unit": self.config.unit,
            "accountant": self.config.accountant,
            "target_epsilon": self.config.epsilon,
            "epsilon": spent,
            "delta": self.delta,
            "delta_rule": "auto: min(1e-5, 1/(n*sqrt(n)))" if self.config.delta == "auto" else "declared",
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.config.max_grad_norm,
            "sample_rate": self.sample_rate,
            "expected_batch_size": self.expected_batch,
            "steps": self.taken,
            "planned_steps": self.steps,
            "epochs": self.config.epochs,
            "train_rows": self.n_rows,
            "preprocessing_epsilon": 0.0,
        }


def _stream(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


class _Call(nn.Module):
    """`fn(module, *inputs)` as a forward, so torch.func.functional_call can swap the module's parameters."""

    def __init__(self, module: nn.Module, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.m = module
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(self.m, *xs)


def per_sample_grads(
    module: nn.Module, loss: Callable[..., torch.Tensor], *inputs: torch.Tensor, params: list[nn.Parameter] | None = None
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-example gradients of `loss(module, *rows)` (a scalar for a batch of one) for every
    trainable parameter (or `params`): torch.func vmap(grad), as opacus' functorch grad sampler.
    Each returned tensor is (batch, *param.shape). Every input is split along its first axis."""
    named = {k: p for k, p in module.named_parameters() if p.requires_grad and (params is None or any(p is q for q in params))}
    n = len(inputs[0])
    if n == 0:
        return {p: p.new_zeros((0, *p.shape)) for p in named.values()}
    call = _Call(module, loss)
    values = {f"m.{k}": p.detach() for k, p in named.items()}

    def one(ps: dict[str, torch.Tensor], *row: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(call, ps, tuple(r.unsqueeze(0) for r in row))

    grads = torch.func.vmap(torch.func.grad(one), in_dims=(None, *([0] * len(inputs))))(values, *inputs)
    return {p: grads[f"m.{k}"] for k, p in named.items()}


def clip_rows(grads: Mapping[nn.Parameter, torch.Tensor], max_norm: float) -> dict[nn.Parameter, torch.Tensor]:
    """Each example's gradient (over all parameters together) scaled to norm <= max_norm, as DPOptimizer clips."""
    if not grads:
        return {}
    first = next(iter(grads.values()))
    if len(first) == 0:
        return dict(grads)
    norms = torch.stack([g.reshape(len(g), -1).norm(2, dim=1) for g in grads.values()], 1).norm(2, dim=1)
    factor = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    return {p: torch.einsum("i,i...->i...", factor, g) for p, g in grads.items()}


# -- the families' side ------------------------------------------------------------------------------
class PrivateTabular:
    """Mixin of the tabular families that train with DP (Tags(dp=True)): `with_privacy` (or set
    `privacy` and `declared`) before `fit`; without it, `fit` is the family's normal path, untouched.

    A family implements `_fit_private(x, trainer, seed) -> DPSGD` (train `self.module`, already
    built, on the encoded rows) and may list config changes DP needs in `_dp_config_overrides()`
    (e.g. the GAN's pac=1): they are applied to `self.config` (so the saved model rebuilds) and
    recorded in fit_info["privacy"]["config_overrides"].
    """

    privacy: PrivacyConfig | None = None
    declared: Mapping[str, Any] | None = None

    def with_privacy(self, config: PrivacyConfig | Mapping[str, Any] | None, declared: Mapping[str, Any] | None = None):
        """Train with DP on the next fit (None: normally). `declared`: public per-column facts (see module doc)."""
        from synthaug.generators.base import make_config

        if config is not None and not isinstance(config, PrivacyConfig):
            config = make_config(PrivacyConfig, dict(config), where="privacy")
        self.privacy, self.declared = config, dict(declared or {})
        return self

    def _fit(self, table: pa.Table, schema: Schema, trainer, *, seed: int) -> dict[str, Any] | None:
        if self.privacy is None:
            return super()._fit(table, schema, trainer, seed=seed)
        return fit_private(self, table, schema, trainer, seed)

    def _dp_config_overrides(self) -> dict[str, Any]:
        return {}

    def _fit_private(self, x: np.ndarray, trainer, seed: int) -> DPSGD:
        raise NotImplementedError


def fit_private(gen: Any, table: pa.Table, schema: Schema, trainer, seed: int) -> dict[str, Any]:
    """The DP `_fit` of a PrivateTabular family: DP-safe schema and encoder, the family's private
    training, and what fit_info records (the data digest is dropped: a hash of the rows is not DP)."""
    cfg: PrivacyConfig = gen.privacy
    check_unit(cfg, schema)
    if trainer.world_size > 1:
        raise BadInput(f"DP training runs on one device; set trainer.devices=1 (got {trainer.world_size} devices)")
    plan = dp_preprocessing_plan(schema, gen.declared)
    gen.schema = dp_schema(schema, gen.declared)
    gen.encoder = dp_encoder(gen.schema, cfg.numeric_modes)
    x = gen.encoder.encode(table)
    overrides = {k: v for k, v in gen._dp_config_overrides().items() if getattr(gen.config, k) != v}
    if overrides:
        gen.config = gen.config.model_copy(update=overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen.module = gen._build()
        dp = gen._fit_private(x, trainer, seed)
    gen.module.cpu().eval()
    privacy = dp.report(private=getattr(gen, "dp_private_part", "the whole model"))
    privacy.update(preprocessing=plan, config_overrides=overrides, device="cpu")
    return {
        "data_sha256": None,
        "best_epoch": None,
        "best_score": None,
        "monitor": None,
        "epochs": cfg.epochs,
        "stopped": dp.stopped,
        "privacy": privacy,
    }
