"""A model with two length inputs, one per padded axis: which inputs and outputs each one counts.

nagisa's BiLSTM segmenter and tagger takes `char_len` for its character inputs (B, T, …) and `word_len` for its word
inputs (B, W, …), and answers per character (`ws_scores`, (B, T, 6)) and per word (`pos_scores`, (B, W, 24)). Read
with one length input, evaluate judged the words' tags over the characters' positions (4 632 of 10 433 of them
padded word slots where W was padded to T's 60: top-1 agreement 0.9968 for 0.9998), and the load test cut the word
inputs by `word_len` while the character inputs went at their padded 60 (real mean 26), saying it had cut them all
(session 60).

So, where the data holds two or more length inputs (`optimizer.token_lengths.length_named`, one integer per row),
each 2+-D input is tied to the length input that marks its axis 1 (`length_axes`): every position past a row's
length holds one pad value; of several lengths that do, the tightest (a word count is at most the characters'
count, and the words' inputs are pads past it). An input the data cannot tie (one value throughout) goes with the
only axis of its width, else stays uncut. An output's axis 1 goes with the axis of its width where one axis has
it (`output_length`); where two have it, the graph's symbolic axis names decide (`graph_lengths`, the symbol its
tied inputs' axis 1 shares), else `--length-input OUTPUT=INPUT` (`optimizer.token_lengths.told_pairs`).
An output's kind is read over those positions too (`kind_positions`): read over the token ids' (the words'), nagisa's
per-character tag scores (N, 60, 6) were taken for a detector's head, 4 of its tags for boxes, and judged over all 60
positions, 13 567 of 24 000 padded, while with the words padded to 60 the same output read per character (session
60). A pair naming no output is refused; one its output is not judged by is said (`unused_pair_note`).
With one length input none of this applies: the real tokens are read as before (`optimizer.token_values`).
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.token_axes import TokenAxes, output_positions
from optimizer.token_lengths import LENGTH_SAID, length_named, length_positions, length_values, pads_past, told_pairs
from quantserve.errors import QuantserveError


@dataclass(frozen=True)
class LengthAxis:
    """A length input (`length`) and the inputs whose axis 1 (`width` wide in the data) it counts."""

    length: str
    width: int
    inputs: tuple[str, ...]


def length_inputs(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{name: lengths (N,)} of the inputs named for a length, one non-negative integer per row."""
    rows = min((len(a) for a in arrays.values() if np.ndim(a)), default=0)
    found = {}
    for name, array in arrays.items():
        lengths = length_values(np.asarray(array), rows) if length_named(name) else None
        if lengths is not None and lengths.size and int(lengths.min()) >= 0:
            found[name] = lengths
    return found


def length_axes(arrays: Mapping[str, np.ndarray]) -> list[LengthAxis]:
    """One `LengthAxis` per length input that marks some input's axis 1 (module docstring); [] unless two or more
    length inputs do: one length input is read as before. Read once per data set (`_LastRead`)."""
    kept = _last_read.axes(arrays)
    if kept is not None:
        return list(kept)
    axes = _read_axes(arrays)
    _last_read.keep(arrays, axes)
    return axes


class _LastRead:
    """The last data set `length_axes` read and its axes, known by its arrays' identity. Each output's kind, its drift
    per variant and the undecided notes ask again for the same rows (a pass over every input each time, session 61);
    passing the axes down instead would thread them through `kind_positions`, `own_positions` and their callers in
    `output_kinds`, `drift` and `evaluator`. Weak references: the data set is not kept alive, nor its identity
    reused for another's; a mapping naming other arrays (or holding one that is not an ndarray) is read afresh."""

    def __init__(self) -> None:
        # one tuple, replaced whole: a reader on another thread never pairs one data set's arrays with another's axes
        self._last: tuple[tuple[tuple[str, weakref.ref[np.ndarray]], ...], tuple[LengthAxis, ...]] = ((), ())

    def axes(self, arrays: Mapping[str, np.ndarray]) -> tuple[LengthAxis, ...] | None:
        """The axes read last, where `arrays` holds the same arrays by the same names; else None."""
        seen, axes = self._last
        same = (
            bool(seen)
            and len(seen) == len(arrays)
            and all(name in arrays and arrays[name] is ref() for name, ref in seen)
        )
        return axes if same else None

    def keep(self, arrays: Mapping[str, np.ndarray], axes: list[LengthAxis]) -> None:
        if all(isinstance(array, np.ndarray) for array in arrays.values()):
            self._last = (tuple((name, weakref.ref(array)) for name, array in arrays.items()), tuple(axes))


