from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from optimizer.calibrate import CalibrateInt8, CalibrationSettings, calibrate_int8
from optimizer.export import export_onnx
from optimizer.fuse import FuseGraph
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.quant_prepare import unshare_weights
from optimizer.source import load_source
from quantserve.artifact import Artifact
from quantserve.data import TensorData, load_npz
from quantserve.errors import QuantserveError


@pytest.fixture
def calib_npz(tmp_path: Path) -> Path:
    """40 rows: the chunk counts below are worked out for them (optimize's tests use the shared 400)."""
    import make_tiny_models

    return make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=40)


@pytest.fixture
def fused(tiny_onnx: Path, tmp_path: Path) -> Artifact:
    exported = export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx")
    return FuseGraph()(exported, tmp_path / "fused.onnx")


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_qdq_model_with_per_channel_weights(method: str, fused: Artifact, calib_npz: Path, tmp_path: Path) -> None:
    data = load_npz(calib_npz, fused.manifest.inputs)
    int8 = calibrate_int8(fused, data, tmp_path / "int8.onnx", method=method)
    record = int8.manifest.stages[-1]
    # every sample is used: chunks are separate collect calls, so a ragged last one is fine
    assert (record["method"], record["cache"], record["samples"], record["chunks"]) == (method, "miss", 40, 2)
    assert int8.manifest.precision == "int8"
    model = onnx.load(str(int8.path))
    assert record["quantize_nodes"] > 0
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight_dq = next(n for n in model.graph.node if n.output[0] == conv.input[1])
    scales = next(i for i in model.graph.initializer if i.name == weight_dq.input[1])
    assert list(scales.dims) == [8]  # one scale per output channel
    feeds = {"pixels": data.arrays["pixels"][:16]}
    with OnnxRuntimeRunner(fused.path) as ref, OnnxRuntimeRunner(int8.path) as q:
        expected, got = ref.infer(feeds)["logits"], q.infer(feeds)["logits"]
    assert np.mean(expected.argmax(1) == got.argmax(1)) >= 0.8


def test_rerun_is_a_cache_hit(fused: Artifact, calib_npz: Path, tmp_path: Path, calib_cache: Path) -> None:
    data = load_npz(calib_npz)
    first = calibrate_int8(fused, data, tmp_path / "a.onnx")
    second = calibrate_int8(fused, data, tmp_path / "b.onnx")
    assert first.manifest.stages[-1]["cache"] == "miss"
    assert second.manifest.stages[-1]["cache"] == "hit"
    assert (calib_cache / f"{second.manifest.stages[-1]['cache_key']}.onnx").is_file()
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    other = calibrate_int8(fused, data, tmp_path / "c.onnx", method="entropy")
    assert other.manifest.stages[-1]["cache"] == "miss"  # settings are part of the key


@pytest.mark.parametrize(
    ("method", "passes"), [("minmax", ["min/max ranges"]), ("entropy", ["min/max ranges", "entropy histograms"])]
)
def test_progress_hears_every_chunk_in_order(
    method: str, passes: list[str], fused: Artifact, calib_npz: Path, tmp_path: Path
) -> None:
    """on_progress(done, total, what) after each chunk of each pass, the total known from the first call."""
    data = load_npz(calib_npz)
    calls: list[tuple[int, int, str]] = []
    settings = CalibrationSettings(method=method, batch_size=6)
    int8 = CalibrateInt8(data, settings, on_progress=lambda *call: calls.append(call))(fused, tmp_path / "a.onnx")
    chunks = int8.manifest.stages[-1]["chunks"]
    assert chunks == 7  # 40 samples in chunks of 6: the ragged last one is reported too
    total = chunks * len(passes)
    whats = [f"calibration: {p}" for p in passes for _ in range(chunks)]
    assert calls == [(done, total, what) for done, what in enumerate(whats, 1)]
    calls.clear()
    CalibrateInt8(data, settings, on_progress=lambda *call: calls.append(call))(fused, tmp_path / "b.onnx")
    assert calls == []  # a cache hit calibrates nothing


def test_empty_calibration_set_is_refused() -> None:
    empty = TensorData({"pixels": np.zeros((0, 1, 8, 8), np.float32)})
    with pytest.raises(QuantserveError, match="calibration set is empty"):
        CalibrateInt8(empty)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(QuantserveError, match="unknown calibration method 'kl'"):
        CalibrationSettings(method="kl")


def test_excluded_nodes_stay_fp32(fused: Artifact, calib_npz: Path, tmp_path: Path) -> None:
    gemm = next(n.name for n in onnx.load(str(fused.path)).graph.node if n.op_type == "Gemm")
    settings = CalibrationSettings(nodes_to_exclude=(gemm,))
    int8 = CalibrateInt8(load_npz(calib_npz), settings)(fused, tmp_path / "int8.onnx")
    model = onnx.load(str(int8.path))
    node = next(n for n in model.graph.node if n.name == gemm)
    initializers = {i.name for i in model.graph.initializer}
    assert node.input[1] in initializers  # the FP32 weight itself, no DequantizeLinear in front


