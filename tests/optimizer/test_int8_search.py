"""The INT8 search: mixed-range outputs kept FP32, the scheme that holds the drift budget chosen, MACs counted.

Tiny graphs are generated here with onnx.helper. Nothing asserts timing: which candidate is faster
depends on the machine, so tests check drift, what was excluded and what the record says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.calibrate import CalibrateInt8
from optimizer.compute_share import compute_macs, quantized_nodes
from optimizer.drift import measure_drift
from optimizer.drift_budget import BudgetExceeded, DriftBudget
from optimizer.export import manifest_from_onnx
from optimizer.int8_measure import SearchSettings
from optimizer.int8_schemes import SMOOTH_ALPHAS
from optimizer.int8_search import CANDIDATES, SearchInt8
from optimizer.output_kinds import infer_output_kinds
from optimizer.quant_exclusions import find_exclusions, output_side_exclusions
from optimizer.sensitivity import KEEPING, PROBING, probe_groups
from optimizer.transformer import run_model
from quantserve.artifact import Artifact
from quantserve.data import TensorData

# a budget these small searches never reach (4 s alone here): on a loaded machine a 30 s one cut the mixed-precision
# search short and the test read the refusal as a wrong result; the budget itself is tested in test_search_budget
FAST = SearchSettings(max_search_s=600.0, max_probes=4, probe_samples=32, timing_repeats=1)
VNNI = frozenset({"avx2", "avx512_vnni"})  # no 7-bit candidate (`optimizer.int8_fallbacks`): premises CPU-free


def _conv(name: str, x: str, cin: int, cout: int, rng: np.random.Generator, k: int = 1) -> tuple[list, list]:
    weight = numpy_helper.from_array((rng.standard_normal((cout, cin, k, k)) * 0.5).astype(np.float32), f"{name}.w")
    bias = numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), f"{name}.b")
    node = helper.make_node("Conv", [x, weight.name, bias.name], [name], name=name, pads=[k // 2] * 4)
    return [node], [weight, bias]


def _save(path: Path, nodes: list, inits: list, output: str, out_shape: list) -> Artifact:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def detector(path: Path, internal_concat: bool = False) -> Artifact:
    """Conv trunk, a box branch (0–~300) and a score branch (sigmoid, 0–1) concatenated on channels.

    `internal_concat`: the concatenation feeds two more convs before the output instead of being it.
    """
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    for part in (
        _conv("trunk", "x", 3, 8, rng, 3),
        _conv("box_conv", "trunk_relu", 8, 4, rng),
        _conv("cls_conv", "trunk_relu", 8, 3, rng),
    ):
        nodes += part[0]
        inits += part[1]
    inits.append(numpy_helper.from_array(np.array(80.0, np.float32), "stride"))
    nodes.insert(1, helper.make_node("Relu", ["trunk"], ["trunk_relu"], name="trunk_act"))
    nodes += [
        helper.make_node("Relu", ["box_conv"], ["box_pos"], name="box_act"),
        helper.make_node("Mul", ["box_pos", "stride"], ["boxes"], name="box_scale"),
        helper.make_node("Sigmoid", ["cls_conv"], ["scores"], name="cls_act"),
        helper.make_node("Concat", ["boxes", "scores"], ["head"], name="head_concat", axis=1),
    ]
    if not internal_concat:
        inits.append(numpy_helper.from_array(np.array([0, 7, 64], np.int64), "flat"))
        nodes.append(helper.make_node("Reshape", ["head", "flat"], ["detections"], name="flatten"))
        return _save(path, nodes, inits, "detections", ["N", 7, 64])
    for part in (_conv("neck", "head", 7, 8, rng), _conv("out_conv", "neck_relu", 8, 4, rng)):
        nodes += part[0]
        inits += part[1]
    nodes.insert(-1, helper.make_node("Relu", ["neck"], ["neck_relu"], name="neck_act"))
    return _save(path, nodes, inits, "out_conv", ["N", 4, 8, 8])


def images(count: int, seed: int) -> TensorData:
    return TensorData({"x": np.random.default_rng(seed).standard_normal((count, 3, 8, 8)).astype(np.float32)})


def test_output_side_and_mixed_range_concat_are_excluded_with_reasons(tmp_path: Path) -> None:
    art = detector(tmp_path / "det.onnx", internal_concat=True)
    model = onnx.load(str(art.path))
    found = {e.node: e.reason for e in find_exclusions(model, art.path, images(8, 1).batches(4))}
    assert "concatenates ranges" in found["head_concat"], found
    assert "neck" in found and "mixed-range output of 'head_concat'" in found["neck"]
    assert "produces graph output" in found["out_conv"]
    assert "trunk" not in found and "box_conv" not in found and "neck_act" not in found, found


def test_output_side_walks_back_to_the_last_compute_nodes(tmp_path: Path) -> None:
    model = onnx.load(str(detector(tmp_path / "det.onnx").path))
    names = {e.node for e in output_side_exclusions(model)}
    assert names == {"flatten", "head_concat", "box_scale", "box_act", "cls_act"}


def test_search_keeps_every_score_channel_that_plain_static_int8_zeroes(tmp_path: Path) -> None:
    art = detector(tmp_path / "det.onnx")
    calib, held = images(64, 1), images(48, 2)
    plain = CalibrateInt8(calib)(art, tmp_path / "plain.onnx")
    want = run_model(art.path, held.arrays)["detections"]
    collapsed = run_model(plain.path, held.arrays)["detections"][:, 4:]
    assert np.abs(collapsed).max() == 0.0, "the shared scale zeroes the score rows (what the search must avoid)"

    result = SearchInt8(calib, held, target="embedded", search=FAST)(art, tmp_path / "int8.onnx")
    record = result.manifest.stages[-1]
    got = run_model(result.path, held.arrays)["detections"]
    for channel in range(4, 7):
        assert np.corrcoef(want[:, channel].ravel(), got[:, channel].ravel())[0, 1] > 0.99
    excluded = {e["node"]: e["reason"] for e in record["excluded"]}
    assert "produces graph output 'detections'" in excluded["flatten"] and "head_concat" in excluded
    assert record["scheme"] == "static_qdq" and [c["scheme"] for c in record["candidates"]] == ["static_qdq"]
    assert record["output_kinds"] == {"detections": "detection"} and record["within_budget"]
    assert 0.0 < record["int8_mac_share"] <= 1.0 and result.manifest.precision == "int8"


def mlp(path: Path, features: int = 16, hidden: int = 64) -> Artifact:
    """x[N, F] → MatMul → Relu → MatMul → MatMul → y[N, 64], an embedding; weight MatMuls only (dynamic applies)."""
    rng = np.random.default_rng(3)
    shapes = [(features, hidden), (hidden, hidden), (hidden, 64)]
    inits = [
        numpy_helper.from_array((rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32), f"w{i}")
        for i, s in enumerate(shapes)
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["h0"], name="fc0"),
        helper.make_node("Relu", ["h0"], ["a0"], name="act0"),
        helper.make_node("MatMul", ["a0", "w1"], ["h1"], name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="act1"),
        helper.make_node("MatMul", ["a1", "w2"], ["y"], name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, "mlp"))


def test_dynamic_chosen_where_static_ranges_clip_the_held_out_data(tmp_path: Path) -> None:
    """Calibration saw values 8× smaller than the held-out set: static Q/DQ clips, dynamic adapts per run."""
    art = mlp(tmp_path / "mlp.onnx")
    rng = np.random.default_rng(5)
    calib = TensorData({"x": (rng.standard_normal((128, 16)) * 0.25).astype(np.float32)})
    held = TensorData({"x": (rng.standard_normal((128, 16)) * 2.0).astype(np.float32)})
    budget = DriftBudget(min_cosine_mean=0.99, min_cosine_worst=0.9, min_channel_correlation=0.9)
    result = SearchInt8(calib, held, budget=budget, search=FAST, cpu_flags=VNNI)(art, tmp_path / "int8.onnx")
    record = result.manifest.stages[-1]
    holds = {c["scheme"]: c["holds"] for c in record["candidates"]}
    assert holds == {"static_qdq": False, "dynamic": True, "static_qdq_smooth": False, "static_qdq_compute": False}, (
        record["candidates"]
    )
    assert record["within_budget"] and record["encoder"] is None
    # What was written is what was measured.
    reference = run_model(art.path, held.arrays)
    kinds = infer_output_kinds(reference)
    assert measure_drift(reference, run_model(result.path, held.arrays), kinds, budget).holds
    assert record["speed"]["fp32_run_ms"] > 0 and record["speed"]["int8_run_ms"] > 0


def test_mixed_precision_keeps_nodes_fp32_until_a_strict_budget_holds(
    tmp_path: Path, just_above_the_candidates: Callable[..., float]
) -> None:
    art = mlp(tmp_path / "mlp.onnx")
    rng = np.random.default_rng(6)
    calib = TensorData({"x": rng.standard_normal((128, 16)).astype(np.float32)})
    held = TensorData({"x": rng.standard_normal((96, 16)).astype(np.float32)})
    # every candidate misses this; one MatMul kept FP32 holds it (both kept is no INT8 model: refused). fc2 writes
    # the output and reads FP32 (qdq_graph.finish_qdq). The bound is set from the candidates' cosine as measured on
    # this CPU: a fixed 0.99977 (best candidate 0.99975 on an AVX2 EPYC, fc1 kept FP32 holding with margin about 0.45)
    # was held by two candidates on an AVX-512 VNNI EPYC, whose INT8 kernels round otherwise (session 41)
    strict = DriftBudget(
        min_cosine_mean=just_above_the_candidates(art, calib, held, tmp_path, cpu_flags=VNNI, search=FAST),
        min_cosine_worst=0.99,
        min_channel_correlation=0.99,
    )
    steps: list[str] = []  # what a progress bar is told while the search runs
    counts: list[tuple[int, int, str]] = []  # and the counts its bar advances by
    search = SearchInt8(
        calib,
        held,
        budget=strict,
        search=FAST,
        on_step=steps.append,
        on_progress=lambda *c: counts.append(c),
        cpu_flags=VNNI,
    )
    record = search(art, tmp_path / "int8.onnx").manifest.stages[-1]
    mixed = record["mixed_precision"]
    assert steps[:2] == ["dynamic candidate", "static_qdq candidate"] and "mixed precision: variant 1" in steps
    # 128 rows in 32s, for static_qdq and for each alpha static_qdq_smooth judges (the chosen one is then cached)
    chunks = [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert _counted(counts, "calibration: min/max ranges") == chunks * (1 + len(SMOOTH_ALPHAS))
    assert _counted(counts, CANDIDATES) == [(1, 3), (2, 3), (3, 3)]
    probed = len(mixed["probes"])
    assert _counted(counts, PROBING) == [(n, probed) for n in range(1, probed + 1)]
    groups = _counted(counts, KEEPING)  # the search stops once the budget holds: the total is the groups ranked
    assert [done for done, _ in groups] == list(range(1, len(mixed["steps"]) + 1)) and groups[-1][1] >= probed
    assert not any(c["holds"] for c in record["candidates"]), "the strict budget must first fail everywhere"
    assert mixed is not None and mixed["probes"], record
    kept = {k["node"] for k in mixed["kept_fp32"]}
    assert kept <= {"fc0", "fc1"}, kept  # fc2 produces the output: excluded up front, not searched
    assert 0.0 < record["int8_mac_share"] < 1.0 and record["int8_nodes"] >= 1, record
    margins = [s["margin"] for s in mixed["steps"]]
    assert max(margins) > min(c["margin"] for c in record["candidates"])


def _counted(counts: list[tuple[int, int, str]], what: str) -> list[tuple[int, int]]:
    return [(done, total) for done, total, said in counts if said == what]


def test_macs_and_quantized_nodes_from_shapes_and_the_int8_graph(tmp_path: Path) -> None:
    art = detector(tmp_path / "det.onnx")
    model = onnx.load(str(art.path))
    macs = compute_macs(model, art.path, {"x": np.zeros((1, 3, 8, 8), np.float32)})
    assert macs == {"trunk": 64 * 8 * 27, "box_conv": 64 * 4 * 8, "cls_conv": 64 * 3 * 8}
    quantized = CalibrateInt8(images(16, 0))(art, tmp_path / "q.onnx")
    assert set(quantized_nodes(model, onnx.load(str(quantized.path)))) == set(macs)
    assert quantized_nodes(model, model) == []


@pytest.mark.parametrize(("count", "probes", "sizes"), [(5, 2, [3, 2]), (3, 8, [1, 1, 1]), (1, 4, [1])])
def test_probe_groups_are_contiguous_and_bounded(count: int, probes: int, sizes: list[int]) -> None:
    nodes = [f"n{i}" for i in range(count)]
    groups = probe_groups(nodes, probes)
    assert [len(g) for g in groups] == sizes and [n for g in groups for n in g] == nodes


def test_keep_fp32_surgery_restores_float_weights_and_inputs(tmp_path: Path) -> None:
    from optimizer.calibrate import CalibrationSettings
    from optimizer.fp32_restore import keep_fp32

    art = mlp(tmp_path / "mlp.onnx")
    calib = TensorData({"x": np.random.default_rng(7).standard_normal((32, 16)).astype(np.float32)})
    settings = CalibrationSettings(op_types_to_quantize=("MatMul",))
    int8 = onnx.load(str(CalibrateInt8(calib, settings)(art, tmp_path / "q.onnx").path))
    fp32 = onnx.load(str(art.path))
    one = keep_fp32(int8, fp32, ["fc1"])
    fc1 = next(n for n in one.graph.node if n.name == "fc1")
    assert list(fc1.input) == ["a0", "w1"] and quantized_nodes(fp32, one) == ["fc0", "fc2"]
    every = keep_fp32(int8, fp32, ["fc0", "fc1", "fc2"])
    assert quantized_nodes(fp32, every) == [] and "w0_quantized" not in {i.name for i in every.graph.initializer}
    onnx.save(one, str(tmp_path / "one.onnx"))
    x = {"x": calib.arrays["x"][:8]}
    want, got = run_model(art.path, x)["y"], run_model(tmp_path / "one.onnx", x)["y"]
    assert np.corrcoef(want.ravel(), got.ravel())[0, 1] > 0.99


def test_tensorrt_target_gets_static_qdq_of_the_smoothed_model_only(tmp_path: Path) -> None:
    art = mlp(tmp_path / "mlp.onnx")
    data = TensorData({"x": np.random.default_rng(8).standard_normal((64, 16)).astype(np.float32)})
    result = SearchInt8(data, data, target="tensorrt", search=FAST)(art, tmp_path / "int8.onnx")
    record = result.manifest.stages[-1]
    assert [c["scheme"] for c in record["candidates"]] == ["static_qdq_smooth"] and record["format"] == "QDQ"
    smooth = record["smoothquant"]
    assert smooth["chosen"] and sorted(smooth["smoothed"]) == ["fc0", "fc1", "fc2"]
    # alpha chosen per model: each candidate quantized and judged on calibration rows, the best margin kept
    margins = smooth["alpha_margins_on_calibration"]
    assert sorted(margins) == sorted(f"{a:g}" for a in SMOOTH_ALPHAS)
    assert margins[f"{smooth['alpha']:g}"] == max(margins.values())
    assert smooth["mul_inserted"] == 3 and smooth["folded_into_layernorm"] == 0
    shipped = {n.name for n in onnx.load(str(result.path)).graph.node}
    assert set(smooth["inserted_nodes"]) <= shipped  # the shipped file is the quantized smoothed model


def test_keep_fp32_never_reads_a_name_orts_folded_relu_handed_over(tmp_path: Path) -> None:
    """Quantized with every op type, ORT drops the Relus and names fc0's pre-Relu output 'a0': reading it is wrong."""
    from optimizer.fp32_restore import keep_fp32

    art = mlp(tmp_path / "mlp.onnx")
    calib = TensorData({"x": np.random.default_rng(6).standard_normal((64, 16)).astype(np.float32)})
    int8 = CalibrateInt8(calib)(art, tmp_path / "q.onnx")
    assert "Relu" not in {n.op_type for n in onnx.load(str(int8.path)).graph.node}
    onnx.save(keep_fp32(onnx.load(str(int8.path)), onnx.load(str(art.path)), ["fc0"]), str(tmp_path / "k.onnx"))
    x = {"x": calib.arrays["x"][:16]}
    want = run_model(art.path, x)["y"]
    error_int8 = np.abs(run_model(int8.path, x)["y"] - want).max()
    assert np.abs(run_model(tmp_path / "k.onnx", x)["y"] - want).max() < error_int8


