"""`quantserve profile build/NAME`: where the time goes, per op type and per node, FP32 vs the build's model.

Both `fp32.onnx` and the build's model run alone, each in a fresh ONNX Runtime session in its own
child process, on the same inputs, in alternated rounds (medians kept); ORT's profiler gives kernel
time per node. A model.onnx that is fp32.onnx byte for byte (an FP32 build) is profiled once and
shows no ratio. Writes profile.json (the data), profile.md and a self-contained profile.html, and
prints the tables, with a note where the machine was busy.
"""

from __future__ import annotations

import argparse
import filecmp
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_BATCH = 8  # samples per run, where the build batches
MAX_BATCHES = 4  # distinct input batches per profile; each is run --repeats times after a warm-up
DYNAMIC_AXIS = 16  # size given to a dynamic non-batch axis (sequence) for random inputs


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="per-op-type and per-node time of the FP32 reference vs the optimized model (ORT profiler)",
        description="Profile BUILD's fp32.onnx and model on the same inputs with ONNX Runtime's profiler and "
        "write profile.json, profile.md and profile.html.",
    )
    parser.add_argument("build", type=Path, metavar="BUILD", help="folder written by 'quantserve optimize'")
    parser.add_argument("--data", type=Path, help=".npz inputs (default: the build's verification data, else random)")
    parser.add_argument(
        "--batch", type=int, default=None, help="samples per run (default 8; 1 for an --unbatched build, its only one)"
    )
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the batches after a warm-up")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternated rounds (FP32, model, FP32, …), a child each; medians kept"
    )
    parser.add_argument("--out", type=Path, help="folder for profile.json/.md/.html (default: BUILD/profile)")
    parser.add_argument("--top", type=int, default=10, help="nodes listed in the per-node table")
    parser.add_argument("--json", action="store_true", help="print profile.json instead of the tables")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from loadtest.profile_report import render
    from quantserve.cli.tune_checks import check_out_folder
    from quantserve.errors import QuantserveError
    from quantserve.json_files import strict_json

    for option in ("batch", "threads", "repeats", "rounds", "top"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise QuantserveError(f"--{option} must be at least 1, got {getattr(args, option)}")
    if not args.build.is_dir():  # a model file given: said as the folder it is not, not as --out's default inside it
        what = "is a file, not a folder" if args.build.exists() else "not found"
        raise QuantserveError(
            f"{args.build}: {what}; profile reads a build folder, written by 'quantserve optimize MODEL --out FOLDER'"
        )
    out = args.out or args.build / "profile"
    check_out_folder(out)  # before the minutes of timing: a file there was said only after them
    result = profile_build(args.build, args.data, args.batch, args.threads, (args.repeats, args.rounds))
    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "profile.json")
    md_path, html_path = render(out, top=args.top)
    if args.json:
        print(strict_json(asdict(result), indent=2))  # as profile.json: a NaN timing as null
        return 0
    print_tables(result, args.top)
    print(f"report: {html_path} and {md_path}")
    return 0


def profile_build(build: Path, data: Path | None, batch: int | None, threads: int, passes: tuple[int, int]) -> Any:
    """Profile the build's reference and model on the same batches and compare them; `passes`: (repeats, rounds).
    `batch` None: 8, or 1 for an --unbatched build (verified one row a request: 8 rows crashed ONNX Runtime in a
    graph that bakes one, exit 3), which refuses any other.

    A model.onnx that is fp32.onnx byte for byte is profiled once: a ratio of a file to itself is noise."""
    from optimizer.profile import busy_note, profile_rounds
    from optimizer.profile_compare import BuildProfile, compare_nodes, compare_op_types, speedup
    from optimizer.speed import cpu_model
    from quantserve.artifact import Manifest

    (repeats, rounds), manifest = passes, Manifest.load(build)
    batch = unbatched_batch(build, batch) if manifest.unbatched else batch or DEFAULT_BATCH
    reference_path, model_path = _model_files(build, manifest)
    batches, inputs = choose_inputs(build, manifest, data, batch)
    gone = data is None and _recorded_data_gone(build, manifest)
    same = filecmp.cmp(reference_path, model_path, shallow=False)
    models = [reference_path] if same else [reference_path, model_path]
    profiles = profile_rounds(models, batches, threads, repeats, rounds, inputs)
    reference, model = profiles[0], profiles[-1]
    shares = [p.others_share for p in profiles if p.others_share is not None]
    others = max(shares) if shares else None
    notes = [note for note in (busy_note(others), gone) if note]
    if same:
        notes.insert(0, f"{model_path.name} is the FP32 model itself (an FP32 build): nothing to compare")
    result = BuildProfile(
        build=str(build),
        precision=manifest.precision,
        cpu=cpu_model(),
        inputs=inputs,
        batch=batch,
        batches=len(batches),
        repeats=repeats,
        reference=reference,
        model=model,
        op_types=compare_op_types(reference, model),
        nodes=compare_nodes(reference, model),
        run_speedup=speedup(reference.run_ms, model.run_ms),
        timing=_timing_words(len(models), rounds, repeats),
        others_share=others,
        busy=busy_note(others) is not None,
        notes=notes,
    )
    return _without_ratios(result) if same else result


