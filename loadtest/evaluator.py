"""Accuracy drift of served variants against an FP32 reference, over the same gRPC endpoint users hit.

Each variant runs the labeled held-out data through Triton (`serving.triton_runner.TritonRunner`);
its outputs are scored against the labels and compared with the reference's outputs. With a
drift budget, every output of every variant is also measured by its kind and judged against the
budget exactly as `optimize` judges the INT8 build (`optimizer.drift`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.evaluator_failures import (
    DEADLINE_EXCEEDED,
    ResentCount,
    RowsSent,
    request_failure,
    restart_note,
    rows_sent_words,
)
from loadtest.evaluator_gates import told_gates, told_threshold
from loadtest.evaluator_metric import score_user_metric
from loadtest.evaluator_tasks import score_tasks, tasks_headline
from loadtest.request_answers import shape_changes
from loadtest.request_data import check_request_size
from loadtest.served_graph import (
    decided_kinds,
    served_kinds,
    told_kinds,
    told_length_input,
    unrecorded_graph_notes,
)
from loadtest.served_stream import state_notes, stream_record, stream_state
from loadtest.server_pids import listening_pid
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
from optimizer.state_loop import StatePair, sequence_starts, stream_through
from optimizer.token_axes import output_positions
from optimizer.token_lengths import told_length
from optimizer.user_metric import UserMetric
from quantserve.data import TensorData, check_against, fixed_request_rows, load_npz, read_as_served
from quantserve.errors import QuantserveError
from quantserve.runner import LoggedRunner, RequestLog, run_batches
from serving.build_parameters import recorded_source
from serving.call_failures import takes_connections
from serving.graph_parameter import recorded_graph
from serving.model_version import split_addressed
from serving.nan_parameter import ServedNanAccepted
from serving.served_files import served_file_notes

TASKS = ("auto", "classification", "embedding")


def served_outputs(
    url: str,
    model: str,
    data: TensorData,
    batch_size: int = 64,
    source: Path | str = "the data",
    served: dict[str, ServedModel] | None = None,
    request_timeout_s: float = 30.0,
    state: Mapping[str, str] | None = None,
    starts: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every output of `model` for every sample, sent in requests of `batch_size` samples; data that does not fit
    the model's inputs, or requests gRPC cannot carry, is one line naming `source`, before any request. Every
    request asks for the version served at the start (recorded in `served`, with the precision its deployment
    recorded): a deploy landing mid-run mixed two versions' answers into one figure (top-1 agreement 0.74 that
    described neither). A request that runs past
    `request_timeout_s` is one line naming the limit, the model and its rows (it said only "Deadline Exceeded").
    A recurrent model's `state` ({output: input}, `serving.state_parameter`) runs the rows in order as one stream,
    one row a request, each fed the model's own previous state output (the first row's from the data), as
    `optimize` checks it: fed the data's FP32 state row by row, INT8 drift that builds up over a stream hides; each
    of `starts`' rows (a sequence's first, `optimizer.state_loop.sequence_starts`) takes the data's state instead.
    `served` also keeps each request's rows and answer shapes (`ServedModel.requests`), which an answer whose length
    varies per request is compared by. `model` may name one version (`m@2`, `serving.model_version`): every request
    then asks for it, refused before any request unless served."""
    from serving.triton_runner import TritonRunner

    name, version = split_addressed(model)
    runner = TritonRunner(url, name, version, timeout_s=request_timeout_s, pin_version=True)
    with runner:
        # the process serving at the start, and the requests sent again: a restart during the run is said
        listening, resent = listening_pid(url), ResentCount.installed(runner.request_client)
        read_as_served(source, data, runner.input_specs(), runner.max_batch_size)  # whole samples: data[i] a request
        # NaN where the build accepted it (a tree ensemble's "missing"): its config is read only for data holding NaN
        check_against(source, data, runner.input_specs(), ServedNanAccepted(lambda: served_config(url, name)))
        if data.requests.whole:  # one sample a request
            batch_size = 1
        elif runner.max_batch_size <= 0:  # a request of an --unbatched build fixed at [1, …] holds that one row
            batch_size = min(batch_size, fixed_request_rows(runner.input_specs()) or batch_size)
        check_request_size(source, data, batch_size, runner.max_batch_size)
        log = RequestLog()
        if served is not None:
            served[model] = ServedModel(
                runner.version,
                runner.precision,
                served_source(url, name),
                log,
                runner.precision_note,
                max_batch_size=runner.max_batch_size,
            )
        sent = RowsSent(data.batches(batch_size), len(data), len(data) if state else -(-len(data) // batch_size))
        try:
            if state:
                pairs = [StatePair(out, into) for out, into in state.items()]
                produced = stream_through(runner, data.arrays, pairs, data.requests.whole, starts)
            else:
                produced = run_batches(LoggedRunner(runner, log), sent, data.requests.whole)
        except QuantserveError as exc:
            failure = request_failure(exc, url, model, sent, request_timeout_s, runner.max_batch_size)
            if failure is None:
                raise
            raise failure from exc
    restarted = restart_note(url, listening, listening_pid(url), resent.waits)
    if served is not None and restarted:
        served[model] = replace(served[model], restart_note=restarted)
    return produced


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


def refuse_self_comparison(model: str, reference: str, served: Mapping[str, ServedModel]) -> None:
    """One line where `model` answered from the very version the reference answered from: its drift against itself
    is 0 whatever it is. `evaluate --models c@2 --reference c` with an INT8 canary c@2 the newest live version of
    c scored INT8 against INT8, "ok", exit 0, while against c@1 (FP32) it missed the budget (session 44)."""
    if model == reference or model not in served or reference not in served:
        return
    name, ref_name = split_addressed(model)[0], split_addressed(reference)[0]
    version = served[model].version
    if name == ref_name and version and version == served[reference].version:
        precision = f", deployed as {served[reference].precision}" if served[reference].precision else ""
        raise QuantserveError(
            f"'{model}' answers from version {version} of '{name}', the very version the reference '{reference}' "
            f"answers from{precision}: compared with itself it drifts by nothing; name the reference's FP32 version "
            f"(--reference {name}@N)"
        )


def served_source(url: str, model: str) -> str | None:
    """The source model `deploy` recorded in the model's served config, or None (none recorded, or unreadable)."""
    config = served_config(url, model)
    return recorded_source(config) if config is not None else None


CONFIG_READ_S = 10.0  # a config read unanswered this long on a port that takes connections: the server is hung


def served_config(url: str, model: str) -> dict[str, Any] | None:
    """The model's served config as Triton's JSON, or None where it cannot be read (the run then says why); a read
    unanswered within CONFIG_READ_S while the server's port takes connections is the one line of a hung server.

    Session 46: evaluate against a SIGSTOPped tritonserver took 37-47 s to say hung: each model's config read here
    waited its 10 s and returned None, then the reference's readiness waited 20 s (gRPC's connect timeout) and its
    liveness 6 s. Now the first unanswered read says it (11 s in all). A slow model is not taken for a hung server:
    Triton answers config reads from its own gRPC threads, not from a model's instances, and none of evaluate's
    requests has been sent yet (each keeps --request-timeout); a server that refuses the connection (not started
    yet) is left to the model's readiness wait, as before."""
    from serving.call_failures import NO_RETRY, no_answer_line
    from serving.client import TritonGrpcClient

    try:
        with TritonGrpcClient(url, CONFIG_READ_S, None, NO_RETRY) as client:
            return dict(client.model_config(model))
    except QuantserveError as exc:
        if DEADLINE_EXCEEDED in str(exc) and takes_connections(url):
            raise QuantserveError(no_answer_line(url)) from None
        return None


@dataclass(frozen=True)
class ServedModel:
    """What answered a model's requests: the version pinned at the start, and the precision its deployment recorded
    in its config (None: none recorded)."""

    version: str
    precision: str | None = None
    source: str | None = None  # the source model its deployment recorded (None: none recorded)
    requests: RequestLog | None = None  # the rows and answer shapes of each request (None: not recorded)
    precision_note: str | None = None  # why `precision` is None where the config names another version's
    restart_note: str | None = None  # the server restarted during its run, requests sent again (`restart_note`)
    max_batch_size: int = 0  # the served model's, which caps the rows a request carries (0: it does not batch)


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
    check_output_pairs(outputs[reference])  # --length-input OUTPUT=INPUT naming no output: refused, judged or not
    output_kinds, told = told_kinds(configs, output_kinds, outputs[reference])  # as each build was told to judge
    if budget is not None:  # judged where each build's --gate judged it, unless evaluate's own --gate says otherwise
        budget, gated = told_gates(configs, budget, outputs[reference])
        told = [*told, *gated]
    name = output or headline_output(outputs[reference], output_kinds, dataset.labels, dataset.arrays, graph)
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
    changed = {model: _shape_changes(served, reference, model) for model in models}
    variants = [
        score_tasks(model, rows(ref), rows(outputs[model][name]), dataset.labels, threshold, source)
        if tasks and name not in changed[model]
        else score_variant(model, rows(ref), rows(outputs[model][name]), scored, source)
        if name not in changed[model]
        else VariantAccuracy(model, len(dataset), mean_abs_diff=float("nan"), max_abs_diff=float("nan"))  # not compared
        for model in models
    ]
    undecided = undecided_notes(outputs[reference], dataset.arrays, graph.axes if graph else None)
    for variant in variants:
        variant.violations = list(changed[variant.model].values())
        variant.samples = len(dataset)  # rows of the data, whatever was scored in them
        answered = served.get(variant.model, ServedModel(""))
        variant.version, variant.precision, variant.source = answered.version, answered.precision, answered.source
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
        judge_variants(variants, outputs, reference, budget, kinds, labels, dataset.arrays, changed, graph, decided)
        drift_accuracies(variants, reference, name)  # labels only the drift could use (per token): its accuracy
    if metric is not None:
        named = replace(metric, labels_from=str(source))  # where a failing metric's labels=None came from
        score_user_metric(variants, outputs, reference, named, dataset.metric_truth, budget)
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


def _shape_changes(served: Mapping[str, ServedModel], reference: str, model: str) -> dict[str, str]:
    """{output: line} for the outputs whose answer shape changed from the reference's in some request."""
    if model == reference or model not in served or reference not in served:
        return {}
    return shape_changes(served[reference].requests, served[model].requests)