def test_keep_fp32_restores_biases_whose_name_orts_dequantize_output_took(tmp_path: Path) -> None:
    from optimizer.fp32_restore import keep_fp32

    art = detector(tmp_path / "det.onnx")
    data = images(16, 3)
    int8 = CalibrateInt8(data)(art, tmp_path / "q.onnx")
    fp32 = onnx.load(str(art.path))
    kept = keep_fp32(onnx.load(str(int8.path)), fp32, ["trunk", "box_conv", "cls_conv"])
    onnx.checker.check_model(kept)
    onnx.save(kept, str(tmp_path / "k.onnx"))
    assert quantized_nodes(fp32, kept) == []
    assert run_model(tmp_path / "k.onnx", data.arrays)["detections"].shape == (16, 7, 64)


# --- SmoothQuant in the search (optimizer.smoothquant): the smoothed static candidate and its variants ---


def test_cpu_search_tries_the_smoothed_static_candidate_beside_dynamic(tmp_path: Path) -> None:
    art = mlp(tmp_path / "mlp.onnx")
    data = TensorData({"x": np.random.default_rng(9).standard_normal((64, 16)).astype(np.float32)})
    record = SearchInt8(data, data, search=FAST)(art, tmp_path / "int8.onnx").manifest.stages[-1]
    assert [c["scheme"] for c in record["candidates"]][:3] == ["static_qdq", "dynamic", "static_qdq_smooth"]
    assert record["smoothquant"]["chosen"] == (record["scheme"] == "static_qdq_smooth")
    assert len(record["smoothquant"]["smoothed"]) == 3


