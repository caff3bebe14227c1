"""The note when a deploy and a rollback swapped the served version under load. Probe D (session 63): "served versions
changed during the window (1 → 1, 2)" listed the versions Triton's counters held, not what served (version 1 alone at
the end), and blamed "Triton's counters of an unloaded version are gone", though version 2, unloaded by the rollback,
was still listed with all its 18207 answers (its unload ended 0.34 s after the window, by triton.log); what Triton
lost was version 1's count: loaded again by the rollback at 24.0 s of 25, it counted from zero (2047, exactly the
client's answers from it after 24.0 s), and a deploy's unloaded version 3 was listed at zero (157827 → 0)."""

from __future__ import annotations

import numpy as np
from test_server_counters import client_result
from version_rows import answers

from loadtest.partial_counters import counters_not_whole
from loadtest.recording_files import Window
from loadtest.stage_figures import version_spans
from loadtest.triton_metrics import COUNTERS, VERSIONS, breakdown


def _scrape(**versions: int) -> dict:
    """Triton's counters of model 'm' with each version's successful requests (`v1=6`)."""
    kept = {name[1:]: {counter: float(count) for counter in COUNTERS} for name, count in versions.items()}
    summed = {counter: float(sum(versions.values())) for counter in COUNTERS}
    return {"m": {**summed, VERSIONS: kept}}


def _probes_rows() -> np.ndarray:
    """Version 1, then 2 (deploy at 15.3 s), then 1 again (rollback at 24.0 s); a stray answer of version 1 in flight
    at the swap comes back after version 2's first."""
    return answers([(1, 100.0, 115.3, 400), (2, 115.31, 124.0, 300), (1, 115.32, 115.32, 1), (1, 124.01, 125.0, 50)])


def test_the_counters_note_names_the_answering_order_and_the_true_reason() -> None:
    result = client_result(751, users=4)
    result.version_spans = version_spans(_probes_rows(), 100.0)
    window = Window(100.0, 125.0, _scrape(v1=6), _scrape(v1=50, v2=300), scrape_s=0.01)
    result.server = breakdown(window.metrics_before or {}, window.metrics_after or {}, "m")
    said = counters_not_whole(window, result) or ""
    assert said.startswith("model 'm' served versions changed during the window (1 → 2 → 1): "), said
    assert "unloaded version are gone" not in said
    assert "version 1 answered 451 times, Triton counted 44 of them" in said, said
    assert said.endswith(
        "a version's counters start from zero each time Triton loads it and go to zero once it is unloaded"
    )
