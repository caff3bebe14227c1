"""Per-stage figures of a staged load (`load_pattern.Staged`): users, requests, throughput, latency and failures
between the moments Locust's `LoadTestShape` switched users, which the shape records itself (`stages.json` beside
the raw latencies, written by `locustfile_staged.py` as each stage starts).

One window's figures over a spike blend its stages: `--stages 2:6s,48:6s,2:6s` measured p50 1.08 ms (the 2-user
stages' answers) beside p99 28.1 ms (the 48-user stage's queue), a pair no stage had. The shape's own boundaries,
not `--stages` added up from the window's start: the window opens when the first stage's users are spawned, and a
stage begins at the shape's first tick past the one before (ticks run once a second, late while users spawn).
A request counts in the stage its answer came back in, as in the per-second timeline. Each stage keeps the share of
the cores other processes took in it; where that differs between stages, a note gives each (`stages_note`).

The user's own shape (`--shape`, `locustfile_user_shape.py`) records its stages the same way as they start, their
number and lengths not known ahead (written 0), and where and why it ended (`shape_end.json`: its tick() returned
None, raised, or the cap was reached); `read_stage_starts` fills both in from the shape's own switches.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.percentiles import LatencySummary
from loadtest.recording_files import VERSION_COLUMN
from loadtest.utilization import Utilization, others_shift

STAGES_FILE = "stages.json"
SHAPE_END_FILE = "shape_end.json"  # the user's shape: when it ended, and a note where not by its own None
# how `locustfile_user_shape.py`'s notes begin at its cap (the planned end, exit 0) and end where its tick() raised
SHAPE_CAP_NOTE = "the shape's tick() had not returned None by its cap"
SHAPE_CUT_TAIL = "; the run ended there, with the figures so far"


@dataclass
class StageFigures:
    """One stage of a staged window, measured between the shape's switches (clipped to the measured window)."""

    number: int  # 1-based, of `stages`
    stages: int
    users: int
    planned_s: float  # the stage's length as --stages asked
    start_s: float  # from the start of the measured window
    end_s: float
    requests: int  # succeeded and failed, ending in the stage
    failed_requests: int
    throughput_rps: float  # successful requests per second of the stage
    latency: LatencySummary
    note: str = ""  # the user's shape (--shape) ended in this stage otherwise than by its tick() returning None
    others_share: float | None = None  # other processes' share of the machine's cores in the stage (None: unread)
    reached: int | None = None  # --shape: the most users Locust's runner had running in it (None: not read)
    # the model versions that answered in it, as Triton's responses named them (None: a record from before they were
    # kept; empty: nothing answered)
    versions: list[int] | None = None

    @property
    def label(self) -> str:
        """`stage 2/3: 48 users`; `stage 2/2: 24 of 40 users` where fewer ran than it asked."""
        return f"stage {self.number}/{self.stages}: {self.users_ran} user{'s' if self.users != 1 else ''}"

    @property
    def users_ran(self) -> str:
        """`40`, or `24 of 40` where Locust's runner never had all the users the stage asked running (a stage cut
        mid-rise; `reached`)."""
        if self.reached is None or self.reached >= self.users:
            return str(self.users)
        return f"{self.reached} of {self.users}"

    @property
    def cut_short(self) -> str:
        """Why the user's shape ended before its planned end (its tick() raised or answered no load): the note
        without its tail; "" where it ended by its own None (planned stages that never ran are noted, not cut: the
        shape's own clock ended it) or at its cap."""
        if not self.note.endswith(SHAPE_CUT_TAIL) or self.note.startswith(SHAPE_CAP_NOTE):
            return ""
        return self.note.removesuffix(SHAPE_CUT_TAIL)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageFigures:
        return cls(**{**data, "latency": LatencySummary(**data["latency"])})


def write_stage_start(record_dir: Path, number: int, stages: int, users: int, seconds: float, at: float) -> None:
    """Add stage `number` (1-based) of `stages`, started at wall time `at`, to `record_dir/stages.json`, replaced
    whole so a run killed meanwhile leaves the stages started before it."""
    path = Path(record_dir) / STAGES_FILE
    started = json.loads(path.read_text()) if path.is_file() else []
    started.append({"number": number, "stages": stages, "users": users, "seconds": seconds, "started": at})
    _replace(path, started)


def write_stage_reached(record_dir: Path, number: int, users: int) -> None:
    """Stage `number` had `users` running at once (Locust's runner, read at a tick of the user's shape): recorded as
    its `reached` in `record_dir/stages.json`, replaced whole."""
    path = Path(record_dir) / STAGES_FILE
    started = json.loads(path.read_text()) if path.is_file() else []
    for stage in started:
        if stage["number"] == number:
            stage["reached"] = users
    _replace(path, started)


