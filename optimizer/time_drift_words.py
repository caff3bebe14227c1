"""What an out-of-time refusal says of the drift the INT8 search judged before its time ran out.

A candidate's drift is judged before it is timed (`_SearchRun._measured`), so a search stopped during a candidate's
profile or paired timing has measured its drift and has nothing to ship. EfficientPose (human-models, probe 68G,
--max-search-s 900) was refused with "… stopped at the deadline during the paired timing …: raise the budget with
--max-search-s 1700" while static Q/DQ's drift, judged by then, missed far (worst channel correlation about 0.67
against 0.98): the line never said so, and a user who followed it would spend 1700 s to be refused again. The line now
names each judged candidate as a drift refusal does, and where every one missed far (`FAR_SHORTFALL`), by how much,
before its advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimizer.drift_checks import DriftReport
from optimizer.int8_refusal_words import FAR_SHORTFALL, drift_line
from optimizer.refusal_figures import failing_check_figures, figure_rows

Judged = tuple[str, DriftReport]  # a candidate's name and its drift on the search's held-out rows


def judged_words(judged: Sequence[Judged], rows: tuple[int, int]) -> str:
    """The words for the drift judged: "drift judged before then: static_qdq misses the drift budget (output 'h': …
    < budget 0.98), dynamic holds it", with the drift refusal's "candidates tried (…)" list where two or more were
    judged and one missed; "" where none was judged. `rows`: the search's held-out rows and all of them
    (`failing_check_figures`)."""
    if not judged:
        return ""
    each = ", ".join(
        f"{name} {_held_or_missed(drift, 'it' if i else 'the drift budget')}" for i, (name, drift) in enumerate(judged)
    )
    said = f"drift judged before then: {each}"
    missed = [drift for _, drift in judged if not drift.holds]
    if len(judged) < 2 or not missed:  # one candidate: its figure is said already
        return said
    violation = max(missed, key=lambda drift: drift.margin()).violations[0].to_dict()
    listed, _ = failing_check_figures(violation, figure_rows(violation, _untimed(judged)), {}, rows)
    return f"{said}; {listed}"


def _held_or_missed(drift: DriftReport, budget: str) -> str:
    """The drift refusal's per-candidate words: "misses it (output …)", or "holds it"."""
    return f"holds {budget}" if drift.holds else f"misses {budget} ({drift_line(drift)})"


def _untimed(judged: Sequence[Judged]) -> list[tuple[str, float, DriftReport, DriftReport | None]]:
    return [(name, 0.0, drift, None) for name, drift in judged]  # no speed: stopped before or during its timing


def missed_far(judged: Sequence[Judged]) -> str:
    """Where every judged candidate missed its drift budget by more than FAR_SHORTFALL times the drift it allows,
    how far, with `far_from_budget`'s words for a search that took no mixed-precision step: "it misses by 15× the
    drift the budget allows and the mixed-precision search took no step before the time ran out, so whether more
    time closes it is unknown" (NSNet2's 14× closed in one step, BirdNET's 32× not in 12: the raise-the-budget
    advice stays, the user now weighing it with the miss in hand); "" where none was judged, one held, or one missed
    near."""
    shortfalls = [-drift.margin() for _, drift in judged]
    if not shortfalls or min(shortfalls) <= FAR_SHORTFALL:
        return ""
    each = "it misses" if len(shortfalls) == 1 else f"each of the {len(shortfalls)} judged misses"
    least = f"{min(shortfalls):.0f}×" + (" or more" if len(shortfalls) > 1 else "")
    return (
        f"{each} by {least} the drift the budget allows and the mixed-precision search took no step before the time "
        "ran out, so whether more time closes it is unknown"
    )


def judged_record(judged: Sequence[Judged]) -> dict[str, Any]:
    """For `optimize --json`: each judged candidate's name, whether it held and its violations."""
    each = [
        {"scheme": name, "holds": drift.holds, "margin": round(drift.margin(), 4)}
        | {"violations": [v.to_dict() for v in drift.violations]}
        for name, drift in judged
    ]
    return {"judged_before_time": each} if each else {}
