"""A detector's box list split over outputs (the TF OD API / TF.js / TFLite layout): boxes (N, K, 4), scores (N, K)
sorted high to low and classes (N, K), NMS inside the graph, judged together as one box list (`optimizer.box_lists`).

Their rows are ranks, as a box list's are: judged slot by slot, @vladmandic/human's SSD hand detector had its boxes
read as dense per-anchor scores and its classes, scores and anchor indices as embeddings, and a faithful INT8 model
(hands at F1 0.984, IoU 0.981) was refused, 63 convolutions kept FP32 chasing the tail's reordering (probe 66C).
Here the three are assembled into (N, K, 6) rows (`SplitBoxList.rows`) and judged by the box list's matched boxes;
the other outputs ranked with them — an anchor index (N, K), per-class scores (N, K, C), a count (N,) or (N, 1) —
follow its ranks and are not compared on their own (the matched boxes stand for them), not slot by slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.box_lists import BOX_LIST_MIN_ROWS, BoxColumns, is_box_list, sorted_score
from quantserve.errors import QuantserveError

BOX_LIST = "box_list"
JUDGED_WITH = "judged_with"  # a member's record: the box list (its boxes' name) it was judged through
CLASS_SLACK = 0.05  # a class id may sit this far off a whole number (TF.js: 4 + 3/255 from uint8 weights)


@dataclass(frozen=True)
class SplitBoxList:
    """One box list's outputs: its boxes, scores and classes (None where it has none), and the outputs ranked
    with them that are judged through it (`followers`)."""

    boxes: str
    scores: str
    classes: str | None
    followers: tuple[str, ...]

    @property
    def members(self) -> tuple[str, ...]:
        return (self.boxes, self.scores, *((self.classes,) if self.classes else ()), *self.followers)

    def rows(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N, K, 5 or 6) rows [box × 4, score(, class rounded to a whole number)], in `columns`' order."""
        scores = np.asarray(outputs[self.scores], np.float64)[..., None]
        parts: list[np.ndarray] = [np.asarray(outputs[self.boxes], np.float64), scores]
        if self.classes is not None:
            parts.append(np.round(np.asarray(outputs[self.classes], np.float64))[..., None])
        return np.concatenate(parts, axis=2)

    def note(self) -> str:
        """The one line saying how these outputs were judged."""
        named = ", ".join(f"'{name}'" for name in self.members[: 3 if self.classes else 2])
        what = "boxes, scores, classes" if self.classes else "boxes, scores"
        line = f"outputs {named} judged together as one box list ({what}), its rows matched as boxes, not slot by slot"
        if not self.followers:
            return line
        follow = ", ".join(f"'{name}'" for name in self.followers)
        return (
            f"{line}; {follow} follow the box list's ranks and were not compared on their own (the matched boxes "
            "stand for them)"
        )


class SplitBoxKind(str):
    """The kind of a split box list's assembled rows: box_list (equal to the plain string), with its note (recorded
    as the boxes' `kind_note`, as `unscored_heads.NotedKind`'s) and the columns they were put in."""

    note: str
    columns: BoxColumns

    def __new__(cls, note: str, columns: BoxColumns) -> SplitBoxKind:
        kind = super().__new__(cls, BOX_LIST)
        kind.note, kind.columns = note, columns
        return kind

    def __getnewargs__(self) -> tuple[str, BoxColumns]:  # type: ignore[override]
        return self.note, self.columns  # copied and pickled as built: records are deep-copied into the manifest


def split_box_lists(outputs: Mapping[str, np.ndarray], kinds: Mapping[str, str] | None = None) -> list[SplitBoxList]:
    """The split box lists among `outputs`: a float (N, K ≥ 10, 4) output beside a (N, K) one of scores in [0, 1]
    sorted high to low in every sample, matched by K, optionally one of whole numbers (the class: of several, the
    one of smallest values, where an anchor index runs into the thousands); other (N, K) and (N, K, C) outputs and a
    count of at most K per sample follow. Only outputs whose `kinds` is unset or box_list take part (a kind the user
    typed otherwise is judged as typed)."""
    told = kinds or {}
    free = {name: np.asarray(values) for name, values in outputs.items() if told.get(name, BOX_LIST) == BOX_LIST}
    found: list[SplitBoxList] = []
    taken: set[str] = set()
    for boxes in sorted(free):
        shape = free[boxes].shape
        if boxes in taken or not _boxes_shape(free[boxes]):
            continue
        same = [name for name in sorted(free) if name not in taken and name != boxes and free[name].shape == shape[:2]]
        scores = next((name for name in same if sorted_scores(free[name]) and not _whole(free[name])), None)
        if scores is None:
            continue
        whole = [name for name in same if name != scores and _whole(free[name])]
        classes = min(whole, key=lambda name: float(np.abs(free[name]).max())) if whole else None
        group = (boxes, scores, classes)
        followers = [name for name in sorted(free) if name not in (*group, *taken) and _ranked(free[name], shape[:2])]
        found.append(SplitBoxList(boxes, scores, classes, tuple(followers)))
        taken.update(found[-1].members)
    return found


