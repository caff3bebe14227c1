from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from torch_runner import TorchRunner

from optimizer.export import export_onnx
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.source import load_source
from quantserve.errors import QuantserveError


def test_factory_export_has_dynamic_batch_and_matches_torch(tmp_path: Path) -> None:
    source = load_source("make_tiny_models:tiny_cnn_factory")
    artifact = export_onnx(source, tmp_path / "cnn.onnx")
    manifest = artifact.manifest
    assert [(t.name, t.dtype, t.shape) for t in manifest.inputs] == [("pixels", "float32", ("batch", 1, 8, 8))]
    assert [(t.name, t.shape) for t in manifest.outputs] == [("logits", ("batch", 10))]
    assert manifest.stages[0]["opset"] == 17
    feeds = {"pixels": np.random.default_rng(1).random((5, 1, 8, 8), dtype=np.float32)}
    with OnnxRuntimeRunner(artifact.path) as ort_runner, TorchRunner(source.module, manifest.inputs, ["logits"]) as ref:
        np.testing.assert_allclose(ort_runner.infer(feeds)["logits"], ref.infer(feeds)["logits"], rtol=1e-4, atol=1e-5)


def test_factory_declared_sequence_axis(tmp_path: Path) -> None:
    artifact = export_onnx(load_source("make_tiny_models:tiny_sequence_model"), tmp_path / "seq.onnx")
    assert artifact.manifest.inputs[0].shape == ("batch", "sequence")
    assert artifact.manifest.inputs[0].dtype == "int64"
    with OnnxRuntimeRunner(artifact.path) as runner:
        out = runner.infer({"input_ids": np.ones((3, 11), dtype=np.int64)})
    assert out["logits"].shape == (3, 4)


def test_dynamic_axes_naming_no_input_or_output_are_refused_not_dropped(tmp_path: Path) -> None:
    """A tuple of example inputs names its input `input`; axes declared under the forward argument's name were
    dropped without a word and the axis exported fixed at the example's size."""
    import dataclasses

    source = load_source("make_tiny_models:tiny_sequence_model")
    examples = {"input": source.example_inputs["input_ids"]}  # as a tuple example names it
    source = dataclasses.replace(source, example_inputs=examples)
    with pytest.raises(QuantserveError) as caught:
        export_onnx(source, tmp_path / "seq.onnx")
    assert "dynamic_axes names 'input_ids', which is neither an input ['input'] nor an output ['logits']" in str(
        caught.value
    )
    assert not (tmp_path / "seq.onnx").exists()


def test_pt2_export(tmp_path: Path) -> None:
    import make_tiny_models

    path = make_tiny_models.write_tiny_pt2(tmp_path / "cnn.pt2")
    artifact = export_onnx(load_source(path), tmp_path / "cnn.onnx")
    assert artifact.manifest.inputs[0].shape == ("batch", 1, 8, 8)
    assert artifact.manifest.stages[0]["exporter"] == "dynamo"
    assert [t.name for t in artifact.manifest.outputs] == ["output"]
    with OnnxRuntimeRunner(artifact.path) as runner:
        (out,) = runner.infer({"input": np.zeros((3, 1, 8, 8), np.float32)}).values()
    assert out.shape == (3, 10)


def test_onnx_input_is_checked_and_described(tiny_onnx: Path, tmp_path: Path) -> None:
    artifact = export_onnx(load_source(tiny_onnx), tmp_path / "out.onnx")
    assert artifact.manifest.inputs[0].shape == ("batch", 1, 8, 8)  # dim_param "N" is the batch axis
    assert artifact.manifest.stages[0]["nodes"] == 6


def test_fixed_batch_onnx_is_rejected(tmp_path: Path) -> None:
    """A batch fixed above 1 is refused (a fixed batch of 1 is made dynamic where the graph allows: below)."""
    import make_tiny_models

    path = make_tiny_models.write_tiny_onnx(tmp_path / "fixed.onnx", batch=4)
    with pytest.raises(QuantserveError, match="input 'pixels' has a fixed batch axis \\(4\\)"):
        export_onnx(load_source(path), tmp_path / "out.onnx")


def test_corrupt_onnx_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage that is not protobuf" * 3)
    with pytest.raises(QuantserveError, match=r"broken\.onnx: (not a readable ONNX model|ONNX checker rejected)"):
        export_onnx(load_source(path), tmp_path / "out.onnx")


