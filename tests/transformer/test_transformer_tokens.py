"""Per-token outputs of a text model (a tagger's logits, an encoder's last_hidden_state) through INT8 search.

Both are (N, T, C) over padded rows: judged over the real tokens only (optimizer.drift: token_classification,
token_embedding), never as CTC sequences, and with the tagger's token labels scored where labelled.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from examples import text_encoder
from optimizer.export import manifest_from_onnx
from optimizer.int8_search import SearchInt8
from quantserve.artifact import Artifact
from quantserve.data import TensorData


@pytest.fixture(scope="module")
def tagger(
    trained_encoder, encoder_exporter, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Artifact, TensorData, TensorData]:
    """The trained encoder with a tagging head, exported; calibration and held-out rows with token labels."""
    model = text_encoder.token_tagger(trained_encoder.model)
    options = text_encoder.tagger_export_options()
    path = encoder_exporter(model, "tagger", options, tmp_path_factory.mktemp("tagger") / "tagger.onnx")
    artifact = Artifact(path, manifest_from_onnx(onnx.load(str(path)), "tagger"))
    held_out = trained_encoder.held_out
    return artifact, trained_encoder.calib, TensorData(held_out.arrays, text_encoder.token_tags(held_out))


def test_a_tagger_and_its_hidden_states_are_judged_per_real_token_and_ship(tagger, tmp_path: Path) -> None:
    artifact, calib, held_out = tagger
    real = held_out.arrays["attention_mask"] != 0
    assert (~real).any(), "the held-out rows must carry padding for this test to mean anything"

    quantized = SearchInt8(calib, held_out)(artifact, tmp_path / "q.onnx")
    record = quantized.manifest.stages[-1]
    tags, hidden = (record["drift"]["outputs"][name] for name in text_encoder.TAGGER_OUTPUTS)
    print("\ntagger INT8:", {k: record[k] for k in ("scheme", "speed", "within_budget")}, tags, hidden)
    assert tags["kind"] == "token_classification" and hidden["kind"] == "token_embedding"
    assert tags["tokens_judged"] == hidden["tokens_judged"] == int(real.sum())
    assert tags["fp32_accuracy"] > 0.95, "the head learned its tags (the labelled tokens are the real ones)"
    assert record["within_budget"] and tags["token_agreement"] >= 0.99 and hidden["cosine_mean"] >= 0.99
    assert "sequence_agreement" not in tags  # never CTC-decoded
