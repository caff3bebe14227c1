"""A text model's explicit length input: a 1-D integer input (N,) (or (N, 1)) named for a length (`length`,
`seq_len`, `lengths`, `valid_len`, `sequence_length`…) whose values all lie within 0..T of its (N, T) token ids
says where each row's real tokens end: positions 0..length[i]-1 of row i are real, the rest pads.

Without it, pads are told by a mask input or by the ids themselves (`optimizer.token_values.unpadded`), and the
ids cannot tell them where the pad id is also content: Baidu LAC (a Chinese word segmenter and tagger, a tag per
character) pads with 0, the space, which also occurs inside sentences, and takes `length` beside `token_ids`. Its
INT8 build was judged over all 64 positions, 74 % of them pads: token agreement 0.9989 held a 0.998 budget while
its real characters agreed 0.9958 (session 56). A mask input, where there is one, still decides first; values
outside 0..T, or not integers, are not lengths and change nothing.

The name is a guess, and a wrong one moves every per-token figure: a `max_len` that is a per-row decode limit or a
bucket size is no count of real tokens. So the user's word overrides it (`told_length`, set once around a whole
optimize or evaluate run: real tokens are read in a dozen places between them): `--length-input NAME` names the
length input, before any mask (refused in one line where NAME is no integer (N,) input within 0..T), and
`--length-input none` reads no input as a length. The words beside each per-token output say which it was.

A model without token ids counts a sequence of any other values the same way (`sequence_length`): sleepecg's sleep
stager takes `features` (N, 960 epochs, 36), -1 past each night's epochs, beside `lengths` (N,), and answers per epoch
(N, 960, 4). Read by token ids alone, its INT8 build was judged over all 261 120 epochs, 89 212 of them padded and
agreeing trivially (0.9988 for 0.9982 over the real ones), and `--length-input lengths` was refused (session 61). So
a length input marks the axis 1 of a 2+-D input of any dtype whose every position past each row's length holds one
pad value (`pads_past`); the outputs of that width are judged over those positions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from quantserve.errors import QuantserveError

LENGTH_WORDS = {"len", "lens", "length", "lengths", "seqlen", "seqlens", "seqlength", "seqlengths"}
LENGTH_ENDINGS = ("len", "lens", "length", "lengths")  # seqLen, textlen, valid_len: lowered, the name's end
LENGTH_OFF = "none"  # --length-input none: no input is read as a length
LENGTH_INPUT = "length_input"  # manifest extra: what --length-input said (a name or "none"); absent: inferred
INFERRED = "inferred from a name like seq_len or lengths"


def length_help(default: str = INFERRED) -> str:
    """--length-input's help text, its default said as the command takes it (evaluate's: the builds' word first)."""
    return (
        "the integer (N,) input that holds each row's count of real tokens, where per-token drift is judged "
        f"(default: {default}); 'none': no input is one; OUTPUT=INPUT[,OUTPUT=INPUT…]: the input that counts that "
        "output's axis 1, where each padded axis has its own length input"
    )


LENGTH_HELP = length_help()


class BuiltLength(str):
    """A --length-input a build was told, as its deploy recorded it, read by evaluate or loadtest without one of their
    own (`told_length`): equal to the plain choice, said as the build's word (`length_words`), not the user's. evaluate
    read real positions by a build's `n_epochs` and said "(input 'n_epochs', named by --length-input)", a flag its
    user never gave (session 62)."""


_TOLD: ContextVar[str | None] = ContextVar("length_input", default=None)  # None: inferred from the names


@contextmanager
def told_length(choice: str | None) -> Iterator[None]:
    """Within it, the length input is the one `choice` names (--length-input NAME), none (LENGTH_OFF), or inferred
    from the names (None) (module docstring)."""
    token = _TOLD.set(choice)
    try:
        yield
    finally:
        _TOLD.reset(token)


def length_told() -> str | None:
    """What --length-input said in this run for every output not paired (`told_pairs`): an input's name, LENGTH_OFF,
    or None (inferred)."""
    plain = [part for part in _told_parts() if "=" not in part]
    return plain[0] if plain else None


def told_pairs() -> dict[str, str]:
    """{output: length input} of --length-input OUTPUT=INPUT[,OUTPUT=INPUT…]: the input that counts that output's
    axis 1, where a model has one length input per padded axis (`optimizer.length_axes`)."""
    pairs = (part.split("=", 1) for part in _told_parts() if "=" in part)
    return {output.strip(): name.strip() for output, name in pairs}


def _told_parts() -> list[str]:
    return [part.strip() for part in (_TOLD.get() or "").split(",") if part.strip()]


