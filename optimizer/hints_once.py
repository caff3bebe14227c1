"""A refusal line says a violation's hint once: where the next candidate's miss carries the same hint (how its output
was judged, what the user can do), the clauses already said are left out of it, and what differs (its own worst
position) is kept. MediaPipe's full-range face detector (session 68) was refused in ~2,000 characters, its ~300
characters of "judged per position: … --keep-failing ships the build with this miss recorded" said for static_qdq and
again for static_qdq_compute. Likewise a long clause of where a figure was taken ("per anchor over the 1271 of 2304
anchors where FP32's 'Identity_1' reaches 0.1 …", an anchor head's, `optimizer.anchor_heads`) was said beside each of
the output's four misses and again for the next candidate, five times in 2,649 characters: said once (`where_unsaid`);
a short one ("axis 2, entry 1") names a position and stays with its figure.
"""

from __future__ import annotations

from dataclasses import replace

from optimizer.drift_checks import Violation

LONG_WHERE = 60  # a clause of where a figure lies longer than this is a sentence said once, not a position


def unsaid(violation: Violation, said: set[str] | None) -> Violation:
    """`violation` with its hint's clauses (parts "; "-separated outside parentheses) that `said` holds left out, and
    the others added to `said`, its long where-clauses likewise (`where_unsaid`); unchanged where `said` is None (a
    line of one violation alone)."""
    if said is None:
        return violation
    where = where_unsaid(violation.where, said)
    if not violation.hint:
        return violation if where == violation.where else replace(violation, where=where)
    clauses = hint_clauses(violation.hint)
    new = [clause for clause in clauses if clause not in said]
    said.update(clauses)
    return replace(violation, hint="; ".join(new), where=where)


def where_unsaid(where: str, said: set[str]) -> str:
    """`where` less its clauses of more than LONG_WHERE characters that `said` holds; those it has added to `said`."""
    if not where:
        return where
    clauses = hint_clauses(where)
    long = [clause for clause in clauses if len(clause) > LONG_WHERE]
    kept = [clause for clause in clauses if clause not in long or clause not in said]
    said.update(long)
    return "; ".join(kept)


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
