"""`evaluate` says where a served model's answers depend on the rows batched with it (dynamic INT8: one activation
scale per batch): a dynamic-INT8 build read accuracy drop 0.00 at --batch-size 7 and 0.33 points at 1 or 32, with no
word that the figure was one batch composition's (session 44)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

from quantserve.cli import main

pytestmark = pytest.mark.e2e


def test_a_served_dynamic_int8_builds_batch_dependence_is_noted(
    tmp_path: Path, triton_server_factory: Callable[..., object]
) -> None:
    data = models.fp32_and_dynamic_int8_repo(tmp_path, max_batch=16)
    server = triton_server_factory(tmp_path / "repo")
    argv = ["evaluate", "--url", server.grpc_url, "--models", "mlp_int8", "--reference", "mlp"]  # type: ignore[attr-defined]
    assert main([*argv, "--data", str(data), "--batch-size", "16", "--no-budget", "--out", str(tmp_path / "ev")]) == 0
    variants = {v["model"]: v for v in json.loads((tmp_path / "ev" / "accuracy.json").read_text())["variants"]}
    notes = variants["mlp_int8"]["notes"]
    assert any(n.startswith("its answers depend on the rows batched with it (its first 8 rows alone") for n in notes)
    assert "--batch-size 16 in order" in " ".join(notes)
    assert not any("rows batched with it" in n for n in variants["mlp"]["notes"])  # FP32 answers each row alike
