"""A closed-loop sweep says where it stopped paying (loadtest.sweep_knee): a slow model at 1/4/16 users gave 285.9,
353.7 and 269.6 req/s at p99 14, 38 and 154 ms, and nothing said that throughput fell past 4 users."""

from __future__ import annotations

from pathlib import Path

from test_load_results import make_result

from loadtest.load_run import LoadRun
from loadtest.report import render
from loadtest.results import LoadResult
from loadtest.sweep_knee import sweep_note


def _sweep(*figures: tuple[int, float, float]) -> LoadRun:
    """A sweep of `(users, req/s, p99 ms)` steps."""
    results = []
    for users, rps, p99 in figures:
        result = make_result("slow", users, seed=users)
        result.throughput_rps, result.latency.p99_ms = rps, p99
        results.append(result)
    return LoadRun("slow", results)


def test_throughput_falling_past_the_best_concurrency_is_said() -> None:
    run = _sweep((1, 285.9, 14.0), (4, 353.7, 38.0), (16, 269.6, 154.0))
    assert sweep_note(run) == (
        "slow sweep: throughput peaked at 4 users (353.7 req/s, p99 38.0 ms) and fell to 16 users (269.6 req/s, "
        "p99 154.0 ms), 24% less: past 4 users more clients cost throughput as well as latency; keep the clients "
        "near 4 (a proxy's or the load balancer's concurrency limit in front of the server can hold them there; not "
        "a Triton queue policy, which stalls the batcher on Triton 2.51: server#8870)"
    )


def test_a_sweep_still_rising_and_one_levelled_off() -> None:
    rising = _sweep((1, 100.0, 5.0), (4, 300.0, 8.0), (16, 700.0, 20.0))
    assert sweep_note(rising) == (
        "slow sweep: throughput still rose at the highest concurrency, 16 users (700.0 req/s, p99 20.0 ms) against "
        "4 users (300.0 req/s, p99 8.0 ms): the server's capacity lies beyond this sweep; sweep higher to find it"
    )
    levelled = _sweep((1, 100.0, 5.0), (4, 380.0, 9.0), (8, 400.0, 18.0), (16, 395.0, 40.0))
    assert sweep_note(levelled) == (
        "slow sweep: throughput levelled off from 4 users (380.0 req/s, p99 9.0 ms), within 10% of the most (400.0 "
        "req/s at 8 users); at 16 users p99 was 40.0 ms: more clients added latency, not throughput"
    )


def test_no_line_without_a_sweep_of_answered_closed_loop_steps() -> None:
    assert sweep_note(_sweep((4, 300.0, 8.0))) is None
    failed = _sweep((1, 100.0, 5.0), (4, 0.0, 0.0))
    failed.results[1].failed_requests = failed.results[1].requests  # nothing answered: not a step of the curve
    assert sweep_note(failed) is None
    open_loop: list[LoadResult] = _sweep((1, 100.0, 5.0), (4, 300.0, 8.0)).results
    for result in open_loop:
        result.mode = "open"
    assert sweep_note(LoadRun("slow", open_loop)) is None


def test_the_report_carries_the_sweep_line(tmp_path: Path) -> None:
    _sweep((1, 285.9, 14.0), (4, 353.7, 38.0), (16, 269.6, 154.0)).save(tmp_path)
    md_path, html_path = render(tmp_path)
    assert "- Sweep: slow sweep: throughput peaked at 4 users" in md_path.read_text()
    assert "Sweep: slow sweep: throughput peaked at 4 users" in html_path.read_text()
