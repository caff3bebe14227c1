"""The checks of a model built with `optimize --unbatched`: one request at a time, served with max_batch_size 0.

Some models cannot take a batch and never will: openWakeWord's `hey_jarvis_v0.1.onnx` fixes its batch at 1
and an `If` gates a second stage on one sample's score; a detector with NonMaxSuppression in its graph lists
the detections kept ([K, 7], K set by the values); a graph that pools over axis 0. The batch checks
(`optimizer.batch_axis`: one row per input row, rows independent) do not apply to them. What does: each row of
the data's axis 0 is one request, `data[i:i+1]`, so every input's axis 0 must be 1 or dynamic; or, where the data
has one axis more than the model's inputs (a model whose axis 0 is a sample's frames: data (N, T, 144) for a
(T, 144) input), `data[i]` whole (`quantserve.data.whole_samples`); the model must run on such requests; and an
output whose rows change in number from request to request (NMS's K) leaves nothing to pair an INT8 answer's rows
with FP32's, so drift cannot be measured: INT8 is refused before calibrating. A length past axis 0 that follows the
values (a decoder's T) is not refused: INT8 is judged request by request (`optimizer.verify_per_request`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from optimizer.ort_failure import ort_reason
from quantserve.artifact import TensorSpec
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

# optimize --unbatched's help, the rule every stage feeds by (quantserve.data.TensorData.unbatched)
UNBATCHED_HELP = (
    "a model that cannot take a batch (batch fixed at 1 with an If on one sample, NMS inside, pooling over axis 0): "
    "build it for one request at a time, each row of the .npz's axis 0 one request data[i:i+1] (the model's axis 0 "
    "1 or dynamic), or each data[i] whole where the arrays have one axis more than the model's inputs (axis 0 a "
    "sample's frames: data (N, T, F) for a (T, F) input); deploy serves it with max_batch_size 0"
)
# requests run one at a time to see whether an output's shape follows the values: a detector's K differed within
# the first few images; more rows cost a large model seconds before calibration starts
SHAPE_PROBE_REQUESTS = 32
# what one request of --unbatched data is, by `TensorData.requests.whole`
REQUEST_FORM = {
    False: "each row of the data's axis 0 as one request of 1 row",
    True: "each data[i] whole as one request, the data having one axis more than the model's inputs",
}


def check_requests(session: Any, data: TensorData, model: str | Path, precision: str) -> None:
    """Refuse, in one line naming `model`, what an unbatched build cannot do: an input whose axis 0 is fixed at
    other than 1 (a request is one data row), a model that does not run on one request, and INT8 of a model
    whose output shapes depend on the values (`value_shaped_output`)."""
    for spec in [] if data.requests.whole else session.get_inputs():  # whole samples: shapes as check_against saw
        first = spec.shape[0] if spec.shape else None
        if not spec.shape or (isinstance(first, int) and first not in (1, -1, 0)):
            raise QuantserveError(
                f"{model}: input '{spec.name}' has shape {list(spec.shape)}; --unbatched sends each row of the data's "
                "axis 0 as one request of 1 row, so the model's axis 0 must be 1 or dynamic"
            )
    probe = data.take(0, min(len(data), SHAPE_PROBE_REQUESTS))
    shaped = value_shaped_output(session, probe, model, past_axis_0=precision != "int8")
    if shaped and precision == "int8":  # a length past axis 0 (a decoder's T) is judged request by request instead
        raise QuantserveError(
            f"{model}: {shaped}: its number of rows depends on the input's values (as NonMaxSuppression's kept "
            "detections do: INT8's may differ from FP32's for the same request), so INT8's answers cannot be paired "
            "row by row with FP32's to measure the drift; build it with --precision fp32 --unbatched (each "
            "request's answer kept as it is, served with that axis -1)"
        )


def value_shaped_output(session: Any, requests: TensorData, model: str | Path, past_axis_0: bool = True) -> str:
    """'' when every output keeps one shape over `requests` run one at a time; else which output changed and how.
    `past_axis_0` False: only a change of axis 0 or of rank counts (NMS's K; a decoder's T past axis 0 does not:
    `optimizer.verify_per_request` judges INT8 of it request by request).

    A request the model does not run on is a QuantserveError naming `model` and the request's shapes."""
    names = [output.name for output in session.get_outputs()]
    seen: list[tuple[int, ...]] | None = None
    for index, feeds in enumerate(requests.batches(1)):
        try:
            shapes = [tuple(np.shape(value)) for value in session.run(None, feeds)]
        except Exception as exc:  # ORT's own error types: the model does not run on one request
            given = ", ".join(f"{name} {list(np.shape(array))}" for name, array in feeds.items())
            form = REQUEST_FORM[requests.requests.whole]
            raise QuantserveError(
                f"{model}: the model does not run on one request ({given}; --unbatched sends {form}): {ort_reason(exc)}"
            ) from exc
        if seen is None:
            seen = shapes
            continue
        for name, first, now in zip(names, seen, shapes, strict=True):
            if first != now and (past_axis_0 or first[:1] != now[:1] or len(first) != len(now)):
                return f"output '{name}' has shape {list(first)} for request 0 and {list(now)} for request {index}"
    return ""


def request_specs(specs: list[TensorSpec], graph: onnx.GraphProto) -> list[TensorSpec]:
    """`specs` (the manifest's inputs or outputs, axis 0 named `batch` by the export) with axis 0 as `graph` declares
    it: a fixed 1 stays 1, so deploy writes the full request shape ([1, 16, 96]) for max_batch_size 0."""
    declared = {value.name: list(value.type.tensor_type.shape.dim) for value in [*graph.input, *graph.output]}
    fixed = []
    for spec in specs:
        dims = declared.get(spec.name) or []
        if spec.shape and dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            spec = TensorSpec(spec.name, spec.dtype, (int(dims[0].dim_value), *spec.shape[1:]))
        fixed.append(spec)
    return fixed
