"""Tiny classifier models for the load-test tests, built with onnx.helper (no torch), and their data.

An MLP (x [batch, 32] → logits [batch, 10]); labels are the FP32 model's own predictions with
a little label noise, so its accuracy is high but not perfect. The "damaged" variant has its
weights perturbed; the INT8 variant comes from the project's real calibration stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quantserve.artifact import Manifest, TensorSpec
from quantserve.data import TensorData

FEATURES, HIDDEN, CLASSES = 32, 128, 10
INPUTS = [TensorSpec("x", "float32", ("batch", FEATURES))]
OUTPUTS = [TensorSpec("logits", "float32", ("batch", CLASSES))]


def mlp_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W1": (rng.normal(size=(FEATURES, HIDDEN)) / np.sqrt(FEATURES)).astype(np.float32),
        "b1": np.zeros(HIDDEN, np.float32),
        "W2": (rng.normal(size=(HIDDEN, CLASSES)) / np.sqrt(HIDDEN)).astype(np.float32),
        "b2": np.zeros(CLASSES, np.float32),
    }


def perturbed(weights: dict[str, np.ndarray], scale: float, seed: int = 1) -> dict[str, np.ndarray]:
    """Weights with Gaussian noise of `scale` × each tensor's standard deviation added."""
    rng = np.random.default_rng(seed)
    return {
        name: (w + rng.normal(size=w.shape) * scale * (w.std() or 1.0)).astype(np.float32)
        for name, w in weights.items()
    }