def _boxes_shape(values: np.ndarray) -> bool:
    """Floats (N, K ≥ BOX_LIST_MIN_ROWS, 4): four box values per row."""
    return values.ndim == 3 and values.shape[2] == 4 and values.shape[1] >= BOX_LIST_MIN_ROWS and _floats(values)


def sorted_scores(values: np.ndarray) -> bool:
    """(N, K) floats in [0, 1], not all equal, never rising along K in any sample: scores sorted high to low."""
    if values.ndim != 2 or not _floats(values) or not values.size or not np.isfinite(values).all():
        return False
    return sorted_score(values.astype(np.float64))  # as a box list's score column is read


def _floats(values: np.ndarray) -> bool:
    return bool(np.issubdtype(values.dtype, np.floating))


def _whole(values: np.ndarray) -> bool:
    """Whole numbers, or floats within CLASS_SLACK of them."""
    if not _floats(values):
        return bool(np.issubdtype(values.dtype, np.integer))
    return bool(np.isfinite(values).all() and (np.abs(values - np.round(values)) <= CLASS_SLACK).all())


def _ranked(values: np.ndarray, rows: tuple[int, ...]) -> bool:
    """Ranked with the box list: (N, K) or (N, K, C), or a count per sample ((N,) or (N, 1)) of at most K."""
    if values.shape[:2] == rows and values.ndim in (2, 3):
        return True
    count = values.shape in ((rows[0],), (rows[0], 1)) and _whole(values)
    return bool(count and values.size and values.min() >= 0 and values.max() <= rows[1])


def box_list_kinds(reference: Mapping[str, np.ndarray], kinds: Mapping[str, str]) -> dict[str, str]:
    """`kinds` with every split box list's outputs (`split_box_lists`) read as box_list (`kinds`: the user's typed
    ones, which decide who takes part)."""
    members = [name for group in split_box_lists(reference, kinds) for name in group.members]
    return {name: BOX_LIST for name in members if name not in kinds}


@dataclass
class JoinedBoxLists:
    """The outputs a drift measure reads, each split box list's members replaced by its assembled rows under the
    boxes' name, and the kinds to read them by (`join_box_lists`)."""

    reference: dict[str, np.ndarray]
    candidate: dict[str, np.ndarray]
    kinds: dict[str, str]
    groups: list[SplitBoxList]
    shapes: dict[str, tuple[int, ...]]  # every output's as exported

    def refuse_gates(self, gates: Iterable[tuple[str, ...]]) -> None:
        """A --gate on a member of a split box list is refused: its rows are ranks, judged through the box list, so
        the gate would have been dropped without a word (session 66 review)."""
        for gate in gates:
            group = next((g for g in self.groups if gate[0] in g.members), None)
            if group is not None:
                raise QuantserveError(f"--gate {gate[0]}=…: {group.note()}; drop the gate")

    def finish(self, outputs: dict[str, dict[str, Any]]) -> None:
        """Each group's records: the boxes' shape as exported, and one for each other member, judged through it."""
        for group in self.groups:
            outputs[group.boxes]["shape"] = list(self.shapes[group.boxes])
            for name in group.members[1:]:
                outputs[name] = {"kind": BOX_LIST, "shape": list(self.shapes[name]), JUDGED_WITH: group.boxes}


def join_box_lists(
    reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], kinds: Mapping[str, str]
) -> JoinedBoxLists:
    """Each split box list of `reference` whose members `candidate` has in the same shapes, assembled in both
    (`SplitBoxList.rows`); an output read as box_list that is in none (a subset measured alone) is read as dense."""
    shapes = {name: np.shape(values) for name, values in reference.items()}
    joined = JoinedBoxLists(dict(reference), dict(candidate), dict(kinds), [], shapes)
    for group in split_box_lists(reference, kinds):
        if any(name not in candidate or np.shape(candidate[name]) != shapes[name] for name in group.members):
            continue  # refused by the drift's own shape check
        for name in group.members[1:]:
            del joined.reference[name], joined.candidate[name]
        joined.reference[group.boxes] = group.rows(reference)
        joined.candidate[group.boxes] = group.rows(candidate)
        label = 5 if group.classes else None
        columns = BoxColumns(4, label, (0, 1, 2, 3), _corners(reference[group.boxes]))
        joined.kinds[group.boxes] = SplitBoxKind(group.note(), columns)
        joined.groups.append(group)
    for name, values in joined.reference.items():
        if kinds.get(name) == BOX_LIST and not isinstance(joined.kinds[name], SplitBoxKind) and not is_box_list(values):
            joined.kinds[name] = "dense"
    return joined


def _corners(boxes: np.ndarray) -> bool:
    """Corners (y1, x1, y2, x2 or x1, y1, x2, y2: IoU reads either, both models using the same) where the last two
    never fall below the first two, else a centre and size."""
    boxes = np.asarray(boxes)
    return bool((boxes[..., 2] >= boxes[..., 0]).all() and (boxes[..., 3] >= boxes[..., 1]).all())
