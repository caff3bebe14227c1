from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.drift_budget import BudgetExceeded
from optimizer.pipeline import OptimizeOptions, optimize, split_holdout
from optimizer.speed import SpeedSettings
from quantserve.artifact import Artifact, Manifest
from quantserve.errors import QuantserveError

FACTORY = "make_tiny_models:tiny_cnn_factory"
UNTIMED = SpeedSettings(enabled=False)  # unit tests are never timed; tests/optimizer/test_speed.py covers speed


def _optimize(source: str | Path, calib: Path, precision: str, out: Path, **fields: object) -> Artifact:
    """optimize() for the embedded target, timing off."""
    return optimize(OptimizeOptions(source, calib, precision, "embedded", out, speed=UNTIMED, **fields))  # type: ignore[arg-type]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_int8_from_onnx(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "build" / "tiny"
    artifact = _optimize(tiny_onnx, calib_npz, "int8", out, name="tiny")
    assert sorted(p.name for p in out.iterdir()) == ["fp32.onnx", "manifest.json", "model.onnx"]
    assert _leftovers(out.parent) == []
    manifest = Manifest.load(out)
    assert manifest.files == {"model": "model.onnx", "reference": "fp32.onnx"}
    assert (manifest.name, manifest.precision, manifest.target) == ("tiny", "int8", "embedded")
    assert [s["stage"] for s in manifest.stages] == ["export", "fuse", "calibrate", "build"]
    verification = manifest.verification
    assert verification is not None and verification["samples"] == 268  # the rows 0.99 needs, 128 left to calibrate
    assert verification["top1_agreement"] >= 0.75
    assert verification["fp32_accuracy"] is not None
    assert verification["outputs"]["logits"]["kind"] == "classification" and verification["holds"] is True
    assert verification["budget"]["min_top1_agreement"] == 0.99 and "speed" not in verification  # timing off
    assert artifact.path == out / "model.onnx"
    assert json.loads((out / "manifest.json").read_text())["inputs"][0]["shape"] == ["batch", 1, 8, 8]


def test_fp32_from_factory_with_eval_file(calib_npz: Path, tmp_path: Path) -> None:
    import make_tiny_models

    eval_npz = make_tiny_models.write_digits_like_npz(tmp_path / "eval.npz", samples=10, seed=5)
    _optimize(FACTORY, calib_npz, "fp32", tmp_path / "fp32", eval_path=eval_npz)
    manifest = Manifest.load(tmp_path / "fp32")
    assert manifest.precision == "fp32"
    assert [s["stage"] for s in manifest.stages] == ["export", "fuse", "build"]
    assert manifest.verification is not None
    assert (manifest.verification["samples"], manifest.verification["max_abs_diff"]) == (10, 0.0)


