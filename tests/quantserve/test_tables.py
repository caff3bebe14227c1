"""Result tables at 80 columns: every name whole, numbers unwrapped, narrow consoles get key-value blocks."""

from __future__ import annotations

import math

from rich.console import Console

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from quantserve.cli.commands.demo import print_summary
from quantserve.cli.evaluate_tables import print_table as print_accuracy_table
from quantserve.cli.optimize_tables import print_stages, print_verification
from quantserve.cli.tables import NAME, Column, fmt, needed_width, print_load_table, print_rows

LONG_NAMES = ("resnet50_v1_5_int8_entropy_per_channel", "yolo_fpn_detector_int8_mixed_precision")


def _console(width: int = 80) -> Console:
    return Console(width=width, record=True, force_terminal=False)


def _lines(console: Console) -> list[str]:
    return console.export_text(clear=False).splitlines()


def test_evaluate_never_cuts_a_model_name_at_80_columns() -> None:
    variants = [VariantAccuracy(name, 512, 0.99, accuracy=0.98, accuracy_drop_points=0.1) for name in LONG_NAMES]
    report = AccuracyReport("resnet50_fp32", "heldout.npz", "logits", True, 1.0, variants)
    console = _console()
    print_accuracy_table(report, console)
    text = console.export_text(clear=False)
    assert all(name in text for name in LONG_NAMES), text
    assert "…" not in text
    assert max(len(line) for line in _lines(console)) <= 80


def test_a_grid_when_it_fits_with_names_on_one_line() -> None:
    columns = [Column("model", NAME), Column("accuracy"), Column("p99 ms")]
    console = _console()
    print_rows("fits", columns, [["digits_fp32", "0.9883", "43.0"], ["digits_int8", "0.9883", "21.2"]], console)
    rows = [line for line in _lines(console) if "digits_int8" in line]
    assert len(rows) == 1 and rows[0].split() == ["│", "digits_int8", "│", "0.9883", "│", "21.2", "│"]


def test_too_wide_for_80_columns_turns_sideways_with_variants_as_columns() -> None:
    variants = [VariantAccuracy(name, 512, 1.0, accuracy=0.98) for name in ("digits_fp32", "digits_int8")]
    console = _console()
    print_accuracy_table(AccuracyReport("digits_fp32", "h.npz", "logits", True, 1.0, variants), console)
    lines = _lines(console)
    assert lines[2].split() == ["┃", "┃", "digits_fp32", "┃", "digits_int8", "┃"]
    assert any(line.split() == ["│", "accuracy", "│", "0.9800", "│", "0.9800", "│"] for line in lines)


def test_many_long_names_get_one_block_per_row() -> None:
    columns = [Column("model", NAME), *(Column(f"metric {i}") for i in range(8))]
    rows = [[name, *(f"{i}.123456" for i in range(8))] for name in (*LONG_NAMES, LONG_NAMES[0] + "_b")]
    assert needed_width(columns, rows) > 80
    console = _console()
    print_rows("wide", columns, rows, console)
    lines = _lines(console)
    assert [line.strip() for line in lines if "_int8_" in line] == [*LONG_NAMES, LONG_NAMES[0] + "_b"]
    assert sum(line.split() == ["metric", "7", "7.123456"] for line in lines) == 3


def test_optimize_verification_reads_at_80_columns() -> None:
    verification = {
        "data": "calib.npz (last 8 of 40 samples held out)",
        "holds": True,
        "budget": {"min_channel_correlation": 0.98, "min_top1_agreement": 0.99, "max_accuracy_drop_points": 1.0},
        "samples": 8,
        "outputs": {
            "last_hidden_state_for_retrieval": {
                "kind": "dense",
                "channel_correlation_worst": 0.991,
                "max_abs_diff": 0.2,
            },
            "logits": {"kind": "classification", "top1_agreement": 1.0, "accuracy_drop_points": 0.0},
        },
        "speed": {"speedup": 2.21, "fp32_ms": 3.1, "int8_ms": 1.4, "threads": 2, "min_speedup": 1.0},
    }
    console = _console()
    print_verification(verification, console)
    text = console.export_text(clear=False)
    for whole in ("last_hidden_state_for_retrieval (dense)", "channel_correlation_worst", "budget holds", "2.21×"):
        assert whole in text, text
    assert max(len(line) for line in _lines(console)) <= 80


def test_optimize_stage_table_keeps_stage_names_whole() -> None:
    stages = [
        {
            "stage": "calibrate",
            "tool": "quantization: create_calibrator (chunked) + quantize_static",
            "method": "entropy",
            "activation_type": "QUInt8",
            "weight_type": "QInt8",
            "samples": 32,
            "cache": "miss",
        }
    ]
    console = _console()
    print_stages(stages, console)
    assert any(line.startswith("│ calibrate │") for line in _lines(console))


def test_a_dynamic_int8_stage_says_what_it_did_not_none() -> None:
    from quantserve.cli.optimize_tables import _details

    dynamic = {"stage": "calibrate", "scheme": "dynamic", "weight_type": "QInt8", "int8_mac_share": 0.76}
    details = _details({**dynamic, "kept_fp32": ["a", "b"]})
    assert details == (
        "dynamic, QInt8 weights per channel, activations quantized per run, 76% of MACs in INT8, 2 nodes FP32"
    )
    static = {"stage": "calibrate", "scheme": "static_qdq", "method": "minmax", "activation_type": "QUInt8"}
    details = _details({**static, "weight_type": "QInt8", "samples": 32, "cache": "hit"})
    assert details == "static_qdq minmax, QUInt8/QInt8, 32 samples, cache hit" and "None" not in details
    seven = _details({**static, "scheme": "static_qdq_7bit", "weight_type": "QInt8", "reduce_range": True})
    assert "QUInt8/QInt8 7-bit" in seven, seven  # the manifest alone said so


def _load_result(model: str, server: object | None) -> LoadResult:
    latency = LatencySummary(10, 1.0, 1.0, 2.0, 2.0, 3.0, 0.5, 4.0)
    return LoadResult(model, "h:1", "closed", 16, 10.0, 100, 0, 10.0, 40.0, latency, server=server)  # type: ignore[arg-type]


def test_load_table_shows_a_dash_where_triton_metrics_were_not_read() -> None:
    console = _console()
    print_load_table([_load_result(LONG_NAMES[1], None)], console)
    text = console.export_text(clear=False)
    assert f"{LONG_NAMES[1]} @ 16 users" in text
    assert "nan" not in text and "–" in text


def test_demo_summary_and_verdict_line() -> None:
    variant = {
        "accuracy": 0.9883,
        "top1_agreement": 1.0,
        "latency_p50_ms": 11.5,
        "latency_p99_ms": 21.2,
        "throughput_rps": 1313.5,
        "avg_batch_size": 26.8,
        "failed_requests": 0,
    }
    summary = {
        "model": "digits",
        "target": "embedded",
        "variants": {"fp32": variant, "int8": variant},
        "int8_speedup": 2.21,
        "int8_accuracy_drop_points": 0.0,
    }
    console = _console()
    print_summary(summary, console)
    text = console.export_text(clear=False)
    assert "INT8 vs FP32: 2.21× served throughput, accuracy drop 0.00 points" in text
    assert max(len(line) for line in _lines(console)) <= 80


def test_missing_figures_are_a_dash() -> None:
    assert fmt(None) == fmt(math.nan) == "–" and fmt(1.234, 1) == "1.2" and fmt(3) == "3"
