"""Recurrent state outputs are carried, not answers: verification judges them by their effect.

A state output (`optimizer.state_loop`'s pairs: fed back as an input next call) is no value the user reads. Robust
Video Matting's r1o..r4o (human-models' rvm, session 68) were judged row by row as answers beside fgr and pha: their
misses filled the refusal line, and r4o was noted as an [N,16,H,W] map to judge as `--output-kind r4o=class_map`.
Decision: a model with other outputs is judged on those (its answers) row by row, and on the answers of the closed
loop, each model fed its own state — where a state's drift matters, it shows there. Its row-by-row figures are kept
under `states`, marked not judged: they say where drift lies, and never refuse or fill the refusal line. No kind is
inferred or noted for a state, and a kind the user gives one is not applied, said in a note. Only a model whose every
output is a state is judged on them row by row, as before: nothing else would show their drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from optimizer.state_loop import StatePair
from quantserve import metrics

Value = TypeVar("Value")


def state_outputs(outputs: Mapping[str, Any], pairs: Sequence[StatePair]) -> frozenset[str]:
    """The state outputs among `outputs`, none where every one of them is a state (then judged as answers)."""
    states = frozenset(pair.output for pair in pairs) & set(outputs)
    return states if set(outputs) - states else frozenset()


def answers_only(outputs: Mapping[str, Value], pairs: Sequence[StatePair]) -> dict[str, Value]:
    """`outputs` less its state outputs (`state_outputs`): what verification judges row by row."""
    states = state_outputs(outputs, pairs)
    return {name: value for name, value in outputs.items() if name not in states}


def states_record(
    expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], pairs: Sequence[StatePair]
) -> dict[str, dict[str, Any]]:
    """Each state output's row-by-row figures (each row fed FP32's state from the data), marked not judged: its
    cosine to FP32 (a non-finite one counts as the worst, -1) and absolute differences."""
    record, states = {}, state_outputs(expected, pairs)
    for pair in (pair for pair in pairs if pair.output in states):
        reference, candidate = np.asarray(expected[pair.output]), np.asarray(got[pair.output])
        cos = np.nan_to_num(metrics.cosine_similarity(reference, candidate), nan=-1.0) if reference.size else [1.0]
        mean_abs, max_abs = metrics.abs_difference(reference, candidate) if reference.size else (0.0, 0.0)
        record[pair.output] = {
            "input": pair.input,
            "judged": False,
            "cosine_mean": float(np.mean(cos)),
            "cosine_worst": float(np.min(cos)),
            "max_abs_diff": max_abs,
            "mean_abs_diff": mean_abs,
        }
    return record


def state_kind_notes(
    output_kinds: Mapping[str, str], pairs: Sequence[StatePair], outputs: Mapping[str, Any]
) -> list[str]:
    """A note for each `--output-kind` given a state output: not applied, and why."""
    states = state_outputs(outputs, pairs)
    return [
        f"--output-kind {pair.output}={output_kinds[pair.output]} not applied: output '{pair.output}' is a recurrent "
        f"state (fed back as input '{pair.input}' next call), carried, not an answer; it is judged by its effect on "
        "the answers fed its own state (closed_loop), its own figures recorded under 'states' (--state none if it is "
        "no state)"
        for pair in pairs
        if pair.output in states and pair.output in output_kinds
    ]
