"""Where an ONNX model's time goes, per node and per op type, from ONNX Runtime's own profiler.

Each model is profiled alone in a fresh session in a child process (`python -m optimizer.profile`),
so no idle session's spinning threads inflate it (two sessions timed alternately on 2 cores
inflate each other). ORT fuses and renames nodes (Q/DQ pairs into QLinearConv, Conv+Relu into an
NCHWc Conv), so every timed kernel is mapped back to a node of the ONNX file (`map_to_onnx`) and
grouped by that node's op type, which lets FP32 and INT8 runs of one graph be compared op type by
op type.

Two models are profiled in alternated rounds (FP32, INT8, FP32, INT8 …, a child each) and each
kernel's and run's median taken (`profile_rounds`): one child after the other, whatever the machine
did meanwhile lands on one model only. Each child reads the share of the cores other processes took
while it timed (`optimizer.cpu_clock.CpuClock`); above `BUSY_SHARE` the profile is marked busy, as
`optimize`'s speed gate marks its figures: on 2 shared cores at load 6 the same build profiled 2.24×,
0.18× and 0.30× back to back.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.cpu_clock import BUSY_SHARE, CpuClock
from optimizer.onnxruntime_runner import quiet_onnxruntime
from quantserve.errors import InternalError, QuantserveError
from quantserve.json_files import strict_json

# Suffixes ORT's graph transformers append to a node or tensor name when they make a new node.
_ORT_SUFFIX = re.compile(r"(_token_\d+|_nchwc|_output|_Output|_quant|_dequant)$")
# Prefixes/suffixes that turn an ORT kernel's op type into the ONNX op type it implements.
_OP_PREFIXES = ("DynamicQuantize", "QLinear", "Nchwc", "Fused", "QOrdered", "Q")
_OP_SUFFIXES = ("Integer", "AndScale")
_ANCESTOR_STEPS = 4  # how far up a fused chain (Conv → BN → Relu) a kernel is traced to its root op
# ORT's errors that blame the inputs (an id past an embedding's end, a wrong dtype or rank): the user's data.
_INPUT_ERROR = re.compile(r"INVALID_ARGUMENT|out of (data )?(range|bounds)", re.IGNORECASE)


@dataclass(frozen=True)
class NodeTime:
    """One kernel ORT ran: its optimized-graph name and op type, the ONNX node it maps to, mean ms per run."""

    name: str
    op_type: str
    onnx_node: str | None  # None: ORT inserted it (layout Transpose, ReorderInput/Output)
    onnx_op_type: str  # the mapped ONNX node's op type (else `op_type`): compare FP32 and INT8 on this
    ms: float


@dataclass
class ModelProfile:
    """One model's profile: mean wall ms per `session.run`, kernels, and ONNX nodes that ran no kernel."""

    model: str
    threads: int
    runs: int
    run_ms: float
    nodes: list[NodeTime]
    not_run: list[str] = field(default_factory=list)  # fused into another kernel or folded to a constant
    others_share: float | None = None  # share of the cores other processes took while it ran (None: unknown)
    rounds: int = 1  # children whose medians these are (`runs` each)

    @property
    def kernel_ms(self) -> float:
        return sum(n.ms for n in self.nodes)

    def ms_by_node(self) -> dict[str, float]:
        """Kernel ms per ONNX node (a node's kernels summed; a kernel without one under its own name)."""
        totals: dict[str, float] = {}
        for node in self.nodes:
            key = node.onnx_node or node.name
            totals[key] = totals.get(key, 0.0) + node.ms
        return totals

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelProfile:
        """A profile from its JSON: a timing written as null (a NaN, strict JSON) read back as NaN, not measured."""
        fields = nan_for_null(data, ("run_ms",))
        fields["nodes"] = [NodeTime(**nan_for_null(n, ("ms",))) for n in data["nodes"]]
        return cls(**fields)


