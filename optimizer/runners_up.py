"""The INT8 search's runners-up: the other candidates that held the drift budget where its winner was chosen, recorded
by the search (`held_also` in the calibrate stage's record) and named by a verification refusal of the winner for a
check the search did not put them through (`untried_words`).

The search judges each candidate row by row on its first `max_eval_samples` held-out rows (a stateful model's rows
each fed FP32's state; dynamic INT8 at every batch composition, static Q/DQ with the rows in order) and its winner on
every held-out row, fed its own state (`optimizer.state_loop`) and decoding on its own (`optimizer.rollout`), the
next fastest put through the same where it misses (`optimizer.int8_confirm`); verification then judges the winner
again, and at every batch composition on every row (`optimizer.verify.verified_compositions`). Where it refuses the
winner there, the line said nothing of the others that held: a user could not tell that another scheme had held, nor
whether it was put through that check (the search's time may run out first) and what it missed there (`MISSED`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from optimizer.drift_checks import DriftReport
from optimizer.int8_measure import Candidate
from optimizer.int8_schemes import DynamicScheme, Scheme

HELD_ALSO = "held_also"  # the calibrate stage's key, and a verification refusal's
SEARCHED_ROWS = "searched_rows"  # the calibrate stage's: the held-out rows the search judged its candidates on
NOT_CHECKED = "not_checked"  # a verification refusal's: the check the runners-up were not put through
MISSED = "missed"  # a runner-up's: the check the search's confirmation put it through and it missed ("": none)
CLOSED_LOOP, ROLLOUT, ALL_ROWS, COMPOSITIONS = "closed_loop", "rollout", "all_rows", "batch_compositions"
# the checks a stateful model's candidates are confirmed by (`int8_confirm`), each its name and how it runs them
STREAM_CHECKS = {
    CLOSED_LOOP: ("the closed-loop check", "each fed its own state"),
    ROLLOUT: ("the free-running rollout", "each decoding on its own"),
}


def runners_up_record(
    chosen: Candidate,
    held: Sequence[Candidate],
    every_row: Mapping[Path, tuple[Candidate, DriftReport]],
    name: Callable[[Candidate], str],
    schemes: Mapping[str, Scheme],
    searched: int,
    missed: Mapping[Path, str] = MappingProxyType({}),
) -> dict[str, Any]:
    """The calibrate stage's record of the search's runners-up (`HELD_ALSO`) and the held-out rows it judged them on
    (`searched`): the candidates that `held` (the search's acceptance: the budget with its headroom, something in
    INT8) other than `chosen`, fastest first, less those judged on every row and missing there (`every_row`,
    `_confirmed`'s): each one's scheme, its `name` (" with N compute nodes FP32" where a mix kept some), its speed and
    margin in the search, whether it was judged at every batch composition (dynamic INT8) or in order, and the
    stream check the search's confirmation put it through and it `missed` (`STREAM_CHECKS`; "" where none)."""
    others = [
        {
            "scheme": c.scheme,
            "name": name(c),
            "speedup": c.speedup,
            "margin": c.drift.margin(),
            "compositions": isinstance(schemes.get(c.scheme), DynamicScheme),
            MISSED: missed.get(c.path, ""),
        }
        for c in sorted(held, key=lambda c: -c.speedup)
        if c is not chosen and every_row.get(c.path, (c, c.drift))[1].holds
    ]
    return {SEARCHED_ROWS: searched, HELD_ALSO: others}


def not_checked(verification: Mapping[str, Any], searched: int) -> str:
    """The check verification refused the winner on that the search put no other candidate through: the closed loop
    or the rollout (never run in the search), every held-out row (past the search's `searched`), a batch composition
    (static Q/DQ candidates were judged in order only); "" where the search judged them as verification did."""
    if not (verification.get("closed_loop") or {}).get("holds", True):
        return CLOSED_LOOP
    if not (verification.get("rollout") or {}).get("holds", True):
        return ROLLOUT
    if int(verification.get("samples") or 0) > searched:
        return ALL_ROWS
    compositions = verification.get("batch_compositions") or []
    missed = [c for c in compositions if not c.get("holds", True)]
    return COMPOSITIONS if missed and missed != compositions[:1] else ""


def _check_words(check: str, verification: Mapping[str, Any]) -> str:
    if check in STREAM_CHECKS:
        return "{} ({})".format(*STREAM_CHECKS[check])
    if check == ALL_ROWS:
        return f"verification's judgement on all {verification.get('samples')} held-out rows"
    return f"verification's judgement at every batch composition (this one missed with {verification.get('judged_at')})"


def untried_words(verification: Mapping[str, Any], stages: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The words a verification refusal of the search's winner ends with, naming the search's other candidates that
    held (`held_also`): those its confirmation put through a stream check and what each missed there, and those it
    did not put through the check refused (its time ran out, or the winner held it there), and its record; ("", {})
    where there were none, or the search judged them as verification judged the winner. No optimize option picks a
    scheme: said where one was not put through, so the user knows the search, not a flag, chose."""
    search = next((s for s in stages if s.get("stage") == "calibrate" and HELD_ALSO in s), None)
    if search is None or not search[HELD_ALSO]:
        return "", {}
    check = not_checked(verification, int(search.get(SEARCHED_ROWS) or 0))
    others = [o for o in search[HELD_ALSO] if o.get(MISSED) or check != COMPOSITIONS or not o.get("compositions")]
    if not check or not others:
        return "", {}
    rows = search.get(SEARCHED_ROWS)
    tried, untried = [o for o in others if o.get(MISSED)], [o for o in others if not o.get(MISSED)]
    words = [_tried_words(tried, rows)] if tried else []
    if untried:
        named = ", ".join(f"{o['name']} ({o['speedup']:.2f}× in the search)" for o in untried)
        many = len(untried) > 1
        words.append(
            f"the search's other candidate{'s' * many} that held the budget on its {rows} held-out rows, {named}, "
            f"{'were' if many else 'was'} not put through {_check_words(check, verification)}: no optimize option "
            "picks one (the search chose this one as the fastest that held)"
        )
    return "; ".join(words), {HELD_ALSO: others, **({NOT_CHECKED: check} if untried else {})}


def _tried_words(tried: Sequence[Mapping[str, Any]], rows: Any) -> str:
    """The search's runners-up its confirmation put through a stream check, each with the one it missed."""
    named = ", ".join(
        f"{o['name']} ({o['speedup']:.2f}× in the search) missed {_check_words(o[MISSED], {})}" for o in tried
    )
    many = len(tried) > 1
    return (
        f"the search's other candidate{'s' * many} that held the budget on its {rows} held-out rows "
        f"{'were' if many else 'was'} put through the same checks in the search: {named}"
    )
