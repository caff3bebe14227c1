"""Accuracy drift of served variants against an FP32 reference, over the same gRPC endpoint users hit.

Each variant runs the labeled held-out data through Triton (`serving.triton_runner.TritonRunner`);
its outputs are scored against the labels and compared with the reference's outputs. With a
drift budget, every output of every variant is also measured by its kind and judged against the
budget exactly as `optimize` judges the INT8 build (`optimizer.drift`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.evaluator_failures import (
    rows_sent_words,
)
from loadtest.evaluator_gates import told_gates, told_threshold
from loadtest.evaluator_metric import score_user_metric
from loadtest.evaluator_tasks import score_tasks, tasks_headline
from loadtest.request_answers import (
    judge_per_request,
    per_request_variant,
    request_answers,
    shape_changes,
    varying_lengths,
    with_shapes,
)
from loadtest.served_answers import ServedModel, refuse_self_comparison, served_config, served_outputs
from loadtest.served_graph import (
    decided_kinds,
    served_kinds,
    told_kinds,
    told_length_input,
    unrecorded_graph_notes,
)
from loadtest.served_stream import state_notes, stream_record, stream_state
from loadtest.variant_scores import (
    class_ids,
    drift_accuracies,
    headline_output,
    reads_as_embedding,
    score_variant,
    scores_no_class,
    set_drops,
)
from optimizer.drift import chance_notes, kind_notes, measure_drift, tokens_notes
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import neighbour_notes, thin_evidence, thin_evidence_line
from optimizer.gated_maps import check_gates
from optimizer.graph_words import GraphWords
from optimizer.length_axes import check_output_pairs, own_positions, undecided_notes
from optimizer.output_kinds import token_positions
from optimizer.ranked_ids import ranked_outputs
from optimizer.state_loop import StatePair, sequence_starts
from optimizer.token_axes import output_positions
from optimizer.token_lengths import told_length
from optimizer.user_metric import UserMetric
from quantserve.data import TensorData, load_npz
from quantserve.errors import QuantserveError
from serving.graph_parameter import recorded_graph
from serving.model_version import split_addressed
from serving.served_files import served_file_notes

TASKS = ("auto", "classification", "embedding")


def neighbour_dependence(
    url: str,
    model: str,
    dataset: TensorData,
    batch_size: int,
    source: Any,
    request_timeout_s: float,
    batched: Mapping[str, np.ndarray],
    max_batch: int = 0,
) -> list[str]:
    """A note where a served model's answers depend on the rows batched with it (dynamic INT8: one activation scale
    per batch): its first rows sent alone answer otherwise than in their batches. Its figures are then those of this
    run's batches only; Triton's dynamic batcher forms whichever the traffic brings. A dynamic-INT8 build read
    accuracy drop 0.00 at --batch-size 7 and 0.33 points at 1 or 32, with no word (session 44); optimize judges such a
    build at its worst of three batch compositions (`optimizer.verify`). `max_batch`: the served model's
    max_batch_size, which caps the rows a request carries (`rows_sent_words`)."""
    from optimizer.verify import PROBE_ROWS, same_answers

    if batch_size <= 1 or len(dataset) < 2:
        return []
    first = dataset.take(0, min(len(dataset), PROBE_ROWS))
    alone = served_outputs(url, model, first, 1, source, {}, request_timeout_s, {})
    rows = {k: v[: len(first)] for k, v in batched.items() if k in alone and np.ndim(v) and len(v) == len(dataset)}
    if all(same_answers(alone[k], v) for k, v in rows.items() if alone[k].shape == v.shape):
        return []  # the same answers, or none whose rows are samples
    return [
        f"its answers depend on the rows batched with it (its first {len(first)} rows alone answer otherwise; dynamic "
        f"INT8 scales each batch as a whole): these figures are at {rows_sent_words(batch_size, max_batch)}, and "
        "Triton's dynamic batcher forms whichever batches the traffic brings; optimize's verification judged it at its "
        "worst of three batch compositions (manifest's verification.batch_compositions)"
    ]


def evaluate_accuracy(
    url: str,
    models: Sequence[str],
    reference: str,
    data: Path | str | TensorData,
    output: str | None = None,
    max_accuracy_drop: float | None = None,
    batch_size: int = 64,
    task: str = "auto",
    budget: DriftBudget | None = None,
    output_kinds: Mapping[str, str] | None = None,
    metric: UserMetric | None = None,
    request_timeout_s: float = 30.0,
    length_input: str | None = None,
) -> AccuracyReport:
    """Score every model (the reference included) on `data`; drift is measured against `reference`.

    With `budget`, every output of every variant is judged against it too (`VariantAccuracy.violations`), and so is
    the user's `metric` (`--metric`), scored on every model's served outputs. `length_input` (--length-input NAME or
    none) says which input counts each row's real tokens, as optimize's does (`optimizer.token_lengths`); without it,
    the one the models' builds were told, where their deploy recorded it (`served_graph.told_length_input`).
    """
    dataset = data if isinstance(data, TensorData) else load_npz(data, float_truth=metric is not None)
    with told_length(length_input):
        token_positions(dataset.arrays)  # a --length-input naming no length input fails here, before any request
    models = models if reference in models else [reference, *models]
    configs = {model: served_config(url, split_addressed(model)[0]) for model in models}
    length_input, length_notes = told_length_input(configs, length_input, dataset.arrays)  # as the builds were told
    with told_length(length_input):
        report = _evaluated(
            url,
            models,
            reference,
            data,
            dataset,
            configs,
            output,
            max_accuracy_drop,
            batch_size,
            task,
            budget,
            output_kinds,
            metric,
            request_timeout_s,
        )
    for variant in report.variants:
        variant.notes.extend(length_notes if variant.model != reference else [])
    return report


def _evaluated(
    url: str,
    models: Sequence[str],
    reference: str,
    data: Path | str | TensorData,
    dataset: TensorData,
    configs: Mapping[str, dict[str, Any] | None],
    output: str | None,
    max_accuracy_drop: float | None,
    batch_size: int,
    task: str,
    budget: DriftBudget | None,
    output_kinds: Mapping[str, str] | None,
    metric: UserMetric | None,
    request_timeout_s: float,
) -> AccuracyReport:
    """`evaluate_accuracy` on the loaded `dataset` (from `data`), `models` (the reference among them) served with
    `configs`."""
    source = "the data" if isinstance(data, TensorData) else data
    served: dict[str, ServedModel] = {}
    state = stream_state(models, configs.__getitem__)  # a recurrent model is run as a stream
    graph = recorded_graph(configs[reference] or {})  # the reference graph's word on its outputs, as optimize read it
    outputs: dict[str, dict[str, np.ndarray]] = {}
    starts, rowwise = None, {}
    if state:  # the reference on the data's own rows: where its state output is not the next row's, a sequence starts
        rowwise = served_outputs(url, reference, dataset, batch_size, source, None, request_timeout_s)
        starts = sequence_starts(dataset.arrays, rowwise, [StatePair(out, into) for out, into in state.items()])
    for model in models:  # the reference first
        args = (url, model, dataset, batch_size, source, served, request_timeout_s, state)
        outputs[model] = served_outputs(*args, starts) if state else served_outputs(*args)
        refuse_self_comparison(model, reference, served)
    notes = {model: state_notes(outputs[reference], produced, state) for model, produced in outputs.items()}
    stream = stream_record(state, dataset.arrays, rowwise, starts)
    outputs = {model: {k: v for k, v in produced.items() if k not in state} for model, produced in outputs.items()}
    logs = {model: served[model].requests if model in served else None for model in models}
    varying = varying_lengths(logs.values())  # a decoder's length per request: each request's own answer compared
    answers = {
        model: {n: request_answers(outputs[model][n], log, n, dataset.requests.whole) for n in varying}
        for model, log in logs.items()
        if log is not None
    }
    stacked = {model: {k: v for k, v in produced.items() if k not in varying} for model, produced in outputs.items()}
    check_output_pairs(outputs[reference])  # --length-input OUTPUT=INPUT naming no output: refused, judged or not
    output_kinds, told = told_kinds(configs, output_kinds, outputs[reference])  # as each build was told to judge
    if budget is not None:  # judged where each build's --gate judged it, unless evaluate's own --gate says otherwise
        budget, gated = told_gates(configs, budget, outputs[reference])
        told = [*told, *gated]
    decided = decided_kinds(configs, output_kinds or {})  # a build's labels' word on its outputs: ranks them too
    name = output or headline_output(outputs[reference], output_kinds, dataset.labels, dataset.arrays, graph, decided)
    for model, produced in outputs.items():
        if name not in produced:
            raise QuantserveError(f"model '{model}' has no output '{name}' (it has {sorted(produced)})")
    ref = outputs[reference][name]
    if task not in TASKS:
        raise QuantserveError(f"unknown task '{task}'; choose one of: {', '.join(TASKS)}")
    # auto: labels and a 2-D output mean class scores; an embedding output is compared by cosine even when the data
    # file carries labels for another head (`reads_as_embedding`)
    auto_classify = task == "auto" and dataset.labels is not None and ref.ndim == 2
    real = output_positions(graph.axes if graph else None, name, token_positions(dataset.arrays))  # per token
    own = own_positions(graph.axes if graph else None, name, ref, dataset.arrays)  # a length input per padded axis
    real = own[0] if own is not None else real
    tasks = tasks_headline((output_kinds or {}).get(name), task)  # independent yes/no tasks: each task judged
    threshold = (budget or told_threshold(configs, DriftBudget())[0]).label_threshold if tasks else 0.5
    classify = task == "classification" or (
        auto_classify
        and not tasks
        and not reads_as_embedding(ref, (output_kinds or {}).get(name), dataset.labels)
        and not scores_no_class(ref, dataset.labels, real)  # judged (and scored) at --label-threshold, as optimize
    )
    if classify and dataset.labels is None:
        raise QuantserveError(f"{data}: task 'classification' needs a 'labels' array in the data file")
    per_token = not classify and real is not None and ref.shape[:2] == real.shape  # a float (N, T): a value per token
    per_token = per_token and (ref.ndim == 3 or (ref.ndim == 2 and np.issubdtype(ref.dtype, np.floating)))

    first_ranked = name in ranked_outputs(outputs[reference])  # a TopK's indices: the first is the class answered

    def rows(values: np.ndarray) -> np.ndarray:  # padded positions' values are not answers, as the verdict reads them
        if first_ranked:
            return values[:, :1]
        if not per_token or real is None:
            return values
        return values[real] if values.ndim == 3 else np.where(real, values, 0.0)  # (tokens, C); (N, T) pads at 0

    scored = dataset.labels if classify or class_ids(ref) else None  # ids are scored as the answers they are
    changed = {model: _shape_changes(served, reference, model, varying) for model in models}
    variants = [
        VariantAccuracy(model, len(dataset), mean_abs_diff=float("nan"), max_abs_diff=float("nan"))  # not compared
        if name in changed[model]
        else per_request_variant(model, name, answers[reference][name], answers[model][name], len(dataset))
        if name in varying
        else score_tasks(model, rows(ref), rows(outputs[model][name]), dataset.labels, threshold, source)
        if tasks
        else score_variant(model, rows(ref), rows(outputs[model][name]), scored, source)
        for model in models
    ]
    undecided = undecided_notes(stacked[reference], dataset.arrays, graph.axes if graph else None)
    for variant in variants:
        variant.violations = list(changed[variant.model].values())
        variant.samples = len(dataset)  # rows of the data, whatever was scored in them
        answered = served.get(variant.model, ServedModel(""))
        variant.version, variant.precision, variant.source = answered.version, answered.precision, answered.source
        variant.in_process = answered.in_process  # as its deploy recorded it: the verdict judges it (session 63)
        variant.notes.extend(notes[variant.model] + told + undecided if variant.model != reference else [])
        variant.notes.extend([answered.precision_note] if answered.precision_note else [])
        variant.notes.extend([answered.restart_note] if answered.restart_note else [])
        variant.notes.extend(served_file_notes(url, variant.model, answered.version))  # what serve warns of its file
        if variant.model != reference and not state and not dataset.unbatched:
            sent = (batch_size, source, request_timeout_s, outputs[variant.model], answered.max_batch_size)
            variant.notes.extend(neighbour_dependence(url, variant.model, dataset, *sent))
    classes = rows(ref).shape[1] if scored is not None and not class_ids(ref) else None  # class scores (N, C)
    set_drops(variants, reference, name, classes)
    if budget is not None:
        kinds = dict(output_kinds or {})
        if task != "auto":
            kinds.setdefault(name, task)
        labels = None if task == "embedding" else dataset.labels
        decided = decided_kinds(configs, kinds)  # where the rows here, without the build's labels, read otherwise
        judge_variants(variants, stacked, reference, budget, kinds, labels, dataset.arrays, changed, graph, decided)
        drift_accuracies(variants, reference, name)  # labels only the drift could use (per token): its accuracy
    judge_per_request(variants, answers, logs, reference, budget)  # a changed length: over budget, budget or not
    if metric is not None:
        named = replace(metric, labels_from=str(source))  # where a failing metric's labels=None came from
        shaped = {model: with_shapes(produced, logs[model], varying) for model, produced in outputs.items()}
        score_user_metric(variants, shaped, reference, named, dataset.metric_truth, budget)
    return AccuracyReport(
        reference=reference,
        data=str(data) if not isinstance(data, TensorData) else "<in memory>",
        output=name,
        has_labels=classify or (tasks and dataset.labels is not None),
        max_accuracy_drop=max_accuracy_drop,
        variants=variants,
        drift_budget=budget.to_dict() if budget is not None else None,
        stream=stream,
    )


def judge_variants(
    variants: list[VariantAccuracy],
    outputs: dict[str, dict[str, np.ndarray]],
    reference: str,
    budget: DriftBudget,
    kinds: Mapping[str, str],
    labels: np.ndarray | None,
    inputs: Mapping[str, np.ndarray] | None = None,
    changed: Mapping[str, Mapping[str, str]] | None = None,
    graph: GraphWords | None = None,
    decided: Mapping[str, str] | None = None,
) -> None:
    """Every output of each non-reference variant measured by kind and judged against `budget` (`inputs`: the
    rows sent, which mark a text model's real tokens; `graph`: the reference's served config's graph words, read as
    optimize reads them, None where not recorded; `decided`: the kinds the builds' labels decided,
    `served_graph.decided_kinds`); outputs `changed` names for a variant ({model: {output:
    line}}, answers whose shape changed in some request) are left out, their lines already its violations."""
    expected = outputs[reference]
    check_gates(budget.gates, {name: np.shape(values) for name, values in expected.items()})  # before judging any
    unnamed = [name for name in expected if name not in kinds]  # an output given --output-kind gets no kind note
    axes = graph.axes if graph is not None else None
    kinds = served_kinds(expected, kinds, labels, inputs, graph, decided)
    unrecorded = unrecorded_graph_notes(expected, kinds, graph)
    for variant in variants:
        if variant.model == reference:
            continue
        skipped = (changed or {}).get(variant.model, {})
        compared = {name: value for name, value in expected.items() if name not in skipped}
        report = measure_drift(compared, outputs[variant.model], kinds, budget, labels, inputs, axes)
        variant.drift = report.outputs
        variant.violations += [v.line(kinds.get(v.output, "")) for v in report.violations]  # how each was judged
        short = thin_evidence(report, budget, variant.samples)
        variant.thin_evidence = [thin_evidence_line(entry, "--data") for entry in short]  # evaluate's rows: --data
        inferred = {name: report.outputs[name] for name in unnamed if name in report.outputs}
        told_tokens = tokens_notes({name: r for name, r in report.outputs.items() if name not in inferred})
        variant.notes += neighbour_notes(report.outputs) + kind_notes(inferred) + told_tokens + unrecorded
        variant.notes += [note for note in chance_notes(report.outputs) if note not in variant.notes]  # `set_drops`


def _shape_changes(
    served: Mapping[str, ServedModel], reference: str, model: str, varying: Sequence[str] = ()
) -> dict[str, str]:
    """{output: line} for the outputs whose answer shape changed from the reference's in some request, left out of
    the stacked comparison; those `varying` in length per request, sent in the reference's requests, are judged
    request by request instead (`request_answers.judge_per_request`)."""
    if model == reference or model not in served or reference not in served:
        return {}
    expected, log = served[reference].requests, served[model].requests
    lines = shape_changes(expected, log)
    matched = expected is not None and log is not None and expected.rows == log.rows
    return {name: line for name, line in lines.items() if not (matched and name in varying)}
