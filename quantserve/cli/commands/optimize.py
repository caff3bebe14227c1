"""`quantserve optimize MODEL --calib CALIB.npz --precision int8 --target embedded --out build/NAME`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from quantserve.cli.optimize_refusal import refusal_document, refusal_notes, with_method_hint, with_miss_words
from quantserve.cli.optimize_tables import print_refusal_figures, print_stages, print_verification
from quantserve.cli.option_sources import needed_when
from quantserve.cli.tables import add_json_flag, print_json


def register(subparsers: Any) -> None:
    from optimizer.calibrate import METHODS
    from optimizer.drift_budget import BUDGET_FLAGS, DriftBudget
    from optimizer.gated_maps import GATE_HELP
    from optimizer.output_kinds import OUTPUT_KINDS
    from optimizer.pipeline import PRECISIONS
    from optimizer.speed import SpeedSettings
    from optimizer.targets import fp16_routes, target_names
    from optimizer.token_lengths import LENGTH_HELP
    from optimizer.transformer import MODEL_TYPES
    from optimizer.unbatched import UNBATCHED_HELP

    parser = subparsers.add_parser(
        "optimize",
        help="export, fuse, calibrate INT8, build for a target, verify drift against FP32 and time both",
        description="Turn MODEL (.onnx, .pt2 or package.module:factory) into a deployable, verified build. "
        "INT8 that misses the drift budget, or runs under --min-speedup × FP32's speed (1.1 by default), is "
        "refused (exit 1, nothing written).",
    )
    parser.add_argument(
        "model", metavar="MODEL", help=".onnx file, torch.export .pt2 program, or package.module:factory"
    )
    calib = parser.add_argument(
        "--calib",
        type=Path,
        required=True,
        help="calibration .npz (one array per input name); needed for INT8 alone (required there: here, in the "
        "environment or in a config file): fp32 and fp16 calibrate nothing, and without it are checked, verified "
        "and measured on --eval's rows",
    )
    needed_when(calib, calib_needed)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="int8",
        help=f"fp16 on a GPU target alone: {', or '.join(fp16_routes())} (default %(default)s)",
    )
    parser.add_argument(
        "--target", default="embedded", help=f"engine target ({', '.join(target_names())}; default %(default)s)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. build/NAME")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="minmax",
        help="INT8 calibration of activation ranges (default %(default)s)",
    )
    parser.add_argument(
        "--eval",
        type=Path,
        help="held-out .npz for verification (default: the last 20%% of --calib, or for INT8 the 268 rows a 0.99 "
        "top-1 budget needs, while 128 rows stay to calibrate); for fp32 or fp16 without --calib, every check's rows",
    )
    parser.add_argument("--name", help="model name recorded in the manifest (default: from MODEL)")
    parser.add_argument("--unbatched", action="store_true", help=UNBATCHED_HELP)
    parser.add_argument(
        "--input-names", help="comma-separated input names for a .pt2 or factory model (a .pt2 stores only `input`…)"
    )
    parser.add_argument("--output-names", help="comma-separated output names for a .pt2 or factory model")
    parser.add_argument(
        "--opset",
        type=int,
        default=None,
        help="ONNX opset: PyTorch exports at 17 by default; an .onnx keeps its own (at least 13) unless asked higher",
    )
    parser.add_argument(
        "--model-type",
        choices=MODEL_TYPES,
        help="transformer encoder: ORT transformer fusions and the INT8 drift policy",
    )
    parser.add_argument("--num-heads", type=int, default=0, help="attention heads (--model-type; 0: detect)")
    parser.add_argument("--hidden-size", type=int, default=0, help="hidden size (--model-type; 0: detect)")
    budget = parser.add_argument_group("drift budget (INT8 beyond it is refused: exit 1, nothing written)")
    defaults = DriftBudget()
    for field_name, (flag, text) in BUDGET_FLAGS.items():
        default = getattr(defaults, field_name)
        budget.add_argument(
            flag, dest=field_name, type=float, default=default, metavar="X", help=f"{text} (default {default:g})"
        )
    budget.add_argument(
        "--output-kind",
        action="append",
        metavar="NAME=KIND",
        help=f"what an output is, instead of inferring it ({', '.join(OUTPUT_KINDS)}); repeatable",
    )
    budget.add_argument("--gate", action="append", metavar="NAME=BY", help=GATE_HELP)
    budget.add_argument("--length-input", metavar="NAME", help=LENGTH_HELP)
    budget.add_argument(
        "--metric",
        help="package.module:function(outputs, labels) -> score, compared FP32 vs INT8 (labels: the data's "
        "'labels' array; integer ones also score classification outputs' accuracy, float ones and those of other "
        "outputs are read by the metric alone)",
    )
    budget.add_argument(
        "--state",
        action="append",
        metavar="OUT=IN",
        help="recurrent state: output OUT is fed back as input IN next call (repeatable; default: detected by name "
        "and shape); verified also over the held-out rows in order as one stream, each model fed its own state; "
        "--state none: the model has none",
    )
    budget.add_argument(
        "--keep-failing", "--no-budget", action="store_true", help="ship INT8 beyond the budget, the failure recorded"
    )
    budget.add_argument(
        "--allow-thin-evidence",
        action="store_true",
        help="judge agreement rates on held-out rows too few to show their budget (0.99 needs 268 rows agreeing; "
        "refused otherwise)",
    )
    speed = parser.add_argument_group(
        "speed (INT8 timed here at under --min-speedup × FP32's speed is refused: exit 1, nothing written)"
    )
    speed.add_argument(
        "--min-speedup",
        type=float,
        default=SpeedSettings().min_speedup,
        metavar="X",
        help="INT8 must run at least X × FP32's speed, timed on this machine: a gain within timing noise is no gain "
        "(default %(default)g)",
    )
    speed.add_argument("--allow-slower", action="store_true", help="ship a slower INT8 anyway, the speedup recorded")
    speed.add_argument(
        "--timing-batch",
        type=int,
        metavar="N",
        help="held-out rows per timed run: the request batch the server will form (default "
        f"{SpeedSettings().batch_size}, fewer where timing FP32 and INT8 side by side would hold more than 2 GB; a "
        "batch given is lowered only past half the memory free)",
    )
    speed.add_argument(
        "--skip-timing",
        action="store_true",
        help="no speed gate: nothing refused for speed (the INT8 search still times its candidates to choose one)",
    )
    parser.add_argument(
        "--max-search-s",
        type=float,
        default=300.0,
        metavar="S",
        help="wall-clock budget of the INT8 search as a whole (candidates, mixed precision, their timing); past it "
        "only a model verified within the drift budget and timed ships, else optimize refuses (default %(default)g)",
    )
    add_json_flag(parser)
    parser.set_defaults(func=run)


def calib_needed(args: argparse.Namespace) -> str | None:
    """How the missing line names --calib where no source gave it: needed for INT8; FP32 and FP16 calibrate
    nothing and take --eval's rows (None: not needed), given neither they need one of the two for their checks."""
    from optimizer.holdout import NO_ROWS_WHY

    if args.precision == "int8":
        return "--calib"
    return None if args.eval is not None else f"--calib or --eval ({NO_ROWS_WHY.format(args.precision.upper())})"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from optimizer.drift_budget import BudgetExceeded
    from optimizer.few_samples import evidence_notes
    from optimizer.nan_inputs import NAN_INPUTS, nan_notes
    from optimizer.pipeline import optimize
    from optimizer.search_budget import time_cut_note
    from quantserve.cli.progress import Heartbeat, StageProgress, is_quiet, wants_heartbeat

    options = build_options(args)  # every user error in the flags fails here, before any work
    heartbeat = Heartbeat("optimize") if wants_heartbeat(args) else None
    try:
        words = stage_words(args.model)  # a factory trains inside "export": said so (session 62)
        with StageProgress(
            "optimize", planned_stages(options), is_quiet(args), heartbeat=heartbeat, stage_words=words
        ) as progress:
            artifact = optimize(dataclasses.replace(options, on_stage=progress, on_progress=progress.on_progress))
    except BudgetExceeded as refusal:
        refused = with_method_hint(with_miss_words(refusal), options)
        noted = not getattr(args, "quiet", False)
        for note in refusal_notes(refused.record) if noted else []:
            print(f"quantserve: note: {note}", file=sys.stderr)
        if args.json:  # one document on stdout for a refusal too; the line on stderr and exit 1 stay
            print_json(refusal_document(refused, args))
        else:  # the figures the line rests on, as a shipped build shows them
            print_refusal_figures(refused.record, noted=noted)
        raise refused from None
    verification = artifact.manifest.verification or {}
    notes = speed_notes(verification.get("speed") or {})
    notes += [note for note in map(search_overrun_note, artifact.manifest.stages) if note]  # past --max-search-s
    notes += [note for note in map(time_cut_note, artifact.manifest.stages) if note]  # its search cut short by time
    # a faster candidate met the drift budget with too little slack for the search to trust it
    notes += [stage["passed_over_note"] for stage in artifact.manifest.stages if stage.get("passed_over_note")]
    # the served model's inputs differ from the file's: an input with a default was folded in as that constant
    notes += [stage["inputs_folded"]["note"] for stage in artifact.manifest.stages if stage.get("inputs_folded")]
    # an output was a ZipMap's sequence of maps: now its [N, C] float tensor, the classes in order
    notes += [stage["zipmaps_removed"]["note"] for stage in artifact.manifest.stages if stage.get("zipmaps_removed")]
    # a batch axis fixed at 1, made dynamic and proven so: deploy batches requests the file took one at a time
    notes += [stage["batch_axis_made_dynamic"]["note"] for stage in artifact.manifest.stages if _freed(stage)]
    notes += [note for stage in artifact.manifest.stages for note in (stage.get("sizes_fixed") or {}).get("notes", [])]
    notes += [stage["unfused"]["note"] for stage in artifact.manifest.stages if stage.get("unfused")]  # fusion broke it
    notes += evidence_notes(verification) if artifact.manifest.precision != "fp32" else []  # FP32: judged by itself
    notes += verification.get("notes") or []  # e.g. an embedding whose nearest neighbours changed
    notes += nan_notes(artifact.manifest.extra.get(NAN_INPUTS))  # NaN accepted as a value: deploy carries it on
    if not getattr(args, "quiet", False):
        for note in notes:
            print(f"quantserve: note: {note}", file=sys.stderr)
    if args.json:
        print_json(artifact.manifest.to_dict())
        return 0
    console = Console()
    print_stages(artifact.manifest.stages, console)
    noted = not getattr(args, "quiet", False)  # the header points to a thin-evidence note only where one is printed
    print_verification(artifact.manifest.verification or {}, console, artifact.manifest.precision or "int8", noted)
    console.print(f"wrote {Path(args.out) / 'manifest.json'}")
    return 0


