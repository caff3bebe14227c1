"""`quantserve tune BUILD [BUILD2] --data D.npz --slo-p99-ms MS --repo R --name NAME --out DIR`.

Searches the serving configuration (and, given FP32 and INT8 builds, the precision) with the most
goodput under the p99 SLO on a live tritonserver, deploys the winner, and writes tune.json/tune.html.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from quantserve.cli.port_flags import add_port_range_flag
from quantserve.cli.tables import add_json_flag
from quantserve.cli.tune_lines import config_label, failed_cell, remeasure_line
from quantserve.errors import QuantserveError

__all__ = ["print_summary", "register", "remeasure_line", "run"]  # remeasure_line: from tune_lines, importable here too

INTERRUPTED_EXIT = 130  # as on any Ctrl-C (128 + SIGINT), once tune.json holds what was measured


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="search batch sizes, queue delay, instances (and precision) for the most goodput under a p99 SLO",
        description="Search the Triton serving configuration on a live server with Locust; deploy the winner.",
    )
    parser.add_argument("builds", metavar="BUILD", type=Path, nargs="+", help="build folder(s); two: FP32 and INT8")
    parser.add_argument("--data", type=Path, required=True, help=".npz with one array per model input")
    parser.add_argument("--slo-p99-ms", type=float, required=True, help="latency SLO (ms) that goodput counts under")
    parser.add_argument(
        "--max-trials", type=int, default=12, help="configurations measured after the baseline (default %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="short windows, at most 6 trials (minutes)")
    parser.add_argument(
        "--users", type=int, default=16, help="closed-loop concurrency of every trial (default %(default)s)"
    )
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        help="replay these recorded arrivals open loop in every trial instead of --users (loadtest --trace's forms)",
    )
    parser.add_argument("--trace-speed", type=float, default=1.0, help="--trace: replay this many times faster")
    parser.add_argument(
        "--trace-scale", type=float, default=1.0, help="--trace: replay this share of its arrivals, its shape kept"
    )
    parser.add_argument("--request-batch", type=int, default=1, help="samples per request")
    parser.add_argument(
        "--allow-slo-miss",
        action="store_true",
        help="deploy the best configuration even when none met the SLO (by default nothing is deployed, exit 1)",
    )
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository for the winner")
    parser.add_argument("--name", required=True, help="model name the winner is deployed as")
    parser.add_argument("--out", type=Path, required=True, help="folder for tune.json, tune.html and the raw runs")
    add_json_flag(parser)
    add_port_range_flag(parser)
    parser.set_defaults(func=run)


def build_labels(builds: list[Path]) -> dict[str, Path]:
    """Label each build by its manifest's precision ("int8", "fp32"); by folder name when they clash."""
    from serving.deploy import load_artifact

    if len(builds) > 2:
        raise QuantserveError(f"tune takes one or two build folders (FP32 and INT8), got {len(builds)}")
    manifests = [load_artifact(b).manifest for b in builds]
    labels = [m.precision or b.name for m, b in zip(manifests, builds, strict=True)]
    if len(builds) == 2:
        _check_pair(builds, manifests)
    if len(set(labels)) < len(labels):
        labels = [b.name for b in builds]
    if len(set(labels)) < len(labels):
        raise QuantserveError(f"the two build folders have the same name '{labels[0]}'; give distinct folders")
    return dict(zip(labels, builds, strict=True))


def _check_pair(builds: list[Path], manifests: list[Any]) -> None:
    """Two builds are one model's FP32 and INT8: two INT8 builds were tuned with one called "the naive baseline"
    and the winner's precision named by a folder (session 40); two models' builds failed on the data's inputs."""
    precisions = [m.precision for m in manifests]
    if precisions[0] and precisions[0] == precisions[1]:
        raise QuantserveError(
            f"{builds[0]} and {builds[1]} are both {precisions[0]} builds; tune takes one model's FP32 and INT8 "
            "builds (the FP32 one serves as the naive baseline), or one build"
        )
    inputs = [
        {t.name: (t.dtype, [d if isinstance(d, int) else -1 for d in t.shape]) for t in m.inputs} for m in manifests
    ]
    if inputs[0] != inputs[1]:
        raise QuantserveError(
            f"{builds[0]} and {builds[1]} take different inputs ({_inputs_words(manifests[0])} against "
            f"{_inputs_words(manifests[1])}); tune takes two builds of one model"
        )


