"""deploy.json written strict: a non-finite number in the record (a NaN or infinity in the config or a figure it
carries) as null, never the bare NaN token that jq and JavaScript's JSON.parse refuse."""

from __future__ import annotations

import json
import math
from pathlib import Path

from serving.deploy_files import write_json


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_deploy_record_writes_a_nan_as_null(tmp_path: Path) -> None:
    record = {"model": "m", "config": {"parameters": {"speedup": math.nan, "limit": math.inf}}, "version": 3}
    write_json(tmp_path / "deploy.json", record)
    data = _strict((tmp_path / "deploy.json").read_text())
    assert data == {"model": "m", "config": {"parameters": {"speedup": None, "limit": None}}, "version": 3}
