"""Verify stage: the optimized model against the FP32 reference on held-out data, both in ONNX Runtime.

Every output is measured by what it is (`optimizer.drift`: class scores, embedding, sequence,
detection head, dense map) and judged against the drift budget; the user's task metric
(`--metric`) is scored on both models side by side. The record goes into `manifest.verification`:
per-output kinds and metrics, the budget, the violations and whether the budget holds.

A model whose answers depend on their batch neighbours (dynamic INT8: one activation scale per run,
over the whole batch) is judged at four batch compositions — the held-out rows in order in batches
of `batch_size`, the same rows shuffled, each row alone, and in batches of deploy's default max batch
(`DEFAULT_MAX_BATCH`, where it is larger) — and the worst one is the verdict: Triton's dynamic batcher
forms whichever batches the traffic brings. The check that a model depends on its neighbours: the first
rows alone against the same rows in their batch. rxnfp's 12-layer BERT, dynamic INT8, held top-1 agreement
1 in batches of 16 and flipped a near-tie row in batches of 64 (session 61): the largest batch verified is
recorded (`largest_batch_verified`), and deploy warns where it serves larger ones.

A model with recurrent state (`optimizer.state_loop`: an output fed back as an input next call) is also run over
the held-out rows in order as one stream, FP32 and the candidate each fed its own state, and that loop's other
outputs judged by the same budget (`closed_loop` in the record): row by row, each row fed FP32's state, silero-vad
held at flag agreement 0.9943 and fed its own state agreed on 0.85 of its decisions. Where its argmax is also fed
back as an integer token (an autoregressive decoder), both models generate tokens on their own from many start rows
(`optimizer.rollout`, `rollout` in the record), judged by the decoded-sequence budget.

The first output's absolute differences, and its top-1 agreement and accuracies where its kind has classes,
stay at the top of the record for readers of its earlier form.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.drift import chance_notes, kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget, Refusal, UnsetThreshold
from optimizer.drift_checks import DriftReport, Violation, check_words
from optimizer.drift_evidence import (
    evidence_shortfall,
    neighbour_notes,
    one_answer_outputs,
    rollout_thin,
    thin_evidence,
    token_value_outputs,
)
from optimizer.gate_advice import gate_advice
from optimizer.graph_words import read_graph_words
from optimizer.hints_once import where_unsaid
from optimizer.nan_outputs import nonfinite_origins
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.output_kinds import LABELS_DECIDED, infer_output_kinds, labels_decided
from optimizer.rollout import TokenFeedback, find_end_token, find_token_feedback, rollout_record, rollout_refusal
from optimizer.state_loop import StatePair, closed_loop_record, closed_loop_refusal, sequence_starts
from optimizer.state_outputs import answers_only, state_kind_notes, states_record
from optimizer.tensor_ranges import activation_bytes_per_sample, rows_per_chunk
from optimizer.token_values import TOKENS
from optimizer.transformer import run_model
from optimizer.user_metric import UserMetric, add_user_metric, metric_notes
from optimizer.verified_sizes import VERIFIED_SIZES, verified_sizes
from optimizer.worst_composition import Composition, judge_compositions
from quantserve import metrics
from quantserve.artifact import DEFAULT_MAX_BATCH, Artifact
from quantserve.data import TensorData
from quantserve.runner import Runner, run_batches

PROBE_ROWS = 8  # rows run alone to learn whether a model's answers depend on their batch neighbours
VERIFY_BATCH = 32  # rows a verification run holds: INT8 kernels' results differ slightly by batch size
VERIFY_MEMORY_BYTES = 1 << 30  # activations one verification run may hold (estimated from shape inference)
MORE_NAMED = 3  # violations past the first a refusal line names
# activations the pass at the served batch may hold: the candidate's session alone, where a verification run's
# VERIFY_MEMORY_BYTES sit beside its reference's; 4 GB of a 24 GB machine (`served_batch`)
SERVED_PASS_BYTES = 4 << 30
MIN_VERIFY_BATCH = 4  # fewest rows a run holds however large they are: batch neighbours must still meet


def verify_batch_size(model_path: Path, data: TensorData) -> int:
    """Rows per verification run for the model at `model_path`: VERIFY_BATCH, fewer where that many rows' activations
    would pass VERIFY_MEMORY_BYTES (DNSMOS holds ~370 MB a row: at 32, an INT8 candidate beside its FP32 reference
    was killed by the kernel at 12 GB, nothing said), not below MIN_VERIFY_BATCH. The search and the verification
    call it on the same FP32 model, so both judge at the same batch size. 1 for an --unbatched build's data (its
    server runs one request at a time; `run_model` takes this size, not the data's)."""
    if data.unbatched:
        return 1
    sample = activation_bytes_per_sample(model_path, data)
    return max(MIN_VERIFY_BATCH, rows_per_chunk(sample, VERIFY_MEMORY_BYTES, VERIFY_BATCH))


