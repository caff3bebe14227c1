"""Per-token outputs read together: where two or more outputs of a model are judged by per-token top-1 agreement
over the same (sample, token) positions, the share of positions where all of them agree, judged against the same
top-1 budget.

A token's analysis is read whole: a dependency parser's head and relation label (labelled attachment), a tagger's
part of speech and morphology, two tag sets of one NER model. Judged output by output, a slovnet parser's INT8 heads
agreed 0.9979 and its labels 0.9907, both over the 0.99 budget, and it shipped; the share of tokens whose head and
label both agreed was 0.9894 (BENCHMARKS.md, "slovnet parser"). Outputs over other positions (another length, other
real tokens) are not read together, and a model with one such output is judged as before. Where token labels leave
real tokens unlabelled (-100 at sub-words or at tokens the task never reads), the outputs are read together at the
labelled tokens alone, as each is judged on its own (`drift_metrics.labelled_tokens`), the figure over every real
token kept as information (session 58).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from optimizer.drift_metrics import labelled_tokens, per_token_ids, real_tokens, unlabelled_words
from optimizer.token_values import unit_of

JOINT_KIND = "token_joint"  # the kind of a joint record: its outputs' names joined by "+" key it in the report
JOINT_WHERE = "every output's top-1 at once"


class TokenAnswers(NamedTuple):
    """A per-token output's (N, T) real tokens, those whose top-1 INT8 changed, and the labelled ones where token
    labels leave some real tokens unlabelled (`drift_metrics.labelled_tokens`; None otherwise) with the words saying
    how the others were marked."""

    real: np.ndarray
    changed: np.ndarray
    labelled: np.ndarray | None = None
    unlabelled_as: str = ""


def token_answers(
    kind: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    positions: np.ndarray | None,
    labels: np.ndarray | None = None,
) -> TokenAnswers | None:
    """A (N, T, C) token_classification output's real tokens and the tokens whose top-1 INT8 changed there, or a
    (N, T) per-token ids output's (a tagger's argmax in the graph) and the tokens whose id changed, with the labelled
    tokens where `labels` leave some real ones unlabelled; None for any other output."""
    if positions is not None and per_token_ids(kind, reference, positions):
        changed = reference != candidate
    elif kind == "token_classification" and reference.ndim == 3:
        changed = reference.argmax(axis=2) != candidate.argmax(axis=2)
    else:
        return None
    real = real_tokens(reference, positions)
    labelled = labelled_tokens(real, labels, reference.shape)
    if labelled is None or labels is None:
        return TokenAnswers(real, changed & real)
    return TokenAnswers(real, changed & real, labelled, unlabelled_words(labels, real)["unlabelled_as"])


def joint_records(answers: Mapping[str, TokenAnswers]) -> dict[str, dict[str, Any]]:
    """A record per group of two or more outputs over the same real tokens (`token_answers`), keyed by their names
    joined by "+": the share of those tokens where every output's top-1 is unchanged (`token_agreement`), of the
    labelled ones where labels leave some unlabelled."""
    groups: dict[tuple[tuple[int, ...], bytes, bytes], list[str]] = {}
    for name, answer in answers.items():
        labelled = b"" if answer.labelled is None else np.packbits(answer.labelled).tobytes()
        groups.setdefault((answer.real.shape, np.packbits(answer.real).tobytes(), labelled), []).append(name)
    return {"+".join(names): _joint_record(names, answers) for names in groups.values() if len(names) > 1}


def joint_where(record: Mapping[str, Any]) -> str:
    """Where a joint record's agreement was read, for its violation: "every output's top-1 at once", "…, on its 400
    labelled tokens" where labels left some real tokens unlabelled."""
    if "tokens_real" not in record:
        return JOINT_WHERE
    return f"{JOINT_WHERE}, on its {record['tokens_judged']} labelled {unit_of(record)}"


def _joint_record(names: list[str], answers: Mapping[str, TokenAnswers]) -> dict[str, Any]:
    """The joint record of `names`, outputs over the same real tokens (`joint_records`)."""
    first = answers[names[0]]
    judged = first.real if first.labelled is None else first.labelled
    changed = np.logical_or.reduce([answers[name].changed for name in names])
    count = int(judged.sum())
    record: dict[str, Any] = {
        "kind": JOINT_KIND,
        "outputs": names,
        "token_agreement": 1.0 - float((changed & judged).sum()) / count,
        "tokens_judged": count,
        "samples_unchanged": float(np.mean(~(changed & judged).any(axis=1))),
        "shape": list(first.real.shape),
    }
    if first.labelled is not None:  # the figure over every real token, as information (`drift.tokens_notes`)
        every = int(first.real.sum())
        record.update(unlabelled_as=first.unlabelled_as, tokens_real=every)
        record["token_agreement_real"] = 1.0 - float(changed.sum()) / every
    return record