_last_read = _LastRead()


def _read_axes(arrays: Mapping[str, np.ndarray]) -> list[LengthAxis]:
    lengths = length_inputs(arrays)
    if len(lengths) < 2:
        return []
    tied: dict[str, list[str]] = {name: [] for name in lengths}
    loose = []
    for name, array in arrays.items():
        array = np.asarray(array)
        if name in lengths or array.ndim < 2 or array.shape[1] < 2:
            continue
        marks = [length for length, values in lengths.items() if pads_past(array, values)]
        if not marks:
            continue
        tightest = min(marks, key=lambda length: int(lengths[length].sum()))
        if _one_value(array):  # no evidence which axis: the only one of its width, below
            loose.append(name)
        else:
            tied[tightest].append(name)
    axes = [
        LengthAxis(length, np.asarray(arrays[names[0]]).shape[1], tuple(names))
        for length, names in tied.items()
        if names
    ]
    for name in loose:
        same = [axis for axis in axes if axis.width == np.asarray(arrays[name]).shape[1]]
        if len(same) == 1:
            axes[axes.index(same[0])] = LengthAxis(same[0].length, same[0].width, (*same[0].inputs, name))
    return axes if len(axes) >= 2 else []


def _one_value(array: np.ndarray) -> bool:
    return bool(array.size) and bool((array == array.flat[0]).all())


def output_length(name: str, width: int, axes: list[LengthAxis], graph: Mapping[str, str] | None = None) -> str | None:
    """The length input that counts output `name`'s axis 1 (`width` wide): `graph`'s word ({output: length input},
    `graph_lengths`), else the one axis of that width; None where none or two are (read as before)."""
    if graph and name in graph:
        return graph[name]
    same = [axis.length for axis in axes if axis.width == width]
    return same[0] if len(same) == 1 else None


def graph_lengths(axes: list[LengthAxis], symbols: Mapping[str, str]) -> dict[str, str]:
    """{output: length input} by the graph's symbolic axis names (`symbols`, {input or output: its axis 1's symbol},
    `optimizer.token_axes.axis_names`): an output whose axis 1 is the symbol every input tied to one length input
    shares on its axis 1, and no other length's inputs do."""
    by_symbol: dict[str, set[str]] = {}
    for axis in axes:
        found = {symbols.get(name) for name in axis.inputs}
        symbol = found.pop() if len(found) == 1 else None
        if symbol is not None:
            by_symbol.setdefault(symbol, set()).add(axis.length)
    tied = {name for axis in axes for name in axis.inputs}
    return {
        name: next(iter(by_symbol[symbol]))
        for name, symbol in symbols.items()
        if name not in tied and len(by_symbol.get(symbol, ())) == 1
    }