def test_invalid_onnx_graph_is_rejected(tiny_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    model.graph.node[0].input[1] = "no_such_weight"
    path = tmp_path / "invalid.onnx"
    onnx.save(model, str(path))
    with pytest.raises(QuantserveError, match="ONNX checker rejected the model"):
        export_onnx(load_source(path), tmp_path / "out.onnx")


def test_old_opset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="opset 13 is too old"):
        export_onnx(load_source("make_tiny_models:tiny_cnn_factory"), tmp_path / "x.onnx", opset=13)


def test_pt2_inputs_can_be_renamed(tmp_path: Path) -> None:
    import make_tiny_models

    path = make_tiny_models.write_tiny_pt2(tmp_path / "cnn.pt2")
    artifact = export_onnx(load_source(path).renamed(["pixels"], ["logits"]), tmp_path / "cnn.onnx")
    assert [t.name for t in artifact.manifest.inputs] == ["pixels"]
    assert [t.name for t in artifact.manifest.outputs] == ["logits"]
    with pytest.raises(QuantserveError, match=r"2 input names given for 1 inputs \['input'\]"):
        load_source(path).renamed(["a", "b"])


def test_pt2_outputs_renamed_to_names_an_internal_value_holds(tmp_path: Path) -> None:
    import torch

    from examples import text_encoder

    model = text_encoder.build_model().eval()  # its pooled output is a value called 'embedding' inside
    path = text_encoder.export_program(model, tmp_path / "encoder.pt2")
    source = load_source(path).renamed([], ["logits", "embedding"])
    artifact = export_onnx(source, tmp_path / "encoder.onnx")  # the checker used to reject it (not SSA)
    assert [t.name for t in artifact.manifest.outputs] == ["logits", "embedding"]
    data = text_encoder.make_token_data(4, seed=0)
    with OnnxRuntimeRunner(artifact.path) as runner:
        served = runner.infer(data.arrays)
    with torch.no_grad():
        logits, embedding = model(*(torch.from_numpy(data.arrays[n.name]) for n in artifact.manifest.inputs))
    np.testing.assert_allclose(served["logits"], logits.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(served["embedding"], embedding.numpy(), rtol=1e-4, atol=1e-4)


def _batch_dims(path: Path) -> dict[str, str]:
    model = onnx.load(str(path))
    return {v.name: v.type.tensor_type.shape.dim[0].dim_param for v in [*model.graph.input, *model.graph.output]}


def test_old_opset_onnx_is_upgraded_and_its_minus_one_batch_named(tmp_path: Path) -> None:
    import make_tiny_models

    legacy = make_tiny_models.write_legacy_onnx(tmp_path / "legacy.onnx", opset=12)  # batch axis -1
    artifact = export_onnx(load_source(legacy), tmp_path / "out.onnx")
    record = artifact.manifest.stages[0]
    assert (record["source_opset"], record["opset"]) == (12, 13)  # 13: per-axis DequantizeLinear
    assert _batch_dims(artifact.path) == {"pixels": "batch", "logits": "batch"}
    feeds = {"pixels": np.random.default_rng(2).random((3, 1, 8, 8), dtype=np.float32)}
    with OnnxRuntimeRunner(legacy) as before, OnnxRuntimeRunner(artifact.path) as after:
        np.testing.assert_allclose(after.infer(feeds)["logits"], before.infer(feeds)["logits"], rtol=1e-5, atol=1e-6)


def test_requested_opset_upgrades_onnx_input(tiny_onnx: Path, tmp_path: Path) -> None:
    artifact = export_onnx(load_source(tiny_onnx), tmp_path / "out.onnx", opset=19)
    assert (artifact.manifest.stages[0]["source_opset"], artifact.manifest.stages[0]["opset"]) == (17, 19)
    assert artifact.manifest.stages[0]["nodes"] == 6


def test_requested_opset_older_than_the_model_is_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantserveError) as info:
        export_onnx(load_source(tiny_onnx), tmp_path / "out.onnx", opset=15)
    assert str(info.value) == (
        f"{tiny_onnx}: the model uses opset 17, newer than the requested opset 15; "
        "opsets are not downgraded (ask for 17 or newer, or leave --opset out)"
    )