def unbatched_batch(build: Path, batch: int | None) -> int:
    """An --unbatched build's rows a run: 1, the only size it was verified at; any other asked is refused."""
    from quantserve.errors import QuantserveError

    if batch not in (None, 1):
        raise QuantserveError(
            f"--batch {batch}: {build} is an --unbatched build (one row a request, as it was verified); profile it "
            "with --batch 1 (the default for it)"
        )
    return 1


def _timing_words(models: int, rounds: int, repeats: int) -> str:
    order = "FP32, model, FP32, model, …" if models == 2 else "the one model"
    return (
        f"{rounds} round(s) ({order}), each model alone in a fresh child process, {repeats} timed passes after a "
        "warm-up; the median per run and per kernel over the rounds"
    )


def _without_ratios(result: Any) -> Any:
    """The profile of a file against itself, every speedup blanked: the ratio of two timings of one file is noise."""
    return replace(
        result,
        run_speedup=None,
        op_types=[replace(row, speedup=None) for row in result.op_types],
        nodes=[replace(row, speedup=None) for row in result.nodes],
    )


def _model_files(build: Path, manifest: Any) -> tuple[Path, Path]:
    from quantserve.errors import QuantserveError

    reference = build / manifest.files.get("reference", "fp32.onnx")
    model = build / manifest.files.get("model", "model.onnx")
    for path in (reference, model):
        if not path.is_file():
            raise QuantserveError(f"{build}: {path.name} is missing; rerun 'quantserve optimize'")
    if model.suffix != ".onnx":
        raise QuantserveError(
            f"{build}: the model is {model.name} ({manifest.target}); profile runs ONNX models in ONNX Runtime"
        )
    return reference, model


def choose_inputs(build: Path, manifest: Any, data: Path | None, batch: int) -> tuple[list[dict[str, np.ndarray]], str]:
    """Batches from --data, else the verification data the manifest names (if that file exists), else random."""
    from optimizer.nan_inputs import NAN_INPUTS, build_nan_accepted
    from quantserve.data import load_npz

    recorded = _verification_file(build, manifest)
    path, label = (data, "data file") if data is not None else (recorded, "verification data")
    if path is None:
        batches = [random_batch(manifest.inputs, batch, seed) for seed in range(MAX_BATCHES)]
        return batches, f"random inputs from the manifest's input specs ({MAX_BATCHES} batches of {batch})"
    nan_ok = build_nan_accepted(manifest.extra.get(NAN_INPUTS), build)  # NaN where the build accepted it
    tensors = load_npz(path, manifest.inputs, float_truth=True, nan_ok=nan_ok)  # float truth: never scored here
    batches = list(tensors.batches(batch))[:MAX_BATCHES]
    return batches, f"{label} {path} ({len(batches)} batches of up to {batch})"


def _recorded_data_gone(build: Path, manifest: Any) -> str:
    """The note where the manifest names verification data that is not found from here, so random inputs were timed:
    an older optimize recorded the path relative to the folder it ran in, and a profile run from another folder timed
    random inputs without a word (session 40); "" where the data was found or none is named."""
    recorded = str((manifest.verification or {}).get("data", "")).split(" (")[0]
    if not recorded or _verification_file(build, manifest) is not None:
        return ""
    return (
        f"the verification data the manifest names ({recorded}) is not found from {Path.cwd()}: timed on random "
        "inputs, which may take other paths through the model; pass --data"
    )


def _verification_file(build: Path, manifest: Any) -> Path | None:
    """The .npz the manifest's verification names ("calib.npz (last 8 of 40 samples held out)"), if it exists."""
    recorded = str((manifest.verification or {}).get("data", "")).split(" (")[0]
    if not recorded:
        return None
    for candidate in (Path(recorded), build / recorded):
        if candidate.is_file():
            return candidate
    return None


def random_batch(specs: Any, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Random inputs in each spec's dtype: a batch axis of `batch`, other dynamic axes of DYNAMIC_AXIS."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = [d if isinstance(d, int) else (batch if j == 0 else DYNAMIC_AXIS) for j, d in enumerate(spec.shape)]
        if np.issubdtype(np.dtype(spec.dtype), np.integer) or spec.dtype == "bool":
            feeds[spec.name] = rng.integers(0, 2, shape).astype(spec.dtype)  # valid ids and masks for any vocab
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
    return feeds


def print_tables(result: Any, top: int) -> None:
    """Per op type and top-K nodes, readable at 80 columns: names fold onto more lines, never cut."""
    from rich.console import Console

    from loadtest.profile_report import node_rows, op_type_rows, summary_lines

    console = Console()
    for line in summary_lines(result):  # with how it was timed and its notes (a busy machine, an FP32 build)
        console.print(line, highlight=False, soft_wrap=True)
    console.print(_table("time per op type (ms per run)", *op_type_rows(result)))
    console.print(_table(f"top {top} nodes (ms per run)", *node_rows(result, top)))


def _table(title: str, header: list[str], rows: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(header):
        name_column = i == len(header) - 1
        table.add_column(column, justify="left" if name_column else "right", overflow="fold", no_wrap=not name_column)
    for row in rows:
        table.add_row(*row)
    return table
