"""The epsilon ledger: every DP release of a source, so repeated releases cannot quietly exceed a budget.

One JSON-lines file, append-only: each line is a `LedgerEntry` (one state change of one run);
a run's current state is its last line. A run *reserves* its target epsilon and delta before
training, then *commits* what it actually spent (at most what it reserved) when it publishes, or
is *refunded* when it fails or is quarantined (refunding is sound only if nothing the run
trained is kept where the release's readers can see it: delete its model and shards).

Budgets are per source and privacy unit: the source's sha256 (`synthaug.io.sources.data_hash`)
and the unit ("row", or a user-id column). Spend composes by **basic composition**: the epsilons
and deltas of every committed and every still-reserved run are summed (in-flight runs count,
so concurrent runs cannot overspend). That is valid for any mix of mechanisms and accountants,
and loose: RDP curves composed across releases would be tighter, but they are not stored.

Every read-check-append happens under a file lock (`filelock`, next to the ledger), so two
processes racing for the last of a budget cannot both get it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from synthaug.errors import BadInput

LOCK_TIMEOUT = 60.0  # seconds a run waits for another run's ledger update
TOLERANCE = 1e-9  # relative slack when comparing a sum of floats with a budget

Status = Literal["reserved", "committed", "refunded"]


class LedgerEntry(BaseModel):
    """One line of the ledger: the state of one run after one change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    source_sha256: str
    unit: str
    status: Status
    mechanism: str
    accountant: str
    epsilon: float
    delta: float
    preprocessing_epsilon: float = 0.0  # the share of epsilon spent on DP preprocessing (0: all declared)
    time: str  # ISO 8601, UTC
    synthaug_version: str


@dataclass(frozen=True)
class Reservation:
    """A run's claim on a budget; `commit` on publish, `refund` on failure or quarantine."""

    ledger: Ledger
    run_id: str
    source_sha256: str
    unit: str
    epsilon: float
    delta: float

    def commit(self, epsilon: float | None = None, delta: float | None = None) -> LedgerEntry:
        return self.ledger.commit(self.run_id, epsilon=epsilon, delta=delta)

    def refund(self) -> LedgerEntry:
        return self.ledger.refund(self.run_id)