def busy_note(speed: dict[str, Any]) -> str:
    """The shipped figure's caveat when it was timed while other processes held the cores; where the CPU time decided
    (`optimizer.speed_blocks`), both clocks' figures."""
    busy = f"while other processes took {speed['others_share']:.0%} of the cores"
    if speed.get("basis") == "CPU time" and speed.get("cpu_speedup") is not None:
        return (
            f"INT8 was timed at {speed['cpu_speedup']:.2f}× FP32 by CPU time (which decided) and "
            f"{speed['speedup']:.2f}× by the wall clock, {busy}; time again when the machine is idle"
        )
    idle = "time again when the machine is idle"
    return f"INT8 was timed at {speed['speedup']:.2f}× FP32 {busy}: that figure is uncertain; {idle}"


def speed_notes(speed: dict[str, Any]) -> list[str]:
    """The shipped speed figure's caveat: where INT8 covers a sliver of the multiply-adds (`--allow-slower`), that
    it cannot be faster, whatever the machine's load; where its rounds left the speedup uncertain (`--allow-slower`),
    their spread and the load; else, timed on a busy machine, that the figure is uncertain. First, where fewer rows
    than --timing-batch were timed, how many and why (`optimizer.timing_rows`)."""
    if not speed:
        return []
    lowered = [speed["batch_note"]] if speed.get("batch_note") else []  # timed at fewer rows than --timing-batch
    return lowered + _speed_caveats(speed)


