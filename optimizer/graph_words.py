"""The FP32 reference graph's word on a build's outputs, recorded so `evaluate` reads each output's kind as `optimize`.

`optimize` infers kinds with three facts read off the reference graph: the outputs a Sigmoid makes
(`optimizer.sigmoid_outputs`: per-label probabilities, judged by their label sets), which 2-D outputs are per
token (`optimizer.token_axes`) and which are a recurrent layer's state (`optimizer.recurrent_states`: vectors, not
class scores). `evaluate` talks only to Triton and has no graph: without them a Sigmoid's
multi-label output read `dense` there, judged by correlation where optimize judged its label sets. The build records
them in its manifest (`words_record`, manifest.extra["graph_outputs"]), `deploy` writes them into the served config
(`serving.graph_parameter`), and evaluate reads them back from the reference's (`words_from_record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import onnx

from optimizer.recurrent_states import recurrent_state_outputs
from optimizer.sigmoid_outputs import sigmoid_outputs
from optimizer.token_axes import TokenAxes, token_axes

AXES_FIELDS = ("tokens", "not_tokens", "unsaid")  # TokenAxes' sets, by name in the record


@dataclass(frozen=True)
class GraphWords:
    """What a reference graph says of its outputs: those a Sigmoid makes, each 2-D output's axis 1, and those that
    are a recurrent layer's state."""

    sigmoid: frozenset[str] = frozenset()
    axes: TokenAxes = field(default_factory=TokenAxes)
    state: frozenset[str] = frozenset()


def read_graph_words(model: onnx.ModelProto | Path | str) -> GraphWords:
    """The words of the graph, read from one load of the model file (its weights left on disk)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    return GraphWords(sigmoid_outputs(model), token_axes(model), recurrent_state_outputs(model))


def words_record(words: GraphWords) -> dict[str, Any]:
    """The JSON form of `words`: {"sigmoid": [names], "token_axes": {set: [names]}, "state": [names]}, empty sets
    left out (and "state" where empty: a record of a quantserve before it reads the same)."""
    axes = {key: sorted(getattr(words.axes, key)) for key in AXES_FIELDS if getattr(words.axes, key)}
    state = {"state": sorted(words.state)} if words.state else {}
    named = {"axis_names": dict(words.axes.axis_names)} if words.axes.axis_names else {}  # two padded axes or more
    return {"sigmoid": sorted(words.sigmoid), "token_axes": axes, **state, **named}


def words_from_record(record: object) -> GraphWords | None:
    """`words_record`'s form read back; None where `record` is not of that form (nothing recorded, or garbled)."""
    if not isinstance(record, Mapping):
        return None
    sigmoid, axes, state = record.get("sigmoid"), record.get("token_axes", {}), record.get("state", [])
    if not _names(sigmoid) or not _names(state) or not isinstance(axes, Mapping):
        return None
    if not all(_names(v) for v in axes.values()) or any(key not in AXES_FIELDS for key in axes):
        return None
    sets = {key: frozenset(axes.get(key, ())) for key in AXES_FIELDS}
    named = record.get("axis_names", {})
    if not isinstance(named, Mapping) or not all(isinstance(v, str) for v in [*named, *named.values()]):
        return None
    return GraphWords(frozenset(sigmoid), TokenAxes(**sets, axis_names=tuple(named.items())), frozenset(state))


def _names(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)