def test_a_large_model_skips_the_smoothed_candidate_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From 1 GiB of weights (lowered here to 256 bytes) SmoothQuant is not tried on CPU: its rewrite holds three
    copies of the weights (a 2.2 GB MLP's search was killed at 23.8 GB of 24 while smoothing)."""
    from optimizer import onnx_files

    monkeypatch.setattr(onnx_files, "EXTERNAL_AT", 256)
    art = mlp(tmp_path / "mlp.onnx")
    data = TensorData({"x": np.random.default_rng(9).standard_normal((64, 16)).astype(np.float32)})
    record = SearchInt8(data, data, search=FAST)(art, tmp_path / "int8.onnx").manifest.stages[-1]
    schemes = [c["scheme"] for c in record["candidates"]]
    assert schemes[:2] == ["static_qdq", "dynamic"] and "static_qdq_smooth" not in schemes
    assert "three copies of its weights" in record["skipped"]["static_qdq_smooth"]


def test_smoothed_scheme_variants_restore_the_smoothed_fp32_weights(tmp_path: Path) -> None:
    from optimizer.calibrate import CalibrationSettings
    from optimizer.int8_schemes import SmoothStaticScheme

    art = mlp(tmp_path / "mlp.onnx")
    calib = TensorData({"x": np.random.default_rng(10).standard_normal((32, 16)).astype(np.float32)})
    scheme = SmoothStaticScheme(calib, CalibrationSettings(op_types_to_quantize=("MatMul",)), tmp_path)
    scheme.build(art, [], tmp_path / "q.onnx")
    variant = onnx.load(str(scheme.variant(art, [], ["fc1"], tmp_path / "v.onnx")))
    fc1 = next(n for n in variant.graph.node if n.name == "fc1")
    smoothed_fp32 = onnx.load(str(scheme.smoothed(art).path))
    assert list(fc1.input) == list(next(n for n in smoothed_fp32.graph.node if n.name == "fc1").input)
    assert quantized_nodes(smoothed_fp32, variant) == ["fc0", "fc2"]
    x = {"x": calib.arrays["x"][:8]}
    want, got = run_model(art.path, x)["y"], run_model(tmp_path / "v.onnx", x)["y"]
    assert np.corrcoef(want.ravel(), got.ravel())[0, 1] > 0.99


def written_out_layernorm_mlp(path: Path) -> Artifact:
    """MatMul → LayerNorm written as E[x²] − E[x]² (as jax2tf and tf2onnx emit it) → MatMul → logits.

    The first MatMul's outputs sit near 40 with unit spread: a per-tensor UINT8 scale on x² (about 1600 wide)
    rounds the variance away, so Q/DQ on the element-wise ops breaks the model and Q/DQ on the MatMuls alone does not.
    """
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array((rng.standard_normal((16, 32)) * 0.3).astype(np.float32), "w1"),
        numpy_helper.from_array(np.full(32, 40.0, np.float32), "b1"),
        numpy_helper.from_array((rng.standard_normal((32, 10)) * 0.5).astype(np.float32), "w2"),
        numpy_helper.from_array(np.array([1e-3], np.float32), "eps"),
    ]
    mean = {"axes": [-1], "keepdims": 1}
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="dense1"),
        helper.make_node("Add", ["h0", "b1"], ["h"], name="dense1_bias"),
        helper.make_node("ReduceMean", ["h"], ["m"], name="ln_mean", **mean),
        helper.make_node("Mul", ["h", "h"], ["h2"], name="ln_square"),
        helper.make_node("ReduceMean", ["h2"], ["m2"], name="ln_mean_square", **mean),
        helper.make_node("Mul", ["m", "m"], ["mm"], name="ln_mean_squared"),
        helper.make_node("Sub", ["m2", "mm"], ["var"], name="ln_var"),
        helper.make_node("Add", ["var", "eps"], ["var_eps"], name="ln_eps"),
        helper.make_node("Sqrt", ["var_eps"], ["std"], name="ln_std"),
        helper.make_node("Sub", ["h", "m"], ["centred"], name="ln_centre"),
        helper.make_node("Div", ["centred", "std"], ["normed"], name="ln_scale"),
        helper.make_node("MatMul", ["normed", "w2"], ["logits"], name="dense2"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def test_compute_ops_alone_are_tried_where_quantizing_every_op_type_misses(tmp_path: Path) -> None:
    art = written_out_layernorm_mlp(tmp_path / "mlp.onnx")
    rng = np.random.default_rng(4)
    calib, held = (TensorData({"x": rng.standard_normal((n, 16)).astype(np.float32)}) for n in (128, 200))
    budget = DriftBudget(min_top1_agreement=0.95)  # compute-only INT8 changes 4 of 200 near-tied answers
    result = SearchInt8(calib, held, target="embedded", budget=budget, search=FAST)(art, tmp_path / "int8.onnx")
    record = result.manifest.stages[-1]
    by_scheme = {c["scheme"]: c for c in record["candidates"]}
    assert "static_qdq_compute" in by_scheme, record["candidates"]
    assert not by_scheme["static_qdq"]["holds"], "every op type in INT8 must break this graph (the premise)"
    # every op type in INT8 loses a quarter of the answers; the compute ops alone, a couple of near-tied ones
    assert by_scheme["static_qdq_compute"]["holds"], by_scheme
    assert record["within_budget"] and record["int8_nodes"] >= 1, record["candidates"]


def test_a_model_whose_static_int8_holds_tries_no_compute_only_fallback(tmp_path: Path) -> None:
    art = detector(tmp_path / "det.onnx")
    result = SearchInt8(images(64, 1), images(48, 2), target="embedded", search=FAST)(art, tmp_path / "int8.onnx")
    assert [c["scheme"] for c in result.manifest.stages[-1]["candidates"]] == ["static_qdq"]


def outlier_input_convs(path: Path) -> Artifact:
    """Conv → ReLU → Conv (the output). Input channel 0 is a constant 100 the first conv ignores, beside two
    channels about 1e-3 wide that carry the signal: a per-tensor INT8 scale on the input (≈ 0.4) rounds them to
    zero, so the first conv is the only node INT8 could run and no INT8 of it holds (basic-pitch's CQT front
    end, in small)."""
    rng = np.random.default_rng(7)
    nodes, inits = [], []
    for part in (_conv("front", "x", 3, 8, rng), _conv("head", "front_relu", 8, 4, rng)):
        nodes += part[0]
        inits += part[1]
    inits[0] = numpy_helper.from_array(
        onnx.numpy_helper.to_array(inits[0]) * np.array([0, 1, 1], np.float32)[None, :, None, None], "front.w"
    )
    nodes.insert(1, helper.make_node("Relu", ["front"], ["front_relu"], name="front_act"))
    return _save(path, nodes, inits, "head", ["N", 4, 8, 8])


def outlier_images(n: int, seed: int) -> TensorData:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, 3, 8, 8)) * 1e-3).astype(np.float32)
    x[:, 0] = 100.0
    return TensorData({"x": x})


