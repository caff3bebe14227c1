"""`quantserve loadtest --url 127.0.0.1:8001 --model NAME --users N --duration 60s --data INPUTS.npz --out reports/X`.

Runs Locust headless against Triton over gRPC (closed loop, a concurrency sweep, stages or your own LoadTestShape, an
open-loop fixed rate, or a recorded trace's arrivals), writes `load-<model>.json`, Locust's CSVs and the report, and
prints a table.
Ctrl-C, SIGTERM or SIGHUP keeps what was measured: saved and reported, marked interrupted, with one line and exit 130.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.load_pattern import ARRIVALS
from quantserve.checks import positive_seconds
from quantserve.cli.loadtest_lines import print_earlier_runs, print_plan, print_stage_table, versions_line
from quantserve.cli.loadtest_start import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_REQUEST_BATCH,
    DEFAULT_USERS,
    before_load,
    load_pattern,
    refuse_unusable,
    set_aside_unused,
    trace_request_sizes,
)
from quantserve.cli.loadtest_status import failure_status, verdict_status
from quantserve.cli.port_flags import add_port_range_flag
from quantserve.cli.tables import add_json_flag
from quantserve.cli.tls_flags import add_tls_flags, client_tls
from serving.endpoints import find_metrics_url, metrics_hint
from serving.machine import write_machine_facts

DEFAULT_REQUEST_TIMEOUT_S = 30.0  # the client's gRPC deadline per request, as evaluate's

if TYPE_CHECKING:
    from loadtest.interruption import RunInterrupted
    from loadtest.server_back import ToldServerPid


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="load a served model with Locust gRPC users; latency, throughput, Triton counters, utilization",
        description="Headless Locust load against a model served by Triton, measured over an exact window.",
    )
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC address host:port")
    parser.add_argument(
        "--model",
        required=True,
        help="model name; a comma-separated list loads each in turn; NAME@N loads its version N (m@1,m@2: an A/B of "
        "two live versions)",
    )
    parser.add_argument(
        "--model-version",
        default="",
        metavar="N",
        help="send every request to version N of each model named without @N (perf_analyzer's -x; default: the "
        "newest served); refused before any request unless the server serves it",
    )
    parser.add_argument("--data", type=Path, required=True, help=".npz with one array per model input")
    parser.add_argument("--out", type=Path, required=True, help="results folder (JSON, Locust CSVs, report)")
    parser.add_argument(
        "--users", type=int, default=None, help=f"concurrent closed-loop users (default {DEFAULT_USERS})"
    )
    parser.add_argument(
        "--spawn-rate", type=float, default=None, help="users started per second, above 0 (default: all at once)"
    )
    parser.add_argument(
        "--duration",
        default="",
        help="run time per step: 60s, 2m, … (default 60s; with --trace, one pass of it); --stages and --soak set "
        "their own",
    )
    parser.add_argument(
        "--soak", default="", help="soak for this long (10m, 1h): --users closed loop, server memory trend, p99 drift"
    )
    parser.add_argument(
        "--sweep", default="", help="closed-loop concurrency sweep, e.g. 1,2,4,8,16 (overrides --users)"
    )
    parser.add_argument("--rate", default="", help="open loop: total requests per second; a list (50,100,200) sweeps")
    parser.add_argument(
        "--arrivals", default=None, choices=ARRIVALS, help="--rate: the open loop's arrivals (default constant)"
    )
    parser.add_argument(
        "--stages",
        default="",
        help="closed-loop users by stage in one window, a step or spike: 4:20s,32:5s,4:20s (sets the run time)",
    )
    parser.add_argument(
        "--shape",
        default="",
        metavar="FILE.py[:Class]",
        help="closed-loop users set by your own Locust LoadTestShape (its tick()), a stage per change of users, until "
        "tick() returns None; --duration caps it (default 1 h); its own User classes are not run",
    )
    parser.add_argument(
        "--trace",
        default="",
        help="open loop on recorded arrivals, looped: perf_analyzer's --request-intervals file (gaps in µs, one "
        "per line) or a CSV with a timestamp/time/arrival_time column (seconds or date-times), a row per request "
        "(a batch_size column: each request's samples) or, with a count/requests or rate/rps column, a row per "
        "interval",
    )
    parser.add_argument(
        "--trace-speed", type=float, default=None, help="--trace: replay this many times faster (default 1)"
    )
    parser.add_argument(
        "--trace-scale",
        type=float,
        default=None,
        help="--trace (default 1): replay this share of its arrivals, its shape kept (0.01: a production trace on one "
        "server; above 1 multiplies a count per interval)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help=f"--rate or --trace: requests each Locust process keeps in flight (default {DEFAULT_MAX_IN_FLIGHT}); "
        "later arrivals wait in the client",
    )
    parser.add_argument("--workers", type=int, default=0, help="Locust master + this many local worker processes")
    parser.add_argument(
        "--request-batch",
        type=int,
        default=None,
        help=f"samples per request (default {DEFAULT_REQUEST_BATCH}); a --trace with a request-size column sets each "
        "request's own",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT_S,
        metavar="S",
        help=f"seconds each request may take before the client gives up on it and counts it failed (default "
        f"{DEFAULT_REQUEST_TIMEOUT_S:g}); raise it for a slow model or a large --request-batch",
    )
    parser.add_argument(
        "--length-input",
        metavar="NAME",
        help="the integer (N,) input that holds each row's count of real positions, by which each request is cut to "
        "its own length (default: as the model's build was told at optimize, else inferred from a name like seq_len "
        "or lengths); 'none': no input is one",
    )
    parser.add_argument(
        "--metrics-url",
        default="",
        help="Triton metrics host:port (default: the one `quantserve serve` recorded for --url)",
    )
    parser.add_argument("--server-pid", type=int, default=0, help="tritonserver pid for CPU/memory sampling")
    parser.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even when requests failed (an overload test that expects rejections); by default any failed "
        "request makes the exit status 1, as Locust's and perf_analyzer's do — the figures and report are written",
    )
    add_tls_flags(parser)
    add_json_flag(parser)
    add_port_range_flag(parser)
    parser.set_defaults(func=run)


INTERRUPTED_EXIT = 130  # as on any Ctrl-C (128 + SIGINT), once what was measured is saved


def run(args: argparse.Namespace) -> int:
    from loadtest.interruption import RunInterrupted, hangup_as_interrupt

    with hangup_as_interrupt():  # the terminal closed: saved as on SIGTERM (it killed the run, nothing saved)
        try:
            return run_soak_command(args) if args.soak else run_load_command(args)
        except RunInterrupted as stop:
            return interrupted_status(stop, args.out)


def interrupted_status(stop: RunInterrupted, out: Path) -> int:
    """Render the report of what an interrupted run saved, say in one line where it is, and exit as on Ctrl-C."""
    from loadtest.report import render

    _, html_path = render(out)
    if stop.run.interrupted:
        what = f"{stop.run.interrupted.summary()}; partial results"
    else:  # the stop came after its last window ended: nothing of it was cut (`loadtest.interruption`)
        what = f"stopped after {stop.run.model}'s last window ended (any model after it not run); complete results"
    with contextlib.suppress(OSError):  # a terminal that hung up takes no line; the results are saved
        print(
            f"quantserve loadtest: {what} saved in {stop.path} (report: {html_path}); exit {INTERRUPTED_EXIT}",
            file=sys.stderr,
        )
    return INTERRUPTED_EXIT


def run_load_command(args: argparse.Namespace) -> int:
    """One load run (a step, a sweep, a rate list, stages or a trace) per model, then the report and a table."""
    from loadtest.interruption import RunInterrupted
    from loadtest.load_flags import parse_duration
    from loadtest.load_run import load_file_name
    from loadtest.load_settings import LoadSettings, check_expected_arrivals
    from loadtest.report import load_results, render
    from loadtest.server_back import ModelsInTurn
    from loadtest.sweep_knee import sweep_note
    from quantserve.cli.tables import print_json, print_load_table

    unused = set_aside_unused(args)
    pattern = load_pattern(args)
    refuse_unusable(args)  # what the shape cannot use, typed: one line, as the shape's own check does
    pattern.check()  # --spawn-rate, --stages, --rate…: one line before any probe or file
    unused += trace_request_sizes(args, pattern)
    positive_seconds("--request-timeout", args.request_timeout)  # before any probe or file
    pattern = played_once(pattern) if not args.duration else pattern
    duration = parse_duration(args.duration or default_duration(pattern))
    check_expected_arrivals(pattern, duration)  # before any probe or file
    print_plan(pattern, duration, args.json, unused)
    metrics_url = resolve_metrics_url(args)
    runs = []
    every = [
        LoadSettings(
            url=args.url,
            model=model,
            model_version=version,
            data=args.data,
            pattern=pattern,
            duration_s=duration,
            request_batch=DEFAULT_REQUEST_BATCH if args.request_batch is None else args.request_batch,
            workers=args.workers,
            metrics_url=metrics_url,
            tls=client_tls(args),
            max_in_flight=DEFAULT_MAX_IN_FLIGHT if args.max_in_flight is None else args.max_in_flight,
            request_timeout_s=args.request_timeout,
            length_input=args.length_input,
        )
        for model, version in addressed_models(args)
    ]
    before_load(every, [load_file_name(s.label, (step.mode for step in pattern.steps())) for s in every], args)
    write_machine_facts(Path(args.out))  # after every check: a refused run leaves --out as it found it
    # a server gone between two models' runs: waited for, and --server-pid followed where it was the server's own
    in_turn = ModelsInTurn(len(every), Path(args.out), server_pid=args.server_pid or None)
    for settings in every:
        back = in_turn.before(settings)
        try:
            run = run_with_progress(settings, args, told=in_turn.told, restarted=back)
        except RunInterrupted as stop:  # the restart's note kept in what it saved, whatever of it was measured
            in_turn.noted(stop.run, back)
            raise
        runs.append(in_turn.finished(run, settings, back))
        if not args.json:
            print_load_table(runs[-1].results)
            print_stage_table(runs[-1])
            for note in (n for r in runs[-1].results for n in r.notes()):
                print(f"note: {note}")
            if changed := versions_line(runs[-1], settings):
                print(f"note: {changed}")
            if reloaded := runs[-1].identity and runs[-1].identity.config_note(settings.label):
                print(f"note: {reloaded}")
            if sweep := sweep_note(runs[-1]):
                print(f"note: {sweep}")
    md_path, html_path = render(args.out)
    inputs = load_results(args.out)  # what the report says: the folder's runs and their verdict
    if not args.json:
        print_earlier_runs(Path(args.out), inputs, {run.model for run in runs})
    if args.json:
        document = {"runs": [dataclasses.asdict(r) for r in runs], "metrics_url": metrics_url, "report": str(html_path)}
        print_json(document)
    else:
        if metrics_url is None:
            print(metrics_hint(args.url))
        print(f"report: {html_path} and {md_path}")
    failed = failure_status(runs, args.allow_failures)
    return max(failed, verdict_status(inputs))  # a FAIL report exits 1, as `quantserve report` does


def played_once(pattern: Any) -> Any:
    """A trace replayed for its default run length, its pass padded to whole seconds (`TraceReplay.once`): every
    arrival once, none of the next pass; any other pattern as it is."""
    from loadtest.load_pattern import TraceReplay

    if isinstance(pattern, TraceReplay):
        pattern.check()
        return pattern.once()
    return pattern


def default_duration(pattern: Any) -> str:
    """60 s, one pass of a replayed trace (whole seconds): the whole recording, once; or the user's shape's cap."""
    from loadtest.load_pattern import TraceReplay
    from loadtest.trace_plan import whole_pass_seconds
    from loadtest.user_shape import UserShape

    if isinstance(pattern, UserShape):
        return f"{pattern.cap_s:.0f}s"
    if isinstance(pattern, TraceReplay):
        pattern.check()
        return f"{whole_pass_seconds(pattern.trace.period_s)}s"
    return "60s"


def run_soak_command(args: argparse.Namespace) -> int:
    """`--soak`: one long closed-loop run per model; memory trend and p99 drift, saved as soak-<model>.json."""
    from loadtest.load_flags import soak_from_flags
    from loadtest.load_settings import LoadSettings
    from loadtest.server_back import ModelsInTurn
    from loadtest.soak import refuse_soak_over_load, soak_file_name, soak_in_turn

    unused = set_aside_unused(args)
    others = {"--rate": str(args.rate), "--trace": args.trace, "--stages": args.stages, "--sweep": args.sweep}
    others |= {"--shape": args.shape, "--duration": args.duration}
    users = DEFAULT_USERS if args.users is None else args.users
    pattern, seconds = soak_from_flags(args.soak, users, args.spawn_rate, others)
    refuse_unusable(args)
    positive_seconds("--request-timeout", args.request_timeout)  # before any probe or file
    for line in unused:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)
    every = [
        LoadSettings(
            url=args.url,
            model=model,
            model_version=version,
            data=args.data,
            pattern=pattern,
            duration_s=seconds,
            request_batch=DEFAULT_REQUEST_BATCH if args.request_batch is None else args.request_batch,
            workers=args.workers,
            metrics_url=resolve_metrics_url(args),
            tls=client_tls(args),
            request_timeout_s=args.request_timeout,
            length_input=args.length_input,
        )
        for model, version in addressed_models(args)
    ]
    refuse_soak_over_load(Path(args.out), [settings.label for settings in every])
    before_load(every, [soak_file_name(settings.label) for settings in every], args)
    flat, in_turn = True, ModelsInTurn(len(every), Path(args.out), "soak", args.server_pid or None)  # gone between
    for settings in every:
        result = soak_in_turn(in_turn, settings, args.out)
        print(f"soak {settings.label}:\n{result.summary()}")
        if result.model_gone:  # the one line a plain run's cut step gets (`loadtest_status`)
            print(f"quantserve loadtest: soak {settings.label}: {result.model_gone}; exit 1", file=sys.stderr)
        flat = flat and result.rss_flat
    return 0 if flat else 1


def addressed_models(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(model, version) per --model entry: its own @N, else --model-version ("": the newest served)."""
    from serving.model_version import split_addressed

    return [split_addressed(m.strip(), args.model_version) for m in args.model.split(",") if m.strip()]


