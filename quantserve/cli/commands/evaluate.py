"""`quantserve evaluate --url … --models fp32,int8 --reference fp32 --data HELDOUT.npz --out reports/X`.

Accuracy drift of each served variant against the FP32 reference; exits 1 when a variant's
accuracy drops by more than `--max-accuracy-drop` points.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loadtest.evaluator import TASKS

EXIT_OVER_BUDGET = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy drift of served variants vs an FP32 reference on labeled held-out data",
        description="Score each served model on HELDOUT.npz over gRPC and compare it with the reference's outputs.",
    )
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC address host:port")
    parser.add_argument("--models", required=True, help="comma-separated model names, e.g. digits_fp32,digits_int8")
    parser.add_argument("--reference", required=True, help="the FP32 reference model name")
    parser.add_argument("--data", type=Path, required=True, help=".npz of inputs (+ `labels` for classifiers)")
    parser.add_argument("--out", type=Path, required=True, help="results folder (accuracy.json, report)")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="auto",
        help="auto: classification when the data has labels and the output is 2-D; embedding: cosine statistics",
    )
    parser.add_argument("--output", default="", help="which model output to score (default: the only/first one)")
    parser.add_argument("--max-accuracy-drop", type=float, default=None, help="budget in accuracy points, e.g. 1.0")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per request")
    load = parser.add_argument_group("side-by-side load (optional): one closed-loop step per model")
    load.add_argument("--load-duration", default="", help="also load each model for this long, e.g. 30s")
    load.add_argument("--load-users", type=int, default=16, help="concurrent users for that load")
    load.add_argument("--metrics-url", default="", help="Triton metrics host:port (server-side breakdown)")
    load.add_argument("--server-pid", type=int, default=0, help="tritonserver pid for CPU/memory sampling")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from loadtest.evaluator import evaluate_accuracy
    from loadtest.report import render
    from quantserve.errors import QuantserveError

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise QuantserveError("--models names no model")
    if args.batch_size < 1:
        raise QuantserveError(f"--batch-size must be at least 1, got {args.batch_size}")
    report = evaluate_accuracy(
        args.url,
        models,
        args.reference,
        args.data,
        args.output or None,
        args.max_accuracy_drop,
        args.batch_size,
        task=args.task,
    )
    report.save(args.out)
    print_table(report)
    if args.load_duration:
        load_side_by_side(args, models)
    md_path, html_path = render(args.out)
    print(f"report: {html_path} and {md_path}")
    if report.over_budget:
        print(f"accuracy drop over the {args.max_accuracy_drop:g}-point budget: {', '.join(report.over_budget)}")
        return EXIT_OVER_BUDGET
    return 0


def load_side_by_side(args: argparse.Namespace, models: list[str]) -> None:
    """The same load on every variant, with the held-out inputs, into the same results folder."""
    from loadtest.harness import LoadSettings, parse_duration, run_pattern
    from loadtest.load_pattern import ClosedLoop
    from quantserve.cli.commands.loadtest import print_table as print_load_table

    duration = parse_duration(args.load_duration)
    for model in models:
        pattern = ClosedLoop(args.load_users)
        settings = LoadSettings(args.url, model, args.data, pattern, duration, metrics_url=args.metrics_url or None)
        run = run_pattern(settings, args.out, server_pid=args.server_pid or None)
        print_load_table(run.results)


def print_table(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value: float | None, digits: int = 4) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    table = Table(title=f"accuracy drift vs {report.reference}")
    columns = ("model", "accuracy", "drop pts", "F1 macro", "AUC-ROC", "top-1 agree", "max abs diff", "cosine min")
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for v in report.variants:
        table.add_row(
            v.model,
            fmt(v.accuracy),
            fmt(v.accuracy_drop_points, 2),
            fmt(v.f1_macro),
            fmt(v.auc_roc_ovr),
            fmt(v.top1_agreement),
            fmt(v.max_abs_diff, 5),
            fmt(v.cosine_min),
        )
    Console().print(table)