def test_unknown_target_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="unknown target 'cuda'; choose one of: embedded"):
        optimize(OptimizeOptions("missing.onnx", tmp_path / "missing.npz", "int8", "cuda", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_npz_names_must_match_inputs(tiny_onnx: Path, tmp_path: Path) -> None:
    import make_tiny_models

    wrong = make_tiny_models.write_digits_like_npz(tmp_path / "wrong.npz", input_name="image")
    with pytest.raises(QuantserveError, match=r"arrays \['image'\] do not match the model inputs \['pixels'\]"):
        _optimize(tiny_onnx, wrong, "int8", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_a_factorys_data_naming_none_of_its_inputs_is_refused_before_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tuple example names its input `input`: data named `pixels` is refused before the export (a large head took
    30 s and 3 GB to say so), with the flag that names it."""
    import make_tiny_models

    import optimizer.pipeline

    def no_export(*_: object) -> None:
        raise AssertionError("exported before the data's names were checked")

    monkeypatch.setattr(optimizer.pipeline, "ExportOnnx", no_export)
    data = make_tiny_models.write_digits_like_npz(tmp_path / "pixels.npz", input_name="pixels")
    with pytest.raises(QuantserveError) as caught:
        _optimize("make_tiny_models:tiny_cnn_tuple_factory", data, "int8", tmp_path / "out")
    assert str(caught.value) == (
        f"{data}: arrays ['pixels'] do not match the model inputs ['input']; name them with --input-names pixels"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (np.nan, r"NaN value\(s\), in 2 row\(s\) \(first: row 5\), and the FP32 model answers NaN for them"),
        (np.inf, r"infinite value\(s\), in 2 row\(s\) \(first: row 5\); inputs must be finite"),
    ],
)
def test_a_nan_or_infinity_in_the_data_is_named_before_any_work(
    tiny_onnx: Path, tmp_path: Path, bad: float, said: str
) -> None:
    """It used to reach calibration as a NaN range and fail at fuse: "differs from the unfused model by up to 0".
    A NaN the FP32 model answers finitely is accepted (`optimizer.nan_inputs`); this CNN answers it NaN."""
    import make_tiny_models

    path = make_tiny_models.write_digits_like_npz(tmp_path / "bad.npz", samples=400)
    arrays = dict(np.load(path))
    arrays["pixels"][[5, 9], 0, 2, 2] = bad
    np.savez(path, **arrays)
    with pytest.raises(QuantserveError, match=rf"bad.npz: input 'pixels' has 2 {said}"):
        _optimize(tiny_onnx, path, "int8", tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_npz_shapes_must_match_inputs(tiny_onnx: Path, tmp_path: Path) -> None:
    path = tmp_path / "shape.npz"
    np.savez(path, pixels=np.zeros((4, 1, 9, 9), np.float32))
    with pytest.raises(QuantserveError, match=r"input 'pixels' has shape \(4, 1, 9, 9\)"):
        _optimize(tiny_onnx, path, "int8", tmp_path / "out")


def test_empty_calibration_file(tiny_onnx: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path, pixels=np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(QuantserveError, match="zero samples"):
        _optimize(tiny_onnx, path, "int8", tmp_path / "out")


def test_failure_midway_leaves_nothing(tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch) -> None:
    from optimizer.embedded import TARGET

    def failing_build(onnx: Artifact, out_dir: Path) -> Artifact:
        (Path(out_dir) / "model.onnx").write_bytes(b"half")
        raise QuantserveError("engine build failed")

    monkeypatch.setattr(TARGET, "build", failing_build)
    with pytest.raises(QuantserveError, match="engine build failed"):
        _optimize(tiny_onnx, calib_npz, "int8", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib-cache", "calib.npz", "tiny.onnx"]


def test_existing_output_replaced_only_on_success(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "out"
    _optimize(tiny_onnx, calib_npz, "fp32", out)
    before = (out / "manifest.json").read_text()
    monkeypatch.setattr("optimizer.verify_and_time.VerifyAgainstReference.measure", _raise_interrupted)
    with pytest.raises(KeyboardInterrupt):
        _optimize(tiny_onnx, calib_npz, "int8", out)
    assert (out / "manifest.json").read_text() == before
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "calib-cache"))
    _optimize(tiny_onnx, calib_npz, "int8", out)
    assert Manifest.load(out).precision == "int8"
    assert _leftovers(tmp_path) == []


def test_budget_missed_writes_nothing_and_keep_failing_ships(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    from optimizer.drift_budget import BudgetExceeded, DriftBudget

    absurd = {"budget": DriftBudget(min_channel_correlation=1.0), "output_kinds": {"logits": "dense"}}
    with pytest.raises(
        BudgetExceeded,
        match=r"no INT8 model holds .*output 'logits' \(dense\): worst channel correlation .* < budget 1\)",
    ):
        _optimize(tiny_onnx, calib_npz, "int8", tmp_path / "out", **absurd)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    _optimize(tiny_onnx, calib_npz, "int8", tmp_path / "out", keep_failing=True, **absurd)
    verification = Manifest.load(tmp_path / "out").verification
    assert verification is not None and (verification["holds"], verification["enforced"]) == (False, False)


def _raise_interrupted(*args: object) -> dict:
    raise KeyboardInterrupt


def test_too_few_samples_to_hold_out(tiny_onnx: Path, tmp_path: Path) -> None:
    path = tmp_path / "one.npz"
    np.savez(path, pixels=np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(QuantserveError, match="too few to hold out verification data"):
        _optimize(tiny_onnx, path, "int8", tmp_path / "out")


def test_int8_sequence_model_keeps_its_sequence_axis(tmp_path: Path) -> None:
    path = tmp_path / "tokens.npz"
    np.savez(path, input_ids=np.random.default_rng(0).integers(0, 50, (400, 9)).astype(np.int64))  # 268 held out
    # its random weights drift beyond the budget on 268 rows; what is checked here is the axes, not the drift
    _optimize("make_tiny_models:tiny_sequence_model", path, "int8", tmp_path / "seq", keep_failing=True)
    manifest = Manifest.load(tmp_path / "seq")
    assert manifest.inputs[0].shape == ("batch", "sequence")
    assert manifest.stages[2]["quantize_nodes"] > 0
    # its untrained logits commit to no class: judged as a dense output, so no top-1 figure is recorded
    assert manifest.verification is not None and manifest.verification["outputs"]["logits"]["kind"] == "dense"


def test_an_output_not_batched_along_axis_0_is_one_line_before_any_work(tmp_path: Path) -> None:
    """A per-model constant among the outputs (SSD-style priors) crashed verification with a numpy traceback."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "W")
    priors = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "P")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Identity", ["P"], ["priors"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("priors", TensorProto.FLOAT, [3, 4]),
        ],
        [weights, priors],
    )
    _refused_before_any_work(tmp_path, graph, r"output 'priors' has shape \[3, 4\] for 8 input rows: every output")


