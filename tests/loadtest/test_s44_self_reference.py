"""`evaluate` refuses a model that answers from the very version its reference answers from: `--models c@2
--reference c` with the INT8 canary c@2 the newest live version of c scored INT8 against itself, "ok", exit 0, while
against c@1 (FP32) it missed the budget (session 44)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_model_version_e2e import two_version_repo

from quantserve.cli import main

pytestmark = pytest.mark.e2e


def test_a_variant_answering_from_the_references_own_version_is_refused(
    tmp_path: Path, triton_server_factory: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = two_version_repo(tmp_path)
    server = triton_server_factory(tmp_path / "repo")
    url = server.grpc_url  # type: ignore[attr-defined]
    argv = ["evaluate", "--url", url, "--models", "mlp@2", "--reference", "mlp", "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "ev")]) == 2
    assert capsys.readouterr().err.strip() == (
        "quantserve: error: 'mlp@2' answers from version 2 of 'mlp', the very version the reference 'mlp' answers "
        "from, deployed as int8: compared with itself it drifts by nothing; name the reference's FP32 version "
        "(--reference mlp@N)"
    )
    assert not (tmp_path / "ev" / "accuracy.json").exists()
    assert main([*argv[:-3], "mlp@1", "--data", str(data), "--out", str(tmp_path / "ok"), "--no-budget"]) == 0
