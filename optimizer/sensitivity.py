"""Mixed precision by time and drift: which quantized nodes to keep FP32, cheapest drift-per-millisecond first.

Each quantized compute node is scored by two figures: the drift it causes (how much the budget margin
improves when its group alone is kept FP32, probed on a small held-out subset) and the time INT8
saves on it (ONNX Runtime's profiler, FP32 vs INT8, node by node). Groups are kept FP32 in order of
margin gained per millisecond given up, re-measured on the full held-out set after each, until the
budget holds or the search's budget (`optimizer.search_budget`, shared with the candidates before it) cannot
hold another probe or step with the winner's timing still to come; a probe or step under way then is stopped.
Nodes are probed in contiguous groups (at most `max_probes`), so the search time stays bounded however many nodes
the model has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.quant_exclusions import COMPUTE_OPS, MAC_OPS, run_with_tensors
from optimizer.search_budget import PROBE, STEP, SearchBudget

RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}  # gates per step: W is (directions, gates × hidden, inputs)
MIN_SAVED_MS = 1e-3  # a node saving no time is kept FP32 first when keeping it helps
# the search kept every group FP32 in turn and none held (`best` is the closest attempt, maybe the start)
EXHAUSTED = "every group kept FP32, the budget still missed"
PROBE_SHARE = 0.5  # of the search time, at most this share goes to probing; the rest to keeping groups FP32
PROBING, KEEPING = "mixed precision: probing groups", "mixed precision: keeping groups FP32"


def compute_macs(model: onnx.ModelProto, model_path: Path, sample: dict[str, np.ndarray]) -> dict[str, int]:
    """Multiply-adds per sample of each Conv/ConvTranspose/MatMul/Gemm/Attention/LSTM/GRU/RNN node, from one
    sample's shapes."""
    weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in MAC_OPS]
    wanted = sorted({t for n in nodes for t in (n.input[0], n.output[0]) if t and t not in weights})
    shapes = {name: a.shape for name, a in next(iter(run_with_tensors(model_path, [sample], wanted))).items()}
    shapes.update(weights)
    return {n.name: _node_macs(n, shapes) for n in nodes}


