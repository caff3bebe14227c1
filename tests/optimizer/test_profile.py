"""optimizer.profile: ORT profiler traces mapped back to ONNX nodes, on a tiny model built by the real pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from engine_test_models import embedding_model
from onnx import TensorProto, helper

from optimizer.profile import (
    ModelProfile,
    NodeTime,
    OnnxNodeIndex,
    base_op_type,
    busy_note,
    node_times_ms,
    op_type_times_ms,
    op_type_totals,
    profile_model,
    profile_rounds,
    summarize_trace,
)
from optimizer.profile_compare import compare_nodes, compare_op_types
from quantserve.errors import QuantserveError


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """fp32.onnx + model.onnx (INT8 Q/DQ) written by `optimize` for the tiny CNN."""
    import make_tiny_models

    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.speed import SpeedSettings

    root = tmp_path_factory.mktemp("profile-build")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUANTSERVE_CACHE_DIR", str(root / "calib-cache"))
        source = make_tiny_models.write_tiny_onnx(root / "tiny.onnx")
        calib = make_tiny_models.write_digits_like_npz(root / "calib.npz", samples=400)
        untimed = SpeedSettings(enabled=False)  # a slower tiny INT8 is still a build to profile
        optimize(OptimizeOptions(source, calib, "int8", "embedded", root / "build", speed=untimed))
    yield root / "build"


def _batches() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"pixels": rng.random((4, 1, 8, 8), dtype=np.float32)} for _ in range(2)]


def _onnx_names(path: Path) -> set[str]:
    return {node.name for node in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("model", ["fp32.onnx", "model.onnx"])
def test_every_onnx_node_is_timed_or_listed_as_not_run(tiny_build: Path, model: str) -> None:
    profile = profile_model(tiny_build / model, _batches(), threads=1, repeats=2)
    timed = {n.onnx_node for n in profile.nodes if n.onnx_node is not None}
    assert timed | set(profile.not_run) == _onnx_names(tiny_build / model)
    assert not timed & set(profile.not_run)
    assert profile.runs == 4
    assert profile.run_ms > 0 and all(n.ms >= 0 for n in profile.nodes)
    assert profile.kernel_ms <= profile.run_ms * 1.5  # kernels run inside model_run


def test_int8_kernels_map_back_to_the_fp32_op_types(tiny_build: Path) -> None:
    fp32 = profile_model(tiny_build / "fp32.onnx", _batches(), repeats=1)
    int8 = profile_model(tiny_build / "model.onnx", _batches(), repeats=1)
    # the head Gemm writes the graph output, which the INT8 search keeps in FP32 by design
    assert "QLinearConv" in {n.op_type for n in int8.nodes}
    assert {"Conv", "Gemm"} <= set(op_type_totals(fp32.nodes)) & set(op_type_totals(int8.nodes))
    conv = next(n for n in int8.nodes if n.op_type == "QLinearConv")
    assert (conv.onnx_node, conv.onnx_op_type) == ("conv", "Conv")
    # and the tables say which kernel ran for it
    rows = {r.op_type: r for r in compare_op_types(fp32, int8)}
    assert "QLinearConv" in rows["Conv"].runs_as and "Conv" not in rows["Conv"].runs_as
    assert next(r for r in compare_nodes(fp32, int8) if r.node == "conv").runs_as == rows["Conv"].runs_as


def test_public_dicts_are_keyed_by_onnx_names_and_op_types(tiny_build: Path) -> None:
    model = tiny_build / "fp32.onnx"
    by_node = node_times_ms(model, _batches(), threads=1, repeats=1)
    by_type = op_type_times_ms(model, _batches(), threads=1, repeats=1)
    assert {"conv", "Gemm_4"} <= set(by_node)
    assert {"Conv", "Gemm"} <= set(by_type)
    assert "Relu" not in by_type  # fused into the Conv kernel, whose time counts as Conv


def test_the_trace_file_is_not_left_in_the_working_directory(
    tiny_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    profile_model(tiny_build / "model.onnx", _batches(), repeats=1)
    assert list(tmp_path.iterdir()) == []


def test_missing_or_broken_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match=r"missing\.onnx: model file not found$"):
        profile_model(tmp_path / "missing.onnx", _batches())
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(QuantserveError, match=r"broken\.onnx: ONNX Runtime cannot load the model") as info:
        profile_model(broken, _batches())
    assert "\n" not in str(info.value)


def test_no_batches_is_refused(tiny_build: Path) -> None:
    with pytest.raises(QuantserveError, match="no input batches to profile with"):
        profile_model(tiny_build / "fp32.onnx", [])


def _graph() -> onnx.GraphProto:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn_node"),
        helper.make_node("Relu", ["bn"], ["relu"], name="Relu_1"),
        helper.make_node("MatMul", ["relu", "w2"], ["y"], name="/encoder/layer.0/MatMul"),
    ]
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    return helper.make_graph(nodes, "g", [value], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


@pytest.mark.parametrize(
    ("name", "op_type", "expected"),
    [
        ("conv", "Conv", "conv"),
        ("conv_token_1", "QLinearConv", "conv"),
        ("relu_nchwc", "Conv", "conv"),  # NCHWc Conv+BN+Relu, named after the Relu's output tensor
        ("relu_nchwc", "Relu", "Relu_1"),
        ("/encoder/layer.0/MatMul_token_7", "MatMulInteger", "/encoder/layer.0/MatMul"),
        ("fused /encoder/layer.0/MatMul", "FusedMatMul", "/encoder/layer.0/MatMul"),
        ("Transpose_token_3", "Transpose", None),
        ("ReorderOutput", "ReorderOutput", None),
    ],
)
def test_optimized_names_map_back_to_onnx_nodes(name: str, op_type: str, expected: str | None) -> None:
    assert OnnxNodeIndex(_graph()).map_to_onnx(name, op_type) == expected


@pytest.mark.parametrize(
    ("kernel", "onnx_op"),
    [
        ("QLinearConv", "Conv"),
        ("QGemm", "Gemm"),
        ("MatMulInteger", "MatMul"),
        ("DynamicQuantizeMatMul", "MatMul"),
        ("FusedConv", "Conv"),
        ("QuantizeLinear", "QuantizeLinear"),
        ("Gemm", "Gemm"),
    ],
)
def test_base_op_type(kernel: str, onnx_op: str) -> None:
    assert base_op_type(kernel) == onnx_op


def _event(name: str, ts: int, dur: int, cat: str = "Node", op: str = "Conv") -> dict:
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "args": {"op_name": op}}


def test_summarize_trace_skips_the_warm_up_run_and_averages_per_run() -> None:
    events = [
        _event("model_run", 0, 100, cat="Session"),
        _event("conv_kernel_time", 10, 90),  # warm-up: ignored
        _event("model_run", 200, 30, cat="Session"),
        _event("conv_kernel_time", 205, 20),
        _event("conv_fence_before", 204, 1),
        _event("model_run", 300, 50, cat="Session"),
        _event("conv_kernel_time", 305, 40),
    ]
    kernels, run_ms = summarize_trace(events, warmup_runs=1, runs=2)
    assert kernels == {("conv", "Conv"): pytest.approx(0.030)}
    assert run_ms == pytest.approx(0.040)


def test_op_type_totals_sum_per_onnx_op_type() -> None:
    nodes = [NodeTime("a", "QLinearConv", "a", "Conv", 1.0), NodeTime("b", "Conv", "b", "Conv", 2.0)]
    assert op_type_totals(nodes) == {"Conv": 3.0}


def test_a_trace_cut_short_by_the_event_limit_is_refused() -> None:
    events = [_event("model_run", 0, 100, cat="Session"), _event("conv_kernel_time", 10, 90)]
    with pytest.raises(QuantserveError, match=r"recorded 1 of 3 runs \(event limit reached\)"):
        summarize_trace(events, warmup_runs=1, runs=2)


def test_inputs_onnx_runtime_refuses_are_the_users_data_in_one_line(tmp_path: Path) -> None:
    model = embedding_model(tmp_path / "embed.onnx")
    ids = [{"ids": np.full((2, 3), 500, np.int64)}]
    with pytest.raises(QuantserveError) as info:
        profile_model(model, ids, repeats=1, inputs="data file seqbig.npz")
    message = str(info.value)
    assert message.startswith(
        "embed.onnx cannot run on data file seqbig.npz: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT"
    )
    assert "/embed/Gather" in message and "idx=500" in message and "\n" not in message


def test_each_child_reads_the_share_of_the_cores_other_processes_took(tiny_build: Path) -> None:
    profile = profile_model(tiny_build / "fp32.onnx", _batches(), repeats=1)
    assert profile.others_share is not None and 0.0 <= profile.others_share <= 1.0
    assert profile.rounds == 1


def _fake(model: str, run_ms: float, ms: float, share: float | None) -> ModelProfile:
    return ModelProfile(model, 1, 2, run_ms, [NodeTime("k", "Conv", "conv", "Conv", ms)], others_share=share)


def test_rounds_alternate_the_models_and_keep_each_ones_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    import optimizer.profile

    order: list[str] = []
    taken = {"a.onnx": iter([1.0, 9.0, 2.0]), "b.onnx": iter([4.0, 5.0, 40.0])}

    def fake_profile(path: Path, *args: object) -> ModelProfile:
        order.append(path.name)
        ms = next(taken[path.name])
        return _fake(path.name, ms, ms / 2, ms / 100)

    monkeypatch.setattr(optimizer.profile, "profile_model", fake_profile)
    a, b = profile_rounds([Path("a.onnx"), Path("b.onnx")], _batches(), threads=1, repeats=2, rounds=3)
    assert order == ["a.onnx", "b.onnx"] * 3
    assert (a.run_ms, a.nodes[0].ms, a.others_share, a.rounds) == (2.0, 1.0, 0.02, 3)
    assert (b.run_ms, b.nodes[0].ms, b.others_share) == (5.0, 2.5, 0.05)


def test_a_share_above_busy_share_makes_a_note_that_says_not_to_trust_the_figures() -> None:
    from optimizer.cpu_clock import BUSY_SHARE

    assert busy_note(0.52) == (
        "profiled on a busy machine (other processes used 52% of the cores): the ms and speedups are not to "
        "be trusted; profile again when idle"
    )
    assert busy_note(BUSY_SHARE) is None and busy_note(0.0) is None and busy_note(None) is None
