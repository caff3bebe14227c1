"""deploy.json written strict: a non-finite number in the record (a NaN or infinity in the config or a figure it
carries) as null, never the bare NaN token that jq and JavaScript's JSON.parse refuse; a slower build whose
min_speedup the manifest holds as null deploys with its warning (had been a TypeError)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from serving.build_verdict import missed_checks
from serving.deploy import deploy
from serving.deploy_files import write_json
from tests.serving.test_s59_null_figures_deploy import _read_back


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_deploy_record_writes_a_nan_as_null(tmp_path: Path) -> None:
    record = {"model": "m", "config": {"parameters": {"speedup": math.nan, "limit": math.inf}}, "version": 3}
    write_json(tmp_path / "deploy.json", record)
    data = _strict((tmp_path / "deploy.json").read_text())
    assert data == {"model": "m", "config": {"parameters": {"speedup": None, "limit": None}}, "version": 3}


def test_deploy_of_a_slower_build_whose_min_speedup_is_null_says_its_speedup(tmp_path: Path) -> None:
    slower = {"speedup": 1.05, "holds": False, "min_speedup": math.nan, "threads": 2, "batch_size": 8}
    manifest = _read_back(tmp_path / "b", {"holds": True, "violations": [], "speed": slower})
    assert manifest.verification is not None and manifest.verification["speed"]["min_speedup"] is None
    assert missed_checks(manifest.verification) == [
        "was not shown faster than FP32 at optimize (1.05× FP32); shipped with --allow-slower"
    ]
    deploy(tmp_path / "b", tmp_path / "repo", "slow_int8", max_batch=8)
    assert (tmp_path / "repo" / "slow_int8" / "1" / "deploy.json").is_file()