def _node_macs(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> int:
    first, out = shapes.get(node.input[0]), shapes.get(node.output[0])
    second = shapes.get(node.input[1]) if len(node.input) > 1 else None
    gates = RECURRENT_GATES.get(node.op_type)
    if gates and first is not None and second is not None and len(second) == 3:
        # X (T, B, I) or (B, T, I); W (directions, gates × H, I): gates × H × (I + H) per step, row and direction
        directions, gates_hidden, inputs = second
        return int(np.prod(first[:2])) * directions * gates_hidden * (inputs + gates_hidden // gates)
    if first is None or out is None or second is None:
        return 0
    size = int(np.prod(out))
    if node.op_type == "Conv":
        return size * int(np.prod(second[1:]))
    if node.op_type == "ConvTranspose":
        return int(np.prod(first)) * int(np.prod(second[1:]))
    if node.op_type == "Gemm":
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        return size * int(first[0] if trans_a else first[-1])
    if node.op_type == "Attention":  # the packed QKV projection
        return int(np.prod(first)) * int(second[-1])
    return size * int(first[-1])  # MatMul


def quantized_nodes(fp32: onnx.ModelProto, int8: onnx.ModelProto) -> list[str]:
    """Compute nodes of `fp32` that run in INT8 in `int8`: fed by a DequantizeLinear (Q/DQ) or replaced (dynamic)."""
    dq_outputs = {o for n in int8.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    by_name = {n.name: n for n in int8.graph.node}
    found = []
    for node in fp32.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        twin = by_name.get(node.name)
        if twin is None and node.op_type == "Gemm":  # ORT's dynamic INT8 rewrites Gemm `X` as MatMul `X_MatMul`
            twin = by_name.get(f"{node.name}_MatMul")  # still a MatMul: kept FP32 (it had counted as INT8)
            if twin is not None and twin.op_type == "MatMul" and not dq_outputs.intersection(twin.input[1:2]):
                continue
            twin = None
        # INT8 when its weight (or second operand) is dequantized: an FP32 node may still read a DQ'd activation.
        if twin is None or twin.op_type != node.op_type or dq_outputs.intersection(twin.input[1:2]):
            found.append(node.name)
    return found


def time_saved_ms(
    nodes: Sequence[str], op_types: dict[str, str], fp32_ms: dict[str, float], int8_ms: dict[str, float]
) -> dict[str, float]:
    """FP32 − INT8 ms per node, matched by name (`X` or dynamic's `X_quant`), else from its op type's ratio."""
    ratios = _op_type_ratios(op_types, fp32_ms, int8_ms)
    saved = {}
    for name in nodes:
        before = fp32_ms.get(name, 0.0)
        after = int8_ms.get(name, int8_ms.get(f"{name}_quant"))
        if after is None:
            after = before * ratios.get(op_types.get(name, ""), 1.0)
        saved[name] = before - after
    return saved


def _op_type_ratios(op_types: dict[str, str], fp32_ms: dict[str, float], int8_ms: dict[str, float]) -> dict[str, float]:
    totals: dict[str, list[float]] = {}
    for name, op in op_types.items():
        pair = totals.setdefault(op, [0.0, 0.0])
        pair[0] += fp32_ms.get(name, 0.0)
        pair[1] += int8_ms.get(name, int8_ms.get(f"{name}_quant", 0.0))
    return {op: (b / a if a > 0 and b > 0 else 1.0) for op, (a, b) in totals.items()}


def probe_groups(nodes: Sequence[str], max_probes: int) -> list[list[str]]:
    """`nodes` (graph order) cut into at most `max_probes` contiguous groups of near-equal size."""
    count = min(len(nodes), max(1, max_probes))
    return [list(part) for part in np.array_split(np.array(nodes, dtype=object), count) if len(part)]


@dataclass
class Attempt:
    """One model tried: the nodes kept FP32 beyond the up-front exclusions, its path and its drift."""

    kept: list[str]
    path: Path
    drift: Any  # optimizer.drift.DriftReport
    full: bool = False  # `drift` is over the whole held-out set (else over the probe rows only)

    @property
    def margin(self) -> float:
        return float(self.drift.margin())


@dataclass
class MixedPrecisionResult:
    """The best attempt and how it was reached (probe scores, the order groups were kept in, steps)."""

    best: Attempt
    probes: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""
    ranked_by: str = ""  # what ordered the probed groups: the margin gained, or the scores behind ids (`_rank`)
    returned: list[dict[str, Any]] = field(default_factory=list)  # kept groups tried back in INT8 once it held


class MixedPrecisionSearch:
    """Greedy drift-per-millisecond search over probe groups; `build(kept)` makes a variant, the `measure`s judge it.

    `budget` is the whole search's (a float: a `time.monotonic()` deadline); `reserve_s` of it stays for what
    follows a step that holds (timing the winner). `on_progress(done, total, what)` hears of each group probed
    (PROBING) and each group kept FP32 (KEEPING).
    """

    def __init__(
        self,
        build: Callable[[Sequence[str]], Path],
        measure_probe: Callable[[Path], Any],
        measure_full: Callable[[Path], Any],
        budget: SearchBudget | float,
        max_probes: int = 12,
        accept: Callable[[Any], bool] = lambda drift: bool(drift.holds),
        on_progress: Callable[[int, int, str], None] | None = None,
        reserve_s: float = 0.0,
        scores_lead: Callable[[Any], bool] = lambda drift: False,
    ) -> None:
        self.build, self.measure_probe, self.measure_full = build, measure_probe, measure_full
        self.scores_lead = scores_lead  # the start's probe drift: rank the groups by error removed first
        if not isinstance(budget, SearchBudget):
            budget = SearchBudget(budget - time.monotonic())
        self.budget, self.max_probes, self.accept = budget, max_probes, accept
        self.on_progress, self.reserve_s = on_progress, reserve_s

    def run(self, start: Attempt, nodes: Sequence[str], saved_ms: dict[str, float]) -> MixedPrecisionResult:
        """Keep groups FP32, best margin gained per ms given up first, until the drift budget holds.

        Probing may use up to `PROBE_SHARE` of the time left; unprobed groups follow the probed ones
        in graph order. Steps are judged on the probe subset and confirmed on the full held-out set.
        """
        result = MixedPrecisionResult(best=start)
        groups = probe_groups(nodes, self.max_probes)
        probe_deadline = self.budget.clock() + PROBE_SHARE * max(self.budget.left() - self.reserve_s, 0.0)
        ranked = self._rank(start, groups, saved_ms, result, probe_deadline)
        kept: list[str] = []
        for step, (group, score) in enumerate(ranked, 1):
            undone = f"mixed precision: {len(ranked) - step + 1} of {len(ranked)} steps"
            if not self.budget.affords(STEP, self.reserve_s):
                self.budget.skip(undone)
                result.stopped = "search time budget spent"
                return result
            kept.extend(group)
            attempt = self.budget.attempt(STEP, undone, partial(self._attempt, kept), self.reserve_s)
            if attempt is None:  # stopped at the deadline, less the winner's timing
                result.stopped = "search time budget spent"
                return result
            holds = self.accept(attempt.drift)
            record = {"kept_fp32": group, "score": score, "margin": attempt.margin, "holds": holds}
            result.steps.append(record)
            self._tell(step, len(ranked), KEEPING)
            if holds or (not self.accept(result.best.drift) and attempt.margin > result.best.margin):
                result.best = attempt
            if holds:
                result.stopped = "budget holds"
                self._return_to_int8(result, [g for g, _ in ranked[: step - 1]], saved_ms)
                return result
        result.stopped = result.stopped or EXHAUSTED  # each step missed: `best` is the closest, whichever it was
        return result

    def _return_to_int8(
        self, result: MixedPrecisionResult, earlier: list[list[str]], saved_ms: dict[str, float]
    ) -> None:
        """Once the budget holds, try each group kept before the last back in INT8 (most ms saved first), and leave it
        there where the budget still holds. The greedy order rests on probe scores and measured ms, both noisy: on a
        loaded machine a group kept first only for its timing was kept with the one that mattered, and a model whose
        second group alone held shipped with both in FP32 (or, both being every compute node, was refused)."""
        for group in sorted(earlier, key=lambda g: -sum(saved_ms.get(n, 0.0) for n in g)):
            undone = f"mixed precision: returning {len(earlier) - len(result.returned)} groups to INT8"
            if not self.budget.affords(STEP, self.reserve_s):
                self.budget.skip(undone)
                return
            kept = [n for n in result.best.kept if n not in group]
            attempt = self.budget.attempt(STEP, undone, partial(self._attempt, kept), self.reserve_s)
            if attempt is None:
                return
            holds = self.accept(attempt.drift)
            result.returned.append({"int8_again": group, "margin": attempt.margin, "holds": holds})
            if holds:
                result.best = attempt

    def _probe(self, group: Sequence[str]) -> Any:
        """The probe rows' drift with `group` alone kept FP32."""
        return self.measure_probe(self.build(group))

    def _attempt(self, kept: Sequence[str]) -> Attempt:
        """`kept` FP32: judged on the probe rows, and where it holds there, on the whole held-out set."""
        path = self.build(kept)
        attempt = Attempt(list(kept), path, self.measure_probe(path))
        if self.accept(attempt.drift):
            attempt.drift, attempt.full = self.measure_full(attempt.path), True
        return attempt

    def _rank(
        self,
        start: Attempt,
        groups: list[list[str]],
        saved_ms: dict[str, float],
        result: MixedPrecisionResult,
        probe_deadline: float,
    ) -> list[tuple[list[str], float | None]]:
        """Probe each group kept FP32 alone on the subset; order by margin gained per ms of INT8 saving lost, ties
        (a top-1 agreement that no group moves on the probe rows: torchcrepe's every probe gained 0) by relative
        error removed per ms, and groups that moved neither by the INT8 saving they cost, cheapest first: with only
        an ArgMax's ids as output (no error beyond one probe row), torchcrepe's 38 ms conv2 was kept FP32 before its
        0.5 ms conv5, in the order the groups were probed, and the build fell to 1.03× (session 50)."""
        unprobed = f"mixed precision: {len(groups)} of {len(groups)} probes"
        before = None
        if self.budget.affords(PROBE, self.reserve_s):
            before = self.budget.attempt(PROBE, unprobed, lambda: self.measure_probe(start.path), self.reserve_s)
        if before is None:
            return [(group, None) for group in groups]
        base, base_error = float(before.margin()), float(before.error())
        scored: list[tuple[list[str], float, float, float]] = []
        # an id per sample sets the margin: its agreement moves one probe row at a time, the scores it is made from
        # move continuously (`optimizer.answer_scores`): the error they lose per ms ranks first
        by_scores = self.scores_lead(before)
        result.ranked_by = "scores behind the ids" if by_scores else "margin"

        def ranked() -> list[tuple[list[str], float | None]]:
            if by_scores:
                order = sorted(scored, key=lambda item: (-item[2], -item[1], item[3]))
            else:
                order = sorted(scored, key=lambda item: (-item[1], -item[2], item[3]))
            return [(group, score) for group, score, _, _ in order]

        for index, group in enumerate(groups):
            rest: list[tuple[list[str], float | None]] = [(g, None) for g in groups[index:]]
            if self.budget.clock() > probe_deadline or not self.budget.affords(PROBE, self.reserve_s):
                return [*ranked(), *rest]
            undone = f"mixed precision: {len(rest)} of {len(groups)} probes"
            probe = self.budget.attempt(PROBE, undone, partial(self._probe, group), self.reserve_s)
            if probe is None:
                return [*ranked(), *rest]
            gain, error_gain = float(probe.margin()) - base, base_error - float(probe.error())
            cost = max(sum(saved_ms.get(n, 0.0) for n in group), MIN_SAVED_MS)
            result.probes.append(
                {"nodes": group, "margin_gain": gain, "error_removed": error_gain, "ms_saved_by_int8": cost}
            )
            scored.append((group, gain / cost, error_gain / cost, cost))
            self._tell(index + 1, len(groups), PROBING)
        return ranked()

    def _tell(self, done: int, total: int, what: str) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total, what)


def keep_fp32(int8: onnx.ModelProto, fp32: onnx.ModelProto, nodes: Sequence[str]) -> onnx.ModelProto:
    """A Q/DQ model with `nodes` reading FP32 again: weights from `fp32`, activations from before their Q/DQ pair.

    Graph surgery instead of re-quantizing, so a probe costs milliseconds. A float tensor is used only
    where the same node produces it in both graphs: ORT folds a Relu into its Q range and hands the
    Relu's output name to the node before it, so that name then holds pre-Relu values.
    """
    model = onnx.ModelProto()
    model.CopyFrom(int8)
    originals = {n.name: n for n in fp32.graph.node}
    weights = {i.name: i for i in fp32.graph.initializer}
    producers = {out: n for n in model.graph.node for out in n.output}
    fp32_nodes = {out: n for n in fp32.graph.node for out in n.output}
    fp32_producers = {out: node.name for out, node in fp32_nodes.items()}
    fp32_inputs = {n.name: set(n.input) for n in fp32.graph.node}

    def same(tensor: str) -> bool:
        return tensor in fp32_producers and tensor in producers and producers[tensor].name == fp32_producers[tensor]

    inputs = {i.name for i in model.graph.input}
    refolded: dict[str, onnx.NodeProto] = {}  # a folded activation's output name → the activation put back
    for node in model.graph.node:
        if node.name not in set(nodes) or node.name not in originals:
            continue
        for index, name in enumerate(node.input):
            source = originals[node.name].input[index] if index < len(originals[node.name].input) else ""
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or not source:
                continue
            if source in weights:
                node.input[index] = _restore_weight(model, weights[source], taken=source in producers)
            elif source in inputs or same(source):
                node.input[index] = source
            elif (activation := _folded_activation(fp32_nodes, weights, source, dq, producers, refolded)) is not None:
                node.input[index] = activation.output[0]
        _bypass_output_qdq(model, node, fp32_inputs, [o for o in node.output if same(o)])
    for activation in refolded.values():  # after the node whose output it reads (the graph stays in order)
        before = producers[activation.input[0]]
        at = next(i for i, node in enumerate(model.graph.node) if node == before)
        model.graph.node.insert(at + 1, activation)
        for value in activation.input[1:]:  # a Clip's bounds
            if value and value in weights and not any(i.name == value for i in model.graph.initializer):
                model.graph.initializer.append(weights[value])
    _prune(model)
    return model


def _folded_activation(
    fp32_producers: dict[str, onnx.NodeProto],
    weights: dict[str, onnx.TensorProto],
    source: str,
    dq: onnx.NodeProto,
    producers: dict[str, onnx.NodeProto],
    refolded: dict[str, onnx.NodeProto],
) -> onnx.NodeProto | None:
    """The Relu or Clip that ORT folded into the Q range of `source` (a kept node's FP32 input), put back on the float
    tensor that Q reads: without it a node kept FP32 after a Relu still read its input quantized, and an MLP with
    every MatMul kept FP32 drifted half as far as the whole INT8 model (max abs diff 0.018 against 0.037)."""
    if source in refolded:
        return refolded[source]
    activation, q = fp32_producers.get(source), producers.get(dq.input[0])
    if activation is None or activation.op_type not in ("Relu", "Clip") or q is None or q.op_type != "QuantizeLinear":
        return None
    before, quantized = fp32_producers.get(activation.input[0]), q.input[0]
    if before is None or quantized not in producers or producers[quantized].name != before.name:
        return None
    if any(value and value not in weights for value in activation.input[1:]):
        return None  # bounds made by a node: not carried over
    put_back = onnx.NodeProto()
    put_back.CopyFrom(activation)
    put_back.name = f"{activation.name or source}_fp32"
    put_back.input[0], put_back.output[:] = quantized, [f"{source}_fp32"]
    refolded[source] = put_back
    return put_back


def _restore_weight(model: onnx.ModelProto, weight: onnx.TensorProto, taken: bool) -> str:
    """Put the FP32 `weight` back (renamed when ORT gave its name to the DequantizeLinear output); its name."""
    name = f"{weight.name}_fp32" if taken else weight.name
    if not any(i.name == name for i in model.graph.initializer):
        restored = onnx.TensorProto()
        restored.CopyFrom(weight)
        restored.name = name
        model.graph.initializer.append(restored)
    return name


def _bypass_output_qdq(
    model: onnx.ModelProto, node: onnx.NodeProto, fp32_inputs: dict[str, set[str]], outputs: Sequence[str]
) -> None:
    """Readers of `outputs` through a Q→DQ pair (e.g. a MatMul's quantized output) read the float tensor again,
    where the FP32 graph has them read it."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for other in model.graph.node:
        for name in other.input:
            readers.setdefault(name, []).append(other)
    for output in outputs:
        for q in (r for r in readers.get(output, []) if r.op_type == "QuantizeLinear"):
            for dq in (r for r in readers.get(q.output[0], []) if r.op_type == "DequantizeLinear"):
                for reader in readers.get(dq.output[0], []):
                    if output in fp32_inputs.get(reader.name, set()):
                        reader.input[:] = [output if name == dq.output[0] else name for name in reader.input]


def _prune(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nothing reads (the bypassed Q/DQ pairs), then unused initializers."""
    while True:
        used = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if not used.intersection(n.output)]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    used = {name for n in model.graph.node for name in n.input}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)