def check_budget_value(name: str, value: float, *, upper: float | None = None) -> float:
    """A finite, positive number (delta also below `upper`); BadInput otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"ledger: {name} must be a number (got {value!r})") from None
    if not math.isfinite(value) or value < 0 or (name == "epsilon" and value == 0):
        raise BadInput(f"ledger: {name} must be a finite number above 0 (got {value!r}); a release cannot spend {value!r}")
    if upper is not None and value >= upper:
        raise BadInput(f"ledger: {name} must be below {upper} (got {value!r})")
    return value


class Ledger:
    """`Ledger(path)`: the epsilon ledger in the JSON-lines file at `path` (created on first reserve)."""

    def __init__(self, path: str | Path, *, timeout: float = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout

    # -- changes ---------------------------------------------------------------------
    def reserve(
        self,
        source_sha256: str,
        unit: str,
        epsilon: float,
        delta: float,
        run_id: str,
        max_total_epsilon: float | None = None,
        *,
        max_total_delta: float | None = None,
        mechanism: str = "DP-SGD",
        accountant: str = "rdp",
        preprocessing_epsilon: float = 0.0,
    ) -> Reservation:
        """Claim (epsilon, delta) of the source's budget for `run_id`; BadInput if that would take
        the total (committed + reserved, summed) above `max_total_epsilon` / `max_total_delta`."""
        epsilon = check_budget_value("epsilon", epsilon)
        delta = check_budget_value("delta", delta, upper=1.0)
        if max_total_epsilon is not None:
            max_total_epsilon = check_budget_value("max_total_epsilon", max_total_epsilon)
        if max_total_delta is not None:
            max_total_delta = check_budget_value("max_total_delta", max_total_delta, upper=1.0)
        with self._locked():
            runs = self._runs()
            if run_id in runs:
                raise BadInput(f"ledger {self.path}: run id '{run_id}' is already recorded ({runs[run_id].status}); use a new run id")
            spent_eps, spent_delta = _total(runs.values(), source_sha256, unit)
            if max_total_epsilon is not None and spent_eps + epsilon > max_total_epsilon * (1 + TOLERANCE):
                left = max(0.0, max_total_epsilon - spent_eps)
                raise BadInput(
                    f"privacy budget exceeded: source {source_sha256[:12]} (unit {unit}) has spent epsilon {spent_eps:.4g} "
                    f"(committed + reserved) of max_total_epsilon {max_total_epsilon:.4g}, and this run asks {epsilon:.4g}; "
                    f"lower privacy.epsilon to at most {left:.4g} or raise max_total_epsilon (ledger {self.path})"
                )
            if max_total_delta is not None and spent_delta + delta > max_total_delta * (1 + TOLERANCE):
                raise BadInput(
                    f"privacy budget exceeded: source {source_sha256[:12]} (unit {unit}) has spent delta {spent_delta:.3g} "
                    f"of max_total_delta {max_total_delta:.3g}, and this run asks {delta:.3g}; lower privacy.delta (ledger {self.path})"
                )
            self._append(
                LedgerEntry(
                    run_id=run_id,
                    source_sha256=source_sha256,
                    unit=unit,
                    status="reserved",
                    mechanism=mechanism,
                    accountant=accountant,
                    epsilon=epsilon,
                    delta=delta,
                    preprocessing_epsilon=float(preprocessing_epsilon),
                    time=_now(),
                    synthaug_version=_version(),
                )
            )
        return Reservation(self, run_id, source_sha256, unit, epsilon, delta)

    def commit(self, run_id: str, *, epsilon: float | None = None, delta: float | None = None) -> LedgerEntry:
        """The run published: record what it actually spent (default: what it reserved; never more)."""
        with self._locked():
            entry = self._reserved(run_id, "commit")
            eps = entry.epsilon if epsilon is None else check_budget_value("epsilon", epsilon)
            dlt = entry.delta if delta is None else check_budget_value("delta", delta, upper=1.0)
            if eps > entry.epsilon * (1 + TOLERANCE) or dlt > entry.delta * (1 + TOLERANCE):
                raise BadInput(
                    f"ledger {self.path}: run '{run_id}' spent ({eps:.4g}, {dlt:.3g}), more than it reserved "
                    f"({entry.epsilon:.4g}, {entry.delta:.3g}); it may not be published"
                )
            new = entry.model_copy(update={"status": "committed", "epsilon": eps, "delta": dlt, "time": _now()})
            self._append(new)
        return new

    def refund(self, run_id: str) -> LedgerEntry:
        """The run failed or was quarantined: give its reservation back."""
        with self._locked():
            entry = self._reserved(run_id, "refund")
            new = entry.model_copy(update={"status": "refunded", "time": _now()})
            self._append(new)
        return new

    # -- reading -------------------------------------------------------------------------
    def spent(self, source_sha256: str, unit: str = "row") -> tuple[float, float]:
        """(epsilon, delta) of the source and unit: committed + still reserved runs, summed (basic composition)."""
        with self._locked():
            return _total(self._runs().values(), source_sha256, unit)

    def runs(self, source_sha256: str | None = None, unit: str | None = None) -> list[LedgerEntry]:
        """The current state of every run (of the source and unit, if given), oldest first."""
        with self._locked():
            runs = self._runs().values()
        return [e for e in runs if (source_sha256 is None or e.source_sha256 == source_sha256) and (unit is None or e.unit == unit)]

    def describe(self, source_sha256: str, unit: str | None = None) -> str:
        """Plain text for `synthaug ledger SOURCE`: one line per run, then the totals per unit."""
        runs = self.runs(source_sha256, unit)
        if not runs:
            return f"no DP releases of source {source_sha256[:12]} in {self.path}"
        lines = [f"{'run':<28} {'status':<10} {'unit':<10} {'epsilon':>9} {'delta':>10}  accountant  time"]
        for e in runs:
            lines.append(f"{e.run_id:<28} {e.status:<10} {e.unit:<10} {e.epsilon:>9.4g} {e.delta:>10.3g}  {e.accountant:<10}  {e.time}")
        for u in sorted({e.unit for e in runs}):
            eps, dlt = _total(runs, source_sha256, u)
            lines.append(f"spent (unit {u}, committed + reserved, summed): epsilon {eps:.4g}, delta {dlt:.3g}")
        return "\n".join(lines)

    # -- internals -------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        if not self.path.parent.is_dir():
            raise BadInput(f"ledger {self.path}: folder {self.path.parent} does not exist; create it or set another ledger path")
        lock = FileLock(str(self.path) + ".lock", timeout=self.timeout)
        try:
            lock.acquire()
        except Timeout:
            raise BadInput(
                f"ledger {self.path} is locked by another run for more than {self.timeout:g} s; retry, or remove "
                f"{self.path}.lock if no synthaug run is alive"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _runs(self) -> dict[str, LedgerEntry]:
        """run id -> its last entry, in order of first appearance."""
        runs: dict[str, LedgerEntry] = {}
        if not self.path.exists():
            return runs
        with self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    entry = LedgerEntry.model_validate_json(line)
                except ValidationError as exc:
                    raise BadInput(
                        f"ledger {self.path}: line {lineno} is not a ledger entry ({exc.errors()[0]['msg']}); the budget cannot be "
                        "checked: restore the ledger from a backup or fix that line"
                    ) from None
                runs[entry.run_id] = entry
        return runs

    def _reserved(self, run_id: str, action: str) -> LedgerEntry:
        entry = self._runs().get(run_id)
        if entry is None:
            raise BadInput(f"ledger {self.path}: no run '{run_id}' to {action}; reserve before training")
        if entry.status != "reserved":
            raise BadInput(f"ledger {self.path}: run '{run_id}' is already {entry.status}; cannot {action} it")
        return entry

    def _append(self, entry: LedgerEntry) -> None:
        line = json.dumps(entry.model_dump(mode="json"), sort_keys=False) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def _total(entries, source_sha256: str, unit: str) -> tuple[float, float]:
    eps = dlt = 0.0
    for e in entries:
        if e.source_sha256 == source_sha256 and e.unit == unit and e.status in ("reserved", "committed"):
            eps += e.epsilon
            dlt += e.delta
    return eps, dlt


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version() -> str:
    from synthaug import __version__

    return __version__