def check_pairs(arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse, in one line, a --length-input OUTPUT=INPUT whose INPUT is no integer input of one value per row."""
    for output, name in told_pairs().items():
        array = np.asarray(arrays[name]) if name in arrays else None
        if array is None or length_values(array, len(array)) is None:
            raise QuantserveError(
                f"--length-input {output}={name}: no input '{name}' of one integer per row "
                f"(inputs: {', '.join(arrays)})"
            )


def length_named(name: str) -> bool:
    """Whether an input's name reads as a length: a word of LENGTH_WORDS (`length`, `seq_len`, `valid_len`,
    `sequence_length`) or a name ending in one (`seqLen`, `textlen`)."""
    lowered = name.lower()
    words = set(re.split(r"[^a-z]+", lowered))
    return bool(words & LENGTH_WORDS) or re.sub(r"[^a-z]+", "", lowered).endswith(LENGTH_ENDINGS)


def length_values(array: np.ndarray, rows: int) -> np.ndarray | None:
    """An input's values as one length per row, (N,) or (N, 1) integers; None for any other shape or type."""
    if not np.issubdtype(array.dtype, np.integer) or not array.shape or array.shape[0] != rows:
        return None
    if array.ndim == 1:
        return array
    return array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else None


def named_length(arrays: Mapping[str, np.ndarray], ids: np.ndarray | None) -> tuple[str, np.ndarray] | None:
    """The input --length-input NAME named and its lengths (N,), checked against the (N, T) token `ids` (refused
    without them: a sequence of other values it marks is `sequence_length`'s); None where no input was named (module
    docstring). A --length-input OUTPUT=INPUT is checked here too (`check_pairs`)."""
    check_pairs(arrays)
    name = length_told()
    if name is None or name == LENGTH_OFF:
        return None
    known = f"(inputs: {', '.join(arrays)})"
    if name not in arrays or ids is None:
        raise QuantserveError(_unmarked_words(arrays, name))
    array = np.asarray(arrays[name])
    lengths = length_values(array, ids.shape[0])
    if lengths is None:
        raise QuantserveError(
            f"--length-input {name}: input '{name}' holds {array.dtype} of shape {array.shape}, not one integer per "
            f"row of the {ids.shape[0]} rows {known}"
        )
    if lengths.size and (int(lengths.min()) < 0 or int(lengths.max()) > ids.shape[1]):
        raise QuantserveError(
            f"--length-input {name}: input '{name}' holds {int(lengths.min())}..{int(lengths.max())}, not within "
            f"0..{ids.shape[1]} of the token ids' {ids.shape[1]} positions {known}"
        )
    return name, lengths


def length_input(arrays: Mapping[str, np.ndarray], ids: np.ndarray) -> tuple[str, np.ndarray] | None:
    """The input (its name and lengths, (N,)) that says where each row of the (N, T) token `ids` ends: named for a
    length, one integer per row, each within 0..T (module docstring); None where no input is one, or where
    --length-input said which (`named_length`) or none."""
    if ids.ndim != 2 or length_told() is not None:
        return None
    rows, width = ids.shape
    for name, array in arrays.items():
        if array is ids or not length_named(name):
            continue
        lengths = length_values(np.asarray(array), rows)
        if lengths is not None and lengths.size and int(lengths.min()) >= 0 and int(lengths.max()) <= width:
            return name, lengths
    return None


def sequence_length(arrays: Mapping[str, np.ndarray]) -> tuple[str, np.ndarray, int] | None:
    """Where no (N, T) token ids are: the length input (its name and lengths (N,)) and the axis-1 width of the 2+-D
    input of any dtype it marks (`pads_past`; module docstring). --length-input NAME names it (`named_length` refuses
    it where it marks none), `none` reads none; else the first input named for a length that marks one. None where
    none does."""
    check_pairs(arrays)
    told = length_told()
    if told == LENGTH_OFF:
        return None
    names = [told] if told is not None else [name for name in arrays if length_named(name)]
    return next(((name, *found) for name in names if (found := _marked(arrays, name)) is not None), None)


def _marked(arrays: Mapping[str, np.ndarray], name: str) -> tuple[np.ndarray, int] | None:
    """Input `name`'s lengths (N,) and the axis-1 width of the first 2+-D input they pad past (`pads_past`); None
    where `name` holds no non-negative integer per row, or marks no input."""
    other = _padded_by(arrays, name)
    if other is None:
        return None
    array = np.asarray(arrays[name])
    lengths = length_values(array, len(array))
    return None if lengths is None else (lengths, np.asarray(arrays[other]).shape[1])


