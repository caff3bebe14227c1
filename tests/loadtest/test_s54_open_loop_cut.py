"""An open loop's requests cut at the window's end are said when they weigh, as a closed loop's are, where no
never-sent note counts them.

Probed (session 54): `loadtest --rate 50 --duration 20s --request-batch 4 --request-timeout 3 --allow-failures`,
tritonserver SIGSTOPped 8 s mid-window: offered 1000, 951 requests, unsent 0, cut_at_end 49 (6 % of 823 answered,
backlogged arrivals still waiting at the end): no line said so, the percentiles silently without them.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import step_lines
from loadtest.results import LoadResult

CUT_LINE = (
    "digits_fp32 @ 50 req/s constant: 49 requests were still on their way when the window ended (sent up to 0.4 s "
    "before), against 823 answered: they are in no count or latency, so the figures lean to the quicker requests "
    "and the throughput leaves out the server's work on these; lengthen --duration"
)


def probed(unsent: int = 0) -> LoadResult:
    latency = LatencySummary(823, 2250.9, 5000.0, 6125.2, 6193.0, 2400.0, 4.0, 6193.0)
    step = LoadResult("digits_fp32", "h:1", "open", 1, 20.0, 951, 128, 40.4, 161.6, latency)
    step.rate_rps, step.arrivals, step.offered_requests = 50.0, "constant", 1000
    step.cut_at_end, step.cut_max_ms, step.unsent = 49, 381.6, unsent
    return step


def test_the_probes_cut_backlog_is_said(tmp_path: Path) -> None:
    step = probed()
    assert CUT_LINE in step.notes()
    LoadRun("digits_fp32", [step]).save(tmp_path)  # the report's lines, from the saved file
    (loaded,) = LoadRun.load(tmp_path / "load-digits_fp32-open.json").results
    assert ("Window end", CUT_LINE) in step_lines([LoadRun("digits_fp32", [loaded])])


def test_with_arrivals_never_sent_the_unsent_note_counts_them_alone() -> None:
    notes = probed(unsent=300).notes()
    assert not [n for n in notes if "when the window ended" in n]
    assert any("49 on their way at the end, 300 never sent" in n for n in notes), notes
