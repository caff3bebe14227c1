"""A fusion that breaks the model or changes its answers leaves the graph unfused, said in a note: afis's LEADER
fused by onnxslim 0.1.98 moved its heatmap by 0.97 (39 minutiae became 30), and the build was refused with no way
through, though the unfused graph was the user's own, faithful model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from optimizer.export import export_onnx
from optimizer.fuse import FuseGraph
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.source import load_source
from quantserve.cli.optimize_tables import _details


def _broken_slim(real_slim):
    def slim(model: onnx.ModelProto) -> onnx.ModelProto:
        slimmed = real_slim(model)
        bias = next(i for i in slimmed.graph.initializer if i.name == "fc_b")
        values = onnx.numpy_helper.to_array(bias) + 1.0
        bias.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float32), "fc_b"))
        return slimmed

    return slim


def _failing_slim(model: onnx.ModelProto) -> onnx.ModelProto:
    raise ValueError("cannot infer the shape of node 'Resize_3'")


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        ("changes", r"onnxslim's fused model's output 'logits' differs from the unfused model by up to 1 "),
        ("fails", r"onnxslim failed on the graph \(ValueError: cannot infer the shape of node 'Resize_3'\)"),
    ],
)
def test_a_fusion_that_breaks_the_model_leaves_it_unfused(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str, reason: str
) -> None:
    import onnxslim

    monkeypatch.setattr(onnxslim, "slim", _broken_slim(onnxslim.slim) if which == "changes" else _failing_slim)
    exported = export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx")
    fused = FuseGraph()(exported, tmp_path / "fused.onnx")
    record = fused.manifest.stages[-1]
    assert record["stage"] == "fuse" and record["nodes_after"] == record["nodes_before"]
    assert record["op_types_after"]["BatchNormalization"] == 1  # not folded: the exported graph as it was
    note = record["unfused"]["note"]
    assert note.startswith("graph fusion skipped: ") and "the unfused graph goes on" in note
    assert __import__("re").search(reason, record["unfused"]["reason"])
    assert "left unfused" in _details(record)
    model = onnx.load(str(fused.path))
    assert all(node.name for node in model.graph.node)  # named for calibration's exclusions
    feeds = {"pixels": np.random.default_rng(3).uniform(0, 16, (6, 1, 8, 8)).astype(np.float32)}
    with OnnxRuntimeRunner(exported.path, "disable") as before, OnnxRuntimeRunner(fused.path, "disable") as after:
        np.testing.assert_array_equal(after.infer(feeds)["logits"], before.infer(feeds)["logits"])


def test_a_fusion_that_holds_is_not_noted(tiny_onnx: Path, tmp_path: Path) -> None:
    exported = export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx")
    record = FuseGraph()(exported, tmp_path / "fused.onnx").manifest.stages[-1]
    assert "unfused" not in record and "BatchNormalization" not in record["op_types_after"]
    assert "left unfused" not in _details(record)


def test_optimize_ships_the_unfused_model_and_says_why(
    tiny_onnx: Path,
    calib_npz: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import onnxslim

    from quantserve import cli

    monkeypatch.setattr(onnxslim, "slim", _broken_slim(onnxslim.slim))
    out = tmp_path / "build"
    argv = ["optimize", str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--precision", "fp32"]
    assert cli.main([*argv, "--skip-timing"]) == 0
    err = capsys.readouterr().err
    assert "quantserve: note: graph fusion skipped: onnxslim's fused model's output 'logits' differs" in err, err
    manifest = __import__("json").loads((out / "manifest.json").read_text())
    fuse = next(stage for stage in manifest["stages"] if stage["stage"] == "fuse")
    assert fuse["unfused"]["reason"].startswith("onnxslim's fused model's output 'logits' differs")


def test_a_fusion_that_adds_an_input_leaves_it_unfused(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxslim

    real_slim = onnxslim.slim

    def adds_input(model: onnx.ModelProto) -> onnx.ModelProto:
        slimmed = real_slim(model)
        slimmed.graph.input.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1]))
        return slimmed

    monkeypatch.setattr(onnxslim, "slim", adds_input)
    exported = export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx")
    record = FuseGraph()(exported, tmp_path / "fused.onnx").manifest.stages[-1]
    assert record["unfused"]["reason"].startswith("onnxslim's fusion changed the model's inputs (added ['extra'];")
    assert [i.name for i in onnx.load(str(tmp_path / "fused.onnx")).graph.input] == ["pixels"]