class VerifyAgainstReference:
    """Compare an artifact's ONNX model with an FP32 reference ONNX on `data`, every output, batch by batch."""

    def __init__(
        self,
        reference: Path,
        data: TensorData,
        data_source: str,
        batch_size: int = VERIFY_BATCH,
        budget: DriftBudget | None = None,
        output_kinds: Mapping[str, str] | None = None,
        user_metric: UserMetric | None = None,
        state_pairs: list[StatePair] | None = None,
    ) -> None:
        self.reference = Path(reference)
        self.data = data
        self.data_source = data_source
        self.batch_size = batch_size
        self.budget = budget or DriftBudget()
        self.output_kinds = dict(output_kinds or {})
        self.user_metric = user_metric
        self.state_pairs = list(state_pairs or [])

    def __call__(self, artifact: Artifact) -> Artifact:
        artifact.manifest.verification = self.measure(artifact.path)
        return artifact

    def measure(self, candidate: Path) -> dict[str, Any]:
        """The verification record: per-output drift by kind, the budget and its verdict, over all held-out samples
        (at the worst batch composition, where the candidate's answers depend on their batch neighbours)."""
        every = self.outputs(self.reference)
        expected = answers_only(every, self.state_pairs)  # a state is carried, judged by its effect (`state_outputs`)
        labels = self.data.labels
        words = read_graph_words(self.reference)  # which outputs a Sigmoid makes, which 2-D ones are per token
        axes = words.axes
        told = {name: kind for name, kind in self.output_kinds.items() if name in expected or name not in every}
        kinds = infer_output_kinds(
            every,
            told,  # a state's kind is not applied: said (`state_kind_notes`)
            labels=labels,
            inputs=self.data.arrays,
            axes=axes,
            sigmoid=words.sigmoid,
            state=words.state,
        )
        kinds = {name: kind for name, kind in kinds.items() if name in expected}

        def judge(got: dict[str, np.ndarray]) -> DriftReport:
            report = measure_drift(expected, got, kinds, self.budget, labels, self.data.arrays, axes)
            if self.user_metric is not None:  # a --metric reads every output, as the user's function was written
                add_user_metric(report, self.user_metric, every, got, self.data.metric_truth, self.budget)
            return report

        worst = judge_compositions(verified_compositions(candidate, self.data, self.batch_size), judge)
        got = worst.outputs
        report = nonfinite_origins(worst.report, candidate, expected, got, self.data.arrays)  # where INT8 makes NaN
        if not report.holds:  # the --gate that would hold, measured: said by the refusal (`advice`), not applied
            report.advice = gate_advice(expected, got, kinds, self.budget, report)
        first = next(iter(expected))
        record = {
            "data": self.data_source,
            **first_output_summary(expected[first], got[first], report.outputs[first]),
            "budget": self.budget.to_dict(),
            **report.to_dict(),
        }
        if self.budget.gates:  # deploy records them (`serving.gates_parameter`): evaluate judges where optimize did
            record["gates"] = dict(self.budget.gates)
        if decided := labels_decided(kinds):  # deploy records them: evaluate's rows may come without the labels
            record[LABELS_DECIDED] = decided
        if not isinstance(self.budget.label_threshold, UnsetThreshold):  # given: deploy records it as the gates
            record["label_threshold"] = float(self.budget.label_threshold)
        if self.data.unbatched:  # the requests, not the rows of their joined outputs (an NMS output's K each)
            record["samples"] = len(self.data)
        itself = self.is_reference(candidate)  # an FP32 build judged against its own file: agreement says nothing
        record["thin_evidence"] = [] if itself else thin_evidence(report, self.budget, len(self.data))
        record["notes"] = neighbour_notes(report.outputs) + kind_notes(report.outputs) + chance_notes(report.outputs)
        record["notes"] += metric_notes(report.user_metric)  # a --metric given labels=None, said once
        record["notes"] += state_kind_notes(self.output_kinds, self.state_pairs, every)
        if states := states_record(every, got, self.state_pairs):
            record["states"] = states
        sized = None if itself else verified_sizes(self.reference, self.data)  # one size, served at any (session 66)
        if sized is not None:
            record[VERIFIED_SIZES] = sized
            record["notes"].append(sized["note"])
        per_token = token_value_outputs(expected, self.data.arrays)
        record["evidence_short"] = evidence_shortfall(
            kinds, self.budget, len(self.data), self.data.arrays, per_token, expected
        )
        record["one_answer"] = one_answer_outputs(expected, kinds, labels)
        if len(worst.judged) > 1:
            record["batch_compositions"] = [
                {"composition": name, "holds": r.holds, "margin": r.margin()} for name, r in worst.judged
            ]
            record["judged_at"] = worst.name
            record["largest_batch_verified"] = worst.largest
        if self.state_pairs and not itself:
            self.add_stream_checks(record, candidate, every, kinds)
        return record

    def add_stream_checks(
        self, record: dict[str, Any], candidate: Path, expected: Mapping[str, np.ndarray], kinds: Mapping[str, str]
    ) -> None:
        """A stateful model's closed loop (`closed_loop` in `record`: each model fed its own state) and, where its
        argmax is its next token, its free-running rollout (`add_rollout`), each ANDed into `record["holds"]`;
        `expected`: FP32's answers on the data's rows. The INT8 search confirms its candidates by it too."""
        starts = sequence_starts(self.data.arrays, expected, self.state_pairs)  # each a fresh state in the data
        labels, whole = self.data.labels, self.data.requests.whole
        loop = closed_loop_record(
            self.reference, candidate, self.data.arrays, self.state_pairs, kinds, self.budget, labels, whole, starts
        )
        record["closed_loop"] = loop
        record["holds"] = bool(record["holds"] and loop["holds"])
        self.add_rollout(record, candidate, expected, starts)

    def add_rollout(
        self, record: dict[str, Any], candidate: Path, expected: Mapping[str, np.ndarray], starts: np.ndarray
    ) -> None:
        """Where the stateful model's argmax is fed back as its next token, the free-running rollout's record and
        verdict (`optimizer.rollout`), from the data's sequence `starts` and to FP32's end token where the data shows
        them; an --unbatched build's rows have no batch axis to start from together."""
        feedback = find_token_feedback(self.data.arrays, expected, self.state_pairs)
        if feedback is not None and self.data.unbatched:  # said, not skipped unsaid (thai2rom's decoder, session 62)
            record["notes"] = [*(record.get("notes") or []), unjudged_rollout(feedback)]
        if feedback is None or self.data.unbatched:
            return
        end = find_end_token(self.data.arrays, expected, feedback, starts)
        roll = rollout_record(
            self.reference, candidate, self.data.arrays, self.state_pairs, feedback, self.budget, starts=starts, end=end
        )
        record["rollout"] = roll
        record["holds"] = bool(record["holds"] and roll["holds"])
        # its starts are few beside the rows (g2p_en: 323 words of 2400 rows, 0.9814 against 0.98): said where thin
        thin = rollout_thin(roll, self.budget)
        record["thin_evidence"] = [*record.get("thin_evidence", []), *([thin] if thin else [])]

    def is_reference(self, candidate: Path) -> bool:
        """The candidate is the reference's own file (an fp32 build, a float16 file served as it is): what its rows
        agree on judges nothing, so no evidence note or closed loop is made of it."""
        return Path(candidate).resolve() == self.reference.resolve()

    def outputs(self, path: Path) -> dict[str, np.ndarray]:
        """Every output of the model at `path` over the held-out data."""
        return run_model(path, self.data, self.batch_size)


