"""deploy names a build shipped past its own checks (optimize --keep-failing / --allow-slower): it served silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantserve.cli import main
from serving.build_verdict import missed_checks

MISSED = {"holds": False, "violations": [{"line": "output 'y': top-1 agreement 0.95 < budget 0.99"}, {"line": "x"}]}


def test_each_missed_check_is_one_line_naming_the_flag_that_shipped_it() -> None:
    assert missed_checks(None) == [] and missed_checks({"holds": True, "speed": {"holds": True}}) == []
    lines = missed_checks({"holds": True, "closed_loop": MISSED, "speed": {"holds": False, "speedup": 0.87}})
    assert lines == [
        "missed its drift budget as a stream fed its own state: output 'y': top-1 agreement 0.95 < budget 0.99 "
        "(and 1 more); shipped with --keep-failing",
        "was slower than FP32 at optimize (0.87×); shipped with --allow-slower",
    ]


def test_deploy_warns_of_a_build_shipped_past_its_drift_budget(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest_path = dense_build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "ok"]) == 0
    assert "warning" not in capsys.readouterr().err
    manifest["verification"] = {**(manifest.get("verification") or {}), **MISSED}
    manifest_path.write_text(json.dumps(manifest))
    assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "kept"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {dense_build} missed its drift budget row by row: output 'y'" in err
    assert "shipped with --keep-failing: evaluate it through the server first" in err
