"""The epsilon ledger: reservations add up, a budget blocks the release that would exceed it,
failed runs are refunded, and two processes racing for the last budget cannot both get it."""

from __future__ import annotations

import json
import math
import multiprocessing
import time

import pytest

from synthaug.errors import BadInput
from synthaug.training.ledger import Ledger

SRC = "a" * 64
OTHER = "b" * 64


def test_spend_accumulates_per_source_and_unit(tmp_path):
    # Setup
    ledger = Ledger(tmp_path / "ledger.jsonl")
    # Run: two runs of one source (the first commits less than it reserved), one of another source
    ledger.reserve(SRC, "row", 1.0, 1e-6, "run-1").commit(epsilon=0.9)
    ledger.reserve(SRC, "row", 2.0, 1e-6, "run-2")  # still reserved: counts
    ledger.reserve(OTHER, "row", 5.0, 1e-6, "run-3")
    # Assert: basic composition (sums), separately per source and unit
    eps, delta = ledger.spent(SRC, "row")
    assert eps == pytest.approx(2.9) and delta == pytest.approx(2e-6)
    assert ledger.spent(OTHER, "row")[0] == pytest.approx(5.0)
    assert ledger.spent(SRC, "user_id") == (0.0, 0.0)
    assert [e.status for e in ledger.runs(SRC)] == ["committed", "reserved"]
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert {
        "run_id",
        "mechanism",
        "accountant",
        "epsilon",
        "delta",
        "preprocessing_epsilon",
        "time",
        "synthaug_version",
        "status",
    } <= lines[0].keys()


def test_budget_blocks_the_release_that_would_exceed_it(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.reserve(SRC, "row", 2.0, 1e-6, "run-1", max_total_epsilon=3.0).commit()
    # Run / Assert: 2 + 1.5 > 3 is refused and says how much is left; nothing is recorded for it
    with pytest.raises(BadInput, match=r"privacy budget exceeded: .* spent epsilon 2 .* max_total_epsilon 3.*at most 1"):
        ledger.reserve(SRC, "row", 1.5, 1e-6, "run-2", max_total_epsilon=3.0)
    assert [e.run_id for e in ledger.runs()] == ["run-1"]
    # Exactly the rest still fits; then nothing does.
    ledger.reserve(SRC, "row", 1.0, 1e-6, "run-3", max_total_epsilon=3.0)
    with pytest.raises(BadInput, match="privacy budget exceeded"):
        ledger.reserve(SRC, "row", 0.01, 1e-6, "run-4", max_total_epsilon=3.0)


def test_failed_runs_are_refunded(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    reservation = ledger.reserve(SRC, "row", 2.5, 1e-6, "run-1", max_total_epsilon=3.0)
    # Run: the run fails (or is quarantined) and gives its reservation back
    reservation.refund()
    # Assert: the budget is free again; a refunded run cannot be committed or refunded twice
    assert ledger.spent(SRC, "row") == (0.0, 0.0)
    ledger.reserve(SRC, "row", 2.5, 1e-6, "run-2", max_total_epsilon=3.0)
    with pytest.raises(BadInput, match="already refunded"):
        reservation.commit()
    with pytest.raises(BadInput, match="already refunded"):
        reservation.refund()
    with pytest.raises(BadInput, match="no run 'nope'"):
        ledger.commit("nope")


@pytest.mark.parametrize("epsilon", [-1.0, 0.0, math.nan, math.inf, "lots"])
def test_bad_epsilon_is_refused(tmp_path, epsilon):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with pytest.raises(BadInput, match="epsilon must be"):
        ledger.reserve(SRC, "row", epsilon, 1e-6, "run-1")
    assert not (tmp_path / "ledger.jsonl").exists()


def test_commit_above_the_reservation_and_reused_run_ids_are_refused(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.reserve(SRC, "row", 1.0, 1e-6, "run-1")
    with pytest.raises(BadInput, match="more than it reserved"):
        ledger.commit("run-1", epsilon=1.5)
    with pytest.raises(BadInput, match="already recorded"):
        ledger.reserve(SRC, "row", 1.0, 1e-6, "run-1")
    with pytest.raises(BadInput, match="delta must be below 1"):
        ledger.reserve(SRC, "row", 1.0, 1.0, "run-2")


def test_damaged_ledger_fails_closed(tmp_path):
    path = tmp_path / "ledger.jsonl"
    Ledger(path).reserve(SRC, "row", 1.0, 1e-6, "run-1")
    path.write_text(path.read_text() + '{"run_id": "torn"\n')
    with pytest.raises(BadInput, match="line 2 is not a ledger entry"):
        Ledger(path).reserve(SRC, "row", 1.0, 1e-6, "run-2", max_total_epsilon=10.0)


def test_a_held_lock_times_out_with_bad_input(tmp_path):
    from filelock import FileLock

    path = tmp_path / "ledger.jsonl"
    with FileLock(str(path) + ".lock"):
        with pytest.raises(BadInput, match="locked by another run"):
            Ledger(path, timeout=0.2).reserve(SRC, "row", 1.0, 1e-6, "run-1")


def test_describe_lists_runs_and_the_total(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.reserve(SRC, "row", 1.0, 1e-6, "run-1").commit()
    ledger.reserve(SRC, "row", 0.5, 1e-6, "run-2").refund()
    text = ledger.describe(SRC)
    assert "run-1" in text and "refunded" in text and "summed): epsilon 1, delta 1e-06" in text


def _race(path: str, run_id: str, barrier, results) -> None:
    """Child process: wait for the other, then reserve 0.6 of a 1.0 budget. Reading the ledger is
    slowed down, so without the file lock both children would read an empty ledger and both append."""
    from synthaug.training import ledger as module

    read = module.Ledger._runs

    def slow_read(self):
        runs = read(self)
        time.sleep(0.5)
        return runs

    module.Ledger._runs = slow_read
    barrier.wait()
    try:
        module.Ledger(path).reserve(SRC, "row", 0.6, 1e-6, run_id, max_total_epsilon=1.0)
        results.put((run_id, "ok"))
    except BadInput as exc:
        results.put((run_id, str(exc)))


def test_two_processes_cannot_both_take_the_last_budget(tmp_path):
    # Setup: two processes started together, each asking for more than half the budget
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    path = str(tmp_path / "ledger.jsonl")
    procs = [ctx.Process(target=_race, args=(path, f"run-{i}", barrier, results)) for i in range(2)]
    # Run
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    # Assert: exactly one got it; the other was refused; the ledger holds one reservation
    assert sorted(v == "ok" for v in outcomes.values()) == [False, True], outcomes
    assert "privacy budget exceeded" in next(v for v in outcomes.values() if v != "ok")
    assert Ledger(path).spent(SRC, "row")[0] == pytest.approx(0.6)


def test_a_run_above_max_epsilon_is_refused_before_reserving(tmp_path):
    from synthaug.training.privacy import PrivacyConfig, reserve_budget

    path = tmp_path / "ledger.jsonl"
    with pytest.raises(BadInput, match="privacy.epsilon=5 is above max_epsilon=3"):
        reserve_budget(PrivacyConfig(epsilon=5), ledger=path, source_sha256=SRC, n_rows=344, run_id="r1", max_epsilon=3)
    assert not path.exists()
    reservation = reserve_budget(PrivacyConfig(epsilon=2), ledger=path, source_sha256=SRC, n_rows=344, run_id="r2", max_epsilon=3)
    assert (reservation.epsilon, reservation.delta) == (2.0, 1e-5)  # delta: auto resolved for 344 rows
