"""`quantserve optimize MODEL --calib CALIB.npz --precision int8 --target embedded --out build/NAME`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "optimize",
        help="export, fuse, calibrate INT8, build for a target and verify against FP32",
        description="Turn MODEL (.onnx, .pt2 or package.module:factory) into a deployable, verified build.",
    )
    parser.add_argument(
        "model", metavar="MODEL", help=".onnx file, torch.export .pt2 program, or package.module:factory"
    )
    parser.add_argument("--calib", type=Path, required=True, help="calibration .npz (one array per input name)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="int8", help="fp16: GPU targets only")
    parser.add_argument("--target", default="embedded", help="engine target (embedded, onnxruntime, tensorrt)")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. build/NAME")
    parser.add_argument("--method", choices=("minmax", "entropy", "percentile"), default="minmax")
    parser.add_argument("--eval", type=Path, help="held-out .npz for verification (default: last 20%% of --calib)")
    parser.add_argument("--name", help="model name recorded in the manifest (default: from MODEL)")
    parser.add_argument(
        "--input-names", help="comma-separated input names for a .pt2 or factory model (a .pt2 stores only `input`…)"
    )
    parser.add_argument("--output-names", help="comma-separated output names for a .pt2 or factory model")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (17 or newer)")
    parser.add_argument(
        "--model-type", choices=("bert",), help="transformer encoder: ORT transformer fusions and the INT8 drift policy"
    )
    parser.add_argument("--num-heads", type=int, default=0, help="attention heads (--model-type; 0: detect)")
    parser.add_argument("--hidden-size", type=int, default=0, help="hidden size (--model-type; 0: detect)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from optimizer.pipeline import optimize
    from optimizer.targets import get_target

    get_target(args.target)  # an unknown target fails here, before any work
    console = _console()
    with console.status("optimizing…") as status:
        artifact = optimize(
            args.model,
            args.calib,
            args.precision,
            args.target,
            args.out,
            method=args.method,
            eval_path=args.eval,
            name=args.name,
            opset=args.opset,
            input_names=args.input_names.split(",") if args.input_names else None,
            output_names=args.output_names.split(",") if args.output_names else None,
            on_stage=lambda stage: status.update(f"optimizing: {stage}…"),
            transformer=_transformer_settings(args),
        )
    console.print(stage_table(artifact.manifest.stages))
    console.print(verification_table(artifact.manifest.verification or {}))
    console.print(f"wrote {Path(args.out) / 'manifest.json'}")
    return 0


def _transformer_settings(args: argparse.Namespace) -> Any:
    if not args.model_type:
        return None
    from optimizer.transformer import TransformerSettings

    return TransformerSettings(args.model_type, args.num_heads, args.hidden_size)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=False)


def stage_table(stages: list[dict[str, Any]]) -> Any:
    """One row per stage with its main facts."""
    from rich.table import Table

    table = Table(title="optimize")
    for column in ("stage", "tool", "details"):
        table.add_column(column)
    for record in stages:
        tool = str(record.get("tool", record.get("exporter", ""))).rsplit(".", 1)[-1]
        table.add_row(record.get("stage", "?"), tool, _details(record))
    return table


def _details(record: dict[str, Any]) -> str:
    stage = record.get("stage")
    if stage == "export":
        return f"opset {record.get('opset')}, {record.get('nodes')} nodes"
    if stage == "fuse":
        return f"nodes {record.get('nodes_before')} → {record.get('nodes_after')}"
    if stage == "calibrate":
        return (
            f"{record.get('method')}, {record.get('activation_type')}/{record.get('weight_type')}, "
            f"{record.get('samples')} samples, cache {record.get('cache')}"
        )
    if stage == "build":
        return f"target {record.get('target')}"
    return ""


def verification_table(verification: dict[str, Any]) -> Any:
    """The verification record as metric/value rows."""
    from rich.table import Table

    table = Table(title=f"verification vs FP32 ({verification.get('data', 'n/a')})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("samples", "top1_agreement", "accuracy", "fp32_accuracy", "max_abs_diff", "mean_abs_diff"):
        value = verification.get(key)
        table.add_row(key, "n/a" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value)))
    return table