def unjudged_rollout(feedback: TokenFeedback) -> str:
    """Why an --unbatched decoder's free-running rollout was not judged, and what was: the README offers that check
    for a decoder fed its own argmax, and a fixed-batch decoder (pythainlp's thai2rom) got none, unsaid (session 62)."""
    return (
        f"output '{feedback.output}' feeds input '{feedback.input}' its argmax, but an --unbatched build's rows have "
        "no batch axis to roll sequences out together: its free-running (greedy) decoding was not judged, only each "
        "step and the closed state loop; judge decoded sequences end to end yourself (a --metric sees only the steps)"
    )


def same_answers(alone: np.ndarray, batched: np.ndarray) -> bool:
    """Numbers within float tolerance, a NaN alike to a NaN (a static INT8 pitch decoder's 0/0 on silence, at the
    same places alone and batched, read as dynamic INT8's batch dependence: session 58); anything else (a
    classifier's string labels) equal."""
    if alone.dtype.kind in "biufc" and batched.dtype.kind in "biufc":
        return bool(np.allclose(alone, batched, rtol=1e-4, atol=1e-5, equal_nan=True))
    return bool(np.array_equal(alone, batched))


def served_batch(path: Path, data: TensorData, batch_size: int) -> int:
    """The largest batch a build whose answers depend on their batch is verified at: deploy's default max batch where
    it passes `batch_size` (the verification batch, fewer where rows are large), at most the rows there are, and no
    more than SERVED_PASS_BYTES of the model's activations hold (DNSMOS, ~370 MB a row, would need 12 GB at 32: the
    kernel killed a verification at 12 GB before `verify_batch_size` capped it). Where that leaves it below the max
    batch deploy serves, deploy says so (`serving.batch_axes.batch_dependence_warning`)."""
    largest = min(len(data), max(batch_size, DEFAULT_MAX_BATCH))
    if largest <= batch_size:
        return largest
    fits = rows_per_chunk(activation_bytes_per_sample(path, data), SERVED_PASS_BYTES, largest)
    return max(batch_size, fits)


