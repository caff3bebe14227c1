"""Free-running rollout: an autoregressive decoder judged by what it generates on its own, not step by step.

A decoder step whose class output's argmax comes back as its next integer input (the token fed back) beside a
recurrent state is judged row by row with the data's FP32 token and state, and by `optimizer.state_loop` with its own
state but still the data's token: both see one step's flips, never their consequence. arabic-name-romanizer 0.2.0's
GRU decoder shipped at per-step top-1 agreement 0.9941 (0.9932 fed its own state), while decoding whole names
greedily changed 2.8 % of 600 (sequence agreement 0.9717 against the 0.98 decoded-sequence budget): one flip in a
name of ~8 steps changes the name. So from many held-out rows (token and state taken from the data there), FP32 and
the candidate each run ROLLOUT_STEPS steps alone, each fed its own argmax and its own state, and the share of starts
whose generated tokens are all identical is judged against `--min-sequence-agreement`.

Where the held-out rows are sequences in order, each from a fresh state (`optimizer.state_loop.sequence_starts`),
the rollouts start at the sequences' first rows, and where the data shows the end token they stop there: a class
FP32 answers at most of the rows before a sequence start that the data never feeds back as the token (g2p_en's GRU
decoder: id 3, answered at 322 word ends, fed 0 times). Each sequence is then compared up to FP32's end token, its
steps up to the longest of the data's sequences and ROLLOUT_STEPS more: what the candidate answers after FP32 ended
no user reads (g2p_en, 8 fixed steps from the first 1024 rows: 0.9531; cut at FP32's end token: 0.9902).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.drift_budget import DriftBudget, Refusal
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.state_loop import StatePair, refuse_growing_state
from quantserve.runner import Runner

# Steps each start generates: a short name's or word's length (the romanizer's names average 8.1 steps). Without an
# end token read from the data (`find_end_token`) the rollout does not stop at one, so a longer one judges steps past
# the end no user reads: measured on the romanizer, agreement 0.983 at 4 steps, 0.974 at 8, 0.960 at 16.
ROLLOUT_STEPS = 8
MOST_ROLLOUT_STEPS = 64  # with an end token: the longest data sequence and ROLLOUT_STEPS more, at most this many
ROLLOUT_STARTS = 1024  # most start rows, evenly spaced over the held-out rows: the cost is starts × steps rows run
ROLLOUT_BATCH = 256  # starts one session run holds: all of them at once, up to this many (bounds activation memory)


@dataclass(frozen=True)
class TokenFeedback:
    """The class output whose argmax is the decoder's next `input` (an integer token, one per row)."""

    output: str
    input: str


def _one_token_per_row(values: np.ndarray) -> bool:
    return values.dtype.kind in "iu" and values.ndim >= 1 and values.shape[0] > 0 and values.size == values.shape[0]


def find_token_feedback(
    arrays: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray], pairs: Sequence[StatePair]
) -> TokenFeedback | None:
    """The token a stateful decoder feeds back: an integer input, one value per row, whose data all lie in [0, C) of
    a 2-D (rows, C) float output that is no state; None without state pairs or such a pair (an encoder's class
    output fed nothing, a float input, token values out of the output's range)."""
    if not pairs:
        return None
    state_inputs, state_outputs = {p.input for p in pairs}, {p.output for p in pairs}
    for name, raw in arrays.items():
        values = np.asarray(raw)
        if name in state_inputs or not _one_token_per_row(values):
            continue
        for output, got in outputs.items():
            classes = got.shape[1] if got.ndim == 2 and got.dtype.kind == "f" else 0
            if output not in state_outputs and classes > 1 and values.min() >= 0 and values.max() < classes:
                return TokenFeedback(output, name)
    return None


def find_end_token(
    arrays: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    feedback: TokenFeedback,
    starts: np.ndarray | None,
) -> int | None:
    """The token that ends a sequence, where the data shows it: the class FP32 (`expected`, run on the data's own
    rows) answers at most of the rows before a sequence start (`starts` past the first), and which the data never
    feeds back as `feedback.input` (a sequence's end is no next step's token); None otherwise (one sequence, no such
    class)."""
    if starts is None or len(starts) < 2 or feedback.output not in expected:
        return None
    answers = np.argmax(np.asarray(expected[feedback.output]), axis=1)
    fed = np.asarray(arrays[feedback.input]).reshape(-1)
    if len(answers) != len(fed):
        return None
    values, counts = np.unique(answers[np.asarray(starts)[1:] - 1], return_counts=True)
    end = int(values[np.argmax(counts)])
    return end if 2 * int(counts.max()) > len(starts) - 1 and not np.any(fed == end) else None


def start_rows(rows: int, most: int = ROLLOUT_STARTS) -> np.ndarray:
    """Up to `most` row indices, evenly spaced over `rows`."""
    return np.unique(np.linspace(0, rows - 1, min(rows, most)).astype(np.int64)) if rows else np.zeros(0, np.int64)