def _speed_caveats(speed: dict[str, Any]) -> list[str]:
    from optimizer.speed import SpeedRecord
    from optimizer.speed_verdict import UNCERTAIN, uncertain_reason

    names = [field.name for field in dataclasses.fields(SpeedRecord)]
    record = SpeedRecord(**{name: speed[name] for name in names if name in speed})
    if record.int8_sliver():
        cause = record.sliver_cause() if record.kept_for_drift else "it cannot be faster here"
        return [f"INT8 was timed at {record.speedup:.2f}× FP32: {record.sliver_reason()}; {cause}"]
    if record.verdict().outcome == UNCERTAIN:
        reason = uncertain_reason(record.verdict(), record.others_share)
        return [f"{reason}: shipped under --allow-slower; time again on a quiet machine"]
    return [busy_note(speed)] if speed.get("busy") else []


def _freed(stage: dict[str, Any]) -> bool:
    """The export stage made a fixed batch axis of 1 dynamic (`optimizer.export.freed_batch_note` says so)."""
    return bool((stage.get("batch_axis_made_dynamic") or {}).get("note"))


def search_overrun_note(stage: dict[str, Any]) -> str:
    """The INT8 search's note where it ended past --max-search-s ("" where it did not)."""
    from optimizer.search_budget import overrun_note

    return overrun_note(stage["time_budget"]) if stage.get("time_budget") else ""