def verified_compositions(path: Path, data: TensorData, batch_size: int) -> Iterator[Composition]:
    """The model's outputs over `data` in batches of `batch_size` in order; where its first rows run alone
    answer otherwise, also over the rows shuffled (seeded), each row alone and, where larger, in batches of
    `served_batch` in order (the batches deploy serves by default), every set in `data`'s order.
    One session for all of them (a 400 MB model was loaded four times per candidate). --unbatched data runs one
    request at a time, the only composition its server forms (an NMS output's rows are no sample's to compare).

    One at a time, each run once the one before is taken: PP-OCRv5's recogniser answers 0.4 GB a composition, and all
    four held at once took `optimize` past 4 GB (session 65); `judge_compositions` keeps the worst one's alone."""
    with OnnxRuntimeRunner(path) as runner:
        in_order = run_batches(runner, data.batches(batch_size), data.requests.whole)
        if data.unbatched:
            yield Composition("one request at a time", in_order, 1)
            return
        first = data.take(0, min(len(data), PROBE_ROWS))
        heads = {name: values[: len(first)].copy() for name, values in in_order.items()}  # a copy: not a view of all
        yield Composition(f"batches of {batch_size} in order", in_order, min(len(data), batch_size))
        del in_order
        alone = run_batches(runner, first.batches(1))
        if len(data) < 2 or all(same_answers(alone[k], v) for k, v in heads.items()):
            return
        yield from _neighbour_compositions(runner, path, data, batch_size)


def _neighbour_compositions(runner: Runner, path: Path, data: TensorData, batch_size: int) -> Iterator[Composition]:
    """The compositions past the rows in order, for a model whose answers depend on their batch neighbours."""
    order = np.random.default_rng(0).permutation(len(data))
    shuffled = run_batches(runner, data.take_rows(order).batches(batch_size))
    back = np.argsort(order)
    for name in shuffled:  # one output's copy at a time
        shuffled[name] = shuffled[name][back]
    yield Composition(f"batches of {batch_size} shuffled", shuffled, min(len(data), batch_size))
    del shuffled
    yield Composition("each row alone", run_batches(runner, data.batches(1)), 1)
    served = served_batch(path, data, batch_size)
    if served > batch_size:
        yield Composition(f"batches of {served} in order", run_batches(runner, data.batches(served)), served)