def int8_compute_share(
    fp32: Path, int8: Path, sample: dict[str, np.ndarray], whole: bool = False
) -> tuple[float, dict[str, int]]:
    """The share of `fp32`'s multiply-adds (one row of `sample`, or all of it where `whole`: an --unbatched build's
    sample, whose axis 0 is its frames) that `int8` runs in INT8, and the op types of the compute nodes it leaves FP32
    with their counts, those with the most multiply-adds first. Where INT8 covers a sliver (resemblyzer's speaker
    encoder: 3 LSTMs FP32, 0.03 % INT8), no timing can make it faster, and the speed refusal says so instead of
    asking for an idle machine. A beat tracker's first frame alone failed its Conv (ORT's error leaked, and a build
    2 % INT8 was told to time again on an idle machine, session 40): hence `whole`."""
    model = onnx.load(str(fp32), load_external_data=False)
    macs = compute_macs(model, fp32, sample if whole else {name: array[:1] for name, array in sample.items()})
    int8_nodes = set(quantized_nodes(model, onnx.load(str(int8), load_external_data=False)))
    total = sum(macs.values())
    op_types = {node.name: node.op_type for node in model.graph.node}
    kept: dict[str, list[int]] = {}  # op type -> [nodes, multiply-adds]
    for name, count in macs.items():
        if name not in int8_nodes:
            entry = kept.setdefault(op_types.get(name, "?"), [0, 0])
            entry[0], entry[1] = entry[0] + 1, entry[1] + count
    share = sum(macs[n] for n in int8_nodes if n in macs) / total if total else 0.0
    return share, {op: kept[op][0] for op in sorted(kept, key=lambda op: -kept[op][1])}
