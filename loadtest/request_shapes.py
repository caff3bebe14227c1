"""The shapes a load test's requests must have, read from the served model's Triton config (kept free of Locust).

A data file holds samples on axis 0; a request of n of them goes to a batching model (max_batch_size > 0) as
[n, *dims], a tensor the config reshapes (one value per sample: deploy serves it as dims [1] reshaped to []) as
[n, 1]; to a model that does not batch (max_batch_size 0) as the data has it, axis 0 included. Guessing from the
data alone failed every request (measured): a flag of one value per sample sent as [1, 1] to a max_batch_size 0
model of dims [-1], and token inputs cut to their own length for a model of fixed dims [16].
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from quantserve.artifact import TensorSpec
from serving.length_parameter import recorded_length
from serving.reshaped import Reshapes, WholeReshape, reshaped_tensors
from serving.reshaped import as_served as reshaped_as_served


@dataclass(frozen=True)
class ServedInputs:
    """How a served model takes its inputs: `shapes`, per input, the shape a request carries (-1: the batch axis
    and dynamic dims); `reshapes`, the inputs its config reshapes, as the client reads them (`serving.reshaped`): a
    batching model's, sent as [n, *dims], or, of a model that does not batch, the rank-0 inputs deploy serves as [1]
    (`serving.scalar_tensors`: sent as [1]); `length_input`, the input its build was told counts each row's real
    positions (`optimize --length-input NAME|none`, `serving.length_parameter`; None: inferred from the names), or
    loadtest's own --length-input (`length_flag`, `told`), which the requests are cut by (`loadtest.request_data`), as
    evaluate reads real tokens by it."""

    model: str
    max_batch_size: int
    shapes: dict[str, tuple[int, ...]]
    reshapes: Reshapes = field(default_factory=dict)
    length_input: str | None = None
    length_flag: bool = False

    @classmethod
    def from_config(cls, model: str, config: dict[str, Any]) -> ServedInputs:
        """From the config as Triton's JSON gives it (dims may be strings there)."""
        max_batch = int(config.get("max_batch_size", 0) or 0)
        shapes = {tensor["name"]: _sent_shape(tensor, max_batch) for tensor in config.get("input", [])}
        reshapes = {name: reshape for name, reshape in reshaped_tensors(config).items() if name in shapes}
        return cls(model, max_batch, shapes, reshapes, recorded_length(config))

    def told(self, length_input: str | None) -> ServedInputs:
        """These inputs with loadtest's --length-input `length_input` in place of the build's record, where given."""
        return self if length_input is None else replace(self, length_input=length_input, length_flag=True)

    @property
    def batched(self) -> bool:
        return self.max_batch_size > 0

    @property
    def reshaped(self) -> frozenset[str]:
        """The inputs the config reshapes, by name."""
        return frozenset(self.reshapes)

    def input_specs(self) -> list[TensorSpec]:
        """The inputs' shapes as a request carries them, for the data's rank rule (`quantserve.data.read_as_served`);
        the config's dtypes are not kept here (''), and a scalar deploy serves as [1] has the model's own rank 0."""
        return [TensorSpec(name, "", self._own_shape(name, shape)) for name, shape in self.shapes.items()]

    def _own_shape(self, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A wrapped scalar's shape as the model has it (rank 0), which the data's rank rule reads; else as sent."""
        reshape = self.reshapes.get(name)
        return reshape.own if isinstance(reshape, WholeReshape) else shape

    def dynamic(self, name: str, axis: int) -> bool:
        """Whether input `name` may be sent at any length on `axis` (of the request as sent): -1 in its config. A
        reshaped input is not: its served dims are fixed."""
        shape = self.shapes.get(name)
        return shape is not None and name not in self.reshapes and axis < len(shape) and shape[axis] == -1


def _sent_shape(tensor: dict[str, Any], max_batch: int) -> tuple[int, ...]:
    """An input's shape as a request carries it: its config dims, after the batch axis (-1) of a batching model."""
    dims = tuple(int(d) for d in tensor.get("dims", []))
    return (-1, *dims) if max_batch > 0 else dims


def as_served(batch: dict[str, np.ndarray], served: ServedInputs | None) -> dict[str, np.ndarray]:
    """`batch` (samples on axis 0, as the data file has them) shaped as the served model takes it, as the client
    shapes a caller's arrays (`serving.reshaped.as_served`). `served` None (the server did not say): a 1-D array goes
    as [n, 1], as deploy serves one value per sample of a batching model."""
    if served is None:
        return {name: array[:, None] if array.ndim == 1 else array for name, array in batch.items()}
    return {name: reshaped_as_served(name, array, served.reshapes) for name, array in batch.items()}


def shape_problem(request: dict[str, np.ndarray], served: ServedInputs) -> tuple[str, tuple[int, ...]] | None:
    """The first input of `request` (as sent) whose shape the served model refuses, with the shape it takes; None
    when all fit (what Triton checks: rank and every fixed dim; rows against max_batch_size are checked apart)."""
    for name, array in request.items():
        expected = served.shapes.get(name)
        if expected is None:
            continue
        if len(expected) != array.ndim or any(w not in (-1, g) for w, g in zip(expected, array.shape, strict=True)):
            return name, expected
    return None


def read_served_inputs(url: str, model: str, tls: Any) -> ServedInputs | None:
    """`model`'s inputs as served at `url`, over a channel opened and closed in the calling OS thread; None where
    the server does not say (a server not up yet, a model not loaded: the users' requests meet the cause)."""
    import tritonclient.grpc as grpcclient

    from loadtest.grpc_channel import CONFIG_TIMEOUT_S

    client = grpcclient.InferenceServerClient(url, **(tls.grpc_kwargs() if tls else {}))
    try:
        config = client.get_model_config(model, as_json=True, client_timeout=CONFIG_TIMEOUT_S)["config"]
        return ServedInputs.from_config(model, config)
    except Exception:  # not this question's to report
        return None
    finally:
        client.close()
