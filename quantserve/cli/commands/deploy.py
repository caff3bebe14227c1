"""`quantserve deploy BUILD_DIR --repo model_repo --name NAME [--max-batch 32 --max-queue-delay-us 500 ...]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from serving.deploy import RAGGED_BATCHING


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="write a build into a Triton model repository as its next version (atomically)",
        description="Write BUILD_DIR (the output of 'quantserve optimize') as REPO/NAME/config.pbtxt + REPO/NAME/<v>/.",
    )
    parser.add_argument("build_dir", metavar="BUILD_DIR", type=Path, help="folder written by 'quantserve optimize'")
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument("--name", required=True, help="model name in the repository")
    parser.add_argument("--max-batch", type=int, default=32, help="max_batch_size (0: no batching)")
    parser.add_argument("--max-queue-delay-us", type=int, default=500, help="dynamic batcher max queue delay (µs)")
    parser.add_argument(
        "--preferred-batch", type=_batch_sizes, help="preferred batch sizes, e.g. 8,16,32 (default: powers of two)"
    )
    parser.add_argument("--instances", type=int, default=1, help="model instances (instance_group count)")
    parser.add_argument(
        "--ragged-batching",
        choices=RAGGED_BATCHING,
        default="group",
        help="embedded target, inputs of varying length: run each shape apart (exact) or zero-pad into one batch",
    )
    parser.set_defaults(func=run)


def _batch_sizes(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from exc


def run(args: argparse.Namespace) -> int:
    from serving.deploy import deploy

    if args.max_batch < 0:
        raise QuantserveError(f"--max-batch must be ≥ 0, got {args.max_batch}")
    result = deploy(
        args.build_dir,
        args.repo,
        args.name,
        max_batch=args.max_batch,
        max_queue_delay_us=args.max_queue_delay_us,
        preferred=args.preferred_batch,
        instances=args.instances,
        ragged_batching=args.ragged_batching,
    )
    print(f"deployed {args.build_dir} as '{args.name}' version {result.version}: {result.version_dir}")
    print(f"config: {result.config_path}")
    return 0
