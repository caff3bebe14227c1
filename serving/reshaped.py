"""The tensors a model's Triton config reshapes, and their two shapes: served (config `dims`) and the model's own.

Deploy serves a tensor with one value per sample of a batching model (an argmax label, a per-sample flag: model shape
[N]) as dims [1] reshaped to [], as Triton requires non-empty dims: on the wire it is [N, 1]. The client hands it to
callers, and takes it from them, in the model's own shape, the one `model_metadata` gives. A model that does not batch
serves its scalar (rank-0) tensors as dims [1] (`serving.scalar_tensors`: Triton has no reshape to [] there): the
client sends a caller's scalar as [1] and answers [1] as the scalar the model gives.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from quantserve.artifact import TensorSpec
from serving.scalar_tensors import wrapped_scalars


class Reshape(NamedTuple):
    """A tensor's served dims and the model's own shape, batch axis excluded."""

    dims: tuple[int, ...]
    own: tuple[int, ...]


class WholeReshape(Reshape):
    """A tensor of a model that does not batch, reshaped whole: a scalar served as [1] (no batch axis to exclude)."""

    __slots__ = ()


# the tensors a model's config reshapes: name → Reshape
Reshapes = dict[str, Reshape]


def reshaped_tensors(config: dict[str, Any]) -> Reshapes:
    """Tensors whose config has a `reshape`: name → Reshape; a model that does not batch: the scalars it serves as
    [1] (`serving.scalar_tensors`), its other shapes are taken as served."""
    if int(config.get("max_batch_size", 0)) <= 0:
        return {name: WholeReshape((1,), ()) for name in wrapped_scalars(config)}
    found: Reshapes = {}
    for tensor in [*config.get("input", []), *config.get("output", [])]:
        if "reshape" in tensor and all(int(d) > 0 for d in tensor.get("dims", [])):
            dims = tuple(int(d) for d in tensor["dims"])
            found[tensor["name"]] = Reshape(dims, tuple(int(d) for d in tensor["reshape"].get("shape", [])))
    return found


def model_spec(spec: TensorSpec, reshaped: Reshapes) -> TensorSpec:
    """An input's spec with the model's own shape where the config reshapes it (what callers' data has)."""
    if spec.name not in reshaped:
        return spec
    reshape = reshaped[spec.name]
    whole = isinstance(reshape, WholeReshape)
    return TensorSpec(spec.name, spec.dtype, reshape.own if whole else (*spec.shape[:1], *reshape.own))


def as_served(name: str, array: np.ndarray, reshapes: Reshapes) -> np.ndarray:
    """An input the config reshapes, from the model's shape [n, *own] to the served [n, *dims]; any other array as it
    is (one sent in the served shape already, or one of a shape Triton refuses in its own words). A scalar of a model
    that does not batch (a numpy scalar, as a data row gives it) goes as [1]."""
    if name not in reshapes:
        return array
    dims, own = reshapes[name]
    if isinstance(reshapes[name], WholeReshape):
        return np.asarray(array).reshape(dims) if np.shape(array) == own else array
    return array.reshape(len(array), *dims) if array.ndim and array.shape[1:] == own else array


def as_model_shape(name: str, array: np.ndarray, reshapes: Reshapes) -> np.ndarray:
    """An output the config reshapes, from the served [n, *dims] back to the model's own [n, *own]: an argmax label
    came back [N, 1] where `model_metadata` said [batch] (session 46). An answer of any other shape is left as it is,
    for the checks of declared outputs to name. A scalar of a model that does not batch comes back [1], handed on as
    the model's rank 0."""
    if name not in reshapes:
        return array
    dims, own = reshapes[name]
    if isinstance(reshapes[name], WholeReshape):
        return array.reshape(own) if array.shape == dims else array
    return array.reshape(len(array), *own) if array.ndim and array.shape[1:] == dims else array
