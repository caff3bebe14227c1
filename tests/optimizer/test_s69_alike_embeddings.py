"""Unit-norm rows that all point one way (a face embedding whose faces differ by a cosine of 0.001) are judged per
value, not by a row's cosine: human-models' mobilefacenet shipped at cosine 0.995 while its INT8 error was ~50× the
spread between faces and retrieval fell 0.287 → 0.033 (session 69)."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.typed_kinds import TypedKind


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_unit_rows_alike_are_judged_per_value_and_a_noise_past_their_spread_refused() -> None:
    rng = np.random.default_rng(69)
    direction = rng.normal(size=128)
    faces = _unit(direction + 0.01 * np.linalg.norm(direction) / np.sqrt(128) * rng.normal(size=(200, 128)))
    broken = _unit(faces + 0.06 / np.sqrt(128) * rng.normal(size=faces.shape))  # ~6× the faces' own spread
    assert np.median(faces @ _unit(faces.mean(axis=0, keepdims=True)).T) > 0.9999
    assert np.mean(np.sum(faces * broken, axis=1)) > 0.99  # what a row's cosine sees: it passed
    assert infer_output_kinds({"e": faces}) == {"e": "dense"}
    report = measure_drift({"e": faces}, {"e": broken}, {}, DriftBudget())
    assert report.outputs["e"]["kind"] == "dense" and not report.holds
    assert "channel_correlation_worst" in {v.metric for v in report.violations}


def test_unit_rows_with_a_real_spread_stay_an_embedding_and_mild_noise_holds() -> None:
    rng = np.random.default_rng(70)
    rows = _unit(rng.normal(size=(200, 128)) + 0.5 * rng.normal(size=128))
    close = _unit(rows + 0.02 / np.sqrt(128) * rng.normal(size=rows.shape))
    assert infer_output_kinds({"e": rows}) == {"e": "embedding"}
    report = measure_drift({"e": rows}, {"e": close}, {}, DriftBudget())
    assert report.outputs["e"]["kind"] == "embedding" and report.holds


def test_unlabelled_signed_rows_at_an_embeddings_width_refused_on_top1_name_the_embedding_override() -> None:
    """human-models' mobileface (256 signed values a face, no labels) was refused on the top-1 agreement of its
    largest value with no word of `--output-kind NAME=embedding` (session 69)."""
    rng = np.random.default_rng(71)
    rows = rng.normal(size=(300, 256))
    rows[np.arange(300), rng.integers(0, 256, 300)] += 8.0  # one feature stands out, a different one each row
    noisy = rows + 2.0 * rng.normal(size=rows.shape)
    assert infer_output_kinds({"e": rows}) == {"e": "classification"}
    report = measure_drift({"e": rows}, {"e": noisy}, {}, DriftBudget())
    assert not report.holds and report.outputs["e"]["kind_doubt"].endswith("pass --output-kind e=embedding")
    labels = rows.argmax(axis=1)  # labels of its classes: the user says it is a classifier, no doubt
    labelled = measure_drift({"e": rows}, {"e": noisy}, {}, DriftBudget(), labels)
    assert "=embedding" not in str(labelled.outputs["e"].get("kind_doubt", ""))


def test_a_refusal_of_unit_rows_read_dense_says_why_they_were_not_judged_by_cosine() -> None:
    """mobilefacenet's refusal read "output 'embeddings' (dense): worst channel correlation -0.7064" with no word of why
    a face embedding was judged per value: the line says its rows lie closer to one another than INT8 moves them, and
    names --metric for a neighbour search. Not where the user typed =dense, nor on alike rows that are not unit-length
    (a landmark regressor's coordinates)."""
    rng = np.random.default_rng(72)
    direction = rng.normal(size=128)
    faces = _unit(direction + 0.01 * np.linalg.norm(direction) / np.sqrt(128) * rng.normal(size=(200, 128)))
    broken = _unit(faces + 0.06 / np.sqrt(128) * rng.normal(size=faces.shape))
    report = measure_drift({"e": faces}, {"e": broken}, {}, DriftBudget())
    doubt = report.outputs["e"]["kind_doubt"]
    assert doubt.startswith("judged per value, not by a row's cosine: its unit-length rows all point near their mean")
    assert doubt.endswith("--metric package.module:function") and all(v.hint == doubt for v in report.violations)
    typed = measure_drift({"e": faces}, {"e": broken}, {"e": TypedKind("dense")}, DriftBudget())
    assert "kind_doubt" not in typed.outputs["e"] and not typed.holds
    coordinates = faces * 100.0  # alike rows, read dense, not unit-length: coordinates, not an embedding
    plain = measure_drift({"e": coordinates}, {"e": broken * 100.0}, {}, DriftBudget())
    assert plain.outputs["e"]["kind"] == "dense" and "kind_doubt" not in plain.outputs["e"]
