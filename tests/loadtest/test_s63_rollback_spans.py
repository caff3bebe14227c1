"""A deploy and a rollback under load. Probe D (session 63): `loadtest --users 4 --duration 25s` while `deploy --url`
loaded version 2 at 15.3 s and `rollback --url` brought version 1 back at 24.0 s. The note read "answered by version 1
from 0.0 s to 25.0 s (34360 answers), then version 2 from 15.3 s to 24.0 s": version 1 all along, version 2 beside it,
the rollback hidden. Each version's answers are now split where another answered between (version 1 0.0-15.2 s,
version 2 15.3-24.0 s, version 1 again 24.1-25.0 s, read from the probe's own record)."""

from __future__ import annotations

import numpy as np
from version_rows import answers

from loadtest.stage_figures import spans_note, version_spans


def _probes_rows() -> np.ndarray:
    """Version 1, then 2 (deploy at 15.3 s), then 1 again (rollback at 24.0 s); a stray answer of version 1 in flight
    at the swap comes back after version 2's first."""
    return answers([(1, 100.0, 115.3, 400), (2, 115.31, 124.0, 300), (1, 115.32, 115.32, 1), (1, 124.01, 125.0, 50)])


def test_a_rollback_is_said_in_the_order_the_versions_answered() -> None:
    spans = version_spans(_probes_rows(), 100.0)
    assert [(s["version"], s["first_s"], s["last_s"], s["answers"]) for s in spans or []] == [
        (1, 0.0, 15.32, 401),
        (2, 15.31, 24.0, 300),
        (1, 24.01, 25.0, 50),
    ]
    assert spans_note("m @ 4 users", spans) == (
        "m @ 4 users: answered by version 1 from 0.0 s to 15.3 s (401 answers), then version 2 from 15.3 s to 24.0 s "
        "(300 answers), then version 1 again from 24.0 s to 25.0 s (50 answers) of its window: its figures are of "
        "all of them"
    )


def test_versions_answering_alongside_are_not_split() -> None:
    """Two versions both loaded, answering in turn (another client addressing one): one span each, overlapping."""
    rows = answers([(1, 100.0, 110.0, 200), (2, 100.02, 110.02, 200)])
    rows = rows[np.argsort(rows[:, 0])]
    spans = version_spans(rows, 100.0)
    assert [(s["version"], s["answers"]) for s in spans or []] == [(1, 200), (2, 200)]
    assert "alongside" in (spans_note("m", spans) or "")
