"""Per-token outputs read together: where two or more outputs of a model are judged by per-token top-1 agreement
over the same (sample, token) positions, the share of positions where all of them agree, judged against the same
top-1 budget.

A token's analysis is read whole: a dependency parser's head and relation label (labelled attachment), a tagger's
part of speech and morphology, two tag sets of one NER model. Judged output by output, a slovnet parser's INT8 heads
agreed 0.9979 and its labels 0.9907, both over the 0.99 budget, and it shipped; the share of tokens whose head and
label both agreed was 0.9894 (BENCHMARKS.md, "slovnet parser"). Outputs over other positions (another length, other
real tokens) are not read together, and a model with one such output is judged as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimizer.drift_metrics import per_token_ids, real_tokens

JOINT_KIND = "token_joint"  # the kind of a joint record: its outputs' names joined by "+" key it in the report
JOINT_WHERE = "every output's top-1 at once"


def token_answers(
    kind: str, reference: np.ndarray, candidate: np.ndarray, positions: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """A (N, T, C) token_classification output's real tokens and the tokens whose top-1 INT8 changed there, both
    (N, T), or a (N, T) per-token ids output's (a tagger's argmax in the graph) and the tokens whose id changed; None
    for any other output."""
    if positions is not None and per_token_ids(kind, reference, positions):
        real = real_tokens(reference, positions)
        return real, (reference != candidate) & real
    if kind != "token_classification" or reference.ndim != 3:
        return None
    real = real_tokens(reference, positions)
    return real, (reference.argmax(axis=2) != candidate.argmax(axis=2)) & real


def joint_records(answers: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """A record per group of two or more outputs over the same real tokens (`token_answers`), keyed by their names
    joined by "+": the share of those tokens where every output's top-1 is unchanged (`token_agreement`)."""
    groups: dict[tuple[tuple[int, ...], bytes], list[str]] = {}
    for name, (real, _) in answers.items():
        groups.setdefault((real.shape, np.packbits(real).tobytes()), []).append(name)
    records = {}
    for names in (names for names in groups.values() if len(names) > 1):
        real = answers[names[0]][0]
        changed = np.logical_or.reduce([answers[name][1] for name in names])
        judged = int(real.sum())
        records["+".join(names)] = {
            "kind": JOINT_KIND,
            "outputs": names,
            "token_agreement": 1.0 - float(changed.sum()) / judged,
            "tokens_judged": judged,
            "samples_unchanged": float(np.mean(~changed.any(axis=1))),
            "shape": list(real.shape),
        }
    return records
