"""`python -m optimizer.speed_child FP32 INT8 BATCH.npz OUT.json`: one block of the speed gate's timing, in the fresh
process `optimizer.speed.time_pair` starts for it (a long-lived process carries other libraries' threads and pages,
and one process's pairs agree closely with each other and less with the next process's: `optimizer.speed`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from optimizer.onnxruntime_runner import quiet_onnxruntime
from optimizer.speed import time_alternating
from quantserve.errors import QuantserveError


def main(argv: Sequence[str] | None = None) -> int:
    """Time FP32 and INT8 alternately on BATCH.npz and write one block to OUT.json (exit 2 with the line on stderr
    where a model cannot be loaded)."""
    parser = argparse.ArgumentParser(prog="python -m optimizer.speed_child")
    parser.add_argument("fp32", type=Path)
    parser.add_argument("int8", type=Path)
    parser.add_argument("batch", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--min-pairs", type=int, default=5)
    args = parser.parse_args(argv)
    quiet_onnxruntime()  # our stderr is read back: its last line is a failure's reason
    with np.load(args.batch, allow_pickle=False) as npz:
        batch = {name: npz[name] for name in npz.files}
    try:
        block = time_alternating((args.fp32, args.int8), batch, args.threads, args.seconds, args.min_pairs)
    except QuantserveError as exc:
        print(exc, file=sys.stderr)
        return QuantserveError.exit_code
    args.out.write_text(json.dumps(asdict(block)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
