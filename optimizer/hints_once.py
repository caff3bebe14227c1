"""A refusal line says a violation's hint once: where the next candidate's miss carries the same hint (how its output
was judged, what the user can do), the clauses already said are left out of it, and what differs (its own worst
position) is kept. MediaPipe's full-range face detector (session 68) was refused in ~2,000 characters, its ~300
characters of "judged per position: … --keep-failing ships the build with this miss recorded" said for static_qdq and
again for static_qdq_compute.
"""

from __future__ import annotations

from dataclasses import replace

from optimizer.drift_checks import Violation


def unsaid(violation: Violation, said: set[str] | None) -> Violation:
    """`violation` with its hint's clauses (parts "; "-separated outside parentheses) that `said` holds left out, and
    the others added to `said`; unchanged where `said` is None (a line of one violation alone)."""
    if said is None or not violation.hint:
        return violation
    clauses = hint_clauses(violation.hint)
    new = [clause for clause in clauses if clause not in said]
    said.update(clauses)
    return violation if len(new) == len(clauses) else replace(violation, hint="; ".join(new))


def hint_clauses(hint: str) -> list[str]:
    """E.g. "judged per position: …, the worst at position 7 of 9; a --metric (…) is judged beside this, …" as its two
    clauses; a "; " inside parentheses splits nothing."""
    clauses, depth, start = [], 0, 0
    for at, char in enumerate(hint):
        depth += (char == "(") - (char == ")")
        if depth == 0 and hint.startswith("; ", at):
            clauses.append(hint[start:at])
            start = at + 2
    return [*clauses, hint[start:]]