def test_unconvertible_opset_is_refused_naming_the_node(tmp_path: Path) -> None:
    import make_tiny_models

    path = make_tiny_models.write_unconvertible_onnx(tmp_path / "old.onnx")
    with pytest.raises(QuantserveError) as info:
        export_onnx(load_source(path), tmp_path / "out.onnx")
    message = str(info.value)
    assert message.startswith(f"{path}: cannot upgrade opset 5 to 13: ONNX's version converter fails on ")
    assert "node 'train_dropout' (Dropout)" in message
    assert "\n" not in message


@pytest.mark.parametrize("batch", [-1, 0, None, "N"], ids=["minus-one", "zero", "unnamed", "symbolic"])
def test_dynamic_batch_spellings_become_batch(batch: int | str | None, tiny_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        if isinstance(batch, int):
            dim.dim_value = batch
        elif batch is not None:
            dim.dim_param = batch
    path = tmp_path / "exporter.onnx"
    onnx.save(model, str(path))
    artifact = export_onnx(load_source(path), tmp_path / "out.onnx")
    assert _batch_dims(artifact.path) == {"pixels": "batch", "logits": "batch"}
    assert artifact.manifest.inputs[0].shape == ("batch", 1, 8, 8)
    with OnnxRuntimeRunner(artifact.path) as runner:
        assert runner.infer({"pixels": np.zeros((5, 1, 8, 8), np.float32)})["logits"].shape == (5, 10)


def test_a_fixed_batch_of_one_is_made_dynamic_when_rows_stay_independent(tmp_path: Path) -> None:
    """A published file with batch 1 baked in (inputs, outputs and a Reshape target) is served batched,
    after 2 rows at once were proven equal to single-row runs."""
    import make_tiny_models
    from onnx import numpy_helper

    path = make_tiny_models.write_tiny_onnx(tmp_path / "fixed.onnx", batch=1)
    model = onnx.load(str(path))
    flatten = next(n for n in model.graph.node if n.op_type == "Flatten")
    flatten.op_type, flatten.input[:] = "Reshape", [flatten.input[0], "flat_shape"]  # the exporter's [1, -1]
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, -1], np.int64), "flat_shape"))
    onnx.save(model, str(path))
    artifact = export_onnx(load_source(path), tmp_path / "out.onnx")
    assert artifact.manifest.inputs[0].shape == ("batch", 1, 8, 8)
    record = artifact.manifest.stages[0]["batch_axis_made_dynamic"]
    assert record["was"] == 1 and record["inputs"] == ["pixels"] and len(record["reshape_targets_rewritten"]) == 1
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    with OnnxRuntimeRunner(artifact.path) as runner:
        (batched,) = runner.infer({"pixels": x}).values()
        singles = [next(iter(runner.infer({"pixels": x[i : i + 1]}).values())) for i in range(3)]
    assert batched.shape == (3, 10)
    np.testing.assert_allclose(batched, np.concatenate(singles), rtol=1e-4, atol=1e-5)


def test_a_fixed_batch_the_graph_depends_on_is_refused_with_the_shapes(tmp_path: Path) -> None:
    """Batch folded into another axis (a detector's [1, -1, 6] head, a time-major sequence): refused, shapes named."""
    import make_tiny_models
    from onnx import helper, numpy_helper

    path = make_tiny_models.write_tiny_onnx(tmp_path / "fixed.onnx", batch=1)
    model = onnx.load(str(path))
    model.graph.node[-1].output[0] = "logits_2d"
    model.graph.node.append(helper.make_node("Reshape", ["logits_2d", "everything"], ["logits"]))
    model.graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "everything"))
    model.graph.output[0].type.tensor_type.shape.ClearField("dim")
    model.graph.output[0].type.tensor_type.shape.dim.add().dim_value = 10
    onnx.save(model, str(path))
    with pytest.raises(QuantserveError) as refused:
        export_onnx(load_source(path), tmp_path / "out.onnx")
    assert str(refused.value).startswith(f"{path}: input 'pixels' has a fixed batch axis (1) and the graph depends")
    assert "with 2 rows output 'logits' has shape [20], with 1 row [10]" in str(refused.value)
    assert not (tmp_path / "out.onnx").exists()


