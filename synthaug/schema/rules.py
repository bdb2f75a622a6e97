"""Structure rules: what holds across the columns of a real table, found when the schema is
inferred, kept by every generator, and checked by validation.

Marginal scores miss this structure, yet a classifier sees it at once: money amounts that are
nearly always multiples of 50, a total that is exactly price x quantity, a species on an island
where it never lives. Each rule is one JSON object in schema.json's `"rules"` list, so a person
can read, edit, remove or add it (see `synthaug.schema.tabular.read_overrides`):

- `granularity` (a distribution, not a hard rule): for a numeric column, the share of its
  non-zero values that are multiples of each listed step (`{"step": 100, "share": 0.8}`: 80% of
  values are multiples of 100). Generation rounds each value to a step drawn so these shares come
  back; validation reports the total-variation distance of the step levels.
- `derived`: `column = f(inputs)` in (nearly) every row, within the column's rounding (exact for
  integers): `linear` (`sum(coefficients[i] * inputs[i]) + intercept`; coefficients default to 1,
  a sum), `product` (`factor * a * b`) or `ratio` (`factor * a / b`). Generation computes the
  column from its inputs.
- `inequality`: `left <= right` in every row where both are present.
- `functional_dependency`: each value of `determinant` goes with one value of `dependent`
  (`mapping` lists the pairs), e.g. a product code and its category.
- `allowed_combinations`: the pairs of values of two categorical columns that occur
  (`pairs`, with their `counts` as repair weights); others are impossible (species x island).

`discover_rules` finds them on a seeded sample (at most DISCOVERY_ROWS rows, DISCOVERY_SECONDS of
wall time, pairs of columns at most), only where the data is strong evidence (tested against what
independent columns would show by chance), skipping id and constant columns and tolerating nulls.
`apply_rules` makes generated rows keep them by bounded repair, counting every change; it never
drops rows. `rule_violations` is the shared check that repair and validation both use.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from synthaug.schema.tabular import ColumnSpec, Schema

# -- discovery budget -------------------------------------------------------------------
DISCOVERY_ROWS = 20_000  # rules are found on a seeded sample of at most this many rows
DISCOVERY_SECONDS = 5.0  # wall-time cap, checked inside every search loop (a note says when it is hit)
MAX_NUMERIC = 40  # numeric columns searched for derived columns and inequalities (the first ones)
MAX_CATEGORICAL = 60  # categorical columns searched for dependencies and combinations
FD_MAX_CATEGORIES = 1000  # a determinant with more values is not recorded (its mapping would be the data)
PAIR_MAX_CATEGORIES = 50  # allowed combinations: both columns have at most this many categories
MAX_LINEAR_INPUTS = 6  # a derived column is a combination of at most this many others
DERIVED_MIN_HOLDS = 0.995  # share of complete rows where a derived formula must hold
MIN_ROWS = 30  # rows a pair of columns must share before anything is concluded about it
MAX_REPLACED_SHARE = 0.25  # apply_rules replaces at most this share of a batch's rows with valid ones
_EXACT = 2.0**53  # numeric columns beyond this magnitude are not searched (float64 would round them)


# discovered: found in the data by inference; declared: written by a person (kept as given).
Origin = Literal["discovered", "declared"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Every kind ends with `origin: Origin = "declared"` (there, not here, so "kind" leads in the JSON).
    hard: ClassVar[bool] = True  # granularity is a distribution, not a hard rule

    def used(self) -> list[str]:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def label(self) -> str:  # pragma: no cover
        raise NotImplementedError


class StepShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int | float = Field(gt=0)
    share: float = Field(ge=0, le=1)


class GranularityRule(_Rule):
    kind: Literal["granularity"] = "granularity"
    column: str
    # share of the column's non-zero values that are multiples of each step (finest values keep
    # the column's own resolution: 1 for integers, 10**-decimals for decimals)
    levels: list[StepShare] = Field(min_length=1)
    origin: Origin = "declared"
    hard: ClassVar[bool] = False

    def used(self) -> list[str]:
        return [self.column]

    def label(self) -> str:
        return f"granularity: {self.column}"


class DerivedRule(_Rule):
    kind: Literal["derived"] = "derived"
    column: str
    op: Literal["linear", "product", "ratio"] = "linear"
    inputs: list[str] = Field(min_length=1)
    coefficients: list[float] | None = None  # linear: one per input; None means all 1 (a sum)
    intercept: float = 0.0  # linear only
    factor: float = 1.0  # product / ratio: column = factor * a * b, or factor * a / b
    holds: float | None = Field(None, ge=0, le=1)  # share of discovery rows where it held (for reading)
    origin: Origin = "declared"

    @model_validator(mode="after")
    def _shape(self) -> DerivedRule:
        if self.op in ("product", "ratio") and len(self.inputs) != 2:
            raise ValueError(f"a {self.op} rule takes exactly two inputs (got {self.inputs})")
        if self.coefficients is not None and (self.op != "linear" or len(self.coefficients) != len(self.inputs)):
            raise ValueError("coefficients are for linear rules, one per input")
        if self.column in self.inputs:
            raise ValueError(f"derived column '{self.column}' cannot be one of its own inputs")
        return self

    def used(self) -> list[str]:
        return [self.column, *self.inputs]

    def evaluate(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """The formula over float arrays (NaN where an input is missing or a divisor is 0)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.op == "product":
                out = self.factor * inputs[0] * inputs[1]
            elif self.op == "ratio":
                out = np.where(inputs[1] != 0, self.factor * inputs[0] / inputs[1], np.nan)
            else:
                coefs = self.coefficients or [1.0] * len(self.inputs)
                out = np.full(len(inputs[0]), float(self.intercept))
                for c, x in zip(coefs, inputs):
                    out = out + c * x
        return np.where(np.isfinite(out), out, np.nan)

    def formula(self) -> str:
        def num(v: float) -> str:
            return f"{v:.12g}"

        a = self.inputs
        if self.op == "product":
            return f"{'' if self.factor == 1 else num(self.factor) + ' * '}{a[0]} * {a[1]}"
        if self.op == "ratio":
            return f"{'' if self.factor == 1 else num(self.factor) + ' * '}{a[0]} / {a[1]}"
        terms = []
        for c, name in zip(self.coefficients or [1.0] * len(a), a):
            sign = "-" if c < 0 else "+"
            mag = "" if abs(c) == 1 else f"{num(abs(c))} * "
            terms.append(f"{sign} {mag}{name}")
        if self.intercept:
            terms.append(f"{'-' if self.intercept < 0 else '+'} {num(abs(self.intercept))}")
        text = " ".join(terms)
        return text[2:] if text.startswith("+ ") else text

    def label(self) -> str:
        return f"derived: {self.column} = {self.formula()}"


class InequalityRule(_Rule):
    kind: Literal["inequality"] = "inequality"
    left: str
    right: str  # left <= right wherever both are present
    origin: Origin = "declared"

    @model_validator(mode="after")
    def _two(self) -> InequalityRule:
        if self.left == self.right:
            raise ValueError("an inequality compares two different columns")
        return self

    def used(self) -> list[str]:
        return [self.left, self.right]

    def label(self) -> str:
        return f"inequality: {self.left} <= {self.right}"


