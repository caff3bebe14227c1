"""The model handed to ORT's quantizer: own initializer per weight, then ORT's shape pre-processing.

ORT's `quant_pre_process` (symbolic shape inference) refuses a graph as soon as one tensor's shape
is not fully known. A fixed batch of 1 freed by `optimizer.batch_axis` is such a graph when a Resize
to constant `sizes` became `scales` (`optimizer.batch_resize`): the batch scale 1.0 is a float, so
sympy writes the Resize's batch as `floor(1.0*batch)`, and the first Add joining it with `batch`
stops the inference (MediaPipe's palm detector, converted from TFLite: "Incomplete symbolic shape
inference" at its add_19). ORT's own `auto_merge` unifies such equal symbols; it is tried only
after the strict pass fails, and the quantized model is then validated by running it as always.
Whatever still fails is said as such, with the node it stopped at, in the stage's record and log.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections import Counter
from pathlib import Path

import onnx

from optimizer import onnx_files
from optimizer.qdq_graph import at_qdq_opset

WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
SHAPE_LOGGER = "onnxruntime.tools.symbolic_shape_infer"
RAN = "ran"
RAN_MERGED = "ran, with ORT's auto_merge of equal symbolic dims"
LOG = logging.getLogger(__name__)


def prepare_for_quantization(model_path: Path, out_path: Path) -> str:
    """Write to `out_path` the model with every weight/bias its own initializer, pre-processed by ORT where it can be.

    Exporters deduplicate equal initializers (e.g. zero biases), and a bias shared by several Convs
    cannot take each Conv's own scale: ORT then leaves those Convs in FP32 between Q/DQ pairs.
    Returns what became of ORT's shape pre-processing: RAN, RAN_MERGED, or why it did not run (one line).
    """
    model = at_qdq_opset(onnx.load(str(model_path), load_external_data=False), model_path.name)
    onnx.load_external_data_for_model(model, str(model_path.parent))
    unshare_weights(model)
    inputs = {i.name for i in model.graph.input}
    # an input listed as an output too: ORT's quantizer would put a Q/DQ pair on it (and fail: "Graph is not a
    # DAG"); hidden from it here, it is listed again by finish_qdq and passes the input through untouched
    kept = [o for o in model.graph.output if o.name not in inputs]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    if onnx_files.is_large(model):  # its shape inference holds the model as one protobuf; quantize_static copes
        onnx_files.save(model, out_path, keep_weights=False)  # not read back: done with it
        return "did not run: the model holds 1 GiB of weights or more, which its shape inference holds as one protobuf"
    onnx_files.save(model, out_path)
    outcome = _pre_process(out_path)
    if outcome not in (RAN, RAN_MERGED):
        onnx_files.save(model, out_path)  # quantize_static copes without it
        LOG.warning("ONNX Runtime's shape pre-processing %s; INT8 was quantized without it", outcome)
    return outcome


def _pre_process(path: Path) -> str:
    """ORT's `quant_pre_process` on `path` in place: strict, then with `auto_merge`; the outcome in words."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    stops = _StopsHeard()
    reason = ""
    for auto_merge, outcome in ((False, RAN), (True, RAN_MERGED)):
        stops.stops.clear()
        try:
            # ORT's symbolic shape inference drops 'sym_shape_infer_temp.onnx' (+ .data) into the working
            # directory when it gives up: run it from a scratch folder so nothing lands in the user's.
            with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch), stops:
                quant_pre_process(
                    str(path.resolve()), str(path.resolve()), skip_optimization=True, auto_merge=auto_merge
                )
            return outcome
        except Exception as exc:  # ORT raises bare Exception ("Incomplete symbolic shape inference")
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    where = f" at {stops.stops[-1]}" if stops.stops else ""
    return f"did not run: its symbolic shape inference failed{where} ({reason})"


class _StopsHeard(logging.Handler):
    """Hears which node ORT's symbolic shape inference stopped at (it says so only in a debug record)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.stops: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Stopping at incomplete shape inference at "):
            self.stops.append(message.removeprefix("Stopping at incomplete shape inference at ").strip())

    def __enter__(self) -> _StopsHeard:
        logger = logging.getLogger(SHAPE_LOGGER)
        self.level_before, self.propagate_before = logger.level, logger.propagate
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # its debug chatter (every node's shapes) stays out of the log file
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger(SHAPE_LOGGER)
        logger.removeHandler(self)
        logger.setLevel(self.level_before)
        logger.propagate = self.propagate_before


def unshare_weights(model: onnx.ModelProto) -> int:
    """Copy initializers that several weighted nodes read (as weight or bias); return how many copies."""
    initializers = {init.name: init for init in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input if name in initializers)
    copies = 0
    for node in model.graph.node:
        if node.op_type not in WEIGHT_OPS:
            continue
        for index in range(1, len(node.input)):
            name = node.input[index]
            if name in initializers and uses[name] > 1:
                uses[name] -= 1
                clone = onnx.TensorProto()
                clone.CopyFrom(initializers[name])
                clone.name = f"{name}__{node.name or copies}_{index}"
                model.graph.initializer.append(clone)
                node.input[index] = clone.name
                copies += 1
    return copies
