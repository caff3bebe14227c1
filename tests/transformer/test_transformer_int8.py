"""INT8 policy for transformers: MatMul/Gemm in Q/DQ, sensitive parts FP32, drift measured against a budget."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import pytest

from examples import text_encoder
from optimizer.calibrate import CalibrationSettings
from optimizer.export import manifest_from_onnx
from optimizer.transformer import CalibrateTransformerInt8, DriftBudget, FuseTransformer, quantizable_nodes, run_model
from quantserve.artifact import Artifact


@pytest.fixture(scope="module")
def fused(trained_encoder, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    path = trained_encoder.onnx_path
    out = tmp_path_factory.mktemp("fused") / "fused.onnx"
    return FuseTransformer(4, 64)(Artifact(path, manifest_from_onnx(onnx.load(str(path)), "enc")), out)


def _int8_weight_consumers(model: onnx.ModelProto) -> Counter[str]:
    """Op types of the nodes whose weights are INT8 (a DequantizeLinear of an initializer feeds them)."""
    initializers = {i.name for i in model.graph.initializer}
    weights = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in initializers}
    return Counter(n.op_type for n in model.graph.node if weights.intersection(n.input))


def test_policy_quantizes_only_matmul_and_gemm_within_budget(fused: Artifact, trained_encoder, tmp_path: Path) -> None:
    quantized = CalibrateTransformerInt8(trained_encoder.calib, trained_encoder.held_out)(fused, tmp_path / "q.onnx")
    record = quantized.manifest.stages[-1]
    consumers = _int8_weight_consumers(onnx.load(str(quantized.path)))
    layers = text_encoder.EncoderConfig().num_layers
    # Attention (its packed QKV weights), LayerNorm, BiasGelu and the embedding tables stay FP32.
    assert consumers == {"MatMul": 3 * layers, "Gemm": 2}, consumers  # attention output + FFN in/out; pooler, head
    assert record["within_budget"] and record["kept_fp32"] == []
    assert record["drift"]["logits"]["top1_agreement"] >= 0.99
    assert record["drift"]["embedding"]["mean_cosine"] >= 0.99
    assert quantized.manifest.precision == "int8"


def test_sensitivity_loop_keeps_nodes_fp32_until_a_strict_budget_holds(
    fused: Artifact, trained_encoder, tmp_path: Path
) -> None:
    strict = DriftBudget(top1_agreement=1.0, mean_cosine=0.99999)
    held_out = trained_encoder.held_out.take(0, 200)
    quantized = CalibrateTransformerInt8(trained_encoder.calib, held_out, budget=strict)(fused, tmp_path / "q.onnx")
    record = quantized.manifest.stages[-1]
    steps = record["sensitivity_steps"]
    assert not steps[0]["within_budget"], "the strict budget must first fail with everything quantized"
    assert record["kept_fp32"], "the loop kept some nodes in FP32"
    assert set(record["kept_fp32"]) <= set(quantizable_nodes(onnx.load(str(fused.path))))
    first, last = steps[0]["drift"]["embedding"]["mean_cosine"], steps[-1]["drift"]["embedding"]["mean_cosine"]
    assert last > first
    # What was written is the model the last step measured.
    got = run_model(quantized.path, held_out.arrays)["embedding"]
    want = run_model(fused.path, held_out.arrays)["embedding"]
    assert float((got * want).sum(1).mean()) == pytest.approx(last, abs=1e-6)


def test_every_op_type_breaks_the_unfused_encoder_matmul_gemm_does_not(trained_encoder, tmp_path: Path) -> None:
    """The measurement behind the policy, on the unfused graph (Softmax, mask and pooling ops exposed)."""
    from optimizer.calibrate import CalibrateInt8

    path = trained_encoder.onnx_path
    unfused = Artifact(path, manifest_from_onnx(onnx.load(str(path)), "enc"))
    want = run_model(path, trained_encoder.held_out.arrays)["logits"].argmax(1)
    agreement = {}
    for name, op_types in (("all", ()), ("policy", ("MatMul", "Gemm"))):
        settings = CalibrationSettings(op_types_to_quantize=op_types)
        quantized = CalibrateInt8(trained_encoder.calib, settings)(unfused, tmp_path / f"{name}.onnx")
        got = run_model(quantized.path, trained_encoder.held_out.arrays)["logits"].argmax(1)
        agreement[name] = float((got == want).mean())
    assert agreement["all"] < 0.9 and agreement["policy"] >= 0.99, agreement
