"""deploy warns where a build whose answers depend on their batch is served in larger batches than verification judged
(session 61): rxnfp's 12-layer BERT, dynamic INT8, verified in batches of 16 (top-1 agreement 1) flipped a near-tie row
in batches of 64, and deploy serves up to 32 rows by default. A warning naming both numbers, not a refusal; nothing for
a batch-independent build, a max batch within the verified one, or a build older than the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantserve.artifact import Manifest
from quantserve.cli import main
from serving.deploy import deploy

DEPENDENT = {"judged_at": "batches of 16 in order", "batch_compositions": [{"composition": "each row alone"}]}


def verified(build: Path, **record: Any) -> Path:
    """`build` with `record` added to its verification record."""
    manifest = Manifest.load(build)
    manifest.verification = {**(manifest.verification or {}), **record}
    manifest.save(build)
    return build


def test_a_max_batch_past_the_verified_one_is_warned_in_one_line(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verified(dense_build, **DEPENDENT, largest_batch_verified=16)
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "rxn", "--max-batch", "64"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "verified in batches" in line]
    assert warned == [
        f"warning: {dense_build}: model '{Manifest.load(dense_build).name}' answers depend on the rows batched with it "
        "(one activation scale per batch) and were verified in batches of at most 16; served with --max-batch 64, a "
        "larger batch may change answers beyond what verification measured: deploy with --max-batch 16, or check the "
        "served model with `quantserve evaluate`"
    ]
    assert (repo / "rxn" / "1").is_dir()  # deployed all the same


def test_the_default_max_batch_is_weighed_too(dense_build: Path, tmp_path: Path) -> None:
    verified(dense_build, **DEPENDENT, largest_batch_verified=16)
    warning = deploy(dense_build, tmp_path / "repo", "rxn").batch_warning
    assert "verified in batches of at most 16; served with --max-batch 32" in warning


@pytest.mark.parametrize(
    "record",
    [
        {**DEPENDENT, "largest_batch_verified": 32},  # verified at the served batch
        {"largest_batch_verified": 8},  # batch-independent: judged once
        DEPENDENT,  # older than the record
    ],
    ids=["verified-at-32", "independent", "older-build"],
)
def test_no_warning_where_the_served_batch_was_verified_or_answers_do_not_move(
    dense_build: Path, tmp_path: Path, record: dict[str, Any]
) -> None:
    assert deploy(verified(dense_build, **record), tmp_path / "repo", "rxn").batch_warning == ""
