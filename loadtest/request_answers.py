"""Served answers matched request by request, for outputs whose length varies per request.

An --unbatched NMS-style model answers det [K, 6] with K its own per request; stacked, the rows of one model's
request 3 met another's request 2 wherever their K differed (cosine min 0.34 and no word that box counts
changed), or the stacked shapes differed and evaluate stopped with no verdict. Compared request by request, a
changed shape is the answer changed: a line naming how many requests and the first, judged as over budget.
"""

from __future__ import annotations

from quantserve.runner import RequestLog


def shape_changes(reference: RequestLog | None, candidate: RequestLog | None) -> dict[str, str]:
    """{output: line} for each output whose answer shape differs from the reference's in some request; outputs
    answered one row per sample are matched row by row anyway, so they count only where their shapes differ."""
    if reference is None or candidate is None:
        return {}  # not recorded (a recurrent model runs as a stream): the stacked comparison stands
    if reference.rows != candidate.rows:
        varying = set(reference.per_request()) | set(candidate.per_request())
        return {name: _split_differs(name, reference, candidate) for name in sorted(varying)}
    changes = {}
    for name, expected in reference.shapes.items():
        got = candidate.shapes.get(name, expected)
        differ = [i for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
        if differ:
            first = differ[0]
            changes[name] = (
                f"output '{name}': its shape differs from the reference's in {len(differ)} of {len(expected)} requests "
                f"(request {first + 1}: {list(got[first])} vs {list(expected[first])}): the answer changed, so its "
                "values are not compared"
            )
    return changes


def _split_differs(name: str, reference: RequestLog, candidate: RequestLog) -> str:
    return (
        f"output '{name}': its length varies per request, and the samples went in {len(candidate.rows)} requests, "
        f"the reference's in {len(reference.rows)}: its answers cannot be matched to the reference's; evaluate "
        "with --batch-size 1"
    )