def resolve_metrics_url(args: argparse.Namespace) -> str | None:
    """--metrics-url, else the port `quantserve serve` recorded for --url, else the default port if it answers. A
    --metrics-url the serve records prove another server's is refused, one they doubt said (`check_metrics_owner`)."""
    from loadtest.metrics_owner import check_metrics_owner

    if not args.metrics_url:
        return find_metrics_url(args.url)
    if doubt := check_metrics_owner(args.url, str(args.metrics_url)):
        print(f"warning: {doubt}", file=sys.stderr)
    return str(args.metrics_url)


def run_with_progress(
    settings: Any, args: argparse.Namespace, told: ToldServerPid | None = None, restarted: str | None = None
) -> Any:
    """`run_pattern`, one step at a time under a progress bar (elapsed, remaining), saved the same way. `told`:
    --server-pid as followed through restarts (`ModelsInTurn.told`); `restarted`: the note of a restart before this
    run, on its first step (`harness.measure_step`)."""
    from loadtest.harness import measure_step, run_identity, save_run
    from loadtest.interruption import MeasuredSteps
    from loadtest.recording_files import results_folder_held
    from loadtest.run_identity import config_now, versions_now
    from loadtest.server_back import ToldServerPid
    from quantserve.cli.progress import StepProgress, is_quiet

    told = told or ToldServerPid(args.server_pid or None)
    settings.check()
    steps = list(settings.pattern.steps())
    # what it is, whatever its name says: precision, source model, versions; and the data sent
    identity, precision = run_identity(settings)  # the addressed version's own precision (--model-version)
    with results_folder_held(Path(args.out)):  # another run writing here, or a report, would read these records
        with (
            StepProgress(f"load {settings.label}", len(steps), is_quiet(args)) as bar,
            MeasuredSteps(settings.label, len(steps), Path(args.out), precision, identity) as measured,  # interrupt
        ):
            for number, step in enumerate(steps):
                bar.describe(f"{step.name}, {step.run_seconds(settings.duration_s):g} s")
                measure_step(measured, settings, steps, number, Path(args.out), told, restarted)
                bar.advance()
        identity.versions_at_end = versions_now(settings.url, settings.model, settings.tls)
        identity.config_at_end = config_now(settings.url, settings.model, settings.tls)
        return save_run(measured.run(), Path(args.out))
