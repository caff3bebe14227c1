"""A model with one length input per padded axis (nagisa: `char_len` for its characters, `word_len` for its words)
is cut and judged axis by axis (session 60): the load test cut only the word inputs and said it had cut them all;
evaluate judged the per-word tags over the characters' positions (top-1 agreement 0.9968 for 0.9998) where both
axes were padded to one width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from loadtest.request_data import padding_note, request_batches
from loadtest.request_shapes import ServedInputs
from optimizer.drift_budget import DriftBudget
from optimizer.graph_words import read_graph_words, words_from_record, words_record
from optimizer.length_axes import undecided_notes
from optimizer.token_lengths import told_length
from optimizer.token_values import token_positions
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

N, WIDTH, CHAR_CLASSES, WORD_CLASSES, VOCAB = 48, 16, 4, 6, 30


def two_length_model(path: Path) -> Path:
    """chars (B, T) and words (B, W, 3) ids, a length input each; a score per character and per word."""
    rng = np.random.default_rng(0)
    char_table = helper.make_tensor(
        "char_table", TensorProto.FLOAT, [VOCAB, CHAR_CLASSES], rng.standard_normal(VOCAB * CHAR_CLASSES)
    )
    word_table = helper.make_tensor(
        "word_table", TensorProto.FLOAT, [VOCAB, WORD_CLASSES], rng.standard_normal(VOCAB * WORD_CLASSES)
    )
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("Gather", ["char_table", "chars"], ["char_scores"]),
        helper.make_node("Gather", ["word_table", "words"], ["word_parts"]),
        helper.make_node("ReduceSum", ["word_parts", "axes"], ["word_scores"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "two_lengths",
        [
            helper.make_tensor_value_info("chars", TensorProto.INT64, ["B", "T"]),
            helper.make_tensor_value_info("char_len", TensorProto.INT64, ["B"]),
            helper.make_tensor_value_info("words", TensorProto.INT64, ["B", "W", 3]),
            helper.make_tensor_value_info("word_len", TensorProto.INT64, ["B"]),
        ],
        [
            helper.make_tensor_value_info("char_scores", TensorProto.FLOAT, ["B", "T", CHAR_CLASSES]),
            helper.make_tensor_value_info("word_scores", TensorProto.FLOAT, ["B", "W", WORD_CLASSES]),
        ],
        [char_table, word_table, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path / "model.onnx"))
    return path / "model.onnx"


def two_length_data(word_width: int = WIDTH) -> dict[str, np.ndarray]:
    """Characters padded to WIDTH, words to `word_width` (WIDTH: both axes one width, the hard case); a sentence of
    c characters holds at most c words."""
    rng = np.random.default_rng(60)
    char_len = rng.integers(4, WIDTH + 1, N)
    word_len = np.minimum(rng.integers(2, 9, N), char_len)
    chars = np.where(np.arange(WIDTH)[None, :] < char_len[:, None], rng.integers(1, VOCAB, (N, WIDTH)), 0)
    on = np.arange(word_width)[None, :] < word_len[:, None]
    words = np.where(on[:, :, None], rng.integers(1, VOCAB, (N, word_width, 3)), 0)
    return {"chars": chars, "char_len": char_len, "words": words, "word_len": word_len}


def _served(arrays: dict[str, np.ndarray]) -> ServedInputs:
    inputs = [{"name": k, "dims": [-1] * (v.ndim - 1) or [1]} for k, v in arrays.items()]
    return ServedInputs.from_config("m", {"max_batch_size": 8, "input": inputs})


@pytest.mark.parametrize("word_width", [WIDTH, 10])
def test_each_input_is_cut_by_its_own_length_input(word_width: int) -> None:
    arrays = two_length_data(word_width)
    batches = request_batches(TensorData(arrays), 1, _served(arrays))
    assert [b["chars"].shape[1] for b in batches] == arrays["char_len"].tolist()
    assert [b["words"].shape[1] for b in batches] == arrays["word_len"].tolist()
    note = padding_note(TensorData(arrays), _served(arrays)) or ""
    assert "inputs 'chars' cut by input 'char_len'" in note and "inputs 'words' cut by input 'word_len'" in note


def test_the_graph_names_each_padded_axis(tmp_path: Path) -> None:
    words = read_graph_words(two_length_model(tmp_path))
    assert dict(words.axes.axis_names) == {"chars": "T", "words": "W", "char_scores": "T", "word_scores": "W"}
    assert words_from_record(words_record(words)) == words, "deploy records them for evaluate"


def _judged(model: Path, arrays: dict[str, np.ndarray], graph: bool) -> dict[str, dict[str, object]]:
    session = ort.InferenceSession(str(model))
    fp32 = dict(zip(["char_scores", "word_scores"], session.run(None, arrays), strict=True))
    broken = {k: v.copy() for k, v in fp32.items()}
    spots = np.argwhere(np.arange(WIDTH)[None, :] < arrays["word_len"][:, None])
    for n, t in spots[np.random.default_rng(1).choice(len(spots), 10, replace=False)]:
        broken["word_scores"][n, t] = np.roll(broken["word_scores"][n, t], 1)
    outputs = {"fp32": fp32, "int8": broken}
    variants = [VariantAccuracy(name, N) for name in outputs]
    words = read_graph_words(model) if graph else None
    kinds = dict.fromkeys(fp32, "token_classification")  # a tag per character, per word
    judge_variants(variants, outputs, "fp32", DriftBudget(min_top1_agreement=0.5), kinds, None, arrays, None, words)
    return variants[1].drift or {}


def test_evaluate_judges_each_output_over_its_own_length_input(tmp_path: Path) -> None:
    arrays = two_length_data()
    drift = _judged(two_length_model(tmp_path), arrays, graph=True)
    words, chars = int(arrays["word_len"].sum()), int(arrays["char_len"].sum())
    assert drift["word_scores"]["tokens_judged"] == words, "the words' real slots, not the characters'"
    assert drift["word_scores"]["token_agreement"] == pytest.approx(1 - 10 / words)
    assert drift["char_scores"]["tokens_judged"] == chars
    assert "input 'word_len', by the graph's axis names" in str(drift["word_scores"]["tokens_at"])


def test_length_input_pairs_where_the_graph_says_nothing(tmp_path: Path) -> None:
    arrays = two_length_data()
    with told_length("word_scores=word_len,char_scores=char_len"):
        drift = _judged(two_length_model(tmp_path), arrays, graph=False)
    assert drift["word_scores"]["tokens_judged"] == int(arrays["word_len"].sum())
    assert "named by --length-input word_scores=word_len" in str(drift["word_scores"]["tokens_at"])
    with told_length("word_scores=lengths"), pytest.raises(QuantserveError) as refused:
        token_positions(arrays)
    assert str(refused.value) == (
        "--length-input word_scores=lengths: no input 'lengths' of one integer per row "
        "(inputs: chars, char_len, words, word_len)"
    )


def test_an_output_neither_the_graph_nor_the_flag_ties_is_said() -> None:
    arrays = two_length_data()
    outputs = {"char_scores": np.zeros((N, WIDTH, CHAR_CLASSES)), "word_scores": np.zeros((N, WIDTH, WORD_CLASSES))}
    notes = undecided_notes(outputs, arrays, None)
    assert [note.split("'")[1] for note in notes] == ["char_scores", "word_scores"]
    assert notes[1].endswith("--length-input word_scores=INPUT says which")
    with told_length("word_scores=word_len"):
        assert [note.split("'")[1] for note in undecided_notes(outputs, arrays, None)] == ["char_scores"]
