"""`quantserve bench`: PyTorch eager, ONNX Runtime FP32/INT8, naive Triton FP32 and tuned Triton INT8, side by side."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from quantserve.cli.port_flags import add_port_range_flag
from quantserve.cli.tables import add_json_flag
from quantserve.errors import QuantserveError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="one model through PyTorch eager, ONNX Runtime FP32/INT8, naive Triton FP32 and tuned Triton INT8",
        description=(
            "Five ways of running the same model and data, in one run on this machine: in-process PyTorch eager "
            "FP32, ONNX Runtime FP32 and INT8, Triton FP32 with no dynamic batching, Triton INT8 as `quantserve "
            "tune` leaves it. Medians of repeats with their spread; writes OUT/bench.json."
        ),
    )
    parser.add_argument(
        "--models", default=None, help="comma-separated: demo, cnn, encoder (default all three; not with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny model, short windows, one repeat (seconds)")
    parser.add_argument("--users", type=int, help="clients: Locust users served, threads in-process (16; quick 8)")
    parser.add_argument("--repeats", type=int, help="repeats per row; figures are their median (3; quick 1)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"), help="where bench.json goes")
    parser.add_argument("--build", type=Path, default=Path("build/bench"), help="models and builds, reused")
    parser.add_argument("--rebuild", action="store_true", help="fit and optimize afresh, even where builds exist")
    parser.add_argument(
        "--tune-trials", type=int, help="tune's quick search: trials after the baseline (6; quick 0 = a fixed config)"
    )
    parser.add_argument("--slo-p99-ms", type=float, default=None, help="tune's SLO (default: 2x in-process INT8 p99)")
    add_json_flag(parser)
    add_port_range_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from quantserve.cli.bench import FULL_MODELS, BenchSettings, run_bench
    from quantserve.cli.tables import print_json

    console = Console(stderr=True) if args.json else Console()
    changes: dict[str, Any] = {"out": args.out, "build": args.build, "rebuild": args.rebuild}
    changes.update(slo_p99_ms=slo_flag(args.slo_p99_ms))
    given = {"users": args.users, "repeats": args.repeats, "tune_trials": args.tune_trials}
    changes.update({k: v for k, v in given.items() if v is not None})
    if args.quick:
        if args.models is not None:  # before, --quick ran its tiny model and ignored --models, names unread
            raise QuantserveError("--quick benches its tiny model only; drop --models")
        settings = BenchSettings.quick_run(**changes)
    else:
        models = tuple(m.strip() for m in str(args.models or ",".join(FULL_MODELS)).split(",") if m.strip())
        settings = BenchSettings(models=models, **changes)
    quiet = getattr(args, "quiet", False) or args.json
    document = run_bench(settings, say=lambda line: None if quiet else console.print(f"[bold cyan]›[/] {line}"))
    if args.json:
        print_json(document)
        return 0
    print_bench(document, console)
    console.print(f"bench.json: {settings.out / 'bench.json'}")
    return 0


def slo_flag(value: float | None) -> float:
    """--slo-p99-ms as BenchSettings takes it (0: derived from the in-process INT8 p99); a given value must be a
    positive, finite number of ms (NaN passed a `< 0` check, and tune then searched under no SLO at all)."""
    if value is None:
        return 0.0
    if not (math.isfinite(value) and value > 0):
        raise QuantserveError(f"--slo-p99-ms must be a positive number of ms, got {value:g}")
    return value


def print_bench(document: dict[str, Any], console: Any = None) -> None:
    """Per model: the five rows (median and spread), the ratios against the issue's targets, the compute."""
    from rich.console import Console

    console = console or Console()
    machine = document["machine"]
    console.print(f"machine: {machine['cpu_line']}; load average {machine['load_average_start']}")
    for name, model in document["models"].items():
        print_model(name, model, console)


def print_model(name: str, model: dict[str, Any], console: Any) -> None:
    from quantserve.cli.tables import NAME, Column, fmt, print_rows

    columns = [Column("#", NAME), Column("runner", NAME), Column("sat. /s"), Column("conc. /s")]
    columns += [Column("p50 ms"), Column("p99 ms"), Column("spread")]
    rows = []
    for row in model["rows"]:
        low, high = row["saturation_samples_per_s"]["min"], row["saturation_samples_per_s"]["max"]
        spread = f"{fmt(low, 0)}-{fmt(high, 0)}"
        figures = [row[k]["median"] for k in ("saturation_samples_per_s", "concurrent_samples_per_s")]
        rows.append([str(row["row"]), row["label"], *(fmt(v, 1) for v in figures)])
        rows[-1] += [fmt(row["p50_ms"]["median"], 1), fmt(row["p99_ms"]["median"], 1), spread]
    title = f"{name}: {model['description']} (samples/s; saturation batch {model['saturation_batch']})"
    print_rows(title, columns, rows, console)
    print_ratios(model["ratios"], console)
    tuned = next(r for r in model["rows"] if r["row"] == 5)
    console.print(f"row 5: {tuned['how']} ({model['tune'].get('source', '')})")
    for text in (model.get("compute") or {}).get("arithmetic", []):
        console.print(f"  {text}")


def print_ratios(ratios: dict[str, Any], console: Any) -> None:
    """Each ratio with its per-repeat spread and the issue's target where there is one."""
    from quantserve.cli.tables import NAME, TEXT, Column, fmt, print_rows

    columns = [Column("ratio", NAME), Column("×"), Column("spread"), Column("target"), Column("of", TEXT)]
    rows = [
        [key, fmt(r["value"]), f"{fmt(r['min'])}-{fmt(r['max'])}", target_cell(r), r["meaning"]]
        for key, r in ratios.items()
    ]
    print_rows(None, columns, rows, console)


def target_cell(ratio: dict[str, Any]) -> str:
    """E.g. "≥3 met", "≥0.8 NOT met", or "" where the issue sets no target for this model."""
    if ratio.get("target") is None:
        return ""
    return f"≥{ratio['target']:g} {'met' if ratio['met'] else 'NOT met'}"
