"""`deploy --ragged-batching pad` is checked before anything is written (serving.ragged_check): a model whose output
is a mean over the sequence is refused in one line (its answers would depend on its batch neighbours: a probe saw
1.49 on one request sent three times); a model that masks its padded positions deploys with pad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from serving_models import make_build_dir

from quantserve.artifact import Manifest, TensorSpec
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy, load_artifact
from serving.ragged_check import check_pad_exact

SEQUENCE_REFUSED = (
    "quantserve: error: --ragged-batching pad changes model 'seq' output 'pooled' (max diff 0.601 between a row alone "
    "and padded to 16 positions): its answers would depend on the requests batched with it; deploy with "
    "--ragged-batching group (exact)\n"
)


def make_masked_build(directory: Path) -> Path:
    """tokens [batch, sequence, 4] and attention_mask [batch, sequence] int64 → per-position `y` [batch, sequence, 3]
    and `pooled` = the mean of y over the positions the mask marks (padded zeros in the mask hide padded tokens)."""
    weights = numpy_helper.from_array(np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["tokens", "W"], ["y"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "last"], ["m3"]),
        helper.make_node("Mul", ["y", "m3"], ["ym"]),
        helper.make_node("ReduceSum", ["ym", "seq_axis"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["m3", "seq_axis"], ["count"], keepdims=0),
        helper.make_node("Div", ["total", "count"], ["pooled"]),
    ]
    axes = [
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
        numpy_helper.from_array(np.array([1]), "seq_axis"),
    ]
    graph = helper.make_graph(
        nodes,
        "masked",
        [
            helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "sequence", 4]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", 3]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[weights, *axes],
    )
    directory.mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), directory / "model.onnx")
    inputs = [
        TensorSpec("tokens", "float32", ("batch", "sequence", 4)),
        TensorSpec("attention_mask", "int64", ("batch", "sequence")),
    ]
    outputs = [TensorSpec("y", "float32", ("batch", "sequence", 3)), TensorSpec("pooled", "float32", ("batch", 3))]
    Manifest("masked", inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(directory)
    return directory


def test_a_mean_over_the_sequence_is_refused_with_pad_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = make_build_dir(tmp_path / "build", "sequence")
    repo = tmp_path / "repo"
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "seq", "--ragged-batching", "pad"]) == 2
    captured = capsys.readouterr()
    assert captured.err == SEQUENCE_REFUSED
    assert "deployed" not in captured.out and not repo.exists()
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "seq"]) == 0  # group: exact, deployed


def test_a_model_that_masks_padded_positions_passes_the_check_and_deploys_with_pad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = make_masked_build(tmp_path / "build")
    check_pad_exact(load_artifact(build), "masked")  # no error: the padded mask hides the padded tokens
    repo = tmp_path / "repo"
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "masked", "--ragged-batching", "pad"]) == 0
    assert 'key: "ragged_batching"' in (repo / "masked" / "config.pbtxt").read_text()
    assert "deployed" in capsys.readouterr().out


def test_the_library_deploy_checks_pad_when_asked(tmp_path: Path) -> None:
    build = make_build_dir(tmp_path / "build", "sequence")
    with pytest.raises(QuantserveError, match=r"^--ragged-batching pad changes model 'seq' output 'pooled' "):
        deploy(build, tmp_path / "repo", "seq", ragged_batching="pad", check_pad=True)
    assert not (tmp_path / "repo").exists()


def test_rows_the_model_cannot_take_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An embedding table of one row: the synthesized id 1 is out of range, so the check cannot be made."""
    table = numpy_helper.from_array(np.ones((1, 2), np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["vectors"])],
        "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", "sequence", 2])],
        initializer=[table],
    )
    build = tmp_path / "build"
    build.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), build / "model.onnx")
    Manifest(
        "lookup",
        [TensorSpec("ids", "int64", ("batch", "sequence"))],
        [TensorSpec("vectors", "float32", ("batch", "sequence", 2))],
        target="embedded",
        files={"model": "model.onnx"},
    ).save(build)
    repo = tmp_path / "repo"
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "lookup", "--ragged-batching", "pad"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "quantserve: error: --ragged-batching pad cannot be checked for model 'lookup': ONNX Runtime failed on "
        "synthesized rows (ids 0–1, masks of ones, 5 and 16 positions: "
    )
    assert err.endswith("); deploy with --ragged-batching group (exact)\n") and err.count("\n") == 1
    assert not repo.exists()


def test_a_dynamic_int8_build_is_checked_on_its_fp32_reference(tmp_path: Path) -> None:
    """A dynamic-INT8 build ranges each activation over its whole batch, so a neighbour moves its answers in group
    mode too (optimize judged that on batches); whether padding is masked is its graph's, checked on fp32.onnx."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    build = make_masked_build(tmp_path / "build")
    (build / "model.onnx").rename(build / "fp32.onnx")
    quantize_dynamic(build / "fp32.onnx", build / "model.onnx", weight_type=QuantType.QInt8)
    manifest = Manifest.load(build)
    manifest.files, manifest.precision = {"model": "model.onnx", "reference": "fp32.onnx"}, "int8"
    manifest.stages = [{"stage": "calibrate", "scheme": "dynamic"}]
    manifest.save(build)
    deployment = deploy(build, tmp_path / "repo", "masked_dyn", ragged_batching="pad")
    assert (tmp_path / "repo" / "masked_dyn" / "config.pbtxt").is_file(), deployment
    manifest.stages = [{"stage": "calibrate", "scheme": "static_qdq"}]  # checked as itself, its ranges move
    manifest.save(build)
    with pytest.raises(QuantserveError, match="--ragged-batching pad changes model 'masked_st' output"):
        deploy(build, tmp_path / "repo", "masked_st", ragged_batching="pad")