class FunctionalDependencyRule(_Rule):
    kind: Literal["functional_dependency"] = "functional_dependency"
    determinant: str
    dependent: str
    mapping: list[tuple[Any, Any]]  # [determinant value, dependent value]
    origin: Origin = "declared"

    @model_validator(mode="after")
    def _unique(self) -> FunctionalDependencyRule:
        if self.determinant == self.dependent:
            raise ValueError("a functional dependency links two different columns")
        keys = [k for k, _ in self.mapping]
        if len(set(keys)) != len(keys):
            raise ValueError(f"mapping of '{self.determinant}' lists a value twice; each value maps to one '{self.dependent}'")
        return self

    def used(self) -> list[str]:
        return [self.determinant, self.dependent]

    def label(self) -> str:
        return f"functional_dependency: {self.determinant} -> {self.dependent}"


class AllowedCombinationsRule(_Rule):
    kind: Literal["allowed_combinations"] = "allowed_combinations"
    columns: tuple[str, str]  # repair changes the second column (the first when a condition fixes the second)
    pairs: list[tuple[Any, Any]] = Field(min_length=1)
    counts: list[int] | None = None  # how often each pair occurs in the data: repair weights (None: equal)
    origin: Origin = "declared"

    @model_validator(mode="after")
    def _shape(self) -> AllowedCombinationsRule:
        if self.columns[0] == self.columns[1]:
            raise ValueError("allowed combinations link two different columns")
        if self.counts is not None and len(self.counts) != len(self.pairs):
            raise ValueError("counts has one entry per pair")
        return self

    def used(self) -> list[str]:
        return list(self.columns)

    def label(self) -> str:
        return f"allowed_combinations: {self.columns[0]} x {self.columns[1]}"


Rule = Annotated[
    Union[GranularityRule, DerivedRule, InequalityRule, FunctionalDependencyRule, AllowedCombinationsRule],
    Field(discriminator="kind"),
]
RULE_KINDS = ("granularity", "derived", "inequality", "functional_dependency", "allowed_combinations")
_ORDER = {k: i for i, k in enumerate(RULE_KINDS)}


def labels(rules: Sequence[_Rule]) -> list[str]:
    """One unique, readable name per rule (a number is added when two rules read the same)."""
    seen: Counter[str] = Counter()
    out = []
    for rule in rules:
        text = rule.label()
        seen[text] += 1
        out.append(text if seen[text] == 1 else f"{text} #{seen[text]}")
    return out


# -- checks against the columns ----------------------------------------------------------
_NUMBER = ("continuous", "integer")
_CATEGORY = ("categorical", "boolean")


def rule_problem(rule: _Rule, columns: dict[str, ColumnSpec]) -> str | None:
    """Why `rule` cannot apply to these columns (None when it can)."""
    for name in rule.used():
        if name not in columns:
            return f"column '{name}' is not in the schema; columns are: {', '.join(columns)}"
    kinds = {name: columns[name].kind for name in rule.used()}
    if isinstance(rule, (GranularityRule, DerivedRule)):
        bad = [n for n, k in kinds.items() if k not in _NUMBER]
        if bad:
            return f"column '{bad[0]}' is {kinds[bad[0]]}; {rule.kind} rules take continuous or integer columns"
    if isinstance(rule, GranularityRule):
        res = _resolution(columns[rule.column])
        for level in rule.levels:
            if res is not None and not _is_multiple(Fraction(str(level.step)), res):
                return f"step {level.step} is not a multiple of column '{rule.column}'s resolution {float(res):g}"
    if isinstance(rule, InequalityRule):
        a, b = columns[rule.left], columns[rule.right]
        if a.kind in _NUMBER and b.kind in _NUMBER:
            return None
        if a.kind == b.kind == "datetime" and a.dtype == b.dtype:
            return None
        return (
            f"columns '{a.name}' ({a.kind}, {a.dtype}) and '{b.name}' ({b.kind}, {b.dtype}) cannot be compared; "
            "inequalities take two numeric columns or two datetimes of one type"
        )
    if isinstance(rule, (FunctionalDependencyRule, AllowedCombinationsRule)):
        bad = [n for n, k in kinds.items() if k not in _CATEGORY]
        if bad:
            return f"column '{bad[0]}' is {kinds[bad[0]]}; {rule.kind} rules take categorical or boolean columns"
    return None


def check_rules(rules: Sequence[_Rule], columns: Sequence[ColumnSpec]) -> None:
    """ValueError naming the first rule that cannot apply to `columns`."""
    by_name = {c.name: c for c in columns}
    derived = Counter(r.column for r in rules if isinstance(r, DerivedRule))
    for i, (rule, text) in enumerate(zip(rules, labels(rules))):
        problem = rule_problem(rule, by_name)
        if problem:
            raise ValueError(f"rule {i + 1} ({text}): {problem}")
        if isinstance(rule, DerivedRule) and derived[rule.column] > 1:
            raise ValueError(f"rule {i + 1} ({text}): column '{rule.column}' is derived by more than one rule; keep one")


