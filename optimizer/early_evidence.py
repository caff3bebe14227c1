"""Held-out rows too few to show the drift budget, refused before fuse and calibration.

The refusal depends only on the held-out row count and the outputs' kinds (`drift_evidence.evidence_shortfall`),
and the FP32 model's outputs on the held-out rows give the kinds. The INT8 search decided it after fuse, which took
~6 of chython-rxnmap's 8 minutes before "268 needed, 64 given"; here the exported model answers it first. A model is
run only where the rows are fewer than any budgeted agreement rate may need (`evidence_rows`), and then on
`SCREEN_ROWS` rows first: kinds read there that need no more rows than given let the build go on (the search's own
check, on every row, still follows), so a build that is not refused pays for a few rows, not for every one
(chython-rxnmap's unbatched rows took 1.7 s each on a busy machine). A refusal is confirmed on every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import evidence_refusal, evidence_rows, evidence_shortfall, token_value_outputs
from optimizer.graph_words import read_graph_words
from optimizer.output_kinds import infer_output_kinds
from optimizer.transformer import run_model
from optimizer.verify import verify_batch_size
from quantserve.data import TensorData

SCREEN_ROWS = 32


def early_evidence_refusal(
    model_path: Path, held_out: TensorData, budget: DriftBudget, output_kinds: Mapping[str, str]
) -> str | None:
    """The INT8 search's evidence refusal for the FP32 model at `model_path` (kinds inferred as the search infers
    them, from its outputs on `held_out`), else None; no model is run where the rows are enough for every rate."""
    if len(held_out) >= evidence_rows(budget):
        return None
    rows = len(held_out)
    screen = held_out.take(0, SCREEN_ROWS)
    if rows > SCREEN_ROWS and not _shortfall(model_path, screen, held_out, budget, output_kinds):
        return None
    short = _shortfall(model_path, held_out, held_out, budget, output_kinds)
    return evidence_refusal(short) if short else None


def _shortfall(
    model_path: Path, data: TensorData, held_out: TensorData, budget: DriftBudget, output_kinds: Mapping[str, str]
) -> list[dict[str, Any]]:
    """`evidence_shortfall` of the `held_out` rows, the kinds read from the model's outputs on `data`."""
    reference = run_model(model_path, data, verify_batch_size(model_path, data))
    words = read_graph_words(model_path)  # which outputs a Sigmoid makes, which 2-D ones are per token
    kinds = infer_output_kinds(
        reference,
        output_kinds,
        labels=data.labels,
        inputs=data.arrays,
        axes=words.axes,
        sigmoid=words.sigmoid,
        state=words.state,
    )
    per_token = token_value_outputs(reference, data.arrays)  # values a token at a time, counted by the tokens
    return evidence_shortfall(kinds, budget, len(held_out), held_out.arrays, per_token, reference)