def test_the_held_out_split_takes_the_rows_the_budget_needs_while_128_stay_to_calibrate() -> None:
    from quantserve.data import TensorData

    def split(count: int, wanted: int) -> tuple[int, int]:
        data = TensorData({"x": np.zeros((count, 2), np.float32)})
        calib, held, _ = split_holdout(data, None, Path("c.npz"), None, wanted)
        return len(calib), len(held)

    assert split(40, 268) == (32, 8)  # too few to spare: the last 20 %
    assert split(200, 268) == (128, 72)
    assert split(400, 268) == (132, 268)
    assert split(2000, 268) == (1600, 400)  # 20 % is more than the budget needs
    assert split(400, 0) == (320, 80)  # FP32: nothing to show


def test_an_output_that_loses_its_batch_axis_for_one_row_is_one_line(tmp_path: Path) -> None:
    """A `Squeeze` without axes (PLCMOS v2 ends so) gives (N,) for N rows but a scalar for one: verification's
    single-row runs crashed with "zero-dimensional arrays cannot be concatenated" (exit 1, a traceback)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(size=(8, 1)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["s"]), helper.make_node("Squeeze", ["s"], ["score"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [])],
        [weights],
    )
    _refused_before_any_work(tmp_path, graph, r"output 'score' has shape \[\] for 1 input row: every output")


def test_an_fp32_build_whose_rows_depend_on_their_batch_is_refused_for_that_not_as_int8(tmp_path: Path) -> None:
    """An already dynamically quantized file (one activation scale per batch) given for `--precision fp32`: its
    rows answer otherwise alone than in a batch; the refusal said "INT8 misses the drift budget"."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import quantize_dynamic

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])],
        [weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "fp32.onnx"))
    quantize_dynamic(str(tmp_path / "fp32.onnx"), str(tmp_path / "dyn.onnx"))
    loudness = rng.choice([0.01, 1.0, 30.0], size=(400, 1)).astype(np.float32)  # rows far apart in range
    np.savez(tmp_path / "calib.npz", x=rng.standard_normal((400, 64)).astype(np.float32) * loudness)
    out = tmp_path / "build"
    options = OptimizeOptions(str(tmp_path / "dyn.onnx"), str(tmp_path / "calib.npz"), "fp32", "embedded", str(out))
    with pytest.raises(BudgetExceeded) as refused:
        optimize(options)
    line = str(refused.value)
    assert line.startswith("the FP32 build misses the drift budget with ") and "INT8" not in line
    assert "a row's answer depends on the rows batched with it" in line
    assert not out.exists()


def _refused_before_any_work(tmp_path: Path, graph: object, refusal: str) -> None:
    """Optimize `graph` (one input `x` of 8 values) to FP32: refused with `refusal`, no build folder left."""
    import onnx
    from onnx import helper

    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.random.default_rng(1).normal(size=(32, 8)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "build"
    with pytest.raises(QuantserveError, match=refusal):
        optimize(OptimizeOptions(str(path), str(tmp_path / "calib.npz"), "fp32", "embedded", str(out)))
    assert not out.exists()


def test_a_build_folder_gets_the_mode_of_any_new_folder(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    """mkdtemp's staging folder is 0700: renamed into place as it was, a build made by one user was unreadable to
    another (the image runs as uid 10001)."""
    import os

    old = os.umask(0o022)
    try:
        _optimize(tiny_onnx, calib_npz, "fp32", tmp_path / "out")
        _optimize(tiny_onnx, calib_npz, "fp32", tmp_path / "out")  # and when it replaces a build
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