def first_output_summary(expected: np.ndarray, got: np.ndarray, measured: Mapping[str, Any]) -> dict[str, Any]:
    """The record's earlier form, for the first output: samples, abs differences, and the top-1 agreement and
    accuracies its kind was measured by (`measured`, its record in `optimizer.drift_metrics`): None where its kind
    has no classes. Read off any 2-D output, a speaker embedding's argmax against its 40 speaker ids stood here as
    "accuracy 0.0075" and "top-1 agreement 0.90" beside a 0.99 budget that judged its cosine and held."""
    mean_abs, max_abs = metrics.abs_difference(expected, got) if expected.size else (0.0, 0.0)
    return {
        "samples": int(expected.shape[0]),
        "max_abs_diff": max_abs,
        "mean_abs_diff": mean_abs,
        **{key: measured.get(key) for key in ("top1_agreement", "accuracy", "fp32_accuracy")},
    }


def _with_kind(violation: Mapping[str, Any], kinds: Mapping[str, str]) -> str:
    """A recorded violation's line (`Violation.to_dict`) with its output's kind named: how it was judged, which
    --output-kind changes."""
    names = ("output", "metric", "value", "budget", "higher_is_better", "scope", "hint", "where", "unit")
    fields = {name: violation[name] for name in names if name in violation}
    kind = kinds.get(fields["output"], "") if fields["scope"] == "output" else ""
    return Violation(**fields).line(kind)


def others_named(violations: list[Mapping[str, Any]], said: set[str] | None = None) -> str:
    """E.g. " (and 1 more: output 'feature' worst cosine 0.4123)": the violations past the first, named (at most
    MORE_NAMED; "(and 1 more)" left the user to rerun with --keep-failing to learn what else missed); `said`: the
    long where-clauses the line has said, left out (`optimizer.hints_once.where_unsaid`)."""
    if not violations:
        return ""
    if said is not None:
        violations = [{**v, "where": where_unsaid(str(v.get("where") or ""), said)} for v in violations]
    named = [_named(v) for v in violations[:MORE_NAMED]]
    rest = f", and {len(violations) - MORE_NAMED} others" if len(violations) > MORE_NAMED else ""
    return f" (and {len(violations)} more: {', '.join(named)}{rest})"


def _named(violation: Mapping[str, Any]) -> str:
    """One violation past the first, short: its output, words and where it lies (tempocnn's "top-1 agreement on one
    class 0.3333" named no class: now "(the 6 rows FP32 answers class 108)", session 62), and its value."""
    words = check_words(violation["metric"], violation.get("unit", TOKENS))  # the metric's own name where unknown
    at = f" ({violation['where']})" if violation.get("where") else ""
    return f"{violation.get('scope', 'output')} '{violation['output']}' {words}{at} {violation['value']:.4g}"


def drift_refusal(record: Mapping[str, Any], precision: str = "int8") -> str:
    """The one line `optimize` exits with when the budget is missed: the first violation, the others named; the
    record rides with it (`Refusal`) for `optimize --json`.

    A build that is not INT8 (an FP32 one of an already-quantized file) misses it only where a row's answer
    moves with the rows batched beside it: the line says so rather than blaming INT8."""
    kinds = {name: output.get("kind", "") for name, output in record.get("outputs", {}).items()}
    violations = list(record.get("violations", []))
    loop = record.get("closed_loop") or {}
    if not violations and not loop.get("holds", True):  # held row by row, not fed its own state
        return closed_loop_refusal(record, precision, others_named(list(loop.get("violations", []))[1:]))
    rollout = record.get("rollout") or {}
    if not violations and not rollout.get("holds", True):  # held fed its own state, not fed its own tokens
        return rollout_refusal(record, precision)
    lines = [_with_kind(violation, kinds) for violation in violations]
    said: set[str] = set()  # the first's long where-clause (an anchor head's) not said again for the others
    where_unsaid(str(violations[0].get("where") or "") if violations else "", said)
    more = others_named(violations[1:], said)
    first = lines[0] if lines else "no violation recorded"
    where = f" with {record['judged_at']}" if "judged_at" in record else ""
    subject, cause = "INT8", ""
    if precision != "int8":
        subject = f"the {precision.upper()} build"
        if where:
            cause = (
                "; a row's answer depends on the rows batched with it (a dynamically quantized graph takes one "
                "scale per batch; a float one may compute an op otherwise by batch size, or spread a NaN), so "
                "Triton's dynamic batching would change it"
            )
    advice = "".join(f"; {line}" for line in record.get("advice") or [])
    return Refusal(
        f"{subject} misses the drift budget{where}: {first}{more}{cause}; nothing written "
        f"(pass --keep-failing to ship anyway){advice}",
        {"refused_for": "drift", "violations": violations, "verification": dict(record)},
    )
