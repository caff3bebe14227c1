"""Which part of the client held late open-loop requests is decided once (`loadtest.send_lag.send_lag_cause`):
loadtest's note and tune's agree on every recorded combination (tune kept its own copy of the rules, which said "not
recorded" where loadtest, from the same lags, said every slot was taken), and the advice for a generator that fell
behind knows the --workers the run already used (it said "spread the load (--workers N)" to a run of --workers 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.send_lag import GENERATOR, SLOTS, THREADS, UNRECORDED, ClientLags, send_lag_cause
from loadtest.utilization import Utilization
from quantserve.cli.tune_verdict import send_lag_line

# (send lag p99, the generator's p99, peak in flight, limit) → the part that held the requests
CASES = [
    ((90.0, 85.0, 10, 64), GENERATOR),  # the generator's lag is most of the wait
    ((111.2, 80.0, 95, 512), GENERATOR),
    ((12.3, 1.0, 9, 512), THREADS),  # slots free: the client's threads
    ((3780.0, 53.0, 346, 64), SLOTS),  # a full pool behind a small generator lag
    ((180.0, 2.0, None, 64), SLOTS),  # no peak recorded: the rest of the measured wait is the slot wait
    ((180.0, None, None, 64), UNRECORDED),  # nothing recorded of how the wait split
]


def open_result(lags: tuple[float, float | None, int | None, int | None], workers: int = 0) -> LoadResult:
    """An open-loop step at 50 req/s whose requests left the client late by `lags`."""
    result = LoadResult(
        "m", "127.0.0.1:8001", "open", 1, 5.0, 250, 0, 50.0, 50.0, LatencySummary.from_samples(np.full(250, 5.0))
    )
    result.rate_rps, result.arrivals, result.workers = 50.0, "constant", workers
    result.send_lag_p50_ms, result.send_lag_p99_ms, result.generator_lag_p99_ms = 1.0, lags[0], lags[1]
    result.peak_in_flight, result.max_in_flight = lags[2], lags[3]
    return result


def tune_best(lags: tuple[float, float | None, int | None, int | None]) -> dict[str, Any]:
    keys = ("send_lag_p99_ms", "generator_lag_p99_ms", "peak_in_flight", "max_in_flight")
    return dict(zip(keys, lags, strict=True))


@pytest.mark.parametrize(("lags", "part"), CASES)
def test_loadtest_and_tune_name_the_same_part_of_the_client(
    lags: tuple[float, float | None, int | None, int | None], part: str
) -> None:
    cause = send_lag_cause(ClientLags(lags[0], None, *lags[1:]), 10.0)
    assert cause is not None and cause.part == part
    note, line = open_result(lags).send_lag_note() or "", send_lag_line(tune_best(lags))
    assert cause.words in note, note
    assert line.startswith("note: in the best's windows requests left the client up to ") and line.endswith(
        f"({cause.short})"
    ), line
    said = {GENERATOR: "fell behind its schedule", THREADS: "slots were in use", SLOTS: "slots were taken"}
    for other, words in said.items():  # each line names its part and no other
        assert (words in note, words in line) == (other == part, other == part), (note, line)


def test_no_late_request_no_line() -> None:
    assert send_lag_cause(ClientLags(9.0, None, 9.0, 5, 64), 10.0) is None
    assert open_result((9.0, 9.0, 5, 64)).send_lag_note() is None and send_lag_line(tune_best((9.0, 9.0, 5, 64))) == ""


def test_the_generators_advice_knows_the_workers_already_used() -> None:
    """The probe's run: --workers 2, the generator 85 ms behind at p99; told to "spread the load (--workers N)"."""
    behind = (90.0, 85.0, 10, 64)
    alone = open_result(behind).send_lag_note() or ""
    assert alone.endswith("; spread the load (--workers N) or run the client on another machine"), alone
    spread = open_result(behind, workers=2).send_lag_note() or ""
    assert spread.endswith("; more --workers than the 2 used, or run the client on another machine"), spread
    assert "spread the load" not in spread
    full = open_result(behind, workers=4)
    full.utilization = Utilization("psutil", "psutil", cpu_count=4)
    said = full.send_lag_note() or ""
    assert said.endswith(
        "; run the client on another machine (its 4 --workers already match the 4 cores it may use)"
    ), said
    assert "more --workers" not in said
    slots = open_result((3780.0, 53.0, 346, 64), workers=2).send_lag_note() or ""
    assert "--workers" not in slots and slots.endswith("; raise --max-in-flight or lower the rate")