def test_shared_biases_are_unshared(fused: Artifact) -> None:
    model = onnx.load(str(fused.path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    gemm.input[2] = conv.input[1] if len(conv.input) < 3 else conv.input[2]
    shared = gemm.input[2]
    copies = unshare_weights(model)
    assert copies >= 1
    readers = [n.name for n in model.graph.node if shared in n.input]
    assert len(readers) <= 1


def _artifact(path: Path, tmp_path: Path) -> Artifact:
    return export_onnx(load_source(path), tmp_path / f"{path.stem}-exported.onnx")


def _activation_scale(int8_path: Path, consumer: str) -> float:
    """The scale of the DequantizeLinear feeding node `consumer`'s first input, read from the Q/DQ model."""
    model = onnx.load(str(int8_path))
    node = next(n for n in model.graph.node if n.name == consumer)
    dequantize = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == node.input[0])
    scale = next(i for i in model.graph.initializer if i.name == dequantize.input[1])
    return float(onnx.numpy_helper.to_array(scale))


def test_entropy_and_percentile_ranges_differ_from_minmax(tmp_path: Path) -> None:
    import make_tiny_models

    mlp = _artifact(make_tiny_models.write_heavy_tail_mlp(tmp_path / "mlp.onnx"), tmp_path)
    # 8192 samples: enough that 99.99 % (0.005 % cut at each end) falls well inside the tail
    data = load_npz(make_tiny_models.write_heavy_tail_npz(tmp_path / "calib.npz", samples=8192))
    scales, records = {}, {}
    for method in ("minmax", "entropy", "percentile"):
        int8 = CalibrateInt8(data, CalibrationSettings(method=method))(mlp, tmp_path / f"{method}.onnx")
        scales[method], records[method] = _activation_scale(int8.path, "fc2"), int8.manifest.stages[-1]
    assert scales["entropy"] < 0.5 * scales["minmax"]  # the rare huge activations are clipped
    assert scales["percentile"] < 0.5 * scales["minmax"]
    assert scales["entropy"] != scales["percentile"]
    assert {m: r["method"] for m, r in records.items()} == {m: m for m in records}
    assert records["minmax"]["calibrator"] == {"class": "MinMaxCalibrater", "symmetric": False, "moving_average": False}
    assert records["entropy"]["calibrator"] == {
        "class": "EntropyCalibrater",
        "symmetric": False,
        "num_bins": 2048,
        "num_quantized_bins": 128,
    }
    assert records["percentile"]["calibrator"] == {
        "class": "PercentileCalibrater",
        "symmetric": False,
        "num_bins": 2048,
        "percentile": 99.99,
    }
    assert "num_bins" not in records["minmax"]  # knobs recorded only where the method uses them
    # ORT's own entropy default (128 bins for 128 quantized bins) has one candidate threshold: minmax's
    ort_default = CalibrationSettings(method="entropy", num_bins=128, num_quantized_bins=128)
    same = CalibrateInt8(data, ort_default)(mlp, tmp_path / "ort-default.onnx")
    assert _activation_scale(same.path, "fc2") == pytest.approx(scales["minmax"], rel=1e-6)


def test_chunked_histograms_equal_ort_one_shot(tmp_path: Path) -> None:
    """Entropy ranges from 7-sample chunks equal ORT's own single collect over the whole set."""
    import contextlib
    import io

    import make_tiny_models
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    from optimizer.tensor_ranges import OneBatchReader, collect_ranges

    path = make_tiny_models.write_heavy_tail_mlp(tmp_path / "mlp.onnx")
    data = load_npz(make_tiny_models.write_heavy_tail_npz(tmp_path / "calib.npz", samples=60))
    options = {"num_bins": 512, "num_quantized_bins": 128}
    chunked, facts = collect_ranges(path, data, "entropy", (), options, 7, tmp_path)
    ort = create_calibrator(path, None, str(tmp_path / "ort.onnx"), CalibrationMethod.Entropy, extra_options=options)
    with contextlib.redirect_stdout(io.StringIO()):
        ort.collect_data(OneBatchReader(data.arrays))
        one_shot = ort.compute_data()
    assert facts["class"] == "EntropyCalibrater"
    assert set(chunked.keys()) == set(one_shot.keys())
    for name in one_shot:
        assert [float(v) for v in chunked[name].range_value] == [float(v) for v in one_shot[name].range_value]


PEAK_RSS_CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import os
from pathlib import Path
from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.export import export_onnx
from optimizer.source import load_source
from quantserve.data import load_npz
model, calib, out = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
artifact = export_onnx(load_source(model), out / "exported.onnx")
data = load_npz(calib)
import onnxruntime.quantization.shape_inference  # imports torch: not calibration memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
CalibrateInt8(data, CalibrationSettings(method="percentile"), memory_budget_bytes=8 << 20)(artifact, out / "int8.onnx")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before, "peak_kb": after}))
"""


def _calibration_peak(model: Path, samples: int, tmp_path: Path) -> dict[str, int]:
    import json
    import os
    import subprocess
    import sys

    import make_tiny_models

    out = tmp_path / f"run-{samples}"
    out.mkdir()
    calib = make_tiny_models.write_wide_conv_npz(out / "calib.npz", samples)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "QUANTSERVE_CACHE_DIR": str(out / "cache")}
    args = [sys.executable, "-c", PEAK_RSS_CHILD, root, str(model), str(calib), str(out)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_calibration_memory_does_not_grow_with_the_calibration_set(tmp_path: Path) -> None:
    """Percentile (ORT keeps every activation of every sample in one collect) on 32 vs 128 samples of 1.5 MB
    activations each: unchunked, the larger set would hold ~0.3 GB more; in 8 MB chunks the peak stays."""
    import make_tiny_models

    model = make_tiny_models.write_wide_conv_onnx(tmp_path / "wide.onnx")
    small = _calibration_peak(model, 32, tmp_path)
    large = _calibration_peak(model, 128, tmp_path)
    assert large["growth_kb"] <= 1.5 * small["growth_kb"] + 64 * 1024, (small, large)


def test_failing_result_is_not_cached(tmp_path: Path, calib_cache: Path) -> None:
    """Opset 12 cannot hold per-axis DequantizeLinear: the broken result is refused, not stored."""
    import make_tiny_models

    from optimizer.export import manifest_from_onnx
    from optimizer.onnx_input import check_onnx

    legacy = make_tiny_models.write_legacy_onnx(tmp_path / "legacy.onnx")
    model = check_onnx(legacy, tmp_path / "opset12.onnx")  # checked only: no opset upgrade here
    artifact = Artifact(tmp_path / "opset12.onnx", manifest_from_onnx(model, "legacy"))
    data = load_npz(make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=16))
    for _ in range(2):  # the second run fails the same way: nothing bad was cached
        with pytest.raises(QuantserveError, match=r"opset12\.onnx: the INT8 model fails ONNX's checker .*nothing was"):
            CalibrateInt8(data)(artifact, tmp_path / "int8.onnx")
    assert list(calib_cache.glob("*.onnx")) == []


def test_bad_cache_entry_is_replaced(fused: Artifact, calib_npz: Path, tmp_path: Path, calib_cache: Path) -> None:
    data = load_npz(calib_npz)
    first = calibrate_int8(fused, data, tmp_path / "a.onnx")
    entry = calib_cache / f"{first.manifest.stages[-1]['cache_key']}.onnx"
    entry.write_bytes(b"truncated by a full disk")
    second = calibrate_int8(fused, data, tmp_path / "b.onnx")
    record = second.manifest.stages[-1]
    assert (record["cache"], record["ranges_cache"]) == ("miss", "hit")  # ranges reused, model rebuilt
    assert entry.read_bytes() == Path(first.path).read_bytes()
    assert calibrate_int8(fused, data, tmp_path / "c.onnx").manifest.stages[-1]["cache"] == "hit"


def test_stale_calibration_folders_are_removed(
    fused: Artifact, calib_npz: Path, tmp_path: Path, calib_cache: Path
) -> None:
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, live = calib_cache / f".calib-{int(child.stdout)}-x1", calib_cache / f".calib-{os.getpid()}-x2"
    for folder in (dead, live):
        folder.mkdir(parents=True)
    calibrate_int8(fused, load_npz(calib_npz), tmp_path / "int8.onnx")
    assert not dead.exists()
    assert live.is_dir()


@pytest.mark.parametrize(("bins", "quantized"), [(512, 128), (1001, 255)])
def test_entropy_threshold_search_equals_orts(bins: int, quantized: int) -> None:
    """EntropyCollector's numpy search picks exactly ORT's threshold (ReLU-like heavy tail, skewed signed)."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    from optimizer.tensor_ranges import EntropyCollector

    rng = np.random.default_rng(0)
    for values in (np.maximum(rng.standard_t(2, 50_000), 0), rng.exponential(1, 50_000) - 0.2):
        x = values.astype(np.float32)
        threshold = np.array(np.abs(x).max(), np.float32)
        hist, edges = np.histogram(x, bins, range=(-threshold, threshold))
        histogram = (hist, edges, np.min(x), np.max(x), threshold)
        ours = EntropyCollector("entropy", False, bins, quantized, 99.99, "same").get_entropy_threshold(
            histogram, quantized
        )
        orts = HistogramCollector("entropy", False, bins, quantized, 99.99, "same").get_entropy_threshold(
            histogram, quantized
        )
        assert [float(v) for v in ours] == [float(v) for v in orts]