def test_int8_that_holds_only_with_every_compute_node_fp32_is_refused(tmp_path: Path) -> None:
    art = outlier_input_convs(tmp_path / "convs.onnx")
    search = SearchInt8(outlier_images(64, 1), outlier_images(48, 2), target="embedded", search=FAST)
    with pytest.raises(BudgetExceeded) as refused:
        search(art, tmp_path / "int8.onnx")
    line = str(refused.value)
    assert line.startswith("no INT8 model holds the drift budget: with its compute nodes in INT8, static_qdq"), line
    assert "worst channel correlation" in line and "it holds only with every compute node FP32" in line, line
    assert "\n" not in line and not (tmp_path / "int8.onnx").exists()


def test_keep_failing_ships_the_closest_int8_model_not_the_fp32_one(tmp_path: Path) -> None:
    art = outlier_input_convs(tmp_path / "convs.onnx")
    search = SearchInt8(outlier_images(64, 1), outlier_images(48, 2), target="embedded", search=FAST, keep_failing=True)
    record = search(art, tmp_path / "int8.onnx").manifest.stages[-1]
    assert not record["within_budget"] and record["int8_nodes"] == 1 and record["int8_mac_share"] > 0, record
    assert quantized_nodes(onnx.load(str(art.path)), onnx.load(str(tmp_path / "int8.onnx"))) == ["front"]


