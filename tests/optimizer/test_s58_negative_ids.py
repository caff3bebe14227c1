"""Negative token ids in an input the model reads as Gather indices are refused by optimize (session 58).

A token classifier (nn.Embedding(100, 32) → MLP, exported to ONNX) given ids of -1 was answered silently: ONNX Gather
reads -1 as the last row, where PyTorch's Embedding raises IndexError; `infer` exited 0, evaluate passed, accuracy a
quiet 0.6445. A graph that handles the sign itself (a clamp, Max(ids, 0), a comparison) is left alone, and so are
float inputs: features cast to indices are not this check's (their values are not token ids)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.gather_indices import negative_ids_refusal
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

VOCAB, ROWS, TOKENS = 100, 64, 6

CLASSIFIER = f"""
import torch
from torch import nn


class Tokens(nn.Module):
    def __init__(self, clamp):
        super().__init__()
        self.embed = nn.Embedding({VOCAB}, 32)
        self.hidden = nn.Linear(32, 32)
        self.head = nn.Linear(32, 4)
        self.clamp = clamp

    def forward(self, ids):
        if self.clamp:
            ids = ids.clamp(min=0)
        return self.head(torch.relu(self.hidden(self.embed(ids).mean(dim=1))))


def _factory(clamp):
    torch.manual_seed(0)
    example = {{"ids": torch.randint(0, {VOCAB}, (2, {TOKENS}))}}
    return Tokens(clamp).eval(), example, {{"dynamic_axes": {{"ids": {{0: "batch"}}}}, "output_names": ["logits"]}}


def plain():
    return _factory(False)


def clamped():
    return _factory(True)
