"""The test model itself: the task is learned, padding is masked, export keeps batch and sequence dynamic."""

from __future__ import annotations

import numpy as np

from examples import text_encoder
from optimizer.transformer import run_model


def test_token_data_is_deterministic_and_padded() -> None:
    first, second = text_encoder.make_token_data(50, seed=3), text_encoder.make_token_data(50, seed=3)
    for name in text_encoder.INPUT_NAMES:
        np.testing.assert_array_equal(first.arrays[name], second.arrays[name])
        assert first.arrays[name].dtype == np.int64
    lengths = first.arrays["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 5, "sequence lengths vary"
    assert np.all(first.arrays["input_ids"][first.arrays["attention_mask"] == 0] == text_encoder.PAD)
    assert set(first.labels.tolist()) == set(range(text_encoder.NUM_CLASSES))


def test_training_learns_the_order_and_segment_rule(trained_encoder) -> None:
    held_out = trained_encoder.held_out
    logits = text_encoder.predict(trained_encoder.model, held_out)["logits"]
    assert text_encoder.accuracy(logits, held_out.labels) > 95.0  # chance is 25%


def test_extra_padding_does_not_change_outputs(trained_encoder) -> None:
    """What ragged batching relies on: right-padding a sequence with zeros leaves its outputs unchanged."""
    data = text_encoder.trim_padding(trained_encoder.held_out.take(0, 16))
    width = data.arrays["input_ids"].shape[1]
    padded = {k: np.pad(v, ((0, 0), (0, 40 - width))) for k, v in data.arrays.items()}
    short, long = run_model(trained_encoder.onnx_path, data.arrays), run_model(trained_encoder.onnx_path, padded)
    for name in text_encoder.OUTPUT_NAMES:
        np.testing.assert_allclose(short[name], long[name], rtol=1e-4, atol=1e-5)


def test_exported_onnx_has_dynamic_batch_and_sequence_and_matches_torch(trained_encoder) -> None:
    from optimizer.export import manifest_from_onnx
    from optimizer.onnx_input import check_onnx

    manifest = manifest_from_onnx(check_onnx(trained_encoder.onnx_path), "text_encoder")
    assert [t.name for t in manifest.inputs] == list(text_encoder.INPUT_NAMES)
    assert all(t.shape == ("batch", "sequence") and t.dtype == "int64" for t in manifest.inputs)
    assert [t.name for t in manifest.outputs] == list(text_encoder.OUTPUT_NAMES)
    for length in (9, 32):
        data = text_encoder.make_token_data(5, seed=length, min_length=length, max_length=length)
        want = text_encoder.predict(trained_encoder.model, data)
        got = run_model(trained_encoder.onnx_path, data.arrays)
        for name in text_encoder.OUTPUT_NAMES:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)
