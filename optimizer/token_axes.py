"""What a text model's graph says of its 2-D outputs: whether axis 1 is the token axis (one value per token) or a
width that happens to equal the token length. Read once from the ONNX file's declared shapes (`token_axes`) and
handed to `optimizer.output_kinds.infer_output_kinds` and `optimizer.drift.measure_drift` beside the input rows.

A pooled sentence embedding (N, 128) of a model whose input_ids are (N, 128) has the token ids' shape, and was read
as one value per token (`optimizer.token_values`): judged over the real tokens only, a build with its dims 64-127
scrambled passed, those dims lying past most sentences' last token (session 30). The shapes alone cannot tell it
from an ELECTRA discriminator's logit per token; the graph can: an exporter names the token axis (a symbolic dim,
dim_param) and a per-token output's axis 1 carries that same name, while a pooled width is a fixed number. So:
- axis 1 the same symbol as a token input's axis 1: one value per token (`TokenAxes.tokens`);
- a fixed number where the token axis is symbolic: not per token, read as any 2-D output's rows
  (`TokenAxes.not_tokens`);
- the graph saying nothing (the token axis a fixed number, shapes not declared, or another symbol: tf2onnx names
  every output axis afresh, unk__N, a per-token output's too): `TokenAxes.unsaid` — read per token
  as before, and judged as an embedding too (whole-row cosine over every position, `whole_row_check`): of the two
  readings, a build must hold both to ship.
Without a model file (evaluate's served outputs, unit tests on arrays) no `TokenAxes` is given: read per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.token_lengths import length_named
from optimizer.token_values import MEASURED_PER_TOKEN, per_token
from optimizer.typed_kinds import is_typed

INTEGER_TYPES = {onnx.TensorProto.INT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64}


@dataclass(frozen=True)
class TokenAxes:
    """Per 2-D output of a model with a 2-D integer (token) input, what its graph says of axis 1 (module docstring)."""

    tokens: frozenset[str] = frozenset()
    not_tokens: frozenset[str] = frozenset()
    unsaid: frozenset[str] = frozenset()
    # (input or output, its axis 1's symbol) where the graph's 2+-D inputs name two or more axes 1 (a length input
    # per padded axis: `optimizer.length_axes`); () otherwise
    axis_names: tuple[tuple[str, str], ...] = ()

    def positions(self, name: str, positions: np.ndarray | None) -> np.ndarray | None:
        """The real-token positions an output is read over: none where its axis 1 is not the token axis."""
        return None if name in self.not_tokens else positions


def output_positions(axes: TokenAxes | None, name: str, positions: np.ndarray | None) -> np.ndarray | None:
    """`positions` for output `name`, or None where `axes` (the graph, where known) says it is not per token."""
    return positions if axes is None else axes.positions(name, positions)


def _dims(value: onnx.ValueInfoProto) -> list[str | int | None] | None:
    """A value's declared axes: a symbol's name, a fixed size, or None where neither is declared."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else None) for d in tensor.shape.dim]


def token_axes(model: onnx.ModelProto | Path | str) -> TokenAxes:
    """The graph's word on each 2-D output's axis 1 (module docstring); empty where no input is 2-D integer, nor a
    sequence beside a length input (`_token_dims`)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    named = axis_names(model)
    token_dims = _token_dims(model)
    if not token_dims:
        return TokenAxes(axis_names=named)
    symbols = {dim for dim in token_dims if isinstance(dim, str)}
    found: dict[str, set[str]] = {"tokens": set(), "not_tokens": set(), "unsaid": set()}
    for value in model.graph.output:
        dims = _dims(value)
        if dims is None or len(dims) != 2:
            continue
        if isinstance(dims[1], str) and dims[1] in symbols:
            found["tokens"].add(value.name)
        elif symbols and isinstance(dims[1], int):
            found["not_tokens"].add(value.name)  # a fixed width while the tokens' axis is symbolic
        else:
            found["unsaid"].add(value.name)
    return TokenAxes(**{key: frozenset(names) for key, names in found.items()}, axis_names=named)


def _token_dims(model: onnx.ModelProto) -> set[str | int | None]:
    """The declared axis 1 of the graph's 2-D integer inputs (token ids); without any, of its 2+-D inputs beside an
    integer input named for a length (a sleep stager's features (N, epochs, 36) beside `lengths`: the sequence a
    length input counts, `optimizer.token_lengths.sequence_length`)."""
    weights = {init.name for init in model.graph.initializer}
    inputs = [(value, _dims(value)) for value in model.graph.input if value.name not in weights]
    integer = [(value, dims) for value, dims in inputs if value.type.tensor_type.elem_type in INTEGER_TYPES]
    token_dims = {dims[1] for _, dims in integer if dims and len(dims) == 2}
    if token_dims or not any(dims and len(dims) <= 2 and length_named(value.name) for value, dims in integer):
        return token_dims
    return {dims[1] for _, dims in inputs if dims and len(dims) >= 2}


def axis_names(model: onnx.ModelProto) -> tuple[tuple[str, str], ...]:
    """(name, symbol) of each 2+-D graph input and output whose axis 1 is symbolic, where the inputs name two or
    more such axes (nagisa: 'T' for its characters, 'W' for its words); () where they name one or none. An exporter
    that names every axis afresh (torch's `uni_dynamic_axes_1`) ties nothing: each symbol is one input's."""
    weights = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    named = []
    for value in [*inputs, *model.graph.output]:
        dims = _dims(value)
        if dims and len(dims) >= 2 and isinstance(dims[1], str):
            named.append((value.name, dims[1]))
    input_names = {value.name for value in inputs}
    return tuple(named) if len({symbol for name, symbol in named if name in input_names}) >= 2 else ()


def whole_row_check(
    axes: TokenAxes | None, name: str, kind: str, reference: np.ndarray, positions: np.ndarray | None
) -> bool:
    """An output read per token although its graph does not say its axis 1 is the tokens': judged as an embedding
    too (module docstring)."""
    if axes is None or name not in axes.unsaid or positions is None or kind not in MEASURED_PER_TOKEN or is_typed(kind):
        return False  # a typed per-token kind is the user's word: judged only per token
    return per_token(reference, positions)


def whole_row_hint(name: str, record: Mapping[str, Any]) -> str:
    """The line a whole-row (embedding) verdict of a per-token reading carries."""
    return (
        f"read per token, its {record['shape'][1]} values as many as the tokens and the graph not saying which, so "
        f"judged as an embedding too (cosine over whole rows): if it is a value per token, pass --output-kind "
        f"{name}=regression, if a vector, --output-kind {name}=embedding"
    )