def planned_stages(options: Any) -> list[str]:
    """The pipeline's stages for these options, in the order its `on_stage` callback names them."""
    stages = ["export", "fuse"] + (["calibrate"] if options.precision == "int8" else []) + ["build", "verify"]
    return stages + (["time"] if options.precision == "int8" and options.speed.enabled else [])


def stage_words(model: str) -> dict[str, str]:
    """What the export stage does for a `package.module:factory` MODEL: the factory builds (often trains) the model
    first, for minutes where it trains, and a log said only `still running (19m30s): export`."""
    from optimizer.source import FACTORY_PATTERN

    if not FACTORY_PATTERN.match(model) or Path(model).exists():  # load_source's test for a factory
        return {}
    return {"export": f"export ({model} building the model)"}


def build_options(args: argparse.Namespace) -> Any:
    """The one OptimizeOptions for this command line (budget, output kinds, metric, speed included)."""
    from optimizer.drift_budget import BUDGET_FLAGS, DriftBudget
    from optimizer.gated_maps import parse_gates
    from optimizer.output_kinds import parse_output_kinds
    from optimizer.pipeline import OptimizeOptions
    from optimizer.speed import SpeedSettings
    from optimizer.state_loop import parse_state_flags
    from optimizer.targets import get_target

    get_target(args.target)  # an unknown target fails here, before any work
    return OptimizeOptions(
        source=args.model,
        calib_path=args.calib,
        precision=args.precision,
        target=args.target,
        out_dir=args.out,
        method=args.method,
        eval_path=args.eval,
        name=args.name,
        opset=args.opset,
        input_names=args.input_names.split(",") if args.input_names else None,
        output_names=args.output_names.split(",") if args.output_names else None,
        transformer=_transformer_settings(args),
        budget=DriftBudget(**{name: getattr(args, name) for name in BUDGET_FLAGS}, gates=parse_gates(args.gate)),
        output_kinds=parse_output_kinds(args.output_kind),
        length_input=args.length_input,
        metric=args.metric,
        keep_failing=args.keep_failing,
        allow_thin_evidence=args.allow_thin_evidence,
        max_search_s=args.max_search_s,
        state=parse_state_flags(getattr(args, "state", None)),
        unbatched=args.unbatched,
        speed=SpeedSettings(
            min_speedup=args.min_speedup,
            allow_slower=args.allow_slower,
            enabled=not args.skip_timing,
            batch_size=args.timing_batch or SpeedSettings().batch_size,
            batch_given=args.timing_batch is not None,
        ),
    )


def _transformer_settings(args: argparse.Namespace) -> Any:
    if not args.model_type:
        return None
    from optimizer.transformer import TransformerSettings

    return TransformerSettings(args.model_type, args.num_heads, args.hidden_size)
