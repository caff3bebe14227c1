"""`evaluate`'s batch-dependence note names the rows each request actually carried: the served model's max_batch_size
caps them (`TritonRunner` sends a larger batch in slices). An ethnicolr LSTM served at max batch 32 read "these
figures are at --batch-size 64 in order" while every request held 32 rows, and --batch-size 64 and 32 gave the very
same figures (session 59)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

from loadtest.evaluator_failures import rows_sent_words
from quantserve.cli import main

pytestmark = pytest.mark.e2e


def test_a_batch_over_the_served_max_is_named_as_the_rows_sent() -> None:
    assert (
        rows_sent_words(64, 32)
        == "32 rows a request in order (--batch-size 64, capped by the model's max_batch_size 32)"
    )
    assert rows_sent_words(16, 32) == "--batch-size 16 in order"
    assert rows_sent_words(32, 32) == "--batch-size 32 in order"
    assert rows_sent_words(8, 0) == "--batch-size 8 in order"  # a model that does not batch: no cap to name


def _notes(argv: list[str], out: Path) -> tuple[list[str], dict[str, float]]:
    assert main([*argv, "--out", str(out)]) == 0
    variants = {v["model"]: v for v in json.loads((out / "accuracy.json").read_text())["variants"]}
    int8 = variants["mlp_int8"]
    return int8["notes"], {"top1": int8["top1_agreement"], "mad": int8["mean_abs_diff"]}


def test_a_served_max_batch_of_4_is_the_batch_the_note_names(
    tmp_path: Path, triton_server_factory: Callable[..., object]
) -> None:
    data = models.fp32_and_dynamic_int8_repo(tmp_path, max_batch=4)
    server = triton_server_factory(tmp_path / "repo")
    argv = ["evaluate", "--url", server.grpc_url, "--models", "mlp_int8", "--reference", "mlp", "--data", str(data)]  # type: ignore[attr-defined]
    notes, figures = _notes([*argv, "--batch-size", "16", "--no-budget"], tmp_path / "b16")
    said = " ".join(notes)
    assert (
        "these figures are at 4 rows a request in order (--batch-size 16, capped by the model's max_batch_size 4)"
        in said
    )
    assert "--batch-size 16 in order" not in said
    # what the note says is what ran: --batch-size 4 sends the same requests and reads the same figures
    notes4, figures4 = _notes([*argv, "--batch-size", "4", "--no-budget"], tmp_path / "b4")
    assert figures4 == figures
    assert "these figures are at --batch-size 4 in order" in " ".join(notes4)
