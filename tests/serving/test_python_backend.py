"""The embedded runner's batching helpers: pad requests into one batch, cut outputs back per request."""

from __future__ import annotations

import numpy as np

from optimizer.python_backend.model import onnx_feed, output_padded_axes, pad_and_concat, split_outputs


def test_equal_shapes_concatenate_without_padding() -> None:
    a, b = np.ones((2, 3), np.float32), np.zeros((1, 3), np.float32)
    batch = pad_and_concat([a, b])
    assert batch.shape == (3, 3)
    np.testing.assert_array_equal(batch[:2], a)


def test_ragged_requests_are_right_padded_with_zeros() -> None:
    short = np.full((1, 2, 4), 5, np.int64)
    long = np.full((2, 5, 4), 7, np.int64)
    batch = pad_and_concat([short, long])
    assert batch.shape == (3, 5, 4) and batch.dtype == np.int64
    np.testing.assert_array_equal(batch[0, :2], short[0])
    assert not batch[0, 2:].any()
    np.testing.assert_array_equal(batch[1:], long)


def test_split_cuts_rows_and_padded_axes_back() -> None:
    output = np.arange(3 * 5 * 2).reshape(3, 5, 2)
    parts = split_outputs(output, counts=[1, 2], lengths=[{1: 2}, {1: 5}])
    assert [p.shape for p in parts] == [(1, 2, 2), (2, 5, 2)]
    np.testing.assert_array_equal(parts[0], output[:1, :2])
    np.testing.assert_array_equal(parts[1], output[1:])


def test_output_axes_follow_the_symbolic_dim_names() -> None:
    inputs = {"tokens": {0: "batch", 1: "sequence", 2: 4}}
    padded = {"tokens": {1: 9}}
    assert output_padded_axes(inputs, ["batch", "sequence", 3], padded) == {1: ("tokens", 1)}
    assert output_padded_axes(inputs, ["batch", 3], padded) == {}
    assert output_padded_axes(inputs, ["batch", "sequence", 3], {"tokens": {}}) == {}


def test_bytes_inputs_reach_onnx_runtime_as_the_strings_sent() -> None:
    """Triton's BYTES arrive as bytes objects; ORT str()-ed them, so an identity model answered "b'a'" for b"a"."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None, 2])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, [None, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sent = np.array([[b"a", "é".encode()], [b"xyz", b""]], dtype=object)
    (answer,) = session.run(None, {"text": onnx_feed(sent)})
    assert answer.tolist() == [["a", "é"], ["xyz", ""]]
    numbers = np.ones((2, 3), np.float32)
    assert onnx_feed(numbers) is numbers
    onnx.checker.check_model(model)