def test_an_already_quantized_model_is_refused_for_int8_before_any_work(tmp_path: Path) -> None:
    """No FP32 model to judge drift and speed against: one line, nothing written."""
    import make_tiny_models
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from optimizer.pipeline import OptimizeOptions, optimize

    fp32 = make_tiny_models.write_tiny_onnx(tmp_path / "fp32.onnx")
    quantize_dynamic(str(fp32), str(tmp_path / "int8.onnx"), weight_type=QuantType.QInt8)
    data = tmp_path / "calib.npz"
    np.savez(data, pixels=np.random.default_rng(0).standard_normal((8, 1, 8, 8)).astype(np.float32))
    out = tmp_path / "build"
    options = OptimizeOptions(str(tmp_path / "int8.onnx"), str(data), "int8", "embedded", str(out))
    with pytest.raises(QuantserveError, match=r"int8\.onnx: the model is already quantized \(\d+ \w+") as refused:
        optimize(options)
    assert "--precision fp32" in str(refused.value) and not out.exists()


def test_a_float16_model_is_sorted_then_refused_for_int8_and_served_as_it_is_for_fp32(tmp_path: Path) -> None:
    """ORT's float16 converter (keep_io_types) leaves input Casts after their readers: sorted on load; INT8 of a
    float16 graph is refused in one line (ORT's quantizer writes float16 scales its DequantizeLinear rejects)."""
    import make_tiny_models
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.transformer import run_model

    fp32 = make_tiny_models.write_tiny_onnx(tmp_path / "fp32.onnx")
    half = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    with pytest.raises(onnx.checker.ValidationError, match="topologically sorted"):
        onnx.checker.check_model(half)  # the premise: the converter's output is unsorted
    onnx.save(half, str(tmp_path / "half.onnx"))
    data = tmp_path / "calib.npz"
    pixels = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    np.savez(data, pixels=pixels)
    out = tmp_path / "build"
    options = OptimizeOptions(str(tmp_path / "half.onnx"), str(data), "int8", "embedded", str(out))
    with pytest.raises(QuantserveError, match=r"half\.onnx: the model computes in float16 \(\d+ float16 weights\)"):
        optimize(options)
    assert not out.exists()
    served = optimize(OptimizeOptions(str(tmp_path / "half.onnx"), str(data), "fp32", "embedded", str(out)))
    assert served.manifest.precision == "fp16"  # what it computes in (it was recorded, deployed and served as fp32)
    got = run_model(served.path, {"pixels": pixels})
    want = run_model(tmp_path / "half.onnx", {"pixels": pixels})
    assert all(np.allclose(got[k], want[k], rtol=1e-2, atol=1e-3) for k in want)  # fusion reorders float16 math


@pytest.mark.parametrize("present", [0, 8], ids=["missing", "short"])
def test_a_weights_file_missing_or_short_is_one_line(tmp_path: Path, present: int) -> None:
    from onnx import TensorProto, helper, numpy_helper

    from optimizer.onnx_input import load_onnx_input

    weight = numpy_helper.from_array(np.zeros(4, np.float32), "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "big.onnx.data"), ("offset", "0"), ("length", "16")):
        weight.external_data.add(key=key, value=value)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"])], "big", [x], [x], [weight])
    graph.output[0].name = "y"
    onnx.save(helper.make_model(graph), str(tmp_path / "big.onnx"))
    if present:
        (tmp_path / "big.onnx.data").write_bytes(b"\0" * present)
    why = "'big.onnx.data' holds 8 bytes, its tensors need 16" if present else "'big.onnx.data' is not beside it"
    with pytest.raises(QuantserveError, match=r"big\.onnx: its external weights cannot be read \(") as caught:
        load_onnx_input(tmp_path / "big.onnx", tmp_path / "out.onnx")
    assert str(caught.value).endswith(f"({why})")  # the file named (it said only `ValidationError`, session 30)


def test_an_input_batched_along_axis_1_is_told_triton_batches_along_axis_0(tmp_path: Path) -> None:
    """(16, batch): the refusal named 16 "a fixed batch axis" and said nothing of the dynamic axis beside it."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Transpose", ["y"], ["scores"])],
        "g",
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, "batch"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 16])],
    )
    path = tmp_path / "axis1.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(QuantserveError, match=r"input 'y' has a fixed batch axis \(16\), and axis 1 is dynamic: "):
        export_onnx(load_source(path), tmp_path / "out.onnx")
