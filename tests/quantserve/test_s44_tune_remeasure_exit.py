"""`tune` exits 1 where the deployed winner's re-measure misses the SLO: a quick search met a 300 ms SLO only in its
confirmation run (281 ms; the search's 688), deployed, re-measured 451.5 ms "ABOVE the 300 ms SLO", and exited 0
(session 44)."""

from __future__ import annotations

from typing import Any

import pytest

from quantserve.cli.commands.tune import deployed_exit


def document(p99: float, failed: int = 0) -> dict[str, Any]:
    return {
        "deployed": {"repo": "repo2", "name": "minilm"},
        "remeasured": {"throughput_rps": 50.0, "p99_ms": p99, "failed_requests": failed},
        "best": {"p99_ms": 281.5},
        "settings": {"slo_p99_ms": 300.0},
    }


def test_a_remeasure_above_the_slo_exits_1_naming_the_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert deployed_exit(document(451.5), allow_slo_miss=False) == 1
    assert capsys.readouterr().err == (
        "quantserve: tune: the winner is deployed in repo2/minilm, but its re-measure's p99 451.5 ms is above the "
        "300 ms SLO: the SLO is not shown to hold there (tune again on a quieter machine, or with a looser "
        "--slo-p99-ms; --allow-slo-miss exits 0)\n"
    )
    assert deployed_exit(document(10.0, failed=3), allow_slo_miss=False) == 1
    assert "its re-measure failed 3 requests" in capsys.readouterr().err


def test_a_remeasure_within_it_or_allowed_to_miss_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert deployed_exit(document(299.0), allow_slo_miss=False) == 0
    assert deployed_exit(document(451.5), allow_slo_miss=True) == 0
    cut = {**document(451.5), "remeasured": {"cut_short": "model unloaded"}}
    assert deployed_exit(cut, allow_slo_miss=False) == 0  # its figures check nothing: said by its own line
    assert capsys.readouterr().err == ""
