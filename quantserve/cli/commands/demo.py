"""`quantserve demo`: the main job end to end on the embedded default (what `make demo` runs),
then `quantserve tune`'s quick joint FP32 x INT8 search (`--no-tune` skips it)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from quantserve.cli.port_flags import add_port_range_flag
from quantserve.cli.tables import add_json_flag


def register(subparsers: Any) -> None:
    from quantserve.cli.demo import DemoSettings

    defaults = DemoSettings()
    parser = subparsers.add_parser(
        "demo",
        help="train the digits CNN, optimize FP32+INT8, deploy, serve and measure both through Triton",
        description="The main job end to end on the embedded default; writes OUT/summary.json and OUT/report.html.",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/demo"), help="where reports go")
    parser.add_argument("--build", type=Path, default=Path("build/demo"), help="where optimized builds go")
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the training (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs (default %(default)s)")
    parser.add_argument("--users", type=int, default=16, help="concurrent Locust users per load test")
    parser.add_argument("--sweep", default="1,4,16", help="concurrency steps per variant (comma-separated)")
    parser.add_argument(  # read and checked before any work: "2.5" was refused after 140 s of training and deploying
        "--duration", default="12s", help="load per step, whole seconds: 12s, 1m or a bare number (default 12s)"
    )
    parser.add_argument("--request-batch", type=int, default=defaults.request_batch, help="samples per gRPC request")
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch, help="Triton max_batch_size (samples)")
    parser.add_argument("--max-accuracy-drop", type=float, default=1.0, help="INT8 budget, accuracy points")
    parser.add_argument("--no-tune", dest="tune", action="store_false", help="skip the tune step after the comparison")
    parser.add_argument(
        "--tune-trials", type=int, default=defaults.tune_trials, help="tune's trials after the baseline (1-6)"
    )
    parser.add_argument(
        "--allow-slower",
        action="store_true",
        help="deploy and serve INT8 even where it is not faster in-process (its speed reported as measured)",
    )
    add_json_flag(parser)
    add_port_range_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from loadtest.load_flags import parse_concurrencies, parse_duration
    from loadtest.report import render
    from quantserve.cli.demo import DemoSettings, run_demo
    from quantserve.cli.demo_caveats import tune_caveat_lines
    from quantserve.cli.progress import Heartbeat, wants_heartbeat
    from quantserve.cli.tables import print_json
    from serving.machine import write_machine_facts

    console = Console(stderr=True) if args.json else Console()
    settings = DemoSettings(
        out=args.out,
        build=args.build,
        repo=args.repo,
        seed=args.seed,
        epochs=args.epochs,
        users=args.users,
        sweep=tuple(parse_concurrencies(str(args.sweep))),
        duration_s=parse_duration(str(args.duration)),
        request_batch=args.request_batch,
        max_batch=args.max_batch,
        max_accuracy_drop=args.max_accuracy_drop,
        tune=args.tune,
        tune_trials=args.tune_trials,
        allow_slower=args.allow_slower,
    )
    quiet = getattr(args, "quiet", False) or args.json
    summary = run_demo(
        settings,
        say=lambda line: None if quiet else console.print(f"[bold cyan]›[/] {line}"),
        heartbeat=Heartbeat("demo") if wants_heartbeat(args) else None,  # optimize's lines, while it trains
    )
    # the report again, now with the machine (the builds' in-process speed: those the folder records)
    write_machine_facts(settings.out)
    render(settings.out)
    if args.json:
        print_json(summary)
        return 0
    print_summary(summary, console)
    for line in [*tune_lines(summary.get("tune")), *tune_caveat_lines(summary.get("tune"))]:
        console.print(line)
    console.print(f"summary: {settings.out / 'summary.json'}   report: {settings.out / 'report.html'}")
    return 0


def print_summary(summary: dict[str, Any], console: Any = None) -> None:
    """A small table a person can read, one row per variant, then the verdict: served INT8 speedup and drop, and
    report.md's caveats on that speedup (a busy machine: the 2.39× of probe round 12 came with none)."""
    from rich.console import Console

    from quantserve.cli.demo_caveats import report_line, served_caveat_line
    from quantserve.cli.tables import NAME, Column, print_rows

    console = console or Console()
    headers = ("accuracy %", "top-1 agree %", "p50 ms", "p99 ms", "req/s", "avg batch", "failed")
    columns = [Column("variant", NAME), *(Column(h) for h in headers)]
    rows = [
        [
            variant,
            f"{v['accuracy'] * 100:.2f}",
            f"{v['top1_agreement'] * 100:.2f}",
            f"{v['latency_p50_ms']:.2f}",
            f"{v['latency_p99_ms']:.2f}",
            f"{v['throughput_rps']:.1f}",
            f"{v['avg_batch_size']:.2f}",
            str(v["failed_requests"]),
        ]
        for variant, v in summary["variants"].items()
    ]
    title = f"{summary['model']} on {summary['target']} (served through Triton over gRPC)"
    print_rows(title, columns, rows, console)
    console.print(verdict_line(summary))
    for line in (served_caveat_line(summary), report_line(summary)):
        if line:
            console.print(line)


def verdict_line(summary: dict[str, Any]) -> str:
    """E.g. "INT8 vs FP32: 0.93× in-process (slower here: served anyway, --allow-slower), 1.15× served throughput,
    accuracy drop -0.20 points": the in-process part where the INT8 build recorded its timing."""
    from quantserve.cli.demo_caveats import in_process_words

    return (
        f"INT8 vs FP32: {in_process_words(summary)}{summary['int8_speedup']:.2f}× served throughput, "
        f"accuracy drop {summary['int8_accuracy_drop_points']:.2f} points"
    )


def tune_lines(section: dict[str, Any] | None) -> list[str]:
    """The tune step in four lines of at most ~80 columns, or one saying why it failed; none when skipped."""
    if section is None:
        return []
    if section["status"] != "ok":
        return [f"tune: failed ({section['error']}); the served comparison above stands"]
    s, deployed = section, section["deployed"]
    instances = f"{s['instances']} instance{'s' if s['instances'] > 1 else ''}"
    rows = int(s.get("request_batch") or 1)
    requests = f" ({s['max_batch'] // rows} requests)" if rows > 1 else ""
    batching = (
        f"max batch {s['max_batch']}{requests}, delay {s['max_queue_delay_us']} µs" if s["max_batch"] else "no batching"
    )
    gain = s["goodput_ratio"]  # NaN in memory, null in summary.json, where the baseline met the SLO never
    ratio = f"{gain:.2f}×" if isinstance(gain, float) and math.isfinite(gain) else "n/a (baseline 0)"
    return [
        f"tune: best {s['precision'].upper()}, {batching}, {instances}",
        f"tune: goodput {s['goodput_rps']:.1f} vs naive FP32 {s['baseline_goodput_rps']:.1f} req/s "
        f"(p99 ≤ {s['slo_p99_ms']:.0f} ms): {ratio}",
        f"tune: {s['trials']} trials ({s['pruned']} pruned) in {s['seconds']:.0f} s; "
        f"deployed as {deployed['name']} v{deployed['version']}",
        f"tune: {s['tune_json']}, {Path(s['tune_html']).name}",
    ]
