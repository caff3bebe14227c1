"""Run an ONNX model in-process with ONNX Runtime on the CPU, behind quantserve's Runner interface."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.artifact import TensorSpec
from quantserve.errors import QuantserveError
from quantserve.runner import Runner

# ORT tensor type strings → numpy dtype names
ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}
# "all" adds the NCHWc layout transformer and Q/DQ → QLinear* fusions: FP32 and INT8 both run fastest there.
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


def quiet_onnxruntime() -> None:
    """Errors only from ORT's default logger, for the rest of this process: its warnings went raw to stderr at session
    creation (a graph's `MergeShapeInfo`, tf2onnx's deprecated `tf_half_pixel_for_nn` at kernel creation) whatever a
    session's own `log_severity_level`. Called once by every quantserve command (`quantserve.cli`) and by every
    timing child; a session that fails is said in our own line (`cannot load the model (…)`). Nothing where ONNX
    Runtime is not installed (an image that serves TensorRT plans alone)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    ort.set_default_logger_severity(3)


def session_options(level: str = "all", intra_op_threads: int = 0) -> Any:
    """ORT session options for a graph optimization level (`disable`/`basic`/`extended`/`all`)."""
    import onnxruntime as ort

    if level not in OPTIMIZATION_LEVELS:
        raise QuantserveError(f"unknown graph optimization level '{level}'; choose one of {OPTIMIZATION_LEVELS}")
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    options.intra_op_num_threads = intra_op_threads
    # no spin-waiting between ops: these sessions calibrate and check (throughput work, not timed: `optimizer.speed`
    # times with its own options, which do not spin either); a spinning pool on a shared machine takes the cores
    # its neighbours need
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxRuntimeRunner(Runner):
    """An ONNX file run by an `onnxruntime.InferenceSession` on the CPU execution provider."""

    name = "onnxruntime"

    def __init__(self, path: Path | str, optimization_level: str = "all", intra_op_threads: int = 0) -> None:
        super().__init__()
        self.path = Path(path)
        self.optimization_level = optimization_level
        self.intra_op_threads = intra_op_threads
        self.session: Any = None

    def activate_impl(self) -> None:
        import onnxruntime as ort

        options = session_options(self.optimization_level, self.intra_op_threads)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise QuantserveError(
                f"{self.path}: ONNX Runtime cannot load the model ({str(exc).splitlines()[0]})"
            ) from exc

    def input_specs(self) -> Sequence[TensorSpec]:
        if self.session is None:
            raise QuantserveError(f"{self.name}: input_specs() called before activate()")
        return [_spec(arg) for arg in self.session.get_inputs()]

    def output_names(self) -> list[str]:
        return [arg.name for arg in self.session.get_outputs()]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names()
        feed = {spec.name: feeds[spec.name] for spec in self.input_specs()}
        try:
            return dict(zip(names, self.session.run(names, feed), strict=True))
        except Exception as exc:  # ORT's own types; INVALID_ARGUMENT is the data's (an id past a table), not a bug
            if type(exc).__name__ != "InvalidArgument":
                raise
            from optimizer.ort_failure import ort_reason

            # a token id past an embedding table was a traceback from verification (session 40)
            raise QuantserveError(f"{self.path.name}: ONNX Runtime refused the data: {ort_reason(exc)}") from exc

    def deactivate_impl(self) -> None:
        self.session = None


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or f"dim{i}") for i, d in enumerate(arg.shape))
    return TensorSpec(name=arg.name, dtype=ORT_DTYPES.get(arg.type, arg.type), shape=shape)
