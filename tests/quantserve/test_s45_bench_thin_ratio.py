"""A bench ratio over fewer than 3 repeats, or between rows spread either side of 1.0, says in words that it is no
figure to quote — in the printed table, the markdown and bench.json; a ratio of tight repeats reads bare.

Session 45: `bench --quick` (one repeat) printed 5/4 as 0.35 in one run and 1.05 in the next on a busy machine,
each bare. The figures are built directly here; nothing is timed."""

from __future__ import annotations

import io

from rich.console import Console

from quantserve.cli.bench_markdown import model_section
from quantserve.cli.bench_results import ModelBench, RowResult
from quantserve.cli.commands.bench import print_model

ONE_REPEAT = "one repeat: no spread measured; not a figure to quote"


def bench_of(runs: dict[int, list[float]]) -> ModelBench:
    """Rows 1-5 with the given repeats of every figure."""
    rows = {n: RowResult(n, "served" if n > 3 else "in-process", "how") for n in range(1, 6)}
    for n, values in runs.items():
        for value in values:
            rows[n].add({"saturation_samples_per_s": value, "concurrent_samples_per_s": value})
            rows[n].add({"p50_ms": 1.0, "p99_ms": 2.0})
    return ModelBench("tiny", "a tiny model", 1, 8, rows, tune={"source": "tune"})


def printed(bench: ModelBench) -> str:
    out = io.StringIO()
    print_model("tiny", bench.to_dict(), Console(file=out, width=400))
    return out.getvalue()


def test_a_one_repeat_ratio_says_it_is_no_figure_to_quote() -> None:
    bench = bench_of({1: [100.0], 2: [100.0], 3: [150.0], 4: [400.0], 5: [140.0]})
    ratio = bench.to_dict()["ratios"]["5/4"]
    assert ratio["value"] == 0.35 and ratio["repeats"] == 1 and ratio["doubt"] == ONE_REPEAT
    assert ONE_REPEAT in printed(bench)
    assert f"**{ONE_REPEAT}**" in "\n".join(model_section("tiny", bench.to_dict()))


def test_rows_spread_either_side_of_one_say_so() -> None:
    bench = bench_of({n: [100.0, 100.0, 100.0] for n in (1, 2, 3)} | {4: [100.0, 120.0, 140.0], 5: [90.0, 110, 160]})
    ratio = bench.to_dict()["ratios"]["5/4"]
    assert ratio["doubt"] == ("its rows' spread puts it anywhere in 0.64-1.60, either side of 1: not a figure to quote")


def test_tight_repeats_read_bare() -> None:
    bench = bench_of(
        {1: [100.0, 101, 99], 2: [100.0, 101, 99], 3: [150.0, 151, 149], 4: [40.0, 41, 39], 5: [140.0, 141, 139]}
    )
    document = bench.to_dict()
    assert all(r["doubt"] is None for r in document["ratios"].values())
    text = printed(bench) + "\n".join(model_section("tiny", document))
    assert "not a figure to quote" not in text and "repeat:" not in text
