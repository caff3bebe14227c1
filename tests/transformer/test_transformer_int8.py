"""INT8 for transformers: encoders recognised from the graph, the scheme search, mixed precision when strict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.calibrate import CalibrationSettings
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.export import manifest_from_onnx
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.output_kinds import infer_output_kinds
from optimizer.transformer import FuseTransformer, detect_encoder, quantizable_nodes, run_model
from quantserve.artifact import Artifact


@pytest.fixture(scope="module")
def fused(trained_encoder, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    path = trained_encoder.onnx_path
    out = tmp_path_factory.mktemp("fused") / "fused.onnx"
    return FuseTransformer(4, 64)(Artifact(path, manifest_from_onnx(onnx.load(str(path)), "enc")), out)


def _one_conv() -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 4, 4])],
        [weight],
    )
    return helper.make_model(graph)


def test_encoder_recognised_from_fused_and_unfused_graphs_not_from_a_cnn(fused: Artifact, trained_encoder) -> None:
    assert detect_encoder(onnx.load(str(fused.path))).startswith("fused transformer ops: Attention")
    unfused = detect_encoder(onnx.load(str(trained_encoder.onnx_path)))
    assert unfused is not None and "Softmax over a MatMul" in unfused, unfused
    assert detect_encoder(_one_conv()) is None


def test_search_measures_static_dynamic_and_smoothed_and_ships_one_within_budget(
    fused: Artifact, trained_encoder, tmp_path: Path
) -> None:
    quantized = SearchInt8(trained_encoder.calib, trained_encoder.held_out)(fused, tmp_path / "q.onnx")
    record = quantized.manifest.stages[-1]
    print("\ntiny encoder INT8 search:", {k: record[k] for k in ("scheme", "speed", "int8_mac_share", "search_s")})
    print("candidates:", record["candidates"])
    schemes = [c["scheme"] for c in record["candidates"]]
    # and on x86 without VNNI, 7-bit ones where an 8-bit one missed (`int8_fallbacks`): the encoder trained on one
    # thread (`make test`'s workers) missed with 8-bit dynamic on an AMD EPYC
    assert [s for s in schemes if not s.endswith("_7bit")] == ["static_qdq", "dynamic", "static_qdq_smooth"]
    assert {s for s in schemes if s.endswith("_7bit")} <= {"dynamic_7bit", "static_qdq_7bit"}
    assert record["encoder"].startswith("fused transformer ops") and record["within_budget"]
    assert record["drift"]["outputs"]["logits"]["top1_agreement"] >= 0.99
    assert record["drift"]["outputs"]["embedding"]["cosine_mean"] >= 0.99
    static = next(c for c in record["candidates"] if c["scheme"] == "static_qdq")
    assert static["holds"], "MatMul/Gemm-only static Q/DQ holds on the fused encoder"
    excluded = {e["node"] for e in record["excluded"]}
    assert "/classifier/Gemm" in excluded  # produces the logits output
    assert quantized.manifest.precision == "int8" and 0.0 < record["int8_mac_share"] <= 1.0


def test_strict_budget_keeps_nodes_fp32_and_ships_what_it_measured(
    fused: Artifact, trained_encoder, tmp_path: Path, just_above_the_candidates: Callable[..., float]
) -> None:
    held_out = trained_encoder.held_out.take(0, 200)
    search = SearchSettings(max_probes=6, probe_samples=48)
    # the cosine bound just above the candidates' as this CPU's INT8 kernels round (a fixed 0.99999 was held by a
    # candidate on an AVX-512 VNNI EPYC, session 41): nothing holds the lax search's 0.999999, the closest kept
    lax = {"lax_bound": 0.999999, "keep_failing": True, "search": SearchSettings(max_probes=2, probe_samples=48)}
    bound = just_above_the_candidates(fused, trained_encoder.calib, held_out, tmp_path, **lax)
    strict = DriftBudget(min_top1_agreement=1.0, min_cosine_mean=bound, min_cosine_worst=0.9999)
    stage = SearchInt8(trained_encoder.calib, held_out, budget=strict, search=search)
    quantized = stage(fused, tmp_path / "q.onnx")
    record = quantized.manifest.stages[-1]
    mixed = record["mixed_precision"]
    assert not any(c["holds"] for c in record["candidates"]), "the strict budget must first fail everywhere"
    assert mixed is not None and mixed["probes"] and mixed["steps"]
    kept = {k["node"] for k in mixed["kept_fp32"]}
    assert kept and kept <= set(quantizable_nodes(onnx.load(str(fused.path)), ("MatMul", "Gemm", "Attention")))
    assert max(s["margin"] for s in mixed["steps"]) > max(c["margin"] for c in record["candidates"])
    # What was written is the model the record measured.
    reference = run_model(fused.path, held_out.arrays)
    got = run_model(quantized.path, held_out.arrays)
    kinds = infer_output_kinds(reference, labels=held_out.labels)
    again = measure_drift(reference, got, kinds, strict, held_out.labels)
    assert again.margin() == pytest.approx(record["drift"]["margin"], abs=1e-6)


def test_every_op_type_breaks_the_unfused_encoder_matmul_gemm_does_not(trained_encoder, tmp_path: Path) -> None:
    """The measurement behind the static policy, on the unfused graph (Softmax, mask and pooling ops exposed)."""
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
