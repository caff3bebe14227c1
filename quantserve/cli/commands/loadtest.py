"""`quantserve loadtest --url 127.0.0.1:8001 --model NAME --users N --duration 60s --data INPUTS.npz --out reports/X`.

Runs Locust headless against Triton over gRPC (closed loop, a concurrency sweep, or an open-loop
fixed rate), writes `load-<model>.json`, Locust's CSVs and the report, and prints a table.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from loadtest.load_pattern import ARRIVALS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="load a served model with Locust gRPC users; latency, throughput, Triton counters, utilization",
        description="Headless Locust load against a model served by Triton, measured over an exact window.",
    )
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC address host:port")
    parser.add_argument("--model", required=True, help="model name; a comma-separated list loads each in turn")
    parser.add_argument("--data", type=Path, required=True, help=".npz with one array per model input")
    parser.add_argument("--out", type=Path, required=True, help="results folder (JSON, Locust CSVs, report)")
    parser.add_argument("--users", type=int, default=16, help="concurrent closed-loop users")
    parser.add_argument("--spawn-rate", type=float, default=0.0, help="users started per second (default: all at once)")
    parser.add_argument("--duration", default="60s", help="run time per step: 60s, 2m, …")
    parser.add_argument(
        "--sweep", default="", help="closed-loop concurrency sweep, e.g. 1,2,4,8,16 (overrides --users)"
    )
    parser.add_argument("--rate", default="", help="open loop: total requests per second; a list (50,100,200) sweeps")
    parser.add_argument("--arrivals", default="constant", choices=ARRIVALS, help="open-loop arrivals")
    parser.add_argument("--workers", type=int, default=0, help="Locust master + this many local worker processes")
    parser.add_argument("--request-batch", type=int, default=1, help="samples per request")
    parser.add_argument("--metrics-url", default="", help="Triton metrics host:port (server-side breakdown)")
    parser.add_argument("--server-pid", type=int, default=0, help="tritonserver pid for CPU/memory sampling")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from loadtest.harness import LoadSettings, parse_duration, run_pattern
    from loadtest.load_pattern import pattern_from_flags
    from loadtest.report import render

    duration = parse_duration(args.duration)
    pattern = pattern_from_flags(args.users, args.sweep, str(args.rate), args.arrivals, args.spawn_rate or None)
    for model in [m.strip() for m in args.model.split(",") if m.strip()]:
        settings = LoadSettings(
            url=args.url,
            model=model,
            data=args.data,
            pattern=pattern,
            duration_s=duration,
            request_batch=args.request_batch,
            workers=args.workers,
            metrics_url=args.metrics_url or None,
        )
        run_ = run_pattern(settings, args.out, server_pid=args.server_pid or None)
        print_table(run_.results)
    md_path, html_path = render(args.out)
    print(f"report: {html_path} and {md_path}")
    return 0


def print_table(results: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="load test (client latency; avg batch from Triton's counters)")
    for column in ("step", "requests", "failed", "req/s", "p50 ms", "p99 ms", "avg batch"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for r in results:
        table.add_row(
            r.label,
            str(r.requests),
            str(r.failed_requests),
            f"{r.throughput_rps:.1f}",
            f"{r.latency.p50_ms:.2f}",
            f"{r.latency.p99_ms:.2f}",
            f"{r.avg_batch_size:.2f}",
        )
    Console().print(table)