def generate_through(
    runner: Runner,
    starts: Mapping[str, np.ndarray],
    pairs: Sequence[StatePair],
    feedback: TokenFeedback,
    steps: int,
) -> np.ndarray:
    """(starts, steps) tokens the model generates from `starts`' rows, all at once: each step's argmax of
    `feedback.output` becomes the next token, each state output the next state; other inputs stay as at the start."""
    feeds = {name: np.asarray(values) for name, values in starts.items()}
    token_shape, token_dtype = feeds[feedback.input].shape, feeds[feedback.input].dtype
    tokens = []
    for _ in range(steps):
        got = runner.infer(feeds)
        token = np.argmax(got[feedback.output], axis=1)
        tokens.append(token)
        state = {p.input: got[p.output].astype(feeds[p.input].dtype, copy=False) for p in pairs}
        refuse_growing_state(pairs, state, starts)
        feeds.update(state)
        feeds[feedback.input] = token.reshape(token_shape).astype(token_dtype)
    return np.stack(tokens, axis=1)


def generate(
    path: Path, starts: Mapping[str, np.ndarray], pairs: Sequence[StatePair], feedback: TokenFeedback, steps: int
) -> np.ndarray:
    """`generate_through` the model at `path`, ROLLOUT_BATCH starts a run."""
    rows = int(next(iter(starts.values())).shape[0])
    with OnnxRuntimeRunner(path) as runner:
        return np.concatenate(
            [
                generate_through(
                    runner, {k: v[lo : lo + ROLLOUT_BATCH] for k, v in starts.items()}, pairs, feedback, steps
                )
                for lo in range(0, rows, ROLLOUT_BATCH)
            ]
        )


def rollout_record(
    reference: Path,
    candidate: Path,
    arrays: Mapping[str, np.ndarray],
    pairs: Sequence[StatePair],
    feedback: TokenFeedback,
    budget: DriftBudget,
    steps: int = ROLLOUT_STEPS,
    starts: np.ndarray | None = None,
    end: int | None = None,
) -> dict[str, Any]:
    """FP32 and the candidate each generate `steps` tokens alone from the same start rows: the data's sequence
    `starts` where it has more than one (`state_loop.sequence_starts`), else rows evenly spaced; with an `end` token
    (`find_end_token`) up to the longest data sequence and `steps` more, each start compared up to FP32's end token.
    The share of starts whose tokens are all identical judged against `budget.min_sequence_agreement`."""
    rows = int(next(iter(arrays.values())).shape[0])
    sequences = starts is not None and len(starts) > 1
    firsts = np.asarray(starts)[start_rows(len(starts))] if starts is not None and sequences else start_rows(rows)
    if sequences and starts is not None and end is not None:
        longest = int(np.diff(np.append(np.asarray(starts), rows)).max())
        steps = min(MOST_ROLLOUT_STEPS, longest + steps)
    else:
        end = None  # an end token is read from sequences only
    picked = {name: np.asarray(values)[firsts] for name, values in arrays.items()}
    expected = generate(reference, picked, pairs, feedback, steps)
    got = generate(candidate, picked, pairs, feedback, steps)
    read = np.ones(expected.shape, bool)  # the steps compared: up to FP32's end token, all without one
    if end is not None:
        ended = expected == end
        first_end = np.where(ended.any(axis=1), ended.argmax(axis=1), steps - 1)
        read = np.arange(steps)[None, :] <= first_end[:, None]
    same = (expected == got) | ~read
    agreement = float(np.mean(same.all(axis=1))) if len(same) else 1.0
    origin = "each sequence's first row" if sequences else "each start row"
    until = f", until FP32's end token {end}" if end is not None else ""
    return {
        "run": f"free-running rollout: from {origin} (its token and state from the data), FP32 and the candidate each "
        f"generate the steps alone{until}, fed their own argmax as the next token and their own state",
        "output": feedback.output,
        "token_input": feedback.input,
        "pairs": [{"output": p.output, "input": p.input} for p in pairs],
        "starts": len(firsts),
        "sequence_starts": sequences,
        "steps": steps,
        "end_token": end,
        "sequence_agreement": agreement,
        "token_agreement": float(np.mean(same[read])) if read.any() else 1.0,
        "budget": budget.min_sequence_agreement,
        "holds": agreement >= budget.min_sequence_agreement,
    }


def rollout_refusal(record: Mapping[str, Any], precision: str = "int8") -> Refusal:
    """The one line where the candidate holds step by step (and fed its own state) but not generating on its own."""
    roll = record["rollout"]
    states = ", ".join(f"'{p['output']}' as '{p['input']}'" for p in roll["pairs"])
    subject, deploy = ("INT8", ": deploy fp32") if precision == "int8" else (f"the {precision.upper()} build", "")
    return Refusal(
        f"{subject} holds step by step but not decoding on its own: output '{roll['output']}' free-running rollout "
        f"agreement {roll['sequence_agreement']:.4f} < budget {roll['budget']:g} ({rolled_out(roll)}, each model fed "
        f"its own argmax as '{roll['token_input']}' and its own {states}); nothing written{deploy} (or pass "
        "--keep-failing to ship it; "
        "--min-sequence-agreement sets that budget; --state none if that is no recurrent state)",
        {"refused_for": "drift", "violations": [], "verification": dict(record)},
    )


def rolled_out(roll: Mapping[str, Any]) -> str:
    """What the rollout's agreement is the share of: its starts, its steps, and where it ended."""
    starts = f"{roll['starts']} sequence starts" if roll.get("sequence_starts") else f"{roll['starts']} starts"
    if roll.get("end_token") is not None:
        return (
            f"share of {starts} whose generated tokens match FP32's up to its end token, at most {roll['steps']} steps "
            f"(ended at FP32's token {roll['end_token']})"
        )
    return f"share of {starts} whose {roll['steps']} generated tokens match FP32"