# -- reading columns ----------------------------------------------------------------------
def _dense(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


def _floats(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric column as float64, nulls and +-inf as NaN."""
    col = _dense(col)
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64())
    out = np.asarray(col.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=float).copy()
    out[~np.isfinite(out)] = np.nan
    return out


def _ticks(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A timestamp column as int64 ticks and its null mask."""
    col = _dense(col)
    ints = col.cast(pa.int64())
    null = np.asarray(ints.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(ints.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64).copy(), null


def _objects(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Values as Python objects (None for null), so they compare with the JSON rule values."""
    out = np.empty(len(col), dtype=object)
    out[:] = _dense(col).to_pylist()
    return out


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """int64 codes (-1 for None) and the distinct values, in order of appearance."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64), list(uniques)


def _resolution(spec: ColumnSpec) -> Fraction | None:
    """The column's finest step: 1 for integers, 10**-decimals for decimals, None when unknown."""
    if spec.kind == "integer":
        return Fraction(1)
    if spec.kind == "continuous" and spec.decimals is not None:
        return Fraction(1, 10**spec.decimals)
    return None


def _is_multiple(step: Fraction, res: Fraction) -> bool:
    return (step / res).denominator == 1


def _tolerance(spec: ColumnSpec, y: np.ndarray) -> np.ndarray:
    """How far a value may sit from its formula: half the column's rounding (plus float slack)."""
    if spec.kind == "integer":  # strictly under a half: a formula landing on .5 would round either way
        return np.full(len(y), 0.5 - 1e-6)
    if spec.decimals is not None:
        base = 0.5 * 10.0**-spec.decimals
    else:
        base = 0.0
    rel = 1e-9 if spec.dtype == "double" else 1e-6
    return base + rel * np.maximum(np.abs(np.nan_to_num(y)), 1.0)


def _round_to_spec(x: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if spec.kind == "integer":
            return np.round(x)
        if spec.decimals is not None:
            return np.round(x, spec.decimals)
    return x


def _safe(spec: ColumnSpec) -> bool:
    """Numeric columns whose values float64 holds exactly."""
    return all(v is None or abs(float(v)) < _EXACT for v in (spec.min, spec.max))


# -- discovery ----------------------------------------------------------------------------
class _OutOfTime(Exception):
    pass


class _Clock:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.stage = ""

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OutOfTime(self.stage)


def discover_rules(
    table: pa.Table,
    columns: Sequence[ColumnSpec],
    *,
    seed: int = 0,
    max_rows: int = DISCOVERY_ROWS,
    max_seconds: float = DISCOVERY_SECONDS,
) -> tuple[list[_Rule], list[str]]:
    """Rules that hold in `table` (see the module doc), and notes for people (e.g. the time cap hit).

    Runs on a seeded sample of at most `max_rows` rows; categorical rules found there are then
    counted on the whole table (rare combinations join the allowed pairs; a dependency a rare row
    breaks is dropped). Every search is over pairs of columns at most, except the one least-squares
    fit per numeric column that finds linear combinations.
    """
    import scipy.optimize  # noqa: F401 - imported before the clock starts: importing is not searching
    import scipy.special  # noqa: F401

    notes: list[str] = []
    full = table
    if table.num_rows > max_rows:
        index = np.sort(np.random.default_rng(seed).choice(table.num_rows, max_rows, replace=False))
        table = table.take(pa.array(index))
    clock = _Clock(max_seconds)
    modelled = [c for c in columns if c.kind not in ("id", "constant")]
    numeric = [c for c in modelled if c.kind in _NUMBER and _safe(c)]
    categorical = [c for c in modelled if c.kind in _CATEGORY]
    if len(numeric) > MAX_NUMERIC:
        notes.append(f"rule discovery searched the first {MAX_NUMERIC} of {len(numeric)} numeric columns for derived columns, inequalities")
        numeric = numeric[:MAX_NUMERIC]
    if len(categorical) > MAX_CATEGORICAL:
        notes.append(f"rule discovery searched the first {MAX_CATEGORICAL} of {len(categorical)} categorical columns for dependencies")
        categorical = categorical[:MAX_CATEGORICAL]
    found: list[_Rule] = []
    try:
        clock.stage = "granularity"
        values = {c.name: _floats(table.column(c.name)) for c in numeric}
        for spec in numeric:
            clock.check()
            rule = _discover_granularity(values[spec.name], spec)
            if rule:
                found.append(rule)
        clock.stage = "categorical dependencies"
        found += _discover_categorical(table, full, categorical, clock)
        clock.stage = "derived columns"
        found += _discover_derived(values, {c.name: c for c in numeric}, clock)
        clock.stage = "inequalities"
        found += _discover_inequalities(table, values, modelled, found, clock)
    except _OutOfTime as stop:
        notes.append(
            f"rule discovery stopped at its {clock.seconds:g} s cap while searching {stop}; rules of the searches before are kept, "
            f"others may be missing: declare them in a schema override file"
        )
    if full is not table:  # numeric rules found on the sample must hold on the whole table too
        specs = {c.name: c for c in columns}
        whole = _Frame(full)
        found = [r for r in found if not isinstance(r, (DerivedRule, InequalityRule)) or _holds_on(whole, r, specs)]
    derived = {r.column for r in found if isinstance(r, DerivedRule)}
    found = [r for r in found if not (isinstance(r, GranularityRule) and r.column in derived)]  # computed, not rounded
    position = {c.name: i for i, c in enumerate(columns)}
    found.sort(key=lambda r: (_ORDER[r.kind], [position[n] for n in r.used()]))
    for rule in found:
        rule.origin = "discovered"
    return found, notes


def _holds_on(frame: _Frame, rule: _Rule, specs: dict[str, ColumnSpec]) -> bool:
    broken = rule_violations(frame, rule, specs)
    if isinstance(rule, DerivedRule):
        return float(broken.mean()) <= 1 - DERIVED_MIN_HOLDS
    return not broken.any()


# granularity ------------------------------------------------------------------------------
_MANTISSAS = (Fraction(1), Fraction(2), Fraction(5, 2), Fraction(5))


def _ladder(res: Fraction, spread_units: float) -> list[int]:
    """Candidate steps, in units of the resolution: 2, 5, 10, 20, 25, 50, 100 ... up to half the spread
    (the middle 98% of values spans at least two steps)."""
    out = []
    for k in range(0, 19):
        for m in _MANTISSAS:
            s = m * 10**k
            if s.denominator == 1 and 1 < s <= spread_units / 2:
                out.append(int(s))
    return sorted(set(out))


def _discover_granularity(x: np.ndarray, spec: ColumnSpec) -> GranularityRule | None:
    res = _resolution(spec)
    if res is None:
        return None
    x = x[np.isfinite(x)]
    units = np.round(x / float(res)).astype(np.int64)
    units = units[units != 0]  # zero is a multiple of every step: it says nothing
    n = len(units)
    if n < 50:
        return None
    lo, hi = np.quantile(units, [0.01, 0.99])
    steps = _ladder(res, float(hi - lo))
    if not steps:
        return None
    shares = {s: float(np.mean(units % s == 0)) for s in steps}

    def z(s: int) -> float:
        chance = 1.0 / s
        return (shares[s] - chance) / math.sqrt(chance * (1 - chance) / n)

    # Informative only when a step holds far more values than chance (1/step) would put there.
    if not any(shares[s] - 1.0 / s >= 0.2 and z(s) >= 5 for s in steps):
        return None
    candidates = [s for s in steps if shares[s] - 1.0 / s >= 0.02 and z(s) >= 3]
    chosen: list[int] = []
    while len(chosen) < 8:  # forward selection: add the step the current mix explains worst
        model = _mix_shares([Fraction(s) for s in chosen], [shares[s] for s in chosen], [Fraction(s) for s in candidates])
        gaps = {s: shares[s] - model[i] for i, s in enumerate(candidates) if s not in chosen}
        if not gaps:
            break
        worst = max(gaps, key=lambda s: (abs(gaps[s]), s))
        if abs(gaps[worst]) < 0.02:
            break
        chosen.append(worst)
    if not chosen:
        return None
    chosen.sort()
    levels = [StepShare(step=_step_value(s, res, spec), share=round(shares[s], 4)) for s in chosen]
    return GranularityRule(column=spec.name, levels=levels)


def _step_value(units: int, res: Fraction, spec: ColumnSpec) -> int | float:
    value = units * res
    return int(value) if spec.kind == "integer" else float(value)


def _hit(r: Fraction, s: Fraction) -> float:
    """Share of values rounded to step r that are multiples of step s (values spread over many steps)."""
    if r == 0:
        return 0.0
    lcm = Fraction(math.lcm(r.numerator * s.denominator, s.numerator * r.denominator), r.denominator * s.denominator)
    return float(r / lcm)


def rounding_weights(steps: Sequence[Fraction], shares: Sequence[float], finest: Fraction) -> np.ndarray:
    """Probabilities of rounding a value to `finest`, steps[0], steps[1] ... so the shares of multiples come back.

    Non-negative least squares on share(s) = sum_r w_r * hit(r, s), with the weights summing to 1.
    """
    from scipy.optimize import nnls

    rounds = [finest, *steps]
    a = np.array([[_hit(r, s) for r in rounds] for s in steps] + [[10.0] * len(rounds)])
    b = np.array([*shares, 10.0])
    w, _ = nnls(a, b)
    w = np.clip(w, 0, None)
    return w / w.sum() if w.sum() > 0 else np.eye(len(rounds))[0]


def _mix_shares(chosen: list[Fraction], chosen_shares: list[float], steps: list[Fraction]) -> list[float]:
    """Shares of multiples of each of `steps` after rounding to the chosen steps' fitted mix."""
    w = rounding_weights(chosen, chosen_shares, Fraction(1)) if chosen else np.array([1.0])
    rounds = [Fraction(1), *chosen]
    return [float(sum(wi * _hit(r, s) for wi, r in zip(w, rounds))) for s in steps]


# categorical --------------------------------------------------------------------------------
def _discover_categorical(table: pa.Table, full: pa.Table, specs: list[ColumnSpec], clock: _Clock) -> list[_Rule]:
    cols = {}
    for spec in specs:
        codes, uniques = _codes(_objects(table.column(spec.name)))
        if len(uniques) >= 2:
            cols[spec.name] = (codes, uniques)
    names = list(cols)
    fds: list[tuple[str, str]] = []
    for a in names:
        for b in names:
            clock.check()
            if a != b and _holds_fd(cols[a], cols[b]) and (b, a) not in fds:
                fds.append((a, b))
    implied = set(fds)
    # Transitive reduction: a -> c is dropped when a -> b and b -> c are recorded.
    fds = [(a, c) for a, c in fds if not any((a, b) in implied and (b, c) in implied for b in names if b not in (a, c))]
    rules: list[_Rule] = []
    for a, b in fds:
        mapping = _pair_counts(full, a, b)
        firsts = [k[0] for k, _ in mapping]
        if len(set(firsts)) == len(firsts):  # still a dependency on every row of the table
            pairs = sorted((k for k, _ in mapping), key=lambda k: (str(type(k[0])), k[0]))
            rules.append(FunctionalDependencyRule(determinant=a, dependent=b, mapping=pairs))
    # Allowed combinations: pairs with few categories where a combination of common values never occurs.
    small = [n for n in names if len(cols[n][1]) <= PAIR_MAX_CATEGORIES]
    pairs = [(a, b) for i, a in enumerate(small) for b in small[i + 1 :] if (a, b) not in implied and (b, a) not in implied]
    cells = sum(len(cols[a][1]) * len(cols[b][1]) for a, b in pairs)
    # Bonferroni over every cell tested: an empty cell whose expected count (if the columns were
    # independent) is >= tau happens by chance with probability <= 0.001 over the whole table.
    tau = math.log(max(cells, 1) / 1e-3)
    for a, b in pairs:
        clock.check()
        if _has_forbidden_cell(cols[a], cols[b], tau):
            counted = _pair_counts(full, a, b)
            rules.append(AllowedCombinationsRule(columns=(a, b), pairs=[k for k, _ in counted], counts=[c for _, c in counted]))
    return rules


def _holds_fd(a: tuple[np.ndarray, list], b: tuple[np.ndarray, list]) -> bool:
    """Each value of a goes with one value of b, far beyond what chance would give."""
    (ca, ua), (cb, ub) = a, b
    both = (ca >= 0) & (cb >= 0)
    n = int(both.sum())
    if n < MIN_ROWS or len(ua) > min(FD_MAX_CATEGORIES, n // 2) or len(ua) < len(ub):
        return False  # (a near-unique determinant "determines" everything: its mapping would be the data)
    ca, cb = ca[both], cb[both]
    keys = np.unique(ca * np.int64(len(ub)) + cb)
    if len(np.unique(keys // np.int64(len(ub)))) != len(keys):
        return False
    per_a = np.bincount(ca, minlength=len(ua))
    per_a = per_a[per_a > 0]
    p_b = np.bincount(cb, minlength=len(ub)) / len(cb)
    p_b = p_b[p_b > 0]
    if len(p_b) < 2 or len(per_a) < 2:
        return False
    # log P(every value of a sees one b) if a and b were independent: sum_a log sum_b p_b^k_a
    ks, times = np.unique(per_a, return_counts=True)
    from scipy.special import logsumexp

    log_p = float(np.sum(times * logsumexp(ks[:, None] * np.log(p_b)[None, :], axis=1)))
    return log_p < -15.0


def _has_forbidden_cell(a: tuple[np.ndarray, list], b: tuple[np.ndarray, list], tau: float) -> bool:
    (ca, ua), (cb, ub) = a, b
    both = (ca >= 0) & (cb >= 0)
    n = int(both.sum())
    if n < MIN_ROWS:
        return False
    ca, cb = ca[both], cb[both]
    table = np.bincount(ca * np.int64(len(ub)) + cb, minlength=len(ua) * len(ub)).reshape(len(ua), len(ub))
    expected = np.outer(table.sum(1), table.sum(0)) / n
    return bool(np.any((table == 0) & (expected >= tau)))


def _pair_counts(table: pa.Table, a: str, b: str) -> list[tuple[tuple[Any, Any], int]]:
    """Every (a, b) value pair present in `table` (both non-null) with its count, most common first."""
    import pyarrow.compute as pc

    pair = pa.table({"a": _dense(table.column(a)), "b": _dense(table.column(b))})
    pair = pair.filter(pc.and_(pc.is_valid(pair["a"]), pc.is_valid(pair["b"])))
    grouped = pair.group_by(["a", "b"]).aggregate([([], "count_all")])
    rows = list(zip(grouped["a"].to_pylist(), grouped["b"].to_pylist(), grouped["count_all"].to_pylist()))
    rows.sort(key=lambda r: (-r[2], str(r[0]), str(r[1])))
    return [((x, y), int(c)) for x, y, c in rows]


# derived --------------------------------------------------------------------------------------
_FIT_ROWS = 2000  # least squares runs on this many complete rows; the formula is then checked on all
_SCREEN_FEW = 16  # products and ratios are screened on this many rows (spread out) where the target is present


def _verdict(y: np.ndarray, f: np.ndarray, spec: ColumnSpec) -> tuple[bool, float]:
    """(accepted, share held): the formula holds within rounding in >= 99.5% of complete rows, and on
    rows where the column is not simply its typical value (it must explain something)."""
    ok = np.isfinite(y) & np.isfinite(f)
    if ok.sum() < MIN_ROWS:
        return False, 0.0
    y, f = y[ok], f[ok]
    tol = _tolerance(spec, y)
    good = np.abs(y - f) <= tol
    held = float(good.mean())
    informative = np.abs(y - np.median(y)) > tol
    if informative.sum() < 20 or held < DERIVED_MIN_HOLDS:
        return False, held
    return float(good[informative].mean()) >= 0.95, held


def _quasi_constant(x: np.ndarray) -> bool:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return True
    _, counts = np.unique(x, return_counts=True)
    return counts.max() > 0.9 * len(x)


def _snap(value: float, fits) -> float:
    """The roundest number near `value` (fewest significant digits, 0 first) that still fits."""
    if fits(0.0):
        return 0.0
    if value == 0 or not math.isfinite(value):
        return value
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if fits(candidate):
            return candidate
    return value


def _discover_derived(values: dict[str, np.ndarray], specs: dict[str, ColumnSpec], clock: _Clock) -> list[DerivedRule]:
    names = [n for n in values if np.isfinite(values[n]).sum() >= MIN_ROWS and not _quasi_constant(values[n])]
    if len(names) < 2:
        return []
    candidates: list[tuple[tuple, DerivedRule]] = []
    for j, target in enumerate(names):
        clock.check()
        rule = _linear_for(target, [n for n in names if n != target], values, specs[target])
        if rule is not None:
            positive = all(c > 0 for c in (rule.coefficients or [1.0]))
            candidates.append(((0 if positive else 2, len(rule.inputs), -float(np.nanmean(np.abs(values[target]))), -j), rule))
    clock.check()
    for j, rule in _products_and_ratios(names, values, specs, clock):
        rank = 1 if rule.op == "product" else 3
        candidates.append(((rank, 2, -float(np.nanmean(np.abs(values[rule.column]))), -j), rule))
    candidates.sort(key=lambda c: c[0])
    chosen: list[DerivedRule] = []
    targets: set[str] = set()
    inputs: set[str] = set()
    for _, rule in candidates:  # no chains or cycles: a derived column is nobody's input
        if rule.column in targets or rule.column in inputs or targets & set(rule.inputs):
            continue
        chosen.append(rule)
        targets.add(rule.column)
        inputs.update(rule.inputs)
    return chosen


def _linear_for(target: str, others: list[str], values: dict[str, np.ndarray], spec: ColumnSpec) -> DerivedRule | None:
    y_all = values[target]
    present = np.isfinite(y_all)
    # A least-squares fit needs complete rows: inputs present in most of the target's rows, and while
    # too few rows are complete, the input missing most often is left out.
    coverage = {n: float(np.isfinite(values[n][present]).mean()) for n in others}
    ranked = sorted((n for n in others if coverage[n] >= 0.5), key=lambda n: -coverage[n])
    while ranked:
        complete = present.copy()
        for n in ranked:
            complete &= np.isfinite(values[n])
        rows = np.flatnonzero(complete)
        if len(rows) >= max(MIN_ROWS, 3 * (len(ranked) + 1)):
            break
        ranked = ranked[:-1]
    if not ranked:
        return None
    others = [n for n in others if n in ranked]  # back in column order
    fit_rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), _FIT_ROWS)).astype(np.int64))]
    y = y_all[fit_rows]
    x = np.column_stack([values[n][fit_rows] for n in others])
    scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    tol = _tolerance(spec, y)

    def fit(cols: list[int]) -> tuple[np.ndarray, int]:
        a = np.column_stack([x[:, cols] / scale[cols], np.ones(len(y))])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        return coef, int(np.sum(np.abs(y - a @ coef) > tol))

    active = list(range(len(others)))
    coef, misses = fit(active)
    if misses > (1 - DERIVED_MIN_HOLDS) * len(y):
        return None
    slack = max(1, int(0.001 * len(y)))
    for k in sorted(active, key=lambda k: abs(coef[active.index(k)])):  # least important first
        if len(active) == 1:
            break
        trial = [c for c in active if c != k]
        t_coef, t_misses = fit(trial)
        if t_misses <= misses + slack:
            active, coef = trial, t_coef
    if len(active) > MAX_LINEAR_INPUTS:
        return None
    used = [others[k] for k in active]
    coefs = [float(c / scale[k]) for c, k in zip(coef[:-1], active)]
    intercept = float(coef[-1])
    xs = [values[n] for n in used]

    fit_x = [v[fit_rows] for v in xs]

    def centre(cs: list[float]) -> float:
        """The intercept in the middle of the residual band of coefficients cs (robust to 0.25% outliers each side)."""
        r = y - sum(c * v for c, v in zip(cs, fit_x))
        return float((np.quantile(r, 0.0025) + np.quantile(r, 0.9975)) / 2)

    def misses_with(cs: list[float], b: float | None = None) -> int:
        rule = DerivedRule(column=target, inputs=used, coefficients=cs, intercept=centre(cs) if b is None else b)
        return int(np.sum(~(np.abs(y - rule.evaluate(fit_x)) <= tol)))

    # Round numbers where they fit as well (1 rather than 0.99817), the intercept re-centred for each.
    base = misses_with(coefs, intercept) + slack
    for i in range(len(coefs)):
        coefs[i] = _snap(coefs[i], lambda c, i=i: misses_with(coefs[:i] + [c] + coefs[i + 1 :]) <= base)
    intercept = centre(coefs)
    if misses_with(coefs, intercept) > base:
        intercept = float(coef[-1]) if misses_with(coefs, float(coef[-1])) <= base else intercept
    intercept = _snap(intercept, lambda b: misses_with(coefs, b) <= base)
    if any(c == 0 for c in coefs):
        return None
    rule = DerivedRule(column=target, inputs=used, coefficients=None if all(c == 1 for c in coefs) else coefs, intercept=intercept)
    accepted, held = _verdict(y_all, rule.evaluate(xs), spec)
    if not accepted:
        return None
    rule.holds = round(held, 4)
    return rule


def _products_and_ratios(names: list[str], values: dict[str, np.ndarray], specs: dict[str, ColumnSpec], clock: _Clock):
    """(target index, rule) for target = k * a * b and target = k * a / b: screened on a few rows
    where the target is present (k from their median), then checked on every row."""
    m = len(names)
    if m < 3:
        return []
    x = np.column_stack([values[n] for n in names])
    ia, ib = np.triu_indices(m, 1)
    oa, ob = np.nonzero(~np.eye(m, dtype=bool))
    found = []
    for j, target in enumerate(names):
        clock.check()
        present = np.flatnonzero(np.isfinite(x[:, j]) & (x[:, j] != 0))
        if len(present) < _SCREEN_FEW:
            continue
        rows = present[np.linspace(0, len(present) - 1, _SCREEN_FEW).astype(np.int64)]  # spread over the table (it may be sorted)
        y, xr = x[rows, j], x[rows]
        if len(np.unique(y)) < 4:
            continue
        tol = _tolerance(specs[target], y)[:, None]
        for op, a_idx, b_idx in (("product", ia, ib), ("ratio", oa, ob)):
            keep = (a_idx != j) & (b_idx != j)
            a_idx, b_idx = a_idx[keep], b_idx[keep]
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no factor
                f = xr[:, a_idx] * xr[:, b_idx] if op == "product" else np.where(xr[:, b_idx] != 0, xr[:, a_idx] / xr[:, b_idx], np.nan)
                k = np.nanmedian(np.where((f != 0) & np.isfinite(f), y[:, None] / f, np.nan), axis=0)
                valid = np.isfinite(f) & (f != 0) & (y[:, None] != 0)  # zeros say nothing about a product
                hits = (np.abs(y[:, None] - k[None, :] * f) <= tol) & valid
            n_valid = valid.sum(axis=0)
            ok = (n_valid >= _SCREEN_FEW // 2) & (hits.sum(axis=0) >= 0.9 * n_valid) & np.isfinite(k) & (k != 0)
            for p in np.flatnonzero(ok):
                a, b = names[a_idx[p]], names[b_idx[p]]
                rule = _check_product(op, target, a, b, float(k[p]), values, specs[target])
                if rule is not None:
                    found.append((j, rule))
    return found


def _check_product(op: str, target: str, a: str, b: str, k: float, values: dict[str, np.ndarray], spec: ColumnSpec) -> DerivedRule | None:
    y = values[target]
    xs = [values[a], values[b]]

    def fits(factor: float) -> bool:
        return factor != 0 and _verdict(y, DerivedRule(column=target, op=op, inputs=[a, b], factor=factor).evaluate(xs), spec)[0]

    if fits(1.0):
        factor = 1.0
    elif fits(k):  # the screened factor must fit before a rounder one is looked for
        factor = _snap(k, fits)
    else:
        return None
    rule = DerivedRule(column=target, op=op, inputs=[a, b], factor=factor)
    rule.holds = round(_verdict(y, rule.evaluate(xs), spec)[1], 4)
    return rule


# inequalities -----------------------------------------------------------------------------------
def _discover_inequalities(
    table: pa.Table, values: dict[str, np.ndarray], modelled: list[ColumnSpec], found: list[_Rule], clock: _Clock
) -> list[InequalityRule]:
    groups: list[dict[str, np.ndarray]] = [dict(values)]
    by_type: dict[str, dict[str, np.ndarray]] = {}
    for spec in modelled:
        if spec.kind == "datetime":
            ticks, null = _ticks(table.column(spec.name))
            by_type.setdefault(spec.dtype, {})[spec.name] = np.where(null, np.nan, ticks.astype(float))
    groups += list(by_type.values())
    linked = set()
    for rule in found:
        if isinstance(rule, DerivedRule):
            linked.update((rule.column, n) for n in rule.inputs)
            linked.update((n, rule.column) for n in rule.inputs)
    edges: list[tuple[str, str]] = []
    for group in groups:
        names = list(group)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                clock.check()
                if (a, b) in linked:
                    continue
                edge = _inequality(a, group[a], b, group[b])
                if edge:
                    edges.append(edge)
    have = set(edges)
    nodes = {n for e in edges for n in e}
    edges = [(a, c) for a, c in edges if not any((a, b) in have and (b, c) in have for b in nodes if b not in (a, c))]
    return [InequalityRule(left=a, right=b) for a, b in edges]


def _inequality(a: str, x: np.ndarray, b: str, y: np.ndarray) -> tuple[str, str] | None:
    both = np.isfinite(x) & np.isfinite(y)
    n = int(both.sum())
    if n < MIN_ROWS:
        return None
    x, y = x[both], y[both]
    if np.all(x <= y):
        left, right = (a, x), (b, y)
    elif np.all(x >= y):
        left, right = (b, y), (a, x)
    else:
        return None
    if np.all(x == y):
        return None  # equal columns: a derived copy, not an inequality
    # Would independent columns with these marginals break it? Expected breaks if paired at random:
    lv, rv = left[1], np.sort(right[1])
    chance = float(np.mean(np.searchsorted(rv, lv, side="left") / len(rv)))  # P(left > a random right)
    if n * chance < 10:
        return None  # implied by the ranges (or too few rows to tell): not structure
    return left[0], right[0]


# -- enforcement --------------------------------------------------------------------------------------
class _Frame:
    """Columns of a table as numpy arrays, written back with their exact Arrow types when changed."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._data: dict[str, np.ndarray] = {}
        self._changed: set[str] = set()

    def floats(self, name: str) -> np.ndarray:
        if name not in self._data:
            self._data[name] = _floats(self.table.column(name))
        return self._data[name]

    def objects(self, name: str) -> np.ndarray:
        if name not in self._data:
            self._data[name] = _objects(self.table.column(name))
        return self._data[name]

    def ticks(self, name: str) -> np.ndarray:
        """Datetimes as float ticks (NaN for null); exact below 2**53 ticks."""
        if name not in self._data:
            ticks, null = _ticks(self.table.column(name))
            self._data[name] = np.where(null, np.nan, ticks.astype(float))
        return self._data[name]

    def numbers(self, name: str) -> np.ndarray:
        t = _dense(self.table.column(name)).type
        return self.ticks(name) if pa.types.is_timestamp(t) else self.floats(name)

    def changed(self, name: str) -> None:
        self._changed.add(name)

    def result(self) -> pa.Table:
        table = self.table
        for name in self._changed:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, table.field(i), _rebuild(self._data[name], table.field(i).type))
        return table


def _rebuild(values: np.ndarray, t: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(t):
        return _rebuild(values, t.value_type).dictionary_encode().cast(t)
    if values.dtype == object:
        return pa.array(values.tolist(), type=t)
    null = np.isnan(values)
    mask = null if null.any() else None
    if pa.types.is_integer(t) or pa.types.is_timestamp(t):
        ints = np.where(null, 0, np.round(values)).astype(np.int64)
        return pa.array(ints, type=pa.int64(), mask=mask).cast(t)
    return pa.array(np.where(null, 0.0, values), type=pa.float64(), mask=mask).cast(t)


def apply_rules(
    table: pa.Table,
    schema: Schema,
    rng: np.random.Generator | int | Sequence[int] | None = None,
    *,
    fixed: Iterable[str] = (),
) -> tuple[pa.Table, dict[str, int]]:
    """`table` with every rule of `schema` kept, and how many rows each repair changed.

    Order: functional dependencies and allowed combinations (categories first), granularity,
    inequalities between non-derived columns, derived columns (computed from their inputs, rounded
    and clipped to the column), inequalities involving derived columns. Columns in `fixed`
    (conditions) are not changed. Rows still breaking a hard rule after that (a derived value
    outside the column's bounds, rules that pull against each other) are replaced by copies of
    valid rows of the same batch, counted as 'rows_replaced' (at most MAX_REPLACED_SHARE of the
    batch; beyond that they are left and counted as 'rows_unrepaired'). No row is dropped.
    """
    rules = list(schema.rules)
    if not rules or table.num_rows == 0:
        return table, {}
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    fixed = set(fixed)
    specs = {c.name: c for c in schema.columns}
    frame = _Frame(table)
    counts: Counter[str] = Counter()
    names = labels(rules)
    derived = {r.column: r for r in rules if isinstance(r, DerivedRule)}
    derived_inputs = {n for r in derived.values() for n in r.inputs}
    dependencies = _topological([(r, lab) for r, lab in zip(rules, names) if isinstance(r, FunctionalDependencyRule)])
    dependents = {r.dependent for r, _ in dependencies}
    combinations = [(r, lab) for r, lab in zip(rules, names) if isinstance(r, AllowedCombinationsRule)]
    for last in (False, False, True):  # categorical rules that share columns settle over passes; dependencies last
        for rule, label in dependencies:
            counts[label] += _repair_dependency(frame, rule, fixed, rng)
        for rule, label in combinations if not last else ():
            counts[label] += _repair_combination(frame, rule, fixed | dependents, rng, fixed)
    for rule, label in zip(rules, names):
        if isinstance(rule, GranularityRule) and rule.column not in derived and rule.column not in fixed:
            counts[label] += _round_to_levels(frame, rule, specs[rule.column], rng)
    inequalities = [(r, lab) for r, lab in zip(rules, names) if isinstance(r, InequalityRule)]
    for _ in range(3):
        for rule, label in inequalities:
            if rule.left not in derived and rule.right not in derived:
                counts[label] += _repair_inequality(frame, rule, specs, keep=fixed | set(derived))
    for _ in range(2):  # declared chains (a derived input that is itself derived) settle in two passes
        for rule, label in zip(rules, names):
            if isinstance(rule, DerivedRule):
                counts[label] += _compute_derived(frame, rule, specs[rule.column])
    for rule, label in inequalities:
        if rule.left in derived or rule.right in derived:
            counts[label] += _repair_inequality(frame, rule, specs, keep=fixed | set(derived) | derived_inputs)
    result = frame.result()
    bad = np.zeros(result.num_rows, dtype=bool)
    check = _Frame(result)
    for rule in rules:
        if rule.hard:
            bad |= rule_violations(check, rule, specs)
    n_bad = int(bad.sum())
    if n_bad:
        good = np.flatnonzero(~bad)
        if len(good) and n_bad <= MAX_REPLACED_SHARE * len(bad):
            take = np.arange(len(bad))
            take[bad] = rng.choice(good, size=n_bad)
            result = result.take(pa.array(take))
            counts["rows_replaced"] += n_bad
        else:
            counts["rows_unrepaired"] += n_bad
    return result, {k: int(v) for k, v in counts.items() if v}


def _present(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.array([v is not None for v in values], dtype=bool)
    return ~np.isnan(values)


def _repair_dependency(frame: _Frame, rule: FunctionalDependencyRule, fixed: set[str], rng: np.random.Generator) -> int:
    a, b = frame.objects(rule.determinant), frame.objects(rule.dependent)
    mapping = {k: v for k, v in rule.mapping}
    want = _lookup(a, mapping)
    bad = _present(b) & (want != None) & (b != want)  # noqa: E711 - elementwise on object arrays
    n = int(bad.sum())
    if not n:
        return 0
    if rule.dependent not in fixed:
        b[bad] = want[bad]
        frame.changed(rule.dependent)
    elif rule.determinant not in fixed:  # the dependent is asked for: pick a determinant that gives it
        inverse: dict[Any, list[Any]] = {}
        for k, v in rule.mapping:
            inverse.setdefault(v, []).append(k)
        for i in np.flatnonzero(bad):
            options = inverse.get(b[i])
            if options:
                a[i] = options[int(rng.integers(len(options)))]
        frame.changed(rule.determinant)
    else:
        return 0
    return n


def _lookup(values: np.ndarray, mapping: dict[Any, Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [mapping.get(v) if v is not None else None for v in values]
    return out


def _combination_ok(a: np.ndarray, b: np.ndarray, rule: AllowedCombinationsRule) -> np.ndarray:
    """False where both values are known to the rule yet their pair is not allowed."""
    allowed = {tuple(p) for p in rule.pairs}
    first, second = {p[0] for p in rule.pairs}, {p[1] for p in rule.pairs}
    return np.array([x is None or y is None or (x, y) in allowed or x not in first or y not in second for x, y in zip(a, b)], dtype=bool)


def _topological(dependencies: list[tuple[FunctionalDependencyRule, str]]) -> list[tuple[FunctionalDependencyRule, str]]:
    """Dependencies ordered so a column is set before it determines another (given order kept otherwise)."""
    done: list[tuple[FunctionalDependencyRule, str]] = []
    left = list(dependencies)
    while left:
        pending = {r.dependent for r, _ in left}
        ready = [item for item in left if item[0].determinant not in pending] or left[:1]  # a cycle: take the first
        done += ready
        left = [item for item in left if item not in ready]
    return done


def _repair_combination(frame: _Frame, rule: AllowedCombinationsRule, avoid: set[str], rng: np.random.Generator, fixed: set[str]) -> int:
    """Resample the second column (else the first) of disallowed pairs from the values allowed with
    the other, weighted by real counts. `avoid`: columns better left alone (conditions, columns a
    dependency sets); `fixed`: columns never changed (conditions)."""
    first, second = rule.columns
    if second in fixed and first in fixed:
        return 0
    a, b = frame.objects(first), frame.objects(second)
    bad = ~_combination_ok(a, b, rule)
    if not bad.any():
        return 0
    swap = second in fixed or (second in avoid and first not in avoid)  # repair the first column instead
    keep_col, change_col = (b, a) if swap else (a, b)
    weights = rule.counts or [1] * len(rule.pairs)
    options: dict[Any, tuple[list[Any], list[float]]] = {}
    for (x, y), w in zip(rule.pairs, weights):
        k, v = (y, x) if swap else (x, y)
        opts = options.setdefault(k, ([], []))
        opts[0].append(v)
        opts[1].append(max(float(w), 0.0) + 1e-12)
    n = 0
    rows = np.flatnonzero(bad)
    order: dict[Any, list[int]] = {}
    for i in rows:
        order.setdefault(keep_col[i], []).append(i)
    for key, idx in order.items():
        if key not in options:
            continue
        values, w = options[key]
        p = np.asarray(w) / np.sum(w)
        picks = rng.choice(len(values), size=len(idx), p=p)
        for i, pick in zip(idx, picks):
            change_col[i] = values[pick]
        n += len(idx)
    frame.changed(first if swap else second)
    return n


def _round_to_levels(frame: _Frame, rule: GranularityRule, spec: ColumnSpec, rng: np.random.Generator) -> int:
    """Round each non-zero value to a step drawn from the rule's mix, staying within the bounds."""
    x = frame.floats(rule.column)
    res = _resolution(spec)
    steps = [Fraction(str(level.step)) for level in rule.levels]
    unit = res if res is not None else Fraction(1, 10**9)
    w = rounding_weights([s / unit for s in steps], [level.share for level in rule.levels], Fraction(1) if res is not None else Fraction(0))
    rows = np.flatnonzero(np.isfinite(x) & (x != 0))
    if not len(rows):
        return 0
    sizes = np.array([0.0] + [float(s) for s in steps])  # 0: keep the value at the column's own resolution
    step = sizes[rng.choice(len(sizes), size=len(rows), p=w)]
    old = x[rows]
    lo = -np.inf if spec.min is None else float(spec.min)
    hi = np.inf if spec.max is None else float(spec.max)
    coarse = step > 0
    s = np.where(coarse, step, 1.0)
    with np.errstate(invalid="ignore"):
        new = np.round(old / s) * s
        new = np.where(new < lo, np.ceil(lo / s) * s, new)
        new = np.where(new > hi, np.floor(hi / s) * s, new)
        new = np.where(new == 0, np.sign(old) * s, new)  # a non-zero value stays non-zero
    new = _round_to_spec(new, spec)
    ok = coarse & (new >= lo) & (new <= hi)
    new = np.where(ok, new, old)
    changed = new != old
    if changed.any():
        x[rows] = new
        frame.changed(rule.column)
    return int(changed.sum())


def _floor_to(v: np.ndarray, spec: ColumnSpec, down: bool) -> np.ndarray:
    """Values on the column's grid, rounded down (or up), so an inequality stays true."""
    if spec.kind == "integer":
        return np.floor(v) if down else np.ceil(v)
    if spec.kind == "datetime":
        step = float(spec.step or 1)
        return (np.floor(v / step) if down else np.ceil(v / step)) * step
    if spec.decimals is not None:
        f = 10.0**spec.decimals
        return np.round((np.floor(v * f + 1e-9) if down else np.ceil(v * f - 1e-9)) / f, spec.decimals)
    return v


def _repair_inequality(frame: _Frame, rule: InequalityRule, specs: dict[str, ColumnSpec], keep: set[str]) -> int:
    ls, rs = specs[rule.left], specs[rule.right]
    left, right = frame.numbers(rule.left), frame.numbers(rule.right)
    with np.errstate(invalid="ignore"):
        bad = left > right
    if not bad.any():
        return 0
    n = 0
    can_left, can_right = rule.left not in keep, rule.right not in keep
    same = ls.kind == rs.kind and ls.dtype == rs.dtype and ls.decimals == rs.decimals and ls.step == rs.step
    if can_left and can_right and same:  # swap where each value fits the other column's bounds
        lv, rv = left[bad], right[bad]
        fits = (rv >= _lo(ls)) & (rv <= _hi(ls)) & (lv >= _lo(rs)) & (lv <= _hi(rs))
        idx = np.flatnonzero(bad)[fits]
        left[idx], right[idx] = rv[fits], lv[fits]
        n += len(idx)
        bad[idx] = False
    if bad.any() and can_left:  # clip the left side down to the right value
        v = _floor_to(right[bad], ls, down=True)
        fits = (v >= _lo(ls)) & (v <= right[bad])
        idx = np.flatnonzero(bad)[fits]
        left[idx] = v[fits]
        n += len(idx)
        bad[idx] = False
    if bad.any() and can_right:  # or the right side up to the left value
        v = _floor_to(left[bad], rs, down=False)
        fits = (v <= _hi(rs)) & (v >= left[bad])
        idx = np.flatnonzero(bad)[fits]
        right[idx] = v[fits]
        n += len(idx)
    if n:
        frame.changed(rule.left)
        frame.changed(rule.right)
    return n


def _lo(spec: ColumnSpec) -> float:
    return -np.inf if spec.min is None else float(spec.min)


def _hi(spec: ColumnSpec) -> float:
    return np.inf if spec.max is None else float(spec.max)


def _compute_derived(frame: _Frame, rule: DerivedRule, spec: ColumnSpec) -> int:
    y = frame.floats(rule.column)
    f = rule.evaluate([frame.floats(n) for n in rule.inputs])
    ok = np.isfinite(y) & np.isfinite(f)
    new = np.clip(_round_to_spec(f, spec), _lo(spec), _hi(spec))
    changed = ok & (new != y)
    if changed.any():
        y[changed] = new[changed]
        frame.changed(rule.column)
    return int(changed.sum())


# -- checking ------------------------------------------------------------------------------------
def rule_violations(frame: _Frame | pa.Table, rule: _Rule, specs: dict[str, ColumnSpec]) -> np.ndarray:
    """Rows breaking a hard rule (all False for granularity, a distribution)."""
    if isinstance(frame, pa.Table):
        frame = _Frame(frame)
    n = frame.table.num_rows
    if isinstance(rule, DerivedRule):
        y = frame.floats(rule.column)
        f = rule.evaluate([frame.floats(c) for c in rule.inputs])
        ok = np.isfinite(y) & np.isfinite(f)
        out = np.zeros(n, dtype=bool)
        out[ok] = np.abs(y[ok] - f[ok]) > _tolerance(specs[rule.column], y[ok])
        return out
    if isinstance(rule, InequalityRule):
        with np.errstate(invalid="ignore"):
            return frame.numbers(rule.left) > frame.numbers(rule.right)
    if isinstance(rule, FunctionalDependencyRule):
        b = frame.objects(rule.dependent)
        want = _lookup(frame.objects(rule.determinant), dict(rule.mapping))
        return _present(b) & (want != None) & (b != want)  # noqa: E711
    if isinstance(rule, AllowedCombinationsRule):
        return ~_combination_ok(frame.objects(rule.columns[0]), frame.objects(rule.columns[1]), rule)
    return np.zeros(n, dtype=bool)


def step_levels(values: np.ndarray, rule: GranularityRule) -> np.ndarray:
    """For each non-zero value: the index of the coarsest of the rule's steps it is a multiple of
    (len(levels) when none); NaN and zero rows get -1."""
    steps = sorted(((float(level.step), i) for i, level in enumerate(rule.levels)), reverse=True)
    out = np.full(len(values), -1, dtype=np.int64)
    live = np.isfinite(values) & (values != 0)
    out[live] = len(rule.levels)
    todo = live.copy()
    for step, i in steps:
        with np.errstate(invalid="ignore"):
            q = values / step
            hit = todo & (np.abs(q - np.round(q)) <= 1e-6 * np.maximum(1.0, np.abs(q)))
        out[hit] = i
        todo &= ~hit
    return out


def granularity_tv(real: np.ndarray, synthetic: np.ndarray, rule: GranularityRule) -> float | None:
    """Total-variation distance between the step-level distributions of two columns (None if either is empty)."""
    k = len(rule.levels) + 1
    a, b = step_levels(real, rule), step_levels(synthetic, rule)
    a, b = a[a >= 0], b[b >= 0]
    if not len(a) or not len(b):
        return None
    pa_, pb = np.bincount(a, minlength=k) / len(a), np.bincount(b, minlength=k) / len(b)
    return float(0.5 * np.abs(pa_ - pb).sum())


def multiple_shares(values: np.ndarray, rule: GranularityRule) -> dict[float, float]:
    """Share of the non-zero values that are multiples of each of the rule's steps."""
    x = values[np.isfinite(values) & (values != 0)]
    out = {}
    for level in rule.levels:
        q = x / float(level.step)
        out[float(level.step)] = float(np.mean(np.abs(q - np.round(q)) <= 1e-6 * np.maximum(1.0, np.abs(q)))) if len(x) else float("nan")
    return out


def frame_of(data: Any) -> _Frame:
    """A checking frame for an Arrow table or a pandas DataFrame."""
    if isinstance(data, pa.Table):
        return _Frame(data)
    return _Frame(pa.Table.from_pandas(data, preserve_index=False))
