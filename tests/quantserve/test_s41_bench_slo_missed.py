"""bench says when tune met no configuration's SLO (session 41: an SLO of 1 ms against a served p50 of 2.5 ms, row
5 deployed with goodput 61 of 1378 req/s and "gain 2.89", with no word; tune alone refuses such a run)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import quantserve.cli.tune
from quantserve.cli.bench_served import TuneRequest, deploy_tuned


@pytest.mark.parametrize("met", [False, True])
def test_a_missed_slo_is_said(met: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trial = SimpleNamespace(p99_ms=4.2, to_json=lambda: {})
    result = SimpleNamespace(
        slo_met=met, best=trial, baseline=trial, deployed={"config": {"max_batch": 8}}, trials=[trial], seconds=1.0,
        gain=2.89, remeasured={},
    )  # fmt: skip

    def fake_tune(settings: Any, say: Any) -> Any:
        return result

    monkeypatch.setattr(quantserve.cli.tune, "tune", fake_tune)
    said: list[str] = []
    request = TuneRequest(tmp_path / "int8", tmp_path / "d.npz", 1.0, 8, 1, tmp_path / "t", 1)
    deploy_tuned(request, tmp_path / "repo", "m_int8_tuned", said.append)
    missed = [line for line in said if line.startswith("tune: no configuration met the SLO p99 ≤ 1 ms")]
    assert bool(missed) is not met
    if missed:
        assert "(its best's p99 4.2 ms): row 5 is tune's closest, deployed anyway" in missed[0]


def test_small_figures_keep_their_digits() -> None:
    from quantserve.cli.bench_peak import share_text

    assert share_text(0.0312) == "0.031" and share_text(3.456) == "3.5" and share_text(123.4) == "123.4"