def nan_for_null(record: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """`record` with each of `keys` that holds null as NaN: `strict_json` wrote a NaN timing as null, and a
    timing read as None failed the sums and the report's formatting (a TypeError)."""
    return {**record, **{key: math.nan for key in keys if key in record and record[key] is None}}


def node_times_ms(
    model_path: Path, batches: Sequence[dict[str, np.ndarray]], threads: int = 1, repeats: int = 3
) -> dict[str, float]:
    """Mean ms per run for each ONNX node name, from ORT's profiler trace after a warm-up run.

    Keys are ONNX node names where the kernel maps back to one (see `map_to_onnx`), else ORT's own
    name for a node it inserted (e.g. a layout `Transpose`). Kernels mapping to one node are summed.
    """
    totals: dict[str, float] = defaultdict(float)
    for node in profile_model(model_path, batches, threads, repeats).nodes:
        totals[node.onnx_node or node.name] += node.ms
    return dict(totals)


def op_type_times_ms(
    model_path: Path, batches: Sequence[dict[str, np.ndarray]], threads: int = 1, repeats: int = 3
) -> dict[str, float]:
    """`node_times_ms` summed per ONNX op type (`NodeTime.onnx_op_type`), so FP32 and INT8 compare."""
    return op_type_totals(profile_model(model_path, batches, threads, repeats).nodes)


def op_type_totals(nodes: Sequence[NodeTime]) -> dict[str, float]:
    """Sum kernel ms per ONNX op type."""
    totals: dict[str, float] = defaultdict(float)
    for node in nodes:
        totals[node.onnx_op_type] += node.ms
    return dict(totals)


def profile_model(
    model_path: Path,
    batches: Sequence[dict[str, np.ndarray]],
    threads: int = 1,
    repeats: int = 3,
    inputs: str = "the inputs",
) -> ModelProfile:
    """Profile `model_path` on `batches` (each run `repeats` times after one warm-up pass) in a child process.

    `inputs` names where the batches came from, for the one-line error when ONNX Runtime refuses them."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise QuantserveError(f"{model_path}: model file not found")
    if not batches:
        raise QuantserveError(f"{model_path}: no input batches to profile with")
    if threads < 1 or repeats < 1:
        raise QuantserveError(f"threads and repeats must be at least 1, got {threads} and {repeats}")
    with tempfile.TemporaryDirectory(prefix="quantserve-profile-") as tmp:
        feeds = Path(tmp) / "batches.npz"
        np.savez(feeds, **{f"{i}/{name}": a for i, batch in enumerate(batches) for name, a in batch.items()})  # type: ignore[arg-type]
        result = Path(tmp) / "profile.json"
        _run_child(model_path.resolve(), feeds, result, (threads, repeats), inputs)
        return ModelProfile.from_dict(json.loads(result.read_text()))


def _run_child(model_path: Path, feeds: Path, result: Path, counts: tuple[int, int], inputs: str) -> None:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "optimizer.profile", str(model_path), str(feeds), str(result)]
    argv += ["--threads", str(counts[0]), "--repeats", str(counts[1]), "--inputs", inputs]
    # cwd: the temp folder, so nothing lands in the caller's working directory
    done = subprocess.run(argv, env=env, cwd=feeds.parent, capture_output=True, text=True, check=False)
    if done.returncode == QuantserveError.exit_code:
        raise QuantserveError(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InternalError(f"profiling {model_path} failed in its child process (exit {done.returncode}): {tail}")


def profile_in_session(
    model_path: Path, batches: Sequence[dict[str, np.ndarray]], threads: int, repeats: int, inputs: str = "the inputs"
) -> ModelProfile:
    """Profile in a fresh session of this process; the trace JSON goes to a temp folder and is deleted."""
    with tempfile.TemporaryDirectory(prefix="quantserve-ort-trace-") as tmp:
        session = _profiling_session(model_path, threads, Path(tmp) / "trace")
        # warm-up: first-run allocations and kernel selection stay out of the figures
        _run_passes(session, batches, 1, f"{model_path.name} cannot run on {inputs}")
        clock = CpuClock.now()
        _run_passes(session, batches, repeats, f"{model_path.name} cannot run on {inputs}")
        others = clock.others_share()
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = repeats * len(batches)
    kernels, run_ms = summarize_trace(events, warmup_runs=len(batches), runs=runs)
    profile = _model_profile(model_path, threads, runs, run_ms, kernels)
    profile.others_share = others
    return profile


def _run_passes(session: Any, batches: Sequence[dict[str, np.ndarray]], passes: int, refused: str) -> None:
    """Run every batch `passes` times; ORT refusing the inputs (INVALID_ARGUMENT, an index out of range) is the
    user's data, not a bug: a QuantserveError `refused: ORT's first line`."""
    try:
        for _ in range(passes):
            for batch in batches:
                session.run(None, batch)
    except Exception as exc:  # ORT raises its own InvalidArgument/Fail types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if type(exc).__name__ == "InvalidArgument" or _INPUT_ERROR.search(first):
            raise QuantserveError(f"{refused}: {first}") from exc
        raise


def profile_rounds(
    models: Sequence[Path],
    batches: Sequence[dict[str, np.ndarray]],
    threads: int,
    repeats: int,
    rounds: int = 3,
    inputs: str = "the inputs",
) -> list[ModelProfile]:
    """Profile `models` in alternated rounds (A, B, A, B …, a child each); per model the rounds' medians."""
    taken: list[list[ModelProfile]] = [[] for _ in models]
    for _ in range(rounds):
        for profiles, path in zip(taken, models, strict=True):
            profiles.append(profile_model(path, batches, threads, repeats, inputs))
    return [median_profile(profiles) for profiles in taken]


def median_profile(profiles: Sequence[ModelProfile]) -> ModelProfile:
    """One model's rounds as one profile: the median run ms, each kernel's median ms, others' median share."""
    if len(profiles) == 1:
        return profiles[0]
    first = profiles[0]
    per_round = [{(n.name, n.op_type, n.onnx_node, n.onnx_op_type): n.ms for n in p.nodes} for p in profiles]
    keys = {key for kernels in per_round for key in kernels}
    nodes = [NodeTime(*key, statistics.median(k.get(key, 0.0) for k in per_round)) for key in keys]
    shares = [p.others_share for p in profiles if p.others_share is not None]
    return ModelProfile(
        first.model,
        first.threads,
        first.runs,
        statistics.median(p.run_ms for p in profiles),
        sorted(nodes, key=lambda n: (-n.ms, n.name)),
        first.not_run,
        statistics.median(shares) if shares else None,
        len(profiles),
    )


def busy_note(others_share: float | None) -> str | None:
    """The warning for a profile taken while other processes took over `BUSY_SHARE` of the cores, else None."""
    if others_share is None or others_share <= BUSY_SHARE:
        return None
    return (
        f"profiled on a busy machine (other processes used {others_share:.0%} of the cores): the ms and "
        "speedups are not to be trusted; profile again when idle"
    )


def _profiling_session(model_path: Path, threads: int, prefix: Path) -> Any:
    import onnxruntime as ort

    from optimizer.onnxruntime_runner import session_options

    options = session_options("all", threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)  # ORT's default writes into the working directory
    try:
        return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise QuantserveError(f"{model_path}: ONNX Runtime cannot load the model ({str(exc).splitlines()[0]})") from exc


def summarize_trace(
    events: list[dict[str, Any]], warmup_runs: int, runs: int
) -> tuple[dict[tuple[str, str], float], float]:
    """Mean kernel ms per (optimized node name, op type) and mean `model_run` ms, skipping warm-up runs."""
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    if len(model_runs) < warmup_runs + runs:  # ORT stops recording past its event limit (1M per session)
        raise QuantserveError(
            f"ONNX Runtime's profiler recorded {len(model_runs)} of {warmup_runs + runs} runs (event limit reached); "
            "profile with fewer repeats or batches"
        )
    start = model_runs[warmup_runs - 1]["ts"] + model_runs[warmup_runs - 1]["dur"] if warmup_runs else 0
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time") and event["ts"] >= start:
            totals[(name.removesuffix("_kernel_time"), event["args"]["op_name"])] += event["dur"]
    timed = model_runs[warmup_runs:]
    run_ms = sum(e["dur"] for e in timed) / 1000.0 / runs
    return {key: us / 1000.0 / runs for key, us in totals.items()}, run_ms


def _model_profile(
    model_path: Path, threads: int, runs: int, run_ms: float, kernels: dict[tuple[str, str], float]
) -> ModelProfile:
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    index = OnnxNodeIndex(graph)
    nodes = []
    for (name, op_type), ms in sorted(kernels.items(), key=lambda item: -item[1]):
        onnx_node = index.map_to_onnx(name, op_type)
        onnx_op = index.op_types[onnx_node] if onnx_node is not None else op_type
        nodes.append(NodeTime(name, op_type, onnx_node, onnx_op, ms))
    mapped = {n.onnx_node for n in nodes}
    not_run = [name for name in index.op_types if name not in mapped]
    return ModelProfile(str(model_path), threads, runs, run_ms, nodes, not_run)


def base_op_type(op_type: str) -> str:
    """The ONNX op type an ORT kernel implements: QLinearConv → Conv, QGemm → Gemm, MatMulInteger → MatMul."""
    for prefix in _OP_PREFIXES:
        if op_type.startswith(prefix) and op_type[len(prefix) : len(prefix) + 1].isupper():
            op_type = op_type[len(prefix) :]
            break
    for suffix in _OP_SUFFIXES:
        op_type = op_type.removesuffix(suffix)
    return op_type


class OnnxNodeIndex:
    """An ONNX graph's node names, op types and tensor producers, for mapping ORT's kernel names back."""

    def __init__(self, graph: Any) -> None:
        named = [(node.name or f"{node.op_type}_{i}", node) for i, node in enumerate(graph.node)]
        self.op_types = {name: node.op_type for name, node in named}
        self.producers = {out: name for name, node in named for out in node.output if out}
        self.inputs = {name: [i for i in node.input if i] for name, node in named}

    def map_to_onnx(self, name: str, op_type: str) -> str | None:
        """The ONNX node an optimized-graph kernel comes from, or None for a node ORT inserted.

        Tried in order: the name itself; the name less ORT's suffixes (`_token_N`, `_nchwc`, …);
        that as a tensor name, whose producer is walked up a fused chain to the node whose op
        type the kernel implements (an NCHWc Conv+Relu is named after the Relu's output); the
        longest ONNX node name the kernel's name starts or ends with.
        """
        base = name
        while (stripped := _ORT_SUFFIX.sub("", base)) != base:
            base = stripped
        for candidate in (name, base):
            if candidate in self.op_types:
                return candidate
        if base in self.producers:
            return self._fused_root(self.producers[base], base_op_type(op_type))
        return self._by_affix(base)

    def _fused_root(self, node: str, wanted: str) -> str:
        current = node
        for _ in range(_ANCESTOR_STEPS):
            if self.op_types[current] == wanted:
                return current
            parents = [self.producers[i] for i in self.inputs[current] if i in self.producers]
            if not parents:
                break
            current = parents[0]
        return node

    def _by_affix(self, base: str) -> str | None:
        hits = [n for n in self.op_types if len(n) >= 3 and (base.startswith(n) or base.endswith(n))]
        return max(hits, key=len) if hits else None


def _load_batches(path: Path) -> list[dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as npz:
        batches: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
        for key in npz.files:
            index, name = key.split("/", 1)
            batches[int(index)][name] = npz[key]
    return [batches[i] for i in sorted(batches)]


def main(argv: Sequence[str] | None = None) -> int:
    """Child-process entry: profile MODEL on BATCHES.npz and write the ModelProfile to OUT.json."""
    parser = argparse.ArgumentParser(prog="python -m optimizer.profile")
    parser.add_argument("model", type=Path)
    parser.add_argument("batches", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inputs", default="the inputs", help="where the batches came from, for errors")
    args = parser.parse_args(argv)
    quiet_onnxruntime()  # our stderr is read back: its last line is a failure's reason
    try:
        batches = _load_batches(args.batches)
        profile = profile_in_session(args.model, batches, args.threads, args.repeats, args.inputs)
    except QuantserveError as exc:
        print(exc, file=sys.stderr)
        return QuantserveError.exit_code
    args.out.write_text(strict_json(profile.to_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
