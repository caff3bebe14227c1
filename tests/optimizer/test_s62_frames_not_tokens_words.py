"""Where a model's sequence is float frames a length input counts (a sleep stager's epochs), not integer token ids,
its per-position figures are said per position (session 62): optimize's notes, violations, thin-evidence lines and
refusals read "per-token top-1 agreement … over 264 held-out real tokens" for a stager that takes no token. Integer
token ids keep "tokens". Decided from the data once (`token_values.position_unit`)."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import kind_notes, labelled_tokens_note, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import evidence_refusal, evidence_shortfall, thin_evidence, thin_evidence_line
from optimizer.token_lengths import told_length
from optimizer.token_values import position_unit

N, T, C = 60, 12, 4


def _frames(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, T - 2, N).astype(np.int64)
    real = np.arange(T)[None, :] < lengths[:, None]
    features = np.where(real[:, :, None], rng.standard_normal((N, T, 5)), -1.0).astype(np.float32)
    return {"features": features, "lengths": lengths}, real


def _tokens(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    frames, real = _frames(seed)
    ids = np.where(real, np.random.default_rng(seed).integers(5, 90, (N, T)), 0).astype(np.int64)
    return {"input_ids": ids, "lengths": frames["lengths"]}, real


def _outputs(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = np.random.default_rng(7).standard_normal((*real.shape, C)) * 3
    reference = (np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)).astype(np.float32)
    candidate = reference.copy()
    flipped = real & (np.random.default_rng(8).random(real.shape) < 0.1)
    candidate[flipped] = np.roll(candidate[flipped], 1, axis=1)
    return reference, candidate


def test_the_unit_is_read_off_the_data() -> None:
    assert position_unit(_frames()[0]) == "positions"
    assert position_unit(_tokens()[0]) == "tokens"


@pytest.mark.parametrize(("data", "unit", "one"), [(_frames, "positions", "position"), (_tokens, "tokens", "token")])
def test_violations_and_notes_say_the_unit(data, unit: str, one: str) -> None:  # type: ignore[no-untyped-def]
    inputs, real = data()
    reference, candidate = _outputs(real)
    kinds = {"stages": "token_classification"}
    with told_length("lengths"):
        report = measure_drift({"stages": reference}, {"stages": candidate}, kinds, DriftBudget(), inputs=inputs)
    lines = [v.line("token_classification") for v in report.violations]
    assert lines[0].startswith(f"output 'stages' (token_classification): per-{one} top-1 agreement "), lines
    notes = kind_notes(report.outputs)
    assert any(n.startswith(f"output 'stages': judged over its real {unit}, positions 0..length-1") for n in notes)
    labels = np.where(real & (np.arange(T)[None, :] % 2 == 0), reference.argmax(axis=2), -100)
    with told_length("lengths"):
        labelled = measure_drift(
            {"stages": reference}, {"stages": candidate}, kinds, DriftBudget(), labels=labels, inputs=inputs
        )
    note = labelled_tokens_note("stages", labelled.outputs["stages"])
    assert note.startswith(f"output 'stages': per-{one} top-1 agreement judged on the "), note
    assert f" labelled {unit} (labels -100 elsewhere); over all {int(real.sum())} real {unit} " in note, note
    wheres = [v.where for v in labelled.violations if v.metric == "token_agreement"]
    assert wheres and all(w.endswith(f"labelled {unit}") for w in wheres), wheres


@pytest.mark.parametrize(("data", "unit", "one"), [(_frames, "positions", "position"), (_tokens, "tokens", "token")])
def test_evidence_lines_say_the_unit(data, unit: str, one: str) -> None:  # type: ignore[no-untyped-def]
    inputs, real = data()
    rows = 30  # fewer real positions than a 0.99 budget needs to show
    inputs, real = {name: value[:rows] for name, value in inputs.items()}, real[:rows]
    reference, _ = _outputs(real)
    kinds = {"stages": "token_classification"}
    with told_length("lengths"):
        short = evidence_shortfall(kinds, DriftBudget(), rows, inputs)
        report = measure_drift({"stages": reference}, {"stages": reference}, kinds, DriftBudget(), inputs=inputs)
    refusal = str(evidence_refusal(short))
    assert f"per-{one} top-1 agreement ≥ 0.99 needs at least 268 held-out real {unit} (95 % lower bound, every " in (
        refusal
    ), refusal
    assert f"every {one} agreeing), {int(real.sum())} given" in refusal, refusal
    thin = thin_evidence(report, DriftBudget(), rows)
    line = thin_evidence_line(thin[0])
    assert line.startswith(f"output 'stages': per-{one} top-1 agreement 1 over {int(real.sum())} held-out real {unit}")