def write_shape_end(record_dir: Path, at: float, note: str) -> None:
    """The user's shape ended at wall time `at`; `note` says why where not by its tick() returning None ("")."""
    _replace(Path(record_dir) / SHAPE_END_FILE, {"ended": at, "note": note})


def _replace(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` whole, so a run killed meanwhile leaves the file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps(data))
    os.replace(scratch, path)


def read_stage_starts(record_dir: Path) -> list[dict[str, Any]]:
    """The stages the shape started, in order (empty for a load of one kind throughout: no file); the user's shape's
    count and lengths filled in (`_as_ran`)."""
    path = Path(record_dir) / STAGES_FILE
    starts = json.loads(path.read_text()) if path.is_file() else []
    end = Path(record_dir) / SHAPE_END_FILE
    return _as_ran(starts, json.loads(end.read_text()) if end.is_file() else None)


def _as_ran(starts: list[dict[str, Any]], end: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The user's shape's stages (written with 0 stages) with their count, their lengths between its switches (the
    last to its end; 0 where it never ended: an interrupted run) and the note on how it ended on the last."""
    if not starts or starts[0]["stages"]:
        return starts
    ends = [float(s["started"]) for s in starts[1:]] + [float(end["ended"]) if end else math.nan]
    ran = [
        {**s, "stages": len(starts), "seconds": round(e - float(s["started"]), 1) if math.isfinite(e) else 0.0}
        for s, e in zip(starts, ends, strict=True)
    ]
    ran[-1]["note"] = end["note"] if end else ""
    return ran


def stage_figures(
    samples: np.ndarray,
    start: float,
    end: float,
    starts: list[dict[str, Any]],
    utilization: Utilization | None = None,
) -> list[StageFigures]:
    """Each started stage's figures from `samples` rows of (end wall time, latency ms, 1 ok / 0 failed, ...) ending
    in the window [start, end]: a stage runs from its start (the window's start for the first) to the next one's
    start (the window's end for the last). With the step's `utilization`, each stage's others' share of the cores
    from its samples in the stage (`stages_note`)."""
    rows = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1) if len(samples) else np.zeros((0, 3))
    bounds = [max(start, float(s["started"])) for s in starts] + [end]
    bounds[0] = start
    figures = []
    for i, stage in enumerate(starts):
        low, high = bounds[i], max(bounds[i], min(bounds[i + 1], end))
        last = i == len(starts) - 1
        here = (rows[:, 0] >= low) & ((rows[:, 0] <= high) if last else (rows[:, 0] < high))
        ok = here & (rows[:, 2] > 0.5)
        span = high - low
        figures.append(
            StageFigures(
                number=int(stage["number"]),
                stages=int(stage["stages"]),
                users=int(stage["users"]),
                planned_s=float(stage["seconds"]),
                start_s=round(low - start, 3),
                end_s=round(high - start, 3),
                requests=int(here.sum()),
                failed_requests=int((here & ~ok).sum()),
                throughput_rps=float(ok.sum() / span) if span > 0 else math.nan,
                latency=LatencySummary.from_samples(rows[ok, 1]),
                note=str(stage.get("note", "")),
                others_share=utilization.others_share_between(low, high) if utilization else None,
                reached=int(stage["reached"]) if stage.get("reached") is not None else None,
                versions=answering_versions(rows[ok]),
            )
        )
    return figures


def answering_versions(rows: np.ndarray) -> list[int] | None:
    """The versions named by the answers in `rows` (`VERSION_COLUMN`); None where the record did not keep them."""
    if rows.shape[1] <= VERSION_COLUMN:
        return None
    named = rows[:, VERSION_COLUMN]
    if len(named) and not named.any():  # answers, none naming its version: a record from before it was kept
        return None
    return [int(version) for version in np.unique(named[named > 0])]  # sorted, as np.unique leaves them


# a version's answers are split into spans where it gave none for SPLIT_GAP_S or more while others gave SPLIT_OTHERS or
# more: a rollback (1, then 2, then 1 again), not an answer of the old version in flight at a swap
SPLIT_GAP_S = 1.0
SPLIT_OTHERS = 2


def version_spans(rows: np.ndarray, start: float) -> list[dict[str, float]] | None:
    """Each stretch of one version's answers in `rows` (answered requests, `VERSION_COLUMN`), in the order they began:
    its first and last answer, in seconds from the window's `start`, and its answers; None where the record did not
    keep them. A deploy and a rollback gave one span to version 1 from 0.0 s to 25.0 s beside version 2's from 15.3 s
    to 24.0 s, read as version 1 all along (session 63): version 1's answers are now two spans around version 2's."""
    if answering_versions(rows) is None:
        return None
    ordered = rows[np.argsort(rows[:, 0], kind="stable")]
    named = ordered[ordered[:, VERSION_COLUMN] > 0]
    spans = [_span(int(version), part, start) for version, part in _stretches(named)]
    return sorted(spans, key=lambda span: span["first_s"])


def _stretches(named: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Each version's answers (rows in time order, all naming a version), split at the gaps `SPLIT_GAP_S` long in
    which other versions answered `SPLIT_OTHERS` times or more."""
    stretches = []
    for version in np.unique(named[:, VERSION_COLUMN]):
        at = np.flatnonzero(named[:, VERSION_COLUMN] == version)
        others = np.diff(at) - 1  # other versions' answers between two of this version's
        gaps = np.diff(named[at, 0])
        cuts = np.flatnonzero((gaps >= SPLIT_GAP_S) & (others >= SPLIT_OTHERS)) + 1
        stretches += [(int(version), named[part]) for part in np.split(at, cuts)]
    return stretches


def _span(version: int, rows: np.ndarray, start: float) -> dict[str, float]:
    ends = rows[:, 0] - start
    return {
        "version": version,
        "first_s": round(float(ends.min()), 3),
        "last_s": round(float(ends.max()), 3),
        "answers": int(ends.size),
    }


def spans_note(label: str, spans: list[dict[str, float]] | None) -> str | None:
    """Where more than one version answered a window: when each did, in the order they began, a version that came
    back said "again" and one answering while another's span went on said "alongside". A deploy and a rollback within
    a run left the same version served at its start and end, and the run said nothing of the other (session 50); a
    swap was said only as "1 → 2", not when."""
    if not spans or len({int(span["version"]) for span in spans}) < 2:
        return None
    ordered = sorted(spans, key=lambda span: span["first_s"])
    said = []
    for i, span in enumerate(ordered):
        earlier = ordered[:i]
        again = " again" if any(int(s["version"]) == int(span["version"]) for s in earlier) else ""
        answers = int(span["answers"])
        words = (
            f"version {int(span['version'])}{again} from {span['first_s']:.1f} s to {span['last_s']:.1f} s "
            f"({answers} answer{'s' if answers != 1 else ''})"
        )
        if not earlier:
            said.append(f"answered by {words}")
        elif span["first_s"] < max(s["last_s"] for s in earlier) - SPLIT_GAP_S:
            said.append(f"alongside it {words}")
        else:
            said.append(f"then {words}")
    return f"{label}: {', '.join(said)} of its window: its figures are of all of them"


def answering_order(spans: list[dict[str, float]] | None) -> str | None:
    """The versions in the order their spans began, `1 → 2 → 1`; None where fewer than two answered (or unkept)."""
    if not spans or len({int(span["version"]) for span in spans}) < 2:
        return None
    return " → ".join(str(int(span["version"])) for span in sorted(spans, key=lambda span: span["first_s"]))


def versions_note(label: str, stages: list[StageFigures]) -> str | None:
    """The versions that answered each stage, where more than one answered over the stages: a staged load during
    which the model was swapped (a deploy, a rollback) said so only for the whole run, and a reader put the stage's
    latency step down to its users (session 50). A stage answered by two versions had the swap inside it."""
    named = [stage for stage in stages if stage.versions]
    if len({version for stage in named for version in stage.versions or []}) < 2:
        return None
    said = [f"{stage.number}/{stage.stages} by {_versions_words(stage.versions or [])}" for stage in named]
    mixed = [f"{stage.number}/{stage.stages}" for stage in named if len(stage.versions or []) > 1]
    inside = f"; the swap fell inside stage {', '.join(mixed)}, whose figures are of both" if mixed else ""
    return (
        f"{label}: the model's served version changed during the stages — stage {'; '.join(said)}{inside}: the "
        "stages' figures differ by the version as well as by their users"
    )


def _versions_words(versions: list[int]) -> str:
    words = [str(version) for version in versions]
    return f"version {words[0]}" if len(words) == 1 else f"versions {', '.join(words[:-1])} and {words[-1]}"


def stages_note(label: str, stages: list[StageFigures]) -> str | None:
    """Each stage's others' share where it differs by `OTHERS_SHIFT` or more between stages: `--stages
    4:10s,4:10s,4:10s` gave 375, 246 and 514 req/s with no word while other processes took 41, 58 and 25 % of the
    cores, by the run's own samples; the stages' figures then differ by that load as well as by their users."""
    if others_shift({stage.number: stage.others_share for stage in stages}) is None:
        return None
    shares = [f"{stage.others_share:.0%} in stage {stage.number}" for stage in stages if stage.others_share is not None]
    return (
        f"{label}: other processes' share of the machine's cores was {', '.join(shares[:-1])} and {shares[-1]}: the "
        "stages' figures differ by that load as well as by their users; rerun on a quiet machine before comparing them"
    )
