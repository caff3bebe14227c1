"""How a sequence output's verdict reads: a sequence read off the values judged with its symbols in place too, a
typed one by its text alone; the in-place refusal dropped where the decoded text already misses; and the line a
refusal carries, naming what was decoded and the --output-kind that judges what the task reads (a CTC recogniser's
best path refused frame by frame as ids among them). Split from `optimizer.drift`, which measures and judges every
output; the paths themselves are decoded in `optimizer.sequence_paths`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optimizer.drift_checks import Violation
from optimizer.sequence_paths import ctc_path
from optimizer.typed_kinds import is_typed


def ctc_path_doubt(name: str, kind: str, reference: np.ndarray, failed: Iterable[str]) -> str:
    """The line a refusal of (N, T) ids judged frame by frame carries: if they are a CTC recogniser's best path (an
    ArgMax per frame in its graph), its text is what is read, and `--output-kind NAME=sequence` judges that."""
    if kind != "ids" or is_typed(kind) or not ctc_path(reference) or "id_agreement" not in set(failed):
        return ""
    if not _path_like(reference):  # a per-frame labeller's ids (an onset a frame late must show): no such reading
        return ""
    return (
        "read as an id per position, every position counted; if it is a CTC recogniser's best path (a class id per "
        f"frame, 0 the blank), pass --output-kind {name}=sequence to judge the text it decodes to"
    )


def _path_like(paths: np.ndarray) -> bool:
    """A best path's look: frames many (≥ 8), the blank (0) the most frequent id, and ids held over runs of frames
    (half the frames or more repeat the frame before)."""
    if paths.shape[1] < 8 or not paths.size or paths.min() < 0:
        return False
    counts = np.bincount(paths.ravel()[:1_000_000])
    repeats = float(np.mean(paths[:, 1:] == paths[:, :-1]))
    return int(counts.argmax()) == 0 and repeats >= 0.5


def sequence_in_place(kind: str, record: dict[str, Any]) -> None:
    """A sequence read off the values is judged with its symbols in place too (`metrics.located_path_agreement`):
    CTC's text and a per-position classifier's sparse calls look alike, and as CTC a classifier's calls are read in
    order only. SpliceAI's (N, 500, 3) splice-site softmax, background first, read as CTC: every call moved 7
    nucleotides kept 0.979 of its decoded sequences and 0.993 of its positions, inside both budgets (session 52). A
    sequence the user typed (`--output-kind NAME=sequence`: a CTC recogniser, its text all that matters) is judged
    by its text alone."""
    if kind == "sequence" and is_typed(kind):
        record.pop("located_agreement", None)


def in_place_unless_text_missed(violations: list[Violation]) -> list[Violation]:
    """`violations` without the symbols-in-place one where the decoded sequences already miss: it can only read as
    low or lower (a row whose text changed is not in place), and the refusal named it beside them as "1 more"."""
    if not any(violation.metric == "sequence_agreement" for violation in violations):
        return violations
    return [violation for violation in violations if violation.metric != "located_agreement"]


def sequence_doubt(name: str, kind: str, record: Mapping[str, Any], failed: Iterable[str]) -> str:
    """The line a refusal on decoded-sequence agreement carries: what was decoded, the per-position figure beside it,
    and the overrides. FSMN-VAD's (1, T, 248) frame posteriors (state 0 silence) were read as CTC and refused at
    sequence agreement 0.56 with 96 % of frames' states and 99.7 % of its speech decisions kept, the line naming
    neither the reading nor a way to judge what the task reads; a spindle detector's (N, 30, 3) confidence, offset and
    duration per segment were read as three classes too."""
    failed = set(failed)
    if kind != "sequence" or not failed & {"sequence_agreement", "located_agreement"}:
        return ""
    positions = record.get("position_agreement")
    per_position = f" (per-position agreement {positions:.4f})" if isinstance(positions, float) else ""
    if record.get("best_path"):  # class ids per frame (`ctc_path_metrics`): no argmax taken, no other reading
        return f"decoded from the best path: repeats merged, then the blank (0) dropped{per_position}"
    if "sequence_agreement" not in failed:  # the same symbols in the same order, some at other positions
        return (
            f"read as per-position calls: each position's argmax, runs of one class merged, the first class (the "
            f"background or CTC's blank) dropped, each call kept within a position of where FP32 has it; the "
            f"sequences alone agree {record['sequence_agreement']:.4f}{per_position}; if it is a CTC recogniser, "
            f"whose decoded text alone matters, pass --output-kind {name}=sequence"
        )
    return (
        f"read as CTC-style sequences: each position's argmax, repeats and the blank merged{per_position}; if each "
        f"position is an answer of its own (frames classified one by one), pass --output-kind {name}="
        f"token_classification, if its columns are quantities, not classes (a score, an offset, a length), "
        f"--output-kind {name}=dense; a --metric (what the task reads of it) is judged beside this, not instead"
    )
