"""The FP32 reference graph's word on a build's outputs, recorded so `evaluate` reads each output's kind as `optimize`.

`optimize` infers kinds with two facts read off the reference graph: the outputs a Sigmoid makes
(`optimizer.sigmoid_outputs`: per-label probabilities, judged by their label sets) and which 2-D outputs are per
token (`optimizer.token_axes`). `evaluate` talks only to Triton and has no graph: without them a Sigmoid's
multi-label output read `dense` there, judged by correlation where optimize judged its label sets. The build records
both in its manifest (`words_record`, manifest.extra["graph_outputs"]), `deploy` writes them into the served config
(`serving.graph_parameter`), and evaluate reads them back from the reference's (`words_from_record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import onnx

from optimizer.sigmoid_outputs import sigmoid_outputs
from optimizer.token_axes import TokenAxes, token_axes

AXES_FIELDS = ("tokens", "not_tokens", "unsaid")  # TokenAxes' sets, by name in the record


@dataclass(frozen=True)
class GraphWords:
    """What a reference graph says of its outputs: those a Sigmoid makes, and each 2-D output's axis 1."""

    sigmoid: frozenset[str] = frozenset()
    axes: TokenAxes = field(default_factory=TokenAxes)


def read_graph_words(model: onnx.ModelProto | Path | str) -> GraphWords:
    """Both words of the graph, read from one load of the model file (its weights left on disk)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    return GraphWords(sigmoid_outputs(model), token_axes(model))


def words_record(words: GraphWords) -> dict[str, Any]:
    """The JSON form of `words`: {"sigmoid": [names], "token_axes": {set: [names]}}, empty sets left out."""
    axes = {key: sorted(getattr(words.axes, key)) for key in AXES_FIELDS if getattr(words.axes, key)}
    return {"sigmoid": sorted(words.sigmoid), "token_axes": axes}


def words_from_record(record: object) -> GraphWords | None:
    """`words_record`'s form read back; None where `record` is not of that form (nothing recorded, or garbled)."""
    if not isinstance(record, Mapping):
        return None
    sigmoid, axes = record.get("sigmoid"), record.get("token_axes", {})
    if not _names(sigmoid) or not isinstance(axes, Mapping) or not all(_names(v) for v in axes.values()):
        return None
    if any(key not in AXES_FIELDS for key in axes):
        return None
    sets = {key: frozenset(axes.get(key, ())) for key in AXES_FIELDS}
    return GraphWords(frozenset(sigmoid), TokenAxes(**sets))


def _names(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)
