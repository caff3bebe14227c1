"""A min/max refusal's advice to clip outliers with --method percentile or entropy, only where a refused build carried
calibrated activation ranges. g2p's GRU decoder (session 54): its dynamic INT8 build (activations quantized per run)
held row by row and was refused fed its own state, the line ending "--method percentile or --method entropy clips
outliers and may hold it"; rerun with either, the figures were byte-identical and the refusal the same."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_state_loop import _optimize, stateful

from optimizer.drift_budget import BudgetExceeded
from optimizer.int8_schemes import calibrates_activations
from optimizer.int8_search import _SearchRun
from quantserve.cli import main
from quantserve.cli.optimize_refusal import with_method_hint

__all__ = ["stateful"]  # the accumulating model of test_state_loop: INT8 drifts fed its own state under every scheme

CLIPS = "--method percentile or --method entropy clips outliers and may hold it"


@pytest.mark.parametrize(
    ("schemes", "hinted"),
    [(["dynamic"], False), (["dynamic", "dynamic_7bit"], False), (["dynamic", "static_qdq"], True), ([], True)],
)
def test_the_method_hint_follows_the_refused_schemes(schemes: list[str], hinted: bool) -> None:
    options = SimpleNamespace(precision="int8", method="minmax")
    record = {"refused_for": "drift", **({"refused_schemes": schemes} if schemes else {})}
    said = str(with_method_hint(BudgetExceeded("INT8 misses", record), options))
    assert said == (f"INT8 misses; calibrated with --method minmax: {CLIPS}" if hinted else "INT8 misses")


def _only(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The search tries the one scheme `name` (its fallbacks are tried only after the first scheme missed)."""
    schemes = _SearchRun._schemes
    monkeypatch.setattr(_SearchRun, "_schemes", lambda run: [s for s in schemes(run) if s.name == name])


@pytest.mark.parametrize(("scheme", "hinted"), [("dynamic", False), ("static_qdq", True)])
def test_a_stream_refusal_names_its_scheme_and_hints_only_where_it_was_calibrated(
    stateful: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    hinted: bool,
) -> None:
    _only(monkeypatch, scheme)
    assert _optimize(*stateful, tmp_path / "acc", "--json") == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["verification"]["closed_loop"]["holds"] is False and not document["verification"]["violations"]
    # the scheme asked for, or its fallback (static Q/DQ of the compute ops alone, tried where the first missed or
    # ran slower on a busy machine): calibrated alike, or dynamic alike
    refused = document["refused_schemes"]
    assert refused[0].startswith(scheme) and all(calibrates_activations(s) is hinted for s in refused)
    assert captured.err.strip().startswith("quantserve: error: INT8 holds row by row but not fed its own state")
    assert captured.err.strip().endswith(CLIPS) is hinted and ("--method" in document["reason"]) is hinted


def test_a_search_refusal_names_every_scheme_it_tried(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The search refuses where every candidate missed: each one's scheme is a refused build."""
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "tiny"), "--skip-timing"]
    assert main([*argv, "--json", "--output-kind", "logits=dense", "--min-channel-correlation", "1.0"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["refused_schemes"] == sorted({c["scheme"] for c in document["candidates"]})
