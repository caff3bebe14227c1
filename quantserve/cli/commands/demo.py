"""`quantserve demo`: the main job end to end on the embedded default (what `make demo` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train the digits CNN, optimize FP32+INT8, deploy, serve and measure both through Triton",
        description="The main job end to end on the embedded default; writes OUT/summary.json and OUT/report.html.",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/demo"), help="where reports go")
    parser.add_argument("--build", type=Path, default=Path("build/demo"), help="where optimized builds go")
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--users", type=int, default=16, help="concurrent Locust users per load test")
    parser.add_argument("--sweep", default="1,4,16", help="concurrency steps per variant (comma-separated)")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of load per step")
    parser.add_argument("--request-batch", type=int, default=4, help="samples per gRPC request")
    parser.add_argument("--max-accuracy-drop", type=float, default=1.0, help="INT8 budget, accuracy points")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from loadtest.load_pattern import parse_concurrencies
    from quantserve.cli.demo import DemoSettings, run_demo

    console = Console()
    settings = DemoSettings(
        out=args.out,
        build=args.build,
        repo=args.repo,
        seed=args.seed,
        epochs=args.epochs,
        users=args.users,
        sweep=tuple(parse_concurrencies(str(args.sweep))),
        duration_s=args.duration,
        request_batch=args.request_batch,
        max_accuracy_drop=args.max_accuracy_drop,
    )
    summary = run_demo(settings, say=lambda line: console.print(f"[bold cyan]›[/] {line}"))
    console.print(summary_table(summary))
    console.print(f"summary: {settings.out / 'summary.json'}   report: {settings.out / 'report.html'}")
    return 0


def summary_table(summary: dict[str, Any]) -> Any:
    """A small table a person can read: one row per variant, then the served INT8 speedup."""
    from rich.table import Table

    table = Table(title=f"{summary['model']} on {summary['target']} (served through Triton over gRPC)")
    for column in ("variant", "accuracy %", "top-1 agree %", "p50 ms", "p99 ms", "req/s", "avg batch", "failed"):
        table.add_column(column, justify="right")
    for variant, v in summary["variants"].items():
        table.add_row(
            variant,
            f"{v['accuracy'] * 100:.2f}",
            f"{v['top1_agreement'] * 100:.2f}",
            f"{v['latency_p50_ms']:.2f}",
            f"{v['latency_p99_ms']:.2f}",
            f"{v['throughput_rps']:.1f}",
            f"{v['avg_batch_size']:.2f}",
            str(v["failed_requests"]),
        )
    table.caption = f"INT8 speedup (served throughput): {summary['int8_speedup']:.2f}×"
    return table