def write_mlp_onnx(path: Path, weights: dict[str, np.ndarray]) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W1"], ["h0"]),
            helper.make_node("Add", ["h0", "b1"], ["h1"]),
            helper.make_node("Relu", ["h1"], ["h"]),
            helper.make_node("MatMul", ["h", "W2"], ["l0"]),
            helper.make_node("Add", ["l0", "b2"], ["logits"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=[numpy_helper.from_array(w, name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def make_gain_build(directory: Path, weights: dict[str, np.ndarray]) -> Path:
    """The MLP with a second input holding one value per sample (`gain` [batch]: logits × gain) and the argmax
    `label` [batch] as a second output: tensors Triton serves as dims [1] reshaped to the model's []."""
    import onnx
    from onnx import TensorProto, helper

    directory.mkdir(parents=True, exist_ok=True)
    mlp = onnx.load(str(write_mlp_onnx(directory / "mlp.onnx", weights)))
    graph = mlp.graph
    graph.node[-1].output[0] = "raw"
    graph.node.extend(
        [
            helper.make_node("Unsqueeze", ["gain", "last"], ["gain_col"]),
            helper.make_node("Mul", ["raw", "gain_col"], ["logits"]),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=-1, keepdims=0),
        ]
    )
    graph.initializer.append(helper.make_tensor("last", TensorProto.INT64, [1], [-1]))
    graph.input.append(helper.make_tensor_value_info("gain", TensorProto.FLOAT, ["batch"]))
    graph.output.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]))
    onnx.checker.check_model(mlp)
    onnx.save(mlp, str(directory / "model.onnx"))
    (directory / "mlp.onnx").unlink()
    inputs = [*INPUTS, TensorSpec("gain", "float32", ("batch",))]
    outputs = [*OUTPUTS, TensorSpec("label", "int64", ("batch",))]
    Manifest(directory.name, inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(directory)
    return directory


def reference_logits(x: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    hidden = np.maximum(x @ weights["W1"] + weights["b1"], 0.0)
    return np.asarray(hidden @ weights["W2"] + weights["b2"])


def labeled_data(
    samples: int, weights: dict[str, np.ndarray], seed: int = 2, noise: float = 0.05, margin: float = 0.15
) -> TensorData:
    """Gaussian inputs labeled by the FP32 model, with `noise` of the labels replaced at random.

    Only inputs whose top-two FP32 logits differ by at least `margin` are kept, as a trained
    model is confident on most of its data; an untrained random MLP puts many inputs on a
    decision boundary, where any rounding (INT8 included) flips the class.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples * 4, FEATURES)).astype(np.float32)
    logits = np.sort(reference_logits(x, weights), axis=1)
    x = x[logits[:, -1] - logits[:, -2] >= margin][:samples]
    labels = reference_logits(x, weights).argmax(axis=1)
    flip = rng.random(samples) < noise
    labels[flip] = rng.integers(0, CLASSES, size=int(flip.sum()))
    return TensorData({"x": x}, labels.astype(np.int64))


def make_build_dir(
    directory: Path,
    model_path: Path | None = None,
    weights: dict[str, np.ndarray] | None = None,
    precision: str = "fp32",
) -> Path:
    """A folder as `quantserve optimize --target embedded` leaves it: model.onnx + manifest.json (its `precision`
    is what `deploy` records for clients to read)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "model.onnx"
    if model_path is not None:
        target.write_bytes(Path(model_path).read_bytes())
    else:
        write_mlp_onnx(target, weights if weights is not None else mlp_weights())
    files = {"model": "model.onnx"}
    Manifest(directory.name, INPUTS, OUTPUTS, precision=precision, target="embedded", files=files).save(directory)
    return directory


def make_int8_build(fp32_build: Path, calib_path: Path, out: Path, name: str = "mlp_int8") -> Path:
    """The project's real INT8 calibration of an FP32 build, as a build folder whose manifest says int8."""
    from optimizer.calibrate import calibrate_int8
    from quantserve.artifact import Artifact
    from quantserve.data import load_npz

    artifact = Artifact(fp32_build / "model.onnx", Manifest.load(fp32_build))
    quantized = calibrate_int8(artifact, load_npz(calib_path), out / f"{name}.onnx")
    return make_build_dir(out / name, model_path=quantized.path, precision=quantized.manifest.precision)


def own_mlp_repo(root: Path, names: tuple[str, ...] = ("mlp",), max_batch: int = 8) -> tuple[Path, Path]:
    """A repository of the test MLP deployed under each of `names`, for a server a module starts alone (so no other
    test's server is stopped or slowed), and the data to load it with: (repository, load data). A name holding
    "int8" is a real INT8 build: the report goes by the precision deployed, not the name."""
    from serving.deploy import deploy

    weights = mlp_weights()
    data = labeled_data(64, weights, seed=3).save(root / "load.npz")
    build = make_build_dir(root / "build", weights=weights)
    int8 = None
    for name in names:
        if "int8" in name and int8 is None:
            (root / "int8").mkdir()
            int8 = make_int8_build(build, labeled_data(128, weights, seed=5).save(root / "calib.npz"), root / "int8")
        source = int8 if "int8" in name and int8 is not None else build
        deploy(source, root / "repo", name, max_batch=max_batch, instances=1)
    return root / "repo", data


def fp32_and_dynamic_int8_repo(root: Path, max_batch: int) -> Path:
    """An MLP as `mlp` and its dynamic INT8 build (one activation scale per batch: its answers depend on the rows
    batched with it) as `mlp_int8`, deployed into root/repo at `max_batch`; their labelled data saved as root/data.npz.
    Returns the data file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from serving.deploy import deploy

    weights = mlp_weights()
    data = labeled_data(64, weights, seed=3).save(root / "data.npz")
    fp32 = make_build_dir(root / "fp32", weights=weights)
    quantize_dynamic(fp32 / "model.onnx", root / "dyn.onnx", weight_type=QuantType.QInt8)
    int8 = make_build_dir(root / "int8", model_path=root / "dyn.onnx", precision="int8")
    for build, name in ((fp32, "mlp"), (int8, "mlp_int8")):
        deploy(build, root / "repo", name, max_batch=max_batch, instances=1)
    return Path(data)


def version_swap_repo(root: Path) -> tuple[Path, Path, Path]:
    """For a deploy during a load: a repository serving 'mlp' version 1, a version-2 build (other weights) to deploy
    into it, and the load's data file."""
    from serving.deploy import deploy

    weights = mlp_weights()
    data = labeled_data(64, weights, seed=3).save(root / "load.npz")
    repo = root / "repo"
    deploy(make_build_dir(root / "build" / "v1", weights=weights), repo, "mlp", max_batch=32)
    return repo, make_build_dir(root / "build" / "v2", weights=perturbed(weights, scale=0.1)), data