"""


@pytest.fixture
def classifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The module name of the token classifier factories (`plain`, `clamped`), importable for this test alone."""
    name = "s58_token_classifier"
    (tmp_path / f"{name}.py").write_text(CLASSIFIER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def _ids(path: Path, padded_rows: int = 0, seed: int = 0) -> Path:
    """ids (ROWS, TOKENS) in [0, VOCAB), the last two tokens of the first `padded_rows` rows -1; labels 0..3."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (ROWS, TOKENS)).astype(np.int64)
    ids[:padded_rows, -2:] = -1
    np.savez(path, ids=ids, labels=rng.integers(0, 4, ROWS).astype(np.int64))
    return path


def _options(source: str, calib: Path, out: Path, precision: str = "fp32", **more: object) -> OptimizeOptions:
    return OptimizeOptions(source, calib, precision, "embedded", out, speed=SpeedSettings(enabled=False), **more)


def test_an_embedding_given_ids_of_minus_one_is_refused_before_calibration(
    classifier: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optimizer.pipeline

    def no_calibration(*_: object) -> None:
        raise AssertionError("calibrated before the negative ids were refused")

    monkeypatch.setattr(optimizer.pipeline, "int8_stage", no_calibration)
    calib = _ids(tmp_path / "calib.npz", padded_rows=5)
    with pytest.raises(QuantserveError) as caught:
        optimize(_options(f"{classifier}:plain", calib, tmp_path / "out", "int8"))
    assert str(caught.value) == (
        f"{calib}: input 'ids' holds 10 negative value(s) in 5 row(s) (smallest -1, first in row 0), and the model "
        "reads it as the indices of Gather '/embed/Gather' of a 100-row table (an embedding lookup): ONNX Gather "
        "takes -k as the k-th row from the end (-1 reads row 99), where PyTorch's Embedding raises IndexError, so "
        "those rows would be answered silently from the wrong embeddings; an id of -1 is usually padding or an "
        "unknown token: map it to a real id (such as the pad id) in the data, or clamp the ids in the model "
        "(ids.clamp(min=0)) before the lookup"
    )
    assert not (tmp_path / "out").exists()


def test_negative_ids_in_the_held_out_file_alone_are_refused_naming_that_file(classifier: str, tmp_path: Path) -> None:
    calib = _ids(tmp_path / "calib.npz")
    held_out = _ids(tmp_path / "heldout.npz", padded_rows=3, seed=1)
    with pytest.raises(QuantserveError) as caught:
        optimize(_options(f"{classifier}:plain", calib, tmp_path / "out", eval_path=held_out))
    assert str(caught.value).startswith(f"{held_out}: input 'ids' holds 6 negative value(s) in 3 row(s) ")


def test_the_same_embedding_clamping_its_ids_is_built_with_them(classifier: str, tmp_path: Path) -> None:
    calib = _ids(tmp_path / "calib.npz", padded_rows=5)
    built = optimize(_options(f"{classifier}:clamped", calib, tmp_path / "out"))
    assert built.path.is_file()


def test_ids_of_zero_or_more_are_built(classifier: str, tmp_path: Path) -> None:
    built = optimize(_options(f"{classifier}:plain", _ids(tmp_path / "calib.npz"), tmp_path / "out"))
    assert built.path.is_file()


def _lookup(path: Path, before: list[onnx.NodeProto], ids_type: int = TensorProto.INT64) -> Path:
    """y = table[x] (VOCAB, 4), `x` the graph input `ids` after the nodes `before` (which end in tensor `x`)."""
    table = numpy_helper.from_array(np.zeros((VOCAB, 4), np.float32), "table")
    zero = numpy_helper.from_array(np.zeros((), np.int64), "zero")
    graph = helper.make_graph(
        [*before, helper.make_node("Gather", ["table", "x"], ["y"], name="lookup")],
        "lookup",
        [helper.make_tensor_value_info("ids", ids_type, ["N", TOKENS])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", TOKENS, 4])],
        [table, zero],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _padded(dtype: type = np.int64) -> list[tuple[str | Path, TensorData]]:
    ids = np.arange(ROWS * TOKENS).reshape(ROWS, TOKENS).astype(dtype) % VOCAB
    ids[7, 0] = -3
    return [("calib.npz", TensorData({"ids": ids}))]


def test_ids_reaching_the_gather_through_a_cast_are_refused(tmp_path: Path) -> None:
    cast = helper.make_node("Cast", ["ids"], ["x"], to=TensorProto.INT64)
    refusal = negative_ids_refusal(_lookup(tmp_path / "m.onnx", [cast], TensorProto.INT32), _padded(np.int32))
    assert refusal.startswith(
        "calib.npz: input 'ids' holds 1 negative value(s) in 1 row(s) (smallest -3, first in row 7), and the model "
        "reads it as the indices of Gather 'lookup' of a 100-row table"
    )


def test_ids_the_graph_clamps_with_max_or_masks_with_less_are_left_alone(tmp_path: Path) -> None:
    maximum = helper.make_node("Max", ["ids", "zero"], ["x"])
    assert negative_ids_refusal(_lookup(tmp_path / "max.onnx", [maximum]), _padded()) == ""
    mask = [helper.make_node("Less", ["ids", "zero"], ["pad"]), helper.make_node("Identity", ["ids"], ["x"])]
    assert negative_ids_refusal(_lookup(tmp_path / "mask.onnx", mask), _padded()) == ""


def test_a_float_input_cast_to_gather_indices_is_not_read_as_ids(tmp_path: Path) -> None:
    """Floats are features (a code, a bucket), not token ids: their sign is the model's own business."""
    cast = helper.make_node("Cast", ["ids"], ["x"], to=TensorProto.INT64)
    model = _lookup(tmp_path / "m.onnx", [cast], TensorProto.FLOAT)
    assert negative_ids_refusal(model, _padded(np.float32)) == ""


def test_a_gather_of_a_computed_tensor_at_a_negative_index_is_no_lookup(tmp_path: Path) -> None:
    """`hidden[:, -1]` reads the last time step in PyTorch and ONNX alike: only a weight table's lookup is checked."""
    doubled = helper.make_node("Add", ["table", "table"], ["computed"])
    model = onnx.load(str(_lookup(tmp_path / "m.onnx", [helper.make_node("Identity", ["ids"], ["x"])])))
    model.graph.node.insert(0, doubled)
    model.graph.node[-1].input[0] = "computed"
    onnx.save(model, str(tmp_path / "computed.onnx"))
    assert negative_ids_refusal(tmp_path / "computed.onnx", _padded()) == ""
    assert negative_ids_refusal(tmp_path / "m.onnx", _padded()) != ""  # the same Gather of the table itself


def test_ids_the_graph_masks_by_equal_to_a_negative_id_are_left_alone_but_not_by_equal_to_zero(tmp_path: Path) -> None:
    """`ids == -1` marks the negative ids (an output masked there); `ids == 0`, a pad id's mask, says nothing of -1."""
    minus_one = helper.make_node("Constant", [], ["minus_one"], value=numpy_helper.from_array(np.array(-1, np.int64)))
    by_minus_one = [minus_one, helper.make_node("Equal", ["ids", "minus_one"], ["pad"])]
    by_minus_one.append(helper.make_node("Identity", ["ids"], ["x"]))
    assert negative_ids_refusal(_lookup(tmp_path / "minus.onnx", by_minus_one), _padded()) == ""
    by_zero = [helper.make_node("Equal", ["ids", "zero"], ["pad"]), helper.make_node("Identity", ["ids"], ["x"])]
    assert negative_ids_refusal(_lookup(tmp_path / "zero.onnx", by_zero), _padded()) != ""