def _padded_by(arrays: Mapping[str, np.ndarray], name: str) -> str | None:
    """The first 2+-D input whose axis 1 input `name`'s lengths pad past (`pads_past`); None where `name` holds no
    non-negative integer per row, or marks no input."""
    array = np.asarray(arrays[name]) if name in arrays else None
    lengths = length_values(array, len(array)) if array is not None and array.ndim else None
    if lengths is None or not lengths.size or int(lengths.min()) < 0:
        return None
    padded = (other for other, values in arrays.items() if other != name and np.ndim(values) >= 2)
    return next((other for other in padded if pads_past(np.asarray(arrays[other]), lengths)), None)


def unnamed_length(arrays: Mapping[str, np.ndarray] | None) -> tuple[str, str] | None:
    """(An integer input of one value per row not named for a length, the 2+-D input padded past it: `pads_past`)
    where no token ids, no length-named input and no --length-input say where rows end. GSSC's sleep stager takes
    `eeg` (N, 10, 2560), 0 past each row's `n_epochs`: without --length-input all 400 positions were judged, 146 of
    them padding (session 61). A guess from the values: said (`unnamed_length_note`), never acted on."""
    if not arrays or _TOLD.get() is not None or sequence_length(arrays) is not None:
        return None
    values = [np.asarray(array) for array in arrays.values()]
    if any(a.ndim == 2 and a.shape[1] > 1 and np.issubdtype(a.dtype, np.integer) for a in values):
        return None  # token ids: their mask, pad ids or a length-named input say it
    unnamed = (name for name in arrays if not length_named(name))
    return next(((name, other) for name in unnamed if (other := _padded_by(arrays, name)) is not None), None)


def unnamed_length_note(name: str, padded: str) -> str:
    """The note naming an input that would mark real positions if named for a length (`unnamed_length`)."""
    return (
        f"input '{name}' holds one integer per row and every position of '{padded}' past it holds one value: if it "
        f"counts real frames, --length-input {name} judges only them"
    )


def _unmarked_words(arrays: Mapping[str, np.ndarray], name: str) -> str:
    """The line refusing --length-input NAME where it marks no input: what was looked for, and the OUTPUT=INPUT form
    where NAME holds one integer per row."""
    known = f"(inputs: {', '.join(arrays)})"
    if name not in arrays:
        return f"--length-input {name}: no input '{name}' {known}"
    array = np.asarray(arrays[name])
    if length_values(array, len(array)) is None:
        return (
            f"--length-input {name}: input '{name}' holds {array.dtype} of shape {array.shape}, not one integer per "
            f"row {known}"
        )
    return (
        f"--length-input {name}: no input for it to mark: neither (N, T) integer token ids nor an input whose axis 1 "
        f"is padded past the lengths in '{name}' with one value {known}; --length-input OUTPUT={name} names the "
        "output whose axis 1 it counts"
    )


def pads_past(array: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether every position past each row's length holds one and the same value (a pad) and some row has one."""
    if len(lengths) != len(array) or int(lengths.max()) > array.shape[1]:
        return False
    past = np.arange(array.shape[1])[None, :] >= lengths[:, None]
    values = array[past]
    return bool(values.size) and bool((values == values.flat[0]).all())


def length_positions(lengths: np.ndarray, width: int) -> np.ndarray:
    """(N, T) True at positions 0..length[i]-1 of each row i."""
    return np.arange(width)[None, :] < np.asarray(lengths).reshape(-1, 1)


LENGTH_SAID = "positions 0..length-1 of each row"


LENGTH_OFF_SAID = "(--length-input none)"


def length_words(name: str) -> str:
    """Which positions a length input makes real, and whether the user named it, a build was told it (`BuiltLength`)
    or its name was read, as the note on a per-token output says it."""
    told = "as the build was told" if isinstance(_TOLD.get(), BuiltLength) else "named by --length-input"
    how = told if length_told() == name else "inferred: --length-input NAME or none says otherwise"
    return f"{LENGTH_SAID} (input '{name}', {how})"


def off_words(words: str) -> str:
    """`words` (how the real tokens were read without a length input) marked as --length-input none's, where it was."""
    return f"{words} {LENGTH_OFF_SAID}" if length_told() == LENGTH_OFF else words


def said_by_length(words: str) -> bool:
    """Whether a per-token output's real tokens (`token_values.token_basis`'s words) were a length input's, or
    --length-input none said no input's."""
    return words.startswith(LENGTH_SAID) or words.endswith(LENGTH_OFF_SAID)