def test_a_model_whose_only_compute_node_makes_the_output_has_no_int8_to_ship(tmp_path: Path) -> None:
    nodes, inits = _conv("only", "x", 3, 4, np.random.default_rng(8))
    art = _save(tmp_path / "one.onnx", nodes, inits, "only", ["N", 4, 8, 8])
    with pytest.raises(
        BudgetExceeded, match=r"^no INT8 model to ship: every compute node is kept FP32 \(1 node excluded"
    ):
        SearchInt8(images(32, 1), images(32, 2), target="embedded", search=FAST)(art, tmp_path / "int8.onnx")
    assert not (tmp_path / "int8.onnx").exists()


def lstm_encoder(path: Path, steps: int = 12, features: int = 16, hidden: int = 32, out: int = 64) -> Artifact:
    """(N, T, F) → Transpose → LSTM (time-major, as torch exports it) → last hidden state → MatMul → (N, 64)."""
    rng = np.random.default_rng(7)
    scale = 1 / np.sqrt(hidden)
    inits = [
        numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, features)) * scale).astype(np.float32), "W"),
        numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, hidden)) * scale).astype(np.float32), "R"),
        numpy_helper.from_array((rng.standard_normal((1, 8 * hidden)) * 0.1).astype(np.float32), "B"),
        numpy_helper.from_array((rng.standard_normal((hidden, out)) * scale).astype(np.float32), "fc.w"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_t"], name="time_major", perm=[1, 0, 2]),
        helper.make_node("LSTM", ["x_t", "W", "R", "B"], ["", "h", ""], name="lstm", hidden_size=hidden),
        helper.make_node("Squeeze", ["h", "axis0"], ["last"], name="last_state"),
        helper.make_node("MatMul", ["last", "fc.w"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", steps, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def test_an_lstm_is_a_dynamic_int8_candidate_with_its_multiply_adds_counted(tmp_path: Path) -> None:
    """ONNX Runtime runs an LSTM in INT8 only as DynamicQuantizeLSTM: the dynamic scheme is tried for a recurrent
    model, its LSTM counted in the MACs, and static Q/DQ never wraps the LSTM's weights."""
    art = lstm_encoder(tmp_path / "lstm.onnx")
    model = onnx.load(str(art.path))
    macs = compute_macs(model, art.path, {"x": np.zeros((1, 12, 16), np.float32)})
    assert macs == {"lstm": 12 * 1 * 1 * 128 * (16 + 32), "fc": 32 * 64}
    rng = np.random.default_rng(8)
    calib = TensorData({"x": rng.standard_normal((128, 12, 16)).astype(np.float32)})
    held = TensorData({"x": rng.standard_normal((96, 12, 16)).astype(np.float32)})
    budget = DriftBudget(min_cosine_mean=0.99, min_cosine_worst=0.95)
    result = SearchInt8(calib, held, budget=budget, search=FAST)(art, tmp_path / "int8.onnx")
    record = result.manifest.stages[-1]
    assert next(c for c in record["candidates"] if c["scheme"] == "dynamic")["holds"], record["candidates"]
    built = onnx.load(str(result.path))
    if record["scheme"] == "dynamic":  # which holding candidate is fastest depends on the machine
        assert "DynamicQuantizeLSTM" in {n.op_type for n in built.graph.node} and record["int8_mac_share"] > 0.9
    else:  # static Q/DQ leaves the LSTM FP32: its weights are never wrapped in Q/DQ
        assert record["int8_mac_share"] < 0.5
    assert not any(n.op_type == "DequantizeLinear" and n.input[0].startswith(("W", "R")) for n in built.graph.node)


def test_a_static_scheme_that_fails_to_build_falls_back_to_the_compute_ops_alone(tmp_path: Path) -> None:
    """ORT's per-channel static quantizer crashes on a LayerNormalization with a 2-D scale (PESTO's pitch encoder):
    the search ended "no INT8 scheme could be built" while static Q/DQ of the compute ops alone builds."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array((1 + 0.1 * rng.standard_normal((1, 64))).astype(np.float32), "ln.scale"),
        numpy_helper.from_array((0.1 * rng.standard_normal((1, 64))).astype(np.float32), "ln.bias"),
        numpy_helper.from_array((rng.standard_normal((16, 1, 7)) * 0.3).astype(np.float32), "c.w"),
        numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "c.b"),
        numpy_helper.from_array((rng.standard_normal((4, 16, 1)) * 0.3).astype(np.float32), "d.w"),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["x", "ln.scale", "ln.bias"], ["ln"], name="ln", axis=1),
        helper.make_node("Conv", ["ln", "c.w", "c.b"], ["c"], name="conv", pads=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "d.w"], ["y"], name="out"),
    ]
    graph = helper.make_graph(
        nodes,
        "ln2d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 64])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "ln2d.onnx"))
    art = Artifact(tmp_path / "ln2d.onnx", manifest_from_onnx(model, "ln2d"))
    calib = TensorData({"x": rng.standard_normal((64, 1, 64)).astype(np.float32)})
    held = TensorData({"x": rng.standard_normal((64, 1, 64)).astype(np.float32)})
    record = SearchInt8(calib, held, target="embedded", search=FAST)(art, tmp_path / "int8.onnx").manifest.stages[-1]
    assert record["scheme"] == "static_qdq_compute" and record["within_budget"]
    assert record["skipped"]["static_qdq"].startswith("failed to build: prepared.onnx: INT8 quantization failed")
