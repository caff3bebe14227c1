"""Every answer's outputs against the outputs its model's config declares: datatype and dims (-1: any length).

Triton passes on whatever a Python backend's `execute` builds: a model.py answering `probs` as float64 (its config
says TYPE_FP32) or [1, 3] (dims [4]) for some rows went through a load test of 6084 requests with none failed,
`infer` saved the float64 array and `evaluate` passed it, and the [1, 3] row stopped both at the batch join with a
line naming no request. `infer`, `evaluate` (the gRPC runner) and the Locust users hold each answer to this one rule,
read from the answer's datatype and shape alone: no tensor is decoded or copied (a load test checks thousands a
second). Axis 0 of a batching model is -1 here: its rows are `serving.response_rows`' to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError
from serving.call_failures import NO_RETRY
from serving.client import TRITON_TO_NUMPY, TritonGrpcClient
from serving.reshaped import reshaped_tensors
from serving.response_rows import batches_requests
from serving.tls import ClientTls

# Config datatypes whose wire name differs (TYPE_STRING travels as BYTES), and numpy's for the wire names that are
# not numpy's own: tritonclient decodes BYTES as objects and BF16 as float32.
WIRE_NAMES = {"STRING": "BYTES"}
NUMPY_NAMES = {**TRITON_TO_NUMPY, "BYTES": "object", "BF16": "float32"}


@dataclass(frozen=True)
class DeclaredOutput:
    """One output as the config declares it: `datatype`, Triton's wire name (FP32, BYTES); `shape` as answered,
    -1 for the batch axis of a batching model and for every variable dim."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    fixed: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)  # (axis, dim) of fixed dims

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed", tuple((axis, d) for axis, d in enumerate(self.shape) if d != -1))

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(NUMPY_NAMES.get(self.datatype, "object"))

    def shape_fits(self, shape: Sequence[int]) -> bool:
        """Rank and every fixed dim (a load test's answer of one output, measured: 2.4 µs, of which 1.2 are reading
        the response's outputs at all; 3.1 with `all()` over a generator)."""
        if len(shape) != len(self.shape):
            return False
        for axis, dim in self.fixed:  # noqa: SIM110 - all() and its generator cost more
            if shape[axis] != dim:
                return False
        return True

    def declared(self) -> str:
        return f"{self.datatype} {_dims(self.shape)}"


def declared_outputs(config: dict[str, Any], model_shapes: bool = False) -> dict[str, DeclaredOutput]:
    """{name: DeclaredOutput} from a model config as Triton's JSON gives it (dims may be strings there). The served
    dims, not a `reshape`'s: Triton gives the answer the config's dims on the wire. `model_shapes`: a reshaped
    output's own shape instead, as `TritonGrpcClient.infer` hands the answer back (an argmax label [N], not [N, 1])."""
    batched, reshapes = batches_requests(config), reshaped_tensors(config) if model_shapes else {}
    found = {}
    for tensor in config.get("output", []):
        dims = tuple(int(d) for d in tensor.get("dims", []))
        dims = reshapes[tensor["name"]][1] if tensor["name"] in reshapes else dims
        datatype = str(tensor.get("data_type", "")).removeprefix("TYPE_")
        found[tensor["name"]] = DeclaredOutput(
            tensor["name"], WIRE_NAMES.get(datatype, datatype), (-1, *dims) if batched else dims
        )
    return found


def read_declared_outputs(
    url: str, model: str, tls: ClientTls | None, timeout_s: float = 5.0
) -> dict[str, DeclaredOutput] | None:
    """`model`'s declared outputs as served at `url`, over a client opened and closed in the calling thread; None
    where the server does not say (its requests meet the cause)."""
    try:
        with TritonGrpcClient(url, timeout_s, tls, NO_RETRY) as client:
            return declared_outputs(client.model_config(model))
    except QuantserveError:
        return None


def wire_mismatch(declared: dict[str, DeclaredOutput], outputs: Any) -> str | None:
    """For a load test's answer (gRPC `ModelInferResponse.outputs`: name, datatype, shape as sent, nothing decoded):
    one line naming the first output that differs from the config, in what only; None when all match."""
    for output in outputs:
        want = declared.get(output.name)
        if want is None:
            continue
        wrong_type, wrong_shape = output.datatype != want.datatype, not want.shape_fits(output.shape)
        if wrong_type or wrong_shape:
            answered = [NUMPY_NAMES.get(output.datatype, output.datatype)] if wrong_type else []
            expected = [want.datatype] if wrong_type else []
            if wrong_shape:
                answered, expected = [*answered, _dims(output.shape)], [*expected, _dims(want.shape)]
            return (
                f"answer did not match the model's outputs: '{output.name}' {' '.join(answered)}, declared "
                f"{' '.join(expected)}"
            )
    return None


def array_mismatch(declared: dict[str, DeclaredOutput], answer: dict[str, np.ndarray], rows: str) -> str | None:
    """For an answer decoded to arrays (`infer`, `evaluate`): one line naming the first output whose dtype or shape
    differs from the config, the `rows` it answered ("rows 9–16"), and both; None when all match."""
    for name, array in answer.items():
        want = declared.get(name)
        if want is None:
            continue
        wrong_type, wrong_shape = array.dtype != want.numpy_dtype, not want.shape_fits(array.shape)
        if wrong_type or wrong_shape:
            wrong = " and ".join(what for what, bad in (("type", wrong_type), ("shape", wrong_shape)) if bad)
            return (
                f"output '{name}' of {rows} answered {array.dtype} {_dims(array.shape)}; the model declares "
                f"{want.declared()}: the model's execute returns a wrong {wrong}"
            )
    return None


def _dims(shape: Sequence[int]) -> str:
    return f"[{', '.join(str(int(d)) for d in shape)}]"
