"""`evaluate` without the reference graph's word on its outputs: the note that says what that leaves unjudged.

`optimize` reads each output's kind with facts of the FP32 reference graph (`optimizer.graph_words`), and
`deploy` records them in the served config (`serving.graph_parameter`), where `evaluate` reads them from the
reference's. A reference deployed by an older quantserve, or not by quantserve, records none: its outputs are read
off their values alone, as before, and a Sigmoid's per-label probabilities (2+ columns in [0, 1]) read `dense`,
judged by correlation where optimize judged their label sets. Such an output gets this note.

A kind the user typed at `optimize` (`--output-kind`) is the build's word, not the graph's: `deploy` records it
(`serving.kinds_parameter`) and evaluate judges that output as typed (`told_kinds`); so is the input the build was told
counts each row's real tokens (`--length-input`, `serving.length_parameter`, `told_length_input`), and so is a kind the
build's labels decided (`decided_kinds`), where evaluate's own rows, without those labels, read the output otherwise.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from optimizer.graph_words import GraphWords
from optimizer.output_kinds import infer_output_kinds, token_positions
from optimizer.real_axes import on_real_axes
from optimizer.sigmoid_outputs import sigmoid_kind
from optimizer.token_lengths import BuiltLength, told_length
from optimizer.token_values import position_unit
from optimizer.typed_kinds import is_typed
from optimizer.unscored_heads import NotedKind
from quantserve.errors import QuantserveError
from serving.kinds_parameter import recorded_kinds, recorded_labelled_kinds
from serving.length_parameter import recorded_length


def served_kinds(
    outputs: dict[str, np.ndarray],
    overrides: Mapping[str, str] | None,
    labels: np.ndarray | None,
    inputs: Mapping[str, np.ndarray] | None,
    graph: GraphWords | None,
    decided: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each served output's kind (`infer_output_kinds`), read with the reference graph's words where its served
    config records them (`graph`), as optimize reads the build's; off the values alone where not. An output the
    build's labels `decided` (`decided_kinds`) that the rows here read as `sequence` takes the build's kind: the
    only reading such labels overturn (`optimizer.output_kinds.labelled_sequence_kind`)."""
    axes = graph.axes if graph is not None else None  # None: the graph's word unknown, not "no output per token"
    words = graph or GraphWords()
    kinds = infer_output_kinds(
        outputs, overrides, labels=labels, inputs=inputs, axes=axes, sigmoid=words.sigmoid, state=words.state
    )
    overturned = [name for name, kind in kinds.items() if kind == "sequence" and not is_typed(kind)]
    return {**kinds, **{name: (decided or {})[name] for name in overturned if name in (decided or {})}}


def decided_kinds(configs: Mapping[str, Mapping[str, Any] | None], typed: Mapping[str, str]) -> dict[str, str]:
    """{output: kind} the evaluated models' builds' labels decided (`serving.kinds_parameter`, read off each model's
    served `configs`), each with the note saying so (`NotedKind`); none for an output of `typed` kinds (evaluate's
    --output-kind, a build's), which keep priority. The same rows without their labels (kept apart) read a sleep
    stager's per-epoch softmax as CTC again: decoded-sequence agreement, not optimize's verdict (session 61)."""
    decided: dict[str, str] = {}
    for model, config in configs.items():
        for name, kind in recorded_labelled_kinds(config or {}).items():
            if name not in typed and name not in decided:
                decided[name] = NotedKind(kind, _decided_note(name, kind, model))
    return decided


def _decided_note(name: str, kind: str, model: str) -> str:
    """The line saying the build's labels decided `name`'s kind."""
    return (
        f"output '{name}': judged per position ({kind}) as model '{model}' was built, its labels a class id per "
        f"position; the data here does not label its positions, which alone read as CTC-style sequences; "
        f"--output-kind {name}=sequence judges it as CTC"
    )


def unrecorded_graph_notes(
    expected: Mapping[str, np.ndarray], kinds: Mapping[str, str], graph: GraphWords | None
) -> list[str]:
    """A line per output that reads `dense` over 2+ columns all in [0, 1] where the reference's config records no
    graph words (`graph` None): a Sigmoid's labels would be judged as values; none for a kind the user typed."""
    if graph is not None:
        return []
    notes = []
    for name, values in expected.items():
        kind = kinds.get(name, "")
        if is_typed(kind) or sigmoid_kind(kind, on_real_axes(np.asarray(values))) != "multilabel":
            continue
        notes.append(
            f"output '{name}' reads dense, {on_real_axes(np.asarray(values)).shape[1]} columns all in [0, 1], and the "
            "reference's served config does not record its graph's word on the outputs (deployed by an older "
            "quantserve, or not by quantserve): if a Sigmoid makes it, its labels are judged as values, not by their "
            f"label sets as optimize judges them; redeploy the reference with this quantserve, or pass --output-kind "
            f"{name}=multilabel"
        )
    return notes