def _inputs_words(manifest: Any) -> str:
    return ", ".join(f"{t.name} {t.dtype} {list(t.shape)}" for t in manifest.inputs)


def run(args: argparse.Namespace) -> int:
    from quantserve.cli.progress import StepProgress, is_quiet
    from quantserve.cli.tables import print_json
    from quantserve.cli.tune import TuneSettings, slo_missed, tune
    from quantserve.cli.tune_checks import check_settings
    from quantserve.cli.tune_failed import TuneFailed
    from quantserve.cli.tune_interrupted import TuneInterrupted

    settings = TuneSettings(
        builds=build_labels(list(args.builds)),
        data=args.data,
        slo_p99_ms=args.slo_p99_ms,
        repo=args.repo,
        name=args.name,
        out=args.out,
        max_trials=args.max_trials,
        quick=args.quick,
        users=args.users,
        request_batch=args.request_batch,
        trace=args.trace,
        trace_speed=args.trace_speed,
        trace_scale=args.trace_scale,
        allow_slo_miss=args.allow_slo_miss,
    )
    check_settings(settings)
    quiet = is_quiet(args)
    chatter = not (args.quiet or args.json)

    def say(line: str) -> None:
        if chatter:
            print(f"tune: {line}", file=sys.stderr)

    with StepProgress("tune", settings.search_trials + 1, quiet) as bar:

        def on_trial(trial: Any, index: int, total: int) -> None:
            bar.describe(f"trial {index}/{total}: {trial.config.label()}")
            bar.advance()

        try:
            result = tune(settings, say, on_trial)
        except TuneFailed as failed:  # no trial served a request: the error's one line (main), tune.json for --json
            if args.json:
                print_json(failed.result.to_json())
            raise
        except TuneInterrupted as stop:  # tune.json written with what was measured; the line says what is deployed
            if args.json:
                print_json(stop.result.to_json())
            print(f"quantserve: tune: {stop.line}; exit {INTERRUPTED_EXIT}", file=sys.stderr)
            return INTERRUPTED_EXIT
    document = result.to_json()
    if args.json:
        print_json(document)
    else:
        print_summary(document, args.out)
    if document["deployed"]:
        return deployed_exit(document, args.allow_slo_miss)
    # nothing deployed: the best missed the SLO (print_summary said why; --json readers see slo_met false)
    print(f"quantserve: tune: {slo_missed(result)}; nothing deployed (--allow-slo-miss deploys it)", file=sys.stderr)
    return 1


def deployed_exit(document: dict[str, Any], allow_slo_miss: bool) -> int:
    """0, or 1 with a line where the deployed winner's re-measure missed the SLO (`remeasure_missed`): a script
    trusting the exit code would take a deployment the SLO was not shown to hold for (--allow-slo-miss: 0)."""
    from quantserve.cli.tune_lines import remeasure_missed

    missed = remeasure_missed(document)
    if missed is None or allow_slo_miss:
        return 0
    where = f"{document['deployed']['repo']}/{document['deployed']['name']}"
    print(
        f"quantserve: tune: the winner is deployed in {where}, but {missed}: the SLO is not shown to hold there "
        "(tune again on a quieter machine, or with a looser --slo-p99-ms; --allow-slo-miss exits 0)",
        file=sys.stderr,
    )
    return 1


def print_summary(document: dict[str, Any], out: Path) -> None:
    """The trials as a table, then what tune.html's headline says too (`tune_lines`): the winner, the gain over the
    baseline, the SLO's outcome, the re-measure and the deploy."""
    from quantserve.cli.tables import TEXT, Column, fmt, print_rows
    from quantserve.cli.tune_lines import deployed_line, outcome_lines

    headers = ("req/s", "p50 ms", "p99 ms", "goodput/s", "failed", "pruned")
    columns = [Column("config", TEXT), *(Column(h) for h in headers)]
    rows = [
        [
            config_label(t["config"]),
            *(fmt(t[k]) for k in ("throughput_rps", "p50_ms", "p99_ms", "goodput_rps")),
            failed_cell(t),
            "yes" if t["pruned"] else "",
        ]
        for t in document["trials"]
    ]
    print_rows("tune trials", columns, rows)
    for line in outcome_lines(document):
        print(line)
    print(f"{deployed_line(document)}; report: {out / 'tune.html'}")
