"""`quantserve bench`: PyTorch eager, ONNX Runtime FP32/INT8, naive Triton FP32 and tuned Triton INT8, side by side.

On the built-in models (`--models`, `--quick`: a tiny one) or on the user's own (`--model MODEL --data REQUESTS.npz`,
what `optimize` takes; `--quick` then means short windows, one repeat and no tune search).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from quantserve.cli.port_flags import add_port_range_flag
from quantserve.cli.tables import add_json_flag
from quantserve.errors import QuantserveError

INTERRUPTED_EXIT = 130  # as on any Ctrl-C (128 + SIGINT), once bench.json holds what was measured


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="one model through PyTorch eager, ONNX Runtime FP32/INT8, naive Triton FP32 and tuned Triton INT8",
        description=(
            "Five ways of running the same model and data, in one run on this machine: in-process PyTorch eager "
            "FP32, ONNX Runtime FP32 and INT8, Triton FP32 with no dynamic batching, Triton INT8 as `quantserve "
            "tune` leaves it. Medians of repeats with their spread; writes OUT/bench.json. The built-in models "
            "(--models), or your own: `quantserve bench --model model.onnx --data requests.npz` (MODEL as optimize "
            "takes it: .onnx, .pt2 or package.module:factory; an .onnx has no PyTorch row, recorded as not measured; "
            "an INT8 build over its drift budget is timed and marked as one optimize would not ship)."
        ),
    )
    parser.add_argument(
        "--models", default=None, help="comma-separated: demo, cnn, encoder (default all three; not with --quick)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short windows, one repeat, no tune search; without --model a tiny model"
    )
    user = parser.add_argument_group("your own model (instead of --models)")
    user.add_argument("--model", help="MODEL as `quantserve optimize` takes it: .onnx, .pt2 or package.module:factory")
    user.add_argument(
        "--data", type=Path, metavar="REQUESTS.npz", help="requests (one array per model input), sent in every row"
    )
    user.add_argument("--calib", type=Path, metavar="C.npz", help="calibration data for INT8 (default: --data)")
    user.add_argument(
        "--heldout", type=Path, metavar="H.npz", help="data INT8's drift is measured on (default: --data, said so)"
    )
    user.add_argument("--name", help="the model's name in builds, served models and bench.json (default: file stem)")
    user.add_argument(
        "--request-batch", type=int, metavar="N", help="samples a request, in-process and served (default 1)"
    )
    parser.add_argument("--users", type=int, help="clients: Locust users served, threads in-process (16; quick 8)")
    parser.add_argument("--repeats", type=int, help="repeats per row; figures are their median (3; quick 1)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"), help="where bench.json goes")
    parser.add_argument(
        "--build",
        type=Path,
        default=Path("build/bench"),
        help="models and builds, reused (yours while its files are the same)",
    )
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
    from quantserve.cli.bench_interrupted import BenchInterrupted
    from quantserve.cli.tables import print_json

    console = Console(stderr=True) if args.json else Console()
    changes: dict[str, Any] = {"out": args.out, "build": args.build, "rebuild": args.rebuild}
    changes.update(slo_p99_ms=slo_flag(args.slo_p99_ms))
    given = {"users": args.users, "repeats": args.repeats, "tune_trials": args.tune_trials}
    changes.update({k: v for k, v in given.items() if v is not None})
    user = user_model(args)
    if user is not None:
        changes.update(models=(user.bench_name,), user=user)
    if args.quick:
        if args.models is not None:  # before, --quick ran its tiny model and ignored --models, names unread
            raise QuantserveError("--quick benches its tiny model only; drop --models")
        settings = BenchSettings.quick_run(**changes)
    elif user is not None:
        settings = BenchSettings(**changes)
    else:
        models = tuple(m.strip() for m in str(args.models or ",".join(FULL_MODELS)).split(",") if m.strip())
        settings = BenchSettings(models=models, **changes)
    quiet = getattr(args, "quiet", False) or args.json
    try:
        document = run_bench(settings, say=lambda line: None if quiet else console.print(f"[bold cyan]›[/] {line}"))
    except BenchInterrupted as stop:  # bench.json saved with the rows measured; the line names what is missing
        if args.json:
            print_json(stop.document)
        print(f"quantserve: bench: {stop.line}; exit {INTERRUPTED_EXIT}", file=sys.stderr)
        return INTERRUPTED_EXIT
    if args.json:
        print_json(document)
        return 0
    print_bench(document, console)
    console.print(f"bench.json: {settings.out / 'bench.json'}")
    return 0


def user_model(args: argparse.Namespace) -> Any:
    """`--model` and what describes it as a UserModelSpec (None without --model); flags that cannot go together,
    or that describe no model, one line each."""
    from quantserve.cli.bench_user import UserModelSpec

    described = {"--data": args.data, "--calib": args.calib, "--heldout": args.heldout, "--name": args.name}
    described["--request-batch"] = args.request_batch
    if args.model is None:
        given = [flag for flag, value in described.items() if value is not None]
        if given:
            raise QuantserveError(f"{', '.join(given)} describe your own model: give --model MODEL too")
        return None
    if args.models is not None:
        raise QuantserveError("--model benches your model alone; drop --models (or --model for the built-in ones)")
    if args.data is None:
        raise QuantserveError("--model needs --data REQUESTS.npz: the requests every row sends, one array per input")
    batch = 1 if args.request_batch is None else args.request_batch
    return UserModelSpec(args.model, args.data, args.calib, args.heldout, args.name or "", batch)


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


OVER_BUDGET = "†"  # marks the INT8 rows of a build that missed its drift budget
SHORT_WINDOW = "‡"  # marks a concurrency figure measured over too short a window (bench_results.concurrency_doubt)


def print_model(name: str, model: dict[str, Any], console: Any) -> None:
    from quantserve.cli.tables import NAME, Column, fmt, print_rows

    columns = [Column("#", NAME), Column("runner", NAME), Column("sat. /s"), Column("conc. /s")]
    columns += [Column("p50 ms"), Column("p99 ms"), Column("spread")]
    budget_note = model.get("int8_budget_note")
    rows = []
    for row in model["rows"]:
        low, high = row["saturation_samples_per_s"]["min"], row["saturation_samples_per_s"]["max"]
        spread = "not measured" if row.get("not_measured") else f"{fmt(low, 0)}-{fmt(high, 0)}"
        figures = [row[k]["median"] for k in ("saturation_samples_per_s", "concurrent_samples_per_s")]
        label = f"{row['label']} {OVER_BUDGET}" if budget_note and row["row"] in (3, 5) else row["label"]
        cells = [fmt(v, 1) for v in figures]
        cells[1] += f" {SHORT_WINDOW}" if row.get("concurrent_doubt") else ""
        rows.append([str(row["row"]), label, *cells])
        rows[-1] += [fmt(row["p50_ms"]["median"], 1), fmt(row["p99_ms"]["median"], 1), spread]
    title = f"{name}: {model['description']} (samples/s; saturation batch {model['saturation_batch']})"
    print_rows(title, columns, rows, console)
    for row in (r for r in model["rows"] if r.get("not_measured")):
        console.print(f"row {row['row']} not measured: {row['not_measured']}")
    for row in (r for r in model["rows"] if r.get("concurrent_doubt")):
        console.print(f"{SHORT_WINDOW} row {row['row']} conc. /s {row['concurrent_doubt']}")
    if budget_note:
        console.print(f"[bold red]{OVER_BUDGET} {budget_note}[/]")
    print_ratios(model["ratios"], console)
    tuned = next(r for r in model["rows"] if r["row"] == 5)
    console.print(f"row 5: {tuned['how']} ({model['tune'].get('source', '')})")
    for text in (model.get("compute") or {}).get("arithmetic", []):
        console.print(f"  {text}")


def print_ratios(ratios: dict[str, Any], console: Any) -> None:
    """Each ratio with its per-repeat spread and the issue's target where there is one."""
    from quantserve.cli.tables import NAME, TEXT, Column, fmt, print_rows

    columns = [Column("ratio", NAME), Column("×"), Column("spread"), Column("target"), Column("of", TEXT)]
    rows = [[key, fmt(r["value"]), ratio_spread(r), target_cell(r), ratio_meaning(r)] for key, r in ratios.items()]
    print_rows(None, columns, rows, console)


def ratio_spread(ratio: dict[str, Any]) -> str:
    from quantserve.cli.tables import MISSING, fmt

    return MISSING if ratio["value"] is None else f"{fmt(ratio['min'])}-{fmt(ratio['max'])}"


def ratio_meaning(ratio: dict[str, Any]) -> str:
    """What the ratio is of; where it could not be taken, why (a row it needs was not measured); where it is thin
    (too few repeats, or rows spread either side of 1.0), that it is not a figure to quote."""
    absent, doubt = ratio.get("not_measured"), ratio.get("doubt")
    if absent:
        return f"{ratio['meaning']} — not taken: {absent}"
    return f"{ratio['meaning']} — {doubt}" if doubt else ratio["meaning"]


def target_cell(ratio: dict[str, Any]) -> str:
    """E.g. "≥3 met", "≥0.8 NOT met", or "" where the issue sets no target for this model."""
    if ratio.get("target") is None:
        return ""
    return f"≥{ratio['target']:g} {'met' if ratio['met'] else 'NOT met'}"