def told_kinds(
    configs: Mapping[str, Mapping[str, Any] | None], typed: Mapping[str, str] | None, outputs: Collection[str]
) -> tuple[dict[str, str], list[str]]:
    """The kinds evaluate judges `outputs` by as typed: its own --output-kind (`typed`), then those the evaluated
    models' builds were told (`serving.kinds_parameter`, read off each model's served `configs`), and a note per
    output judged by a build's word. Two builds told different kinds for one output are one line naming the flag.
    g2p-id's LSTM encoder (session 41), shipped with `--output-kind lstm_1=embedding`, was failed by evaluate at
    "'lstm_1' (classification) top-1 0.9888": its kind was read afresh off the values."""
    kinds, told_by = dict(typed or {}), dict[str, str]()
    for model, config in configs.items():
        for name, kind in recorded_kinds(config or {}).items():
            if name in (typed or {}) or name not in outputs:
                continue
            if name in told_by and kinds[name] != kind:
                raise QuantserveError(
                    f"model '{told_by[name]}' was built judging output '{name}' as {kinds[name]}, model '{model}' "
                    f"as {kind}: pass --output-kind {name}=KIND to say how evaluate judges it"
                )
            kinds[name], told_by[name] = kind, told_by.get(name, model)
    notes = [
        f"output '{name}' judged as {kinds[name]}, as model '{model}' was built (optimize --output-kind "
        f"{name}={kinds[name]}); --output-kind {name}=KIND judges it otherwise"
        for name, model in told_by.items()
    ]
    return kinds, notes


def told_length_input(
    configs: Mapping[str, Mapping[str, Any] | None], typed: str | None, arrays: Mapping[str, np.ndarray]
) -> tuple[str | None, list[str]]:
    """The length input evaluate reads real tokens by (`optimizer.token_lengths.told_length`): its own --length-input
    (`typed`), else the one the evaluated models' builds were told (`serving.length_parameter`, read off each model's
    served `configs`), else None (inferred); and a note saying whose word it was, or where the flag overrode a build's.
    Two builds told different length inputs, or a build's that is no length input of the data's `arrays`, are one
    line naming the flag."""
    recorded = {model: name for model, config in configs.items() if (name := recorded_length(config or {}))}
    if typed is not None:
        return typed, _overridden(typed, recorded, position_unit(arrays))
    if not recorded:
        return None, []
    name, built = _one_length(recorded), _built(list(recorded))
    with told_length(name):
        try:
            token_positions(arrays)
        except QuantserveError as exc:
            raise QuantserveError(
                f"{exc}, as {built}: pass --length-input NAME or none to read them otherwise"
            ) from None
    unit = position_unit(arrays)  # tokens, or a sequence's positions (frames of features)
    notes = [f"real {unit} read as {built} (optimize --length-input {name}); --length-input NAME|none otherwise"]
    return BuiltLength(name), notes  # the build's word, said so (`token_lengths.length_words`)


def _overridden(typed: str, recorded: Mapping[str, str], unit: str) -> list[str]:
    """A note per length input builds were told other than evaluate's own --length-input `typed` (`unit`: what the
    real positions are, `token_values.position_unit`)."""
    others: dict[str, list[str]] = {}
    for model, name in recorded.items():
        if name != typed:
            others.setdefault(name, []).append(model)
    return [
        f"--length-input {typed} read each row's real {unit}; {_built(models)} with --length-input {name}"
        for name, models in others.items()
    ]


def _one_length(recorded: Mapping[str, str]) -> str:
    """The one length input the builds were told; two are one line naming the flag."""
    (first, one), *rest = recorded.items()
    for model, other in rest:
        if other != one:
            raise QuantserveError(
                f"model '{first}' was built with --length-input {one}, model '{model}' with --length-input {other}: "
                "pass --length-input NAME (OUTPUT=NAME[,OUTPUT=NAME…] for an output's own) or none to say which "
                "input counts each row's real tokens"
            )
    return one


def _built(models: list[str]) -> str:
    """ "model 'a' was built" or "models 'a', 'b' were built"."""
    many = len(models) > 1
    return f"model{'s' if many else ''} {', '.join(repr(model) for model in models)} {'were' if many else 'was'} built"
