"""`quantserve evaluate --url … --models fp32,int8 --reference fp32 --data HELDOUT.npz --out reports/X`.

Accuracy drift of each served variant against the FP32 reference (a variant may be one version of a model that
serves several, `m@2` against `m@1`: an A/B judged through the served endpoint); every output is judged against
the same drift budget `optimize` applies (flags to change each value, `--no-budget` to skip it), and
the command exits 1 when a variant misses it, naming the output, metric, value and budget.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadtest.evaluator import TASKS
from quantserve.checks import distinct, positive_seconds
from quantserve.cli.evaluate_tables import print_table
from quantserve.cli.port_flags import add_port_range_flag
from quantserve.cli.tables import add_json_flag, print_json
from quantserve.cli.tls_flags import add_tls_flags, client_tls, tls_environment

EXIT_OVER_BUDGET = 1
DEFAULT_REQUEST_TIMEOUT_S = 30.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy drift of served variants vs an FP32 reference on labeled held-out data",
        description="Score each served model on HELDOUT.npz over gRPC and compare it with the reference's outputs.",
    )
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC address host:port")
    parser.add_argument(
        "--models",
        "--model",  # loadtest's and infer's spelling: it read "ambiguous option: --model could match --models, …"
        required=True,
        help="comma-separated model names, e.g. digits_fp32,digits_int8; NAME@N is version N of a model that serves "
        "several (--live-versions): m@2 judged against --reference m@1 is an A/B of two live versions",
    )
    parser.add_argument("--reference", required=True, help="the FP32 reference model name (NAME@N: its version N)")
    parser.add_argument(
        "--model-version",
        default="",
        metavar="N",
        help="send every request to version N of each model named without @N (default: the newest served at the "
        "start, pinned for the run)",
    )
    parser.add_argument("--data", type=Path, required=True, help=".npz of inputs (+ `labels` for classifiers)")
    parser.add_argument("--out", type=Path, required=True, help="results folder (accuracy.json, report)")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="auto",
        help="auto: classification when the data has labels and the output is 2-D; embedding: cosine statistics",
    )
    parser.add_argument("--output", default="", help="which model output to score (default: the only/first one)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="samples per request, at most the served model's max_batch_size (a larger one is cut to it, said so)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT_S,
        metavar="S",
        help=f"seconds each request may take before it fails (default {DEFAULT_REQUEST_TIMEOUT_S:g}); raise it for a "
        "slow model or large --batch-size",
    )
    add_budget_flags(parser)
    add_tls_flags(parser)
    add_json_flag(parser)
    load = parser.add_argument_group("side-by-side load (optional): one closed-loop step per model")
    load.add_argument("--load-duration", default="", help="also load each model for this long, e.g. 30s")
    load.add_argument("--load-users", type=int, default=16, help="concurrent users for that load")
    load.add_argument(
        "--metrics-url",
        default="",
        help="Triton metrics host:port (default: the one `quantserve serve` recorded for --url)",
    )
    load.add_argument("--server-pid", type=int, default=0, help="tritonserver pid for CPU/memory sampling")
    add_port_range_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from loadtest.interruption import hangup_as_interrupt

    with hangup_as_interrupt():  # the terminal closed: stopped as on SIGTERM, a side-by-side load's figures saved
        return evaluate(args)


def evaluate(args: argparse.Namespace) -> int:
    """Score every model, judge it against the budget, save accuracy.json (and any side-by-side load), report."""
    from loadtest.accuracy_results import refuse_replacing
    from loadtest.evaluator import evaluate_accuracy
    from loadtest.recording_files import results_folder_held
    from loadtest.report import render
    from loadtest.run_pairing import accuracy_source_notes
    from optimizer.output_kinds import parse_output_kinds
    from optimizer.user_metric import UserMetric
    from quantserve.errors import QuantserveError
    from serving.machine import write_machine_facts

    models = distinct(
        "--models", [versioned(m.strip(), args.model_version) for m in args.models.split(",") if m.strip()]
    )
    if not models:
        raise QuantserveError("--models names no model")
    reference = versioned(args.reference.strip(), args.model_version)
    if args.batch_size < 1:
        raise QuantserveError(f"--batch-size must be at least 1, got {args.batch_size}")
    positive_seconds("--request-timeout", args.request_timeout)
    load_s = load_duration_s(args)  # before the accuracy pass, which a bad flag used to fail only after
    if load_s:
        refuse_replacing_loads(Path(args.out), models)
    metric = UserMetric.load(args.metric) if args.metric else None  # a bad spec fails before any request
    # Held while scoring and saving: with a load run writing into --out, evaluate wrote accuracy.json there (into
    # that run's report), then its side-by-side load stopped on the lock with exit 2, hiding an over-budget exit 1.
    with results_folder_held(Path(args.out)):
        refuse_replacing(Path(args.out))  # held: an evaluation saving here as this one looked would be replaced
        # The evaluator's gRPC clients take QUANTSERVE_TLS_* when given no TLS of their own.
        with tls_environment(client_tls(args)), said_when_interrupted(Path(args.out)):
            report = evaluate_accuracy(
                args.url,
                models,
                reference,
                args.data,
                args.output or None,
                _accuracy_drop_budget(args),
                args.batch_size,
                task=args.task,
                budget=_budget(args),
                output_kinds=parse_output_kinds(args.output_kind),
                metric=metric,
                request_timeout_s=args.request_timeout,
                length_input=args.length_input,
            )
        report.save(args.out)
        write_machine_facts(Path(args.out))
    if not args.json:
        print_table(report)
    loads = load_side_by_side(args, models, load_s) if load_s else []
    runs = [dataclasses.asdict(run) for run in loads]
    md_path, html_path = render(args.out)
    if args.json:
        print_json({"accuracy": dataclasses.asdict(report), "over_budget": report.over_budget, "loads": runs})
        return EXIT_OVER_BUDGET if report.over_budget else load_status(loads)
    print(f"report: {html_path} and {md_path}")
    if report.stream:  # said: the rows were not scored one by one, and why
        pairs = ", ".join(f"'{p['output']}' → '{p['input']}'" for p in report.stream["pairs"])
        print(
            f"quantserve: note: recurrent state ({pairs}): {report.stream['rows']} {report.stream['run']}",
            file=sys.stderr,
        )
        for line in report.stream.get("notes", []):  # the data's rows out of order, where it says so
            print(f"quantserve: note: {line}", file=sys.stderr)
    for variant in report.variants:
        for line in [*variant.thin_evidence, *variant.notes]:
            print(f"quantserve: note: model '{variant.model}': {line}", file=sys.stderr)
    for line in accuracy_source_notes(report):  # why a drift is huge: two models compared, not INT8 with its FP32
        print(f"quantserve: note: {line}", file=sys.stderr)
    if report.over_budget:
        for line in budget_lines(report):
            print(line)
        return EXIT_OVER_BUDGET
    return load_status(loads)


@contextlib.contextmanager
def said_when_interrupted(out: Path) -> Iterator[None]:
    """A Ctrl-C or SIGTERM while scoring says what is lost: it printed only "quantserve: interrupted", and `report`
    on the folder said "run loadtest or evaluate first" (session 52). An evaluation is saved whole, at its end: a
    part of the rows judges nothing."""
    try:
        yield
    except KeyboardInterrupt:
        print(
            f"quantserve: evaluate stopped before it finished scoring: nothing saved in {out} (an evaluation is saved "
            "whole, when every model has answered every row); run it again",
            file=sys.stderr,
        )
        raise


def load_status(loads: list[Any]) -> int:
    """1 where a `--load-duration` run failed requests or did not run as planned, as `loadtest` exits (its lines
    on stderr), else 0: a server killed mid-window (337 of 3930 requests failed, a restart) exited 0 while
    `report` on the same folder said FAIL, and a gate `evaluate … && roll out` passed (session 41)."""
    from quantserve.cli.loadtest_status import failure_status

    return failure_status(loads, allowed=False, command="evaluate") if loads else 0


def versioned(label: str, default_version: str) -> str:
    """`label` as the evaluator names it: `m@N` with its own version, else `default_version` (--model-version)."""
    from serving.model_version import addressed, split_addressed

    return addressed(*split_addressed(label, default_version))


def add_budget_flags(parser: argparse.ArgumentParser) -> None:
    """The drift budget's flags, as `optimize` has them, and the user's own task metric."""
    from optimizer.drift_budget import BUDGET_FLAGS, DriftBudget
    from optimizer.gated_maps import GATE_HELP
    from optimizer.output_kinds import OUTPUT_KINDS
    from optimizer.token_lengths import INFERRED, length_help

    group = parser.add_argument_group("drift budget (every output; a variant beyond it: exit 1)")
    defaults = DriftBudget()
    for field_name, (flag, text) in BUDGET_FLAGS.items():
        default = getattr(defaults, field_name)
        help_text = f"{text} (default {default:g})"
        if field_name == "label_threshold":  # a rule of reading, as --gate: the builds' word where recorded
            help_text = f"{text} (default: as the models' builds were given it at optimize, else {default:g})"
        # accuracy drop: None until given, so that --no-budget keeps only an explicitly given drop budget
        value = None if field_name == "max_accuracy_drop_points" else default
        group.add_argument(flag, dest=field_name, type=float, default=value, metavar="X", help=help_text)
    group.add_argument(
        "--metric",
        metavar="package.module:function",
        help="your task metric, function(outputs, labels) -> score, on every model's served outputs; a relative drop "
        "beyond --max-metric-drop vs the reference is over budget",
    )
    group.add_argument(
        "--output-kind",
        action="append",
        metavar="NAME=KIND",
        help=f"what an output is, instead of inferring it ({', '.join(OUTPUT_KINDS)}); repeatable",
    )
    group.add_argument("--gate", action="append", metavar="NAME=BY", help=GATE_HELP)
    # the default here is the build's word, where its deploy recorded one (loadtest.served_graph.told_length_input)
    told = length_help(f"as the models' builds were told at optimize, else {INFERRED}")
    group.add_argument("--length-input", metavar="NAME", help=told)
    group.add_argument("--no-budget", action="store_true", help="only the accuracy-drop check, if given")


def _accuracy_drop_budget(args: argparse.Namespace) -> float | None:
    from optimizer.drift_budget import DriftBudget

    if args.max_accuracy_drop_points is not None or args.no_budget:
        return args.max_accuracy_drop_points  # type: ignore[no-any-return]
    return DriftBudget().max_accuracy_drop_points


def _budget(args: argparse.Namespace) -> Any:
    """The DriftBudget from the flags (--gate's included), or None with --no-budget."""
    from optimizer.drift_budget import BUDGET_FLAGS, DriftBudget
    from optimizer.gated_maps import parse_gates

    if args.no_budget:
        return None
    values = {name: getattr(args, name) for name in BUDGET_FLAGS}
    values["max_accuracy_drop_points"] = _accuracy_drop_budget(args)
    return DriftBudget(**values, gates=parse_gates(getattr(args, "gate", None)))


def budget_lines(report: Any) -> list[str]:
    """One line per variant over budget: its first drift violation, else its accuracy drop."""
    lines = []
    for variant in report.variants:
        if variant.model not in report.over_budget:
            continue
        if variant.violations:
            more = f" (and {len(variant.violations) - 1} more)" if len(variant.violations) > 1 else ""
            lines.append(f"model '{variant.model}' misses the drift budget: {variant.violations[0]}{more}")
        else:
            drop, limit = variant.accuracy_drop_points, report.max_accuracy_drop
            lines.append(f"model '{variant.model}': accuracy drop {drop:.2f} points > budget {limit:g}")
    return lines


def load_duration_s(args: argparse.Namespace) -> float:
    """--load-duration in seconds (0: no side-by-side load), its flags checked by evaluate's own names."""
    from loadtest.load_flags import parse_duration
    from quantserve.errors import QuantserveError

    if not args.load_duration:
        return 0.0
    duration = parse_duration(args.load_duration, "--load-duration")  # whole seconds, as Locust's run time
    if duration <= 0:
        raise QuantserveError(f"--load-duration must be positive, got {duration:g} s (leave it out for no load)")
    if args.load_users < 1:
        raise QuantserveError(f"--load-users must be at least 1, got {args.load_users}")
    return duration


def refuse_replacing_loads(out: Path, models: list[str]) -> None:
    """Before the accuracy pass, one line where a side-by-side load would replace a load run saved in `out`
    (`refuse_replacing`, as `loadtest` refuses it): it replaced that run's load-NAME.json in silence; or clear a
    soak's records (`refuse_load_over_soak`: its closed loop takes the soak's step folders)."""
    from loadtest.load_run import load_file_name
    from loadtest.recording_files import refuse_replacing
    from loadtest.soak import refuse_load_over_soak

    runs = [(label, load_file_name(label)) for label in dict.fromkeys(models)]
    refuse_replacing(out, runs)
    refuse_load_over_soak(out, runs)


def load_side_by_side(args: argparse.Namespace, models: list[str], duration: float) -> list[Any]:
    """The same load on every variant, with the held-out inputs, into the same results folder; the runs."""
    from loadtest.load_pattern import ClosedLoop
    from loadtest.load_settings import LoadSettings
    from quantserve.cli.commands.loadtest import resolve_metrics_url, run_with_progress
    from quantserve.cli.tables import print_load_table
    from serving.endpoints import metrics_hint
    from serving.model_version import split_addressed

    metrics_url = resolve_metrics_url(args)
    runs = []
    for label in models:
        model, version = split_addressed(label)
        pattern = ClosedLoop(args.load_users)
        settings = LoadSettings(
            args.url,
            model,
            args.data,
            pattern,
            duration,
            metrics_url=metrics_url,
            tls=client_tls(args),
            request_timeout_s=args.request_timeout,  # the scoring's deadline, the load's too
            model_version=version,
        )
        run = run_with_progress(settings, args)
        runs.append(run)
        if not args.json:
            print_load_table(run.results)
            for note in (n for r in run.results for n in r.notes()):
                print(f"note: {note}")
    if metrics_url is None and not args.json:
        print(metrics_hint(args.url))
    return runs
