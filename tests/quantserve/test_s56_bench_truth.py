"""Session 56: bench's figures and notes say what they rest on.

- A fixed-concurrency figure measured over a short window (`bench --quick`'s 0.4 s read FP32 34000 samples/s, 2.4x
  its own saturation row) carries a "not a figure to quote" marker in the printed table, bench.json and the
  Markdown, as the one-repeat ratios do; a concurrency ratio over such a row says so too.
- The INT8 note names the build bench timed (its scheme), how fast optimize's search and the bench found it, that
  `quantserve optimize` would refuse it as slower, and the faster scheme the search tried (it ran static Q/DQ at
  0.56x FP32 while the search had timed dynamic at 2.39x, also over the budget).
"""

from __future__ import annotations

from typing import Any

from quantserve.cli.bench_results import ModelBench, RowResult

QUICK_WINDOW = {"window_s": 0.4, "requests": 1700.0, "clients": 8.0}  # the probe's FP32 row: 1700 × 8 / 0.4 s
FULL_WINDOW = {"window_s": 3.2, "requests": 9000.0, "clients": 16.0}
FIGURES = {"saturation_samples_per_s": 14369.5, "concurrent_samples_per_s": 34000.0, "p50_ms": 0.2, "p99_ms": 36.4}
PROBE_INT8 = {  # bench.json's INT8 record of the probe's model, with what optimize's search timed (its manifest)
    "drift_holds": False,
    "scheme": "static_qdq",
    "drift_line": "output 'logits': top-1 agreement 0.982 < budget 0.99",
}
PROBE_CALIBRATE = {
    "stage": "calibrate",
    "scheme": "static_qdq",
    "speed": {"speedup": 0.5593, "batch": 8, "threads": 2},
    "candidates": [
        {"scheme": "static_qdq", "speedup": 0.5593, "holds": False},
        {"scheme": "dynamic", "speedup": 2.3891, "holds": False},
        {"scheme": "static_qdq_smooth", "speedup": 2.0602, "holds": False},
    ],
}


def row(number: int, where: str, repeats: list[dict[str, float]]) -> RowResult:
    result = RowResult(number, where, "how")
    for values in repeats:
        result.add({**FIGURES, **values})
    return result


def bench(window: dict[str, float], repeats: int = 1) -> ModelBench:
    rows = {n: row(n, "in-process", [window] * repeats) for n in (1, 2, 3)}
    rows |= {n: row(n, "served", [{"requests": 20000.0}] * repeats) for n in (4, 5)}
    return ModelBench("mlp", "your model mlp.onnx", 8, 16, rows)


def test_a_concurrency_figure_over_a_short_window_is_marked_in_bench_json() -> None:
    document = bench(QUICK_WINDOW).to_dict()
    fp32 = document["rows"][1]
    assert fp32["concurrent_doubt"] == "measured over 0.40 s (1700 requests): a window under 1 s; not a figure to quote"
    assert [r["concurrent_doubt"] for r in document["rows"][3:]] == [None, None]  # served: no window recorded


def test_a_long_window_is_not_marked_but_too_few_requests_a_client_are() -> None:
    assert bench(FULL_WINDOW, 3).to_dict()["rows"][1]["concurrent_doubt"] is None
    few = {**FULL_WINDOW, "requests": 160.0}  # 10 a client: the edge of one request each may move it 10 %
    said = bench(few, 3).to_dict()["rows"][1]["concurrent_doubt"]
    assert said == "measured over 3.20 s (160 requests): under 20 requests a client; not a figure to quote"


def test_a_concurrency_ratio_over_a_short_window_row_says_so_even_with_repeats() -> None:
    ratios = bench(QUICK_WINDOW, 3).to_dict()["ratios"]
    assert (
        ratios["5/1"]["doubt"]
        == "row 1 measured over 0.40 s (1700 requests): a window under 1 s; not a figure to quote"
    )
    assert ratios["3/2"]["doubt"] is None  # saturation: not windowed by concurrency
    assert bench(FULL_WINDOW, 3).to_dict()["ratios"]["5/1"]["doubt"] is None


def test_the_printed_table_and_the_markdown_mark_the_short_window_figure() -> None:
    from rich.console import Console

    from quantserve.cli.bench_markdown import model_section
    from quantserve.cli.commands.bench import print_model

    document = bench(QUICK_WINDOW).to_dict()
    console = Console(record=True, width=200)
    print_model("mlp", document, console)
    text, markdown = console.export_text(), "\n".join(model_section("mlp", document))
    doubt = "measured over 0.40 s (1700 requests): a window under 1 s; not a figure to quote"
    assert "34000.0 ‡" in text and f"‡ row 2 conc. /s {doubt}" in text
    assert "34 000.0 (34 000.0–34 000.0) ‡" in markdown
    assert f"‡ row 2's samples/s at fixed concurrency: **{doubt}**." in markdown
    full = bench(FULL_WINDOW, 3).to_dict()
    console = Console(record=True, width=200)
    print_model("mlp", full, console)
    assert "‡" not in console.export_text() and "‡" not in "\n".join(model_section("mlp", full))


def test_the_progress_line_says_the_window_is_short() -> None:
    from quantserve.cli.bench import line

    assert line(row(2, "in-process", [QUICK_WINDOW])).endswith(
        "(concurrency measured over 0.40 s (1700 requests): a window under 1 s; not a figure to quote)"
    )


def test_the_build_record_keeps_what_the_search_timed() -> None:
    from quantserve.cli.bench_build import search_speed_record

    assert search_speed_record(PROBE_CALIBRATE) == {
        "search_speedup": 0.5593,
        "fastest_scheme": {"scheme": "dynamic", "speedup": 2.3891, "holds": False},
    }
    assert search_speed_record({"stage": "calibrate"}) == {}


def int8_record() -> dict[str, Any]:
    from quantserve.cli.bench_build import search_speed_record

    return {**PROBE_INT8, **search_speed_record(PROBE_CALIBRATE)}


def test_the_int8_note_names_the_scheme_its_speed_and_optimizes_refusal() -> None:
    model = bench(FULL_WINDOW, 3)
    for number, saturation in ((2, 14369.5), (3, 9304.8)):  # the probe's 3/2: 0.65
        model.rows[number].figures["saturation_samples_per_s"].runs = [saturation] * 3
    model.builds["int8"] = int8_record()
    note = model.to_dict()["int8_budget_note"]
    assert note == (
        "INT8 misses its drift budget (output 'logits': top-1 agreement 0.982 < budget 0.99); its scheme, static_qdq, "
        "ran 0.56× FP32 in optimize's search and 0.65× here (3/2) — slower than FP32: below --min-speedup 1.1, so "
        "`quantserve optimize` would refuse it as slower too; the fastest scheme the search tried, dynamic, ran 2.39× "
        "FP32 but missed the drift budget too — its rows are timed, but this INT8 build is not one optimize would ship"
    )


def test_a_build_that_holds_its_budget_but_is_slower_than_the_gate_is_noted() -> None:
    from quantserve.cli.bench_results import int8_budget_note

    slow = {**int8_record(), "drift_holds": True, "fastest_scheme": {}}
    assert int8_budget_note(slow) == (
        "INT8 holds its drift budget; its scheme, static_qdq, ran 0.56× FP32 in optimize's search: below "
        "--min-speedup 1.1, so `quantserve optimize` would refuse it as slower — its rows are timed, but this INT8 "
        "build is not one optimize would ship"
    )
    assert int8_budget_note({**slow, "search_speedup": 2.4}) is None  # holds and fast: what optimize ships