def output_positions_by_length(
    name: str,
    values: np.ndarray,
    arrays: Mapping[str, np.ndarray] | None,
    symbols: Sequence[tuple[str, str]] = (),
) -> tuple[np.ndarray, str] | None:
    """(N, T) True at the real positions of output `name`'s axis 1 by its own length input, and in words which; None
    where it is read as before (one length input, or no axis of its width: `output_length`). --length-input
    OUTPUT=INPUT (`told_pairs`) decides first, then the graph's axis names (`symbols`: `TokenAxes.axis_names`)."""
    values = np.asarray(values)
    if not arrays or values.ndim < 2:
        return None
    width, length = values.shape[1], told_pairs().get(name)
    how = f"named by --length-input {name}={length}"
    if length is None:
        axes = length_axes(arrays)
        graph = graph_lengths(axes, dict(symbols))
        length = output_length(name, width, axes, graph)
        how = "by the graph's axis names" if name in graph else f"the length input of the inputs {width} wide"
        how = f"{how}; --length-input {name}=INPUT says otherwise"
    if length is None or length not in arrays:
        return None
    lengths = length_values(np.asarray(arrays[length]), len(values))
    if lengths is not None and lengths.size and int(lengths.max()) > width and name in told_pairs():
        raise QuantserveError(
            f"--length-input {name}={length}: input '{length}' holds lengths up to {int(lengths.max())}, more than "
            f"output '{name}''s {width} positions on axis 1"
        )
    if lengths is None or (lengths.size and int(lengths.max()) > width):
        return None
    return length_positions(lengths, width), f"{LENGTH_SAID} (input '{length}', {how})"


def own_positions(
    axes: TokenAxes | None, name: str, values: np.ndarray, arrays: Mapping[str, np.ndarray] | None
) -> tuple[np.ndarray, str] | None:
    """`output_positions_by_length` with the graph's word (`axes`, where known): None where it says output `name`'s
    axis 1 is not per token."""
    if axes is not None and name in axes.not_tokens:
        return None
    return output_positions_by_length(name, values, arrays, axes.axis_names if axes is not None else ())


def kind_positions(
    axes: TokenAxes | None,
    name: str,
    values: np.ndarray,
    arrays: Mapping[str, np.ndarray] | None,
    positions: np.ndarray | None,
) -> np.ndarray | None:
    """The (N, T) real positions output `name`'s kind is read over: its own length input's (`own_positions`), else
    the token `positions` as one length input (or a mask) marks them (`token_axes.output_positions`)."""
    own = own_positions(axes, name, values, arrays)
    return own[0] if own is not None else output_positions(axes, name, positions)


def check_output_pairs(outputs: Collection[str]) -> None:
    """Refuse, in one line, a --length-input OUTPUT=INPUT whose OUTPUT is none of the model's `outputs`."""
    for output, length in told_pairs().items():
        if output not in outputs:
            raise QuantserveError(
                f"--length-input {output}={length}: the model has no output '{output}' (outputs: {', '.join(outputs)})"
            )


def unused_pair_note(axes: TokenAxes | None, name: str, kind: str, shape: Sequence[int], per_token: bool) -> str:
    """The line saying a --length-input OUTPUT=INPUT pair went unused for output `name`, judged as `kind` and not over
    its real tokens (`per_token` False); "" where it was, or where no pair names it."""
    length = told_pairs().get(name)
    if length is None or per_token:
        return ""
    if len(shape) < 2:
        why = f"output '{name}' has no axis 1 of positions, shape {tuple(shape)}"
    elif axes is not None and name in axes.not_tokens:
        why = f"the graph says output '{name}''s axis 1 is no token's"
    else:
        why = f"output '{name}' is judged as {kind}, over every position"
    return f"--length-input {name}={length}: not used: {why}"


def undecided_notes(
    outputs: Mapping[str, np.ndarray], arrays: Mapping[str, np.ndarray] | None, axes: TokenAxes | None
) -> list[str]:
    """A line per output as wide on axis 1 as two length inputs' axes where neither --length-input OUTPUT=INPUT nor
    the graph's axis names say which counts it: read as before, by one length input for every output."""
    found = length_axes(arrays) if arrays else []
    graph = graph_lengths(found, dict(axes.axis_names if axes is not None else ()))
    notes = []
    for name, values in outputs.items():
        shape = np.shape(values)
        if len(shape) < 2 or name in told_pairs() or name in graph:
            continue
        same = [axis.length for axis in found if axis.width == shape[1]]
        if len(same) > 1:
            notes.append(
                f"output '{name}' is as wide on axis 1 ({shape[1]}) as the inputs of length inputs "
                f"{', '.join(repr(length) for length in same)}, and neither the graph's axis names nor --length-input "
                f"say which counts it: its real positions read as before; --length-input {name}=INPUT says which"
            )
    return notes
