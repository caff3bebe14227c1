"""INT8 drift per output, judged against a budget: what each output is, the metrics that fit it, pass/fail.

Whole-tensor cosine and max/mean absolute difference hide what breaks real models (a detector's
score rows zeroed beside box rows, a CTC recognizer whose decoded text changes while logits barely
move), so each output is classified by kind and measured with the metrics of that kind; the
whole-tensor figures stay in the record only as extra information. The metric math itself lives
in `quantserve.metrics`, shared by build-time verification and served evaluation.

Each output's kind is inferred in `optimizer.output_kinds`, measured by the metrics of that kind in
`optimizer.drift_metrics`, judged against the budget in `optimizer.drift_budget`; how far the held-out rows
can show the verdict is `optimizer.drift_evidence`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from optimizer.anchor_heads import anchor_heads
from optimizer.class_maps import class_axis, dense_map_note
from optimizer.column_readings import CHANNEL_METRICS, columns_hint, doubted_columns, position_map_doubt
from optimizer.decision_metrics import decision_doubt
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport, Violation, check_words, judge
from optimizer.drift_evidence import minority_note
from optimizer.drift_metrics import id_accuracy, output_metrics
from optimizer.gated_maps import (
    GATED_KINDS,
    HeatGate,
    OutputGate,
    gated,
    gated_rows,
    heat_rows,
    heatmap_gate,
    output_gates,
)
from optimizer.heatmap_peaks import peaks_note
from optimizer.joint_tokens import JOINT_KIND, joint_records, joint_where, token_answers
from optimizer.kind_doubt import kind_doubt, unlabelled_width_doubt
from optimizer.label_sets import label_threshold_doubt
from optimizer.length_axes import own_positions, unused_pair_note
from optimizer.mask_metrics import levels_doubt
from optimizer.nonfinite_counts import nonfinite_count, nonfinite_where_finite
from optimizer.ordered_bins import ordered_bins_doubt
from optimizer.output_kinds import infer_kind
from optimizer.ranked_ids import ranked_metrics, ranked_outputs
from optimizer.real_axes import on_real_axes
from optimizer.sequence_verdicts import ctc_path_doubt, in_place_unless_text_missed, sequence_doubt, sequence_in_place
from optimizer.sigmoid_outputs import undecided_labels_doubt
from optimizer.soft_masks import mask_doubt
from optimizer.split_box_lists import join_box_lists
from optimizer.task_outputs import tasks_doubt
from optimizer.token_axes import TokenAxes, output_positions, whole_row_check, whole_row_hint
from optimizer.token_lengths import said_by_length, unnamed_length, unnamed_length_note
from optimizer.token_values import (
    POSITIONS_ARE,
    TOKENS,
    position_unit,
    real_tokens_read,
    token_values_doubt,
    unit_of,
)
from optimizer.typed_kinds import is_typed
from quantserve.errors import QuantserveError
from quantserve.metrics import chance_labels_note


def measure_drift(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    kinds: Mapping[str, str],
    budget: DriftBudget,
    labels: np.ndarray | None = None,
    inputs: Mapping[str, np.ndarray] | None = None,
    axes: TokenAxes | None = None,
    before_output: Callable[[int, int, str], None] | None = None,
) -> DriftReport:
    """Every output of `candidate` against `reference`, measured by its kind and judged against `budget`;
    `inputs`, the rows both came from, mark the real tokens a per-token output is measured over, and `axes` (the
    model's graph, where known: `optimizer.token_axes`) which 2-D outputs are per token. `before_output(done, total,
    name)` hears of each output before it is measured: the INT8 search checks its deadline there (CenterNet's
    (200, 128, 128, 80) heatmap took minutes of metric work alone, probe 68G)."""
    missing = [name for name in reference if name not in candidate]
    if missing:
        raise QuantserveError(f"the compared model lacks output(s) {', '.join(missing)} of the FP32 reference")
    joined = join_box_lists(reference, candidate, kinds)  # split boxes, scores, classes: one box list
    joined.refuse_gates(budget.gates)
    reference, candidate, kinds = joined.reference, joined.candidate, joined.kinds
    report = DriftReport(outputs={})
    token_rows, token_words = real_tokens_read(inputs)
    unit = position_unit(inputs)  # tokens, or positions of a sequence of other values: said so in each record
    unnamed = unnamed_length(inputs) if token_rows is None else None  # said on the first output it would count
    gate = heatmap_gate(reference, kinds, budget.label_threshold)  # a CenterNet head's heat decides what counts
    selected = gate.selected(reference) if gate is not None else None
    shapes = {name: np.shape(values) for name, values in reference.items()}
    # --gate NAME=BY: where BY reads NAME (of the outputs judged here: a stream's state outputs are judged apart)
    told = output_gates(tuple(g for g in budget.gates if g[0] in reference), shapes, budget.label_threshold)
    heads = anchor_heads(reference, kinds, budget.label_threshold)  # an SSD's anchors: judged where FP32 fires
    answers = {}  # per-token top-1 outputs' real and changed tokens: judged together too (`optimizer.joint_tokens`)
    ranked = ranked_outputs(reference)  # a TopK's indices beside its values (`optimizer.ranked_ids`)
    for done, (name, ref) in enumerate(reference.items()):
        if before_output is not None:
            before_output(done, len(reference), name)
        positions, words = output_positions(axes, name, token_rows), token_words
        if (own := own_positions(axes, name, ref, inputs)) is not None:
            positions, words = own  # one length input per padded axis: this output's own (`optimizer.length_axes`)
        if np.shape(ref) != np.shape(candidate[name]):
            raise QuantserveError(
                f"output '{name}' has shape {np.shape(candidate[name])}, the FP32 reference's {np.shape(ref)}"
            )
        ref, got_values, fp32_nonfinite = finite_in_fp32(name, np.asarray(ref), np.asarray(candidate[name]))
        kind = kinds.get(name) or infer_kind(ref, labels, positions)
        expected, got = _classes_on_axis_1(kind, ref, got_values, labels)
        judged_at = ""
        if name in told:
            kind = told_gate_kind(name, kinds.get(name))
            expected, got, judged_at = _gated(
                name, told[name], told[name].selected(reference), reference, kinds, ref, got_values
            )
            positions = None  # its rows are the gate's positions, not the samples' tokens
            if not len(expected):  # no position to judge: said, not passed in silence
                report.outputs[name] = {
                    "kind": kind,
                    "shape": list(np.shape(ref)),
                    "judged_at": judged_at,
                    "kind_note": told[name].nowhere(len(ref)),
                }
                continue
        elif gate is not None and selected is not None and kind in GATED_KINDS:
            expected, got, judged_at = _gated(name, gate, selected, reference, kinds, expected, got)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # non-finite values: reported below
            if kind == "ids" and name in ranked:  # its first index is the answer: scored as one
                record = {**ranked_metrics(expected, got), **id_accuracy(expected[:, :1], got[:, :1], labels)}
            else:
                anchors = heads.get(name) if kind == "dense" and not judged_at else None  # a gate's rows: no anchors
                record = output_metrics(kind, expected, got, labels, positions, budget.label_threshold, anchors)
        sequence_in_place(kind, record)
        record["shape"] = list(np.shape(ref))
        record.update({POSITIONS_ARE: unit} if "tokens_judged" in record and unit != TOKENS else {})
        if judged_at:
            record["judged_at"] = judged_at
        violations, slacks = judge(name, record, budget)
        if side_note := minority_note(name, record, budget.min_top1_agreement):  # too few rows on one side
            record["decision_minority_note"] = side_note
        violations = labelled_where(record, in_place_unless_text_missed(violations))
        if (answer := token_answers(kind, expected, got, positions, labels)) is not None:
            answers[name] = answer
        # (N, 1, 1, C) logits read as (N, C); a single-channel map read as a mask or not
        doubt = (
            token_values_doubt(name, kind, ref, positions)  # a yes/no per token, not a tagger's logits
            or kind_doubt(name, kind, on_real_axes(np.asarray(ref)))
            or unlabelled_width_doubt(name, kind, on_real_axes(np.asarray(ref)), labels, bool(violations))
            or mask_doubt(name, kind, np.asarray(ref))
            or levels_doubt(name, kind, np.asarray(ref))  # an integer quantity read as labels
            or undecided_labels_doubt(name, kind, on_real_axes(np.asarray(ref)), bool(violations))
            or ordered_bins_doubt(name, kind, on_real_axes(np.asarray(ref)), bool(violations))
            or (decision_doubt(name, (v.metric for v in violations)) if kind == "dense" else "")
            or sequence_doubt(name, kind, record, (v.metric for v in violations))
            or ctc_path_doubt(name, kind, np.asarray(ref), (v.metric for v in violations))
            or position_map_doubt(name, kind, np.shape(ref), record, (v.metric for v in violations))
        )
        cut_doubt = label_threshold_doubt(record, budget)
        tasks = tasks_doubt(name, kind, record, budget.min_top1_agreement, (v.metric for v in violations))
        doubt = "; ".join(line for line in (doubt, cut_doubt, tasks) if line)
        if doubt:
            record["kind_doubt"] = doubt
            violations = [replace(violation, hint=doubt) for violation in violations]
        if whole_row_check(axes, name, kind, expected, positions):  # the graph does not say it is per token
            whole = output_metrics("embedding", expected, got)
            record["whole_row"] = {key: whole[key] for key in ("cosine_mean", "cosine_worst")}
            more, more_slacks = judge(name, whole, budget)
            violations += [replace(violation, hint=whole_row_hint(name, record)) for violation in more]
            slacks += more_slacks
        if ratio := doubted_columns(kind, expected):  # class scores or quantities: judged per column too
            columns = output_metrics("dense", expected, got)
            record["columns"] = {
                "rise_ratio": ratio,
                **{key: columns[key] for key in CHANNEL_METRICS if key in columns},
            }
            more, more_slacks = judge(name, columns, budget)
            violations += [replace(violation, hint=columns_hint(name, ratio)) for violation in more]
            slacks += more_slacks
        note = (
            getattr(kind, "note", "")
            or dense_map_note(name, kind, np.asarray(ref), labels)
            or (cut_doubt and f"output '{name}' ({kind}): {cut_doubt}")
        )
        if note:  # what the budget may not see: recorded, and listed by kind_notes
            record["kind_note"] = note
        if positions is not None and "tokens_judged" in record and list(record["shape"][:2]) == list(positions.shape):
            record["tokens_at"] = words  # which positions were its real tokens (`token_values.token_basis`)
        if unnamed is not None and positions is None and counted_by(unnamed, ref, inputs):
            record["length_hint"], unnamed = unnamed_length_note(*unnamed), None
        per_token = own is not None and positions is not None and "tokens_judged" in record
        if unused := unused_pair_note(axes, name, kind, np.shape(ref), per_token):  # --length-input OUTPUT=INPUT
            record["length_pair_unused"] = unused
        if fp32_nonfinite:  # left out of every figure above: said, as nothing judged them
            record["fp32_nonfinite"] = fp32_nonfinite
        broken = nonfinite_where_finite(ref, got_values)
        if broken:  # every metric above reads NaN there, and a NaN metric is skipped: never pass it
            record["nonfinite_values"] = broken
            violations.insert(0, Violation(name, "nonfinite_values", float(broken), 0.0, higher_is_better=False))
            slacks.append(-1.0 - math.log10(broken))
        report.outputs[name] = record
        report.violations.extend(violations)
        report.slacks.extend(slacks)
        report.output_margins[name] = min(slacks, default=1.0)
    for joint, record in joint_records(answers).items():  # a token's analysis, read whole
        record.update({POSITIONS_ARE: unit} if unit != TOKENS else {})
        violations, slacks = judge(joint, record, budget)
        report.outputs[joint] = record
        report.output_margins[joint] = min(slacks, default=1.0)
        where = joint_where(record)  # on its labelled tokens alone, where labels left some unlabelled
        report.violations += [replace(violation, scope="outputs", where=where) for violation in violations]
        report.slacks.extend(slacks)
    joined.finish(report.outputs)  # the box lists' other outputs: judged through them
    report.rank()
    return report


def _gated(
    name: str,
    gate: HeatGate,
    selected: np.ndarray,
    reference: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    expected: np.ndarray,
    got: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A heatmap's and its gated maps' values where they are read (`optimizer.gated_maps`), and the words saying
    where; any other output as it is, with "". An output the user gated (`OutputGate`) at BY's selected positions."""
    if isinstance(gate, OutputGate):
        return *gated_rows(gate, selected, expected, got), gate.where(selected)
    if name == gate.heatmap:
        heat, heat_got = heat_rows(gate, expected, got)
        words = f"at the {len(heat)} positions where FP32 or this model's heat ≥ {gate.threshold / 10:g}"
        return heat, heat_got, words
    if gated(name, gate.heatmap, reference, kinds):
        rows, rows_got = gated_rows(gate, selected, expected, got)
        return rows, rows_got, gate.where(selected)
    return expected, got, ""


def told_gate_kind(name: str, kind: str | None) -> str:
    """How an output the user gated is judged at its positions: as typed where dense or regression, else as a
    regression (its values alone: a pitch in Hz has no decisions at the threshold); another typed kind is refused."""
    if kind is not None and is_typed(kind) and kind not in GATED_KINDS:
        raise QuantserveError(
            f"--gate {name}=…: output '{name}' is declared --output-kind {name}={kind}; a gated output is judged as "
            f"values at its gate's positions (--output-kind {name}=regression or dense)"
        )
    return kind if kind is not None and is_typed(kind) else "regression"


def _classes_on_axis_1(
    kind: str, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Both outputs with an NHWC class map's classes (`class_maps.class_axis`: by its labels, else by its
    distributions) moved to axis 1, where a class map's argmax is read; any other output as it is."""
    if kind != "class_map" or class_axis(reference, labels) != reference.ndim - 1:
        return reference, candidate
    return np.moveaxis(reference, -1, 1), np.moveaxis(candidate, -1, 1)


def kind_notes(outputs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The notes on how outputs were judged that a passing verdict does not show (`optimizer.class_maps`, and a
    multilabel output's label sets that hold at --label-threshold but not at a tenth of it: `label_threshold_doubt`),
    labels no output could score (`drift_metrics.labels_unused`), and real tokens a length input said
    (`tokens_notes`)."""
    scored = any("accuracy" in record for record in outputs.values())  # labels of another output: no word
    unused = [
        f"output '{name}': labels not scored: {record['labels_unused']}; its accuracy and the accuracy budget were "
        "not judged"
        for name, record in outputs.items()
        if record.get("labels_unused") and not scored
    ]
    decided = [
        f"output '{name}' (dense): its values read as decisions at --label-threshold "
        f"{record['value_decision_threshold']:g} agree {record['value_decision_agreement']:.4f} with FP32 "
        f"(information: --output-kind {name}=multilabel judges them)"
        for name, record in outputs.items()
        if record.get("value_decision_agreement") is not None
    ]
    return (
        unused
        + decided
        + [
            str(note)
            for record in outputs.values()
            for note in (record.get("kind_note"), record.get("fp32_nonfinite"), record.get("decision_minority_note"))
            if note
        ]
        + [peaks_note(name, record) for name, record in outputs.items() if record.get("peaks_unjudged")]
        + tokens_notes(outputs)
    )


def tokens_notes(outputs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A note for each per-token output whose real tokens a length input said (`optimizer.token_lengths`): which
    positions were judged, of how many. A mask, or pad ids at each row's end, say it as the data shows it; a length
    input is the model's word, and a wrong one would move every per-token figure. One for each --length-input
    OUTPUT=INPUT pair its output was not judged by (`length_axes.unused_pair_note`), the input that would count an
    output's positions if named for a length (`token_lengths.unnamed_length`), and one for each judged on its
    labelled tokens alone (`labelled_tokens_note`)."""
    said = [
        f"output '{name}': judged over its real {unit_of(record)}, {record['tokens_at']}: {record['tokens_judged']} of "
        f"{math.prod(record['shape'][:2])} positions"
        for name, record in outputs.items()
        if said_by_length(str(record.get("tokens_at", "")))
    ]
    said += [str(record["length_pair_unused"]) for record in outputs.values() if record.get("length_pair_unused")]
    said += [str(record["length_hint"]) for record in outputs.values() if record.get("length_hint")]
    return said + [labelled_tokens_note(name, record) for name, record in outputs.items() if "tokens_real" in record]


def labelled_tokens_note(name: str, record: Mapping[str, Any]) -> str:
    """E.g. "output 'logits': per-token top-1 agreement judged on the 3742 labelled tokens (labels -100 elsewhere);
    over all 17408 real tokens 0.9688" (`drift_metrics.labelled_tokens`): the figure the task does not read, said;
    outputs read together (`optimizer.joint_tokens`) as "outputs 'heads+rels': every output's top-1 at once …"."""
    unit = unit_of(record)  # tokens, or a sequence's positions (`token_values.position_unit`)
    judged = (
        f"outputs '{name}': every output's top-1 at once"
        if record.get("kind") == JOINT_KIND
        else f"output '{name}': {check_words('token_agreement', unit)}"
    )
    return (
        f"{judged} judged on the {record['tokens_judged']} labelled {unit} "
        f"({record['unlabelled_as']} elsewhere); over all {record['tokens_real']} real {unit} "
        f"{record['token_agreement_real']:.4f}"
    )


def labelled_where(record: Mapping[str, Any], violations: list[Violation]) -> list[Violation]:
    """`violations` of a per-token output judged on its labelled tokens alone, saying so: its pooled agreement "on
    its 3742 labelled tokens", a lost class's tokens as labelled ones; as they are for any other output."""
    if "tokens_real" not in record:
        return violations
    unit = unit_of(record)
    labelled = f"on its {record['tokens_judged']} labelled {unit}"
    return [
        replace(v, where=labelled)
        if v.metric == "token_agreement"
        else replace(v, where=v.where.replace(f" {unit} ", f" labelled {unit} ", 1))
        if v.metric == "class_agreement"
        else v
        for v in violations
    ]


def chance_notes(outputs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A note for each output whose labels FP32 itself scores at or below chance (`drift_metrics._accuracy`): its
    accuracy drop was not budgeted, in evaluate's words too (`quantserve.metrics.chance_labels_note`)."""
    return [
        chance_labels_note(name, float(record["fp32_accuracy"]), chance["classes"], chance["samples"])
        for name, record in outputs.items()
        if (chance := record.get("labels_at_chance"))
    ]


def finite_in_fp32(name: str, reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """The two outputs with the values FP32 itself has NaN or infinite (a float16 output past 65504) set to 0 in
    both, and the note saying so; as they were and "" where FP32 is finite throughout. A cosine, correlation or
    error over an infinite value is NaN, and a NaN metric judges nothing: an output whose FP32 overflowed once
    passed unjudged, whatever INT8 did to its other values."""
    if not np.issubdtype(reference.dtype, np.floating) or not (count := nonfinite_count(reference)):
        return reference, candidate, ""
    bad = ~np.isfinite(reference)
    alike = int(np.count_nonzero(bad & ((candidate == reference) | (np.isnan(candidate) & np.isnan(reference)))))
    note = (
        f"output '{name}': {count} value{'s' if count != 1 else ''} NaN or infinite in FP32 itself ({alike} of them "
        "alike in the compared model) left out of its figures"
    )
    return np.where(bad, 0, reference), np.where(bad, 0, candidate), note


def counted_by(unnamed: tuple[str, str], values: np.ndarray, inputs: Mapping[str, np.ndarray] | None) -> bool:
    """Whether an output's axis 1 is as wide as that of the input an unnamed length pads (`unnamed_length`)."""
    padded = np.shape((inputs or {})[unnamed[1]])
    return np.ndim(values) >= 2 and np.shape(values)[1] == padded[1]
