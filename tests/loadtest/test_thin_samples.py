"""Notes on what a step's figures rest on: a p99 from a handful of requests, and requests the window's end cut off.

Probed against a segmentation model answering in seconds: `--users 2 --duration 20s` printed p99 11228 ms from 4
requests, with no word that it was their slowest one; 6 users over 40 s recorded `cut_at_end: 3` against 8 answered
and the console said nothing of the 3.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from loadtest import recording_files
from loadtest.load_pattern import ClosedLoop
from loadtest.load_settings import LoadSettings
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import SAMPLE_COLUMNS, UNANSWERED_PREFIX, WINDOW_FILE
from loadtest.results import LoadResult
from loadtest.step_result import _result_of_window


def _result(
    latencies_ms: list[float], mode: str = "closed", cut: int = 0, cut_max_ms: float | None = None
) -> LoadResult:
    return LoadResult(
        model="seg",
        url="127.0.0.1:8001",
        mode=mode,
        users=2,
        window_s=20.0,
        requests=len(latencies_ms),
        failed_requests=0,
        throughput_rps=len(latencies_ms) / 20.0,
        inferences_per_s=16 * len(latencies_ms) / 20.0,
        latency=LatencySummary.from_samples(latencies_ms),
        rate_rps=1.0 if mode == "open" else None,
        arrivals="constant" if mode == "open" else None,
        cut_at_end=cut,
        cut_max_ms=cut_max_ms,
    )


def test_a_p99_on_fewer_than_100_requests_is_said_to_be_their_slowest() -> None:
    few = _result([4288.0, 4758.0, 10981.0, 11236.0])
    assert few.notes() == [
        "seg @ 2 users: p99 rests on 4 successful requests: it is interpolated between their two slowest, not a "
        "tail (that takes 100 or more); run longer (--duration) for a tail figure"
    ]
    assert 10981.0 < few.latency.p99_ms <= 11236.0  # between the two slowest: in effect the slowest one
    rng = np.random.default_rng(0)
    assert _result(list(rng.gamma(4.0, 2.0, 100))).notes() == []  # from 100 a p99 is a tail figure
    assert _result(list(rng.gamma(4.0, 2.0, 99))).notes()[0].startswith("seg @ 2 users: p99 rests on 99 successful")
    assert _result([]).notes() == []  # nothing answered: no p99 to speak of (other notes say why)


def test_requests_cut_at_the_window_end_are_said_when_they_weigh() -> None:
    """The probe's 6-user step: 3 cut against 8 answered. A fast model's 16 cut against thousands are no news, nor
    an open loop's with arrivals never sent (its unsent note counts them)."""
    rng = np.random.default_rng(1)
    slow = _result(list(rng.gamma(4.0, 6000.0, 8)), cut=3, cut_max_ms=9578.4)
    cut = [n for n in slow.notes() if "window ended" in n]
    assert cut == [
        "seg @ 2 users: 3 requests were still on their way when the window ended (sent up to 9.6 s before), against "
        "8 answered: they are in no count or latency, so the figures lean to the quicker requests and the throughput "
        "leaves out the server's work on these; lengthen --duration"
    ]
    fast = _result(list(rng.gamma(4.0, 1.0, 5000)), cut=16, cut_max_ms=3.0)
    assert fast.notes() == []
    unsent = _result(list(rng.gamma(4.0, 1.0, 8)), "open", cut=3)
    unsent.unsent = 40  # the never-sent note counts the cut ones (an open loop without: test_s54_open_loop_cut)
    assert not [n for n in unsent.notes() if "window ended" in n]


def test_the_cut_requests_longest_wait_is_read_from_the_records(tmp_path: Path) -> None:
    """What the Locust processes recorded at the stop: 2 requests still on their way (waited 9.0 and 3.7 s by the
    window's end) beside 8 answered ones; none overdue, so both are cut, and the longer wait is the note's."""
    record_dir = tmp_path / "raw"
    record_dir.mkdir()
    start, end = 1000.0, 1040.0
    (record_dir / WINDOW_FILE).write_text(json.dumps({"start": start, "end": end}))
    answered = np.zeros((8, SAMPLE_COLUMNS))
    answered[:, 0], answered[:, 1], answered[:, 2] = np.linspace(1010.0, 1039.0, 8), 28000.0, 1.0
    np.save(record_dir / "latencies-1.npy", answered)
    stop = end + 0.5  # each waiting user notes its request as it stops, just after the window's end
    np.save(record_dir / f"{UNANSWERED_PREFIX}1.npy", np.array([[stop, 9500.0, 16.0], [stop, 4200.0, 16.0]]))
    settings = LoadSettings(url="127.0.0.1:1", model="seg", data=tmp_path / "seg.npz", request_batch=16)
    window = recording_files.read_window(record_dir)
    result = _result_of_window(settings, ClosedLoop(users=6), record_dir, window, tmp_path / "locust")
    assert (result.requests, result.cut_at_end) == (8, 2)
    assert result.cut_max_ms is not None and abs(result.cut_max_ms - 9000.0) < 1e-6
    assert any(
        n.endswith("; lengthen --duration") and "2 requests were still on their way" in n for n in result.notes()
    )
