"""The tensors a model's Triton config reshapes, and their two shapes: served (config `dims`) and the model's own.

Deploy serves a tensor with one value per sample of a batching model (an argmax label, a per-sample flag: model shape
[N]) as dims [1] reshaped to [], as Triton requires non-empty dims: on the wire it is [N, 1]. The client hands it to
callers, and takes it from them, in the model's own shape, the one `model_metadata` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantserve.artifact import TensorSpec

# the tensors a model's config reshapes: name → (served dims, the model's own shape), batch axis excluded
Reshapes = dict[str, tuple[tuple[int, ...], tuple[int, ...]]]


def reshaped_tensors(config: dict[str, Any]) -> Reshapes:
    """Tensors whose config has a `reshape`: name → (served dims, the model's own shape), batch axis excluded
    (a model that does not batch: none, its shapes are taken as served)."""
    found: Reshapes = {}
    if int(config.get("max_batch_size", 0)) <= 0:
        return found
    for tensor in [*config.get("input", []), *config.get("output", [])]:
        if "reshape" in tensor and all(int(d) > 0 for d in tensor.get("dims", [])):
            dims = tuple(int(d) for d in tensor["dims"])
            found[tensor["name"]] = (dims, tuple(int(d) for d in tensor["reshape"].get("shape", [])))
    return found


def model_spec(spec: TensorSpec, reshaped: Reshapes) -> TensorSpec:
    """An input's spec with the model's own shape where the config reshapes it (what callers' data has)."""
    if spec.name not in reshaped:
        return spec
    return TensorSpec(spec.name, spec.dtype, (*spec.shape[:1], *reshaped[spec.name][1]))


def as_served(name: str, array: np.ndarray, reshapes: Reshapes) -> np.ndarray:
    """An input the config reshapes, from the model's shape [n, *own] to the served [n, *dims]; any other array as it
    is (one sent in the served shape already, or one of a shape Triton refuses in its own words)."""
    if name not in reshapes or array.ndim == 0:
        return array
    dims, own = reshapes[name]
    return array.reshape(len(array), *dims) if array.shape[1:] == own else array


def as_model_shape(name: str, array: np.ndarray, reshapes: Reshapes) -> np.ndarray:
    """An output the config reshapes, from the served [n, *dims] back to the model's own [n, *own]: an argmax label
    came back [N, 1] where `model_metadata` said [batch] (session 46). An answer of any other shape is left as it is,
    for the checks of declared outputs to name."""
    if name not in reshapes or array.ndim == 0:
        return array
    dims, own = reshapes[name]
    return array.reshape(len(array), *own) if array.shape[1:] == dims else array
