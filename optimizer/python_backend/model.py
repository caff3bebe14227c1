"""Triton Python-backend model for the `embedded` target: runs `model.onnx` with ONNX Runtime on the CPU.

`execute` concatenates every request Triton's dynamic batcher hands it into ONE batch and makes ONE
ONNX Runtime call, then splits the outputs back per request: that is what makes batching pay.
Requests that differ in a non-batch dim (variable sequence length, `allow_ragged_batch` inputs)
are handled by the config parameter `ragged_batching`:
- "group" (default): one session call per distinct shape; always exact.
- "pad": right-pad each input with zeros to the longest and cut outputs sharing that axis back to
  each request's length; ONE call, but exact only for models that mask or ignore padded positions
  (a mean over the sequence, for instance, changes).
Other config parameters: `intra_op_threads` (default: all cores) and `allow_spinning` ("0" by default: ONNX Runtime's
workers sleep between calls; "1" lets them spin, ORT's own default, which costs the server about a fifth more CPU a
request, and on cores other processes also want, far more: `session_options`).

This file is copied alone into each version folder, so it imports nothing from quantserve.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton, e.g. by tests of the batching helpers below
    pb_utils = None

MODEL_FILE = "model.onnx"


def onnx_feed(array: np.ndarray) -> np.ndarray:
    """A request's tensor as ONNX Runtime takes it: Triton hands BYTES inputs over as an object array of `bytes`,
    and ORT turns each into a string with str() ("b'a'" for b"a"), so they are decoded as UTF-8 here."""
    if array.dtype != object:
        return array
    decode = np.frompyfunc(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v, 1, 1)
    return np.asarray(decode(array), dtype=object).reshape(array.shape)


def pad_and_concat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """One batch from per-request arrays, right-padding each non-batch dim with zeros to the longest."""
    target = tuple(max(a.shape[axis] for a in arrays) for axis in range(1, arrays[0].ndim))
    padded = []
    for array in arrays:
        widths = [(0, 0)] + [(0, t - s) for s, t in zip(array.shape[1:], target, strict=True)]
        padded.append(np.pad(array, widths) if any(w for _, w in widths) else array)
    return padded[0] if len(padded) == 1 else np.concatenate(padded, axis=0)


def split_outputs(output: np.ndarray, counts: Sequence[int], lengths: Sequence[dict[int, int]]) -> list[np.ndarray]:
    """Cut a batched output back per request: `counts[i]` rows each, then axis k cut to `lengths[i][k]`."""
    parts = []
    start = 0
    for count, own in zip(counts, lengths, strict=True):
        part = output[start : start + count]
        start += count
        parts.append(part[tuple(slice(0, own.get(axis)) for axis in range(part.ndim))])
    return parts


def output_padded_axes(
    input_axes: dict[str, dict[int, Any]], output_dims: Sequence[Any], padded: dict[str, dict[int, int]]
) -> dict[int, tuple[str, int]]:
    """Which output axes carry a padded input axis: same symbolic dim name (e.g. "sequence") in the ONNX."""
    found: dict[int, tuple[str, int]] = {}
    for out_axis, dim in enumerate(output_dims):
        if out_axis == 0 or not isinstance(dim, str):
            continue
        for name, axes in input_axes.items():
            for in_axis, in_dim in axes.items():
                if in_dim == dim and in_axis in padded.get(name, {}):
                    found[out_axis] = (name, in_axis)
    return found


def run_as_one_batch(
    session: Any,
    feeds: Sequence[dict[str, np.ndarray]],
    input_names: Sequence[str],
    output_names: Sequence[str],
    input_dims: dict[str, dict[int, Any]],
    output_dims: dict[str, list[Any]],
) -> list[dict[str, np.ndarray]]:
    """ONE `session` call on the requests' `feeds` concatenated (right-padded with zeros where lengths differ), its
    outputs split back per request and cut to each request's own length where an output shares a padded axis.
    `input_dims`/`output_dims`: the session's symbolic dims. serving.ragged_check runs this very code before a deploy
    with `ragged_batching` pad."""
    counts = [int(next(iter(f.values())).shape[0]) for f in feeds]
    batch = {name: pad_and_concat([f[name] for f in feeds]) for name in input_names}
    padded = {
        name: {
            axis: batch[name].shape[axis]
            for axis in range(1, batch[name].ndim)
            if any(f[name].shape[axis] != batch[name].shape[axis] for f in feeds)
        }
        for name in input_names
    }
    results = dict(zip(output_names, session.run(list(output_names), batch), strict=True))
    split: dict[str, list[np.ndarray]] = {}
    for name, value in results.items():
        axes = output_padded_axes(input_dims, output_dims.get(name, []), padded)
        lengths = [{axis: f[src].shape[src_axis] for axis, (src, src_axis) in axes.items()} for f in feeds]
        split[name] = split_outputs(value, counts, lengths)
    return [{name: split[name][i] for name in output_names} for i in range(len(feeds))]


def session_options(ort: Any, parameters: dict[str, str]) -> Any:
    """The served session's options from the config's `parameters`. Spinning is off unless `allow_spinning` is "1":
    after each call ORT's workers would spin waiting for the next, on the cores Triton's gRPC threads, this stub and
    (on one machine) the load generator need between calls. Measured on 2 cores (session 67, the demo's INT8 model,
    16 users, alternated 20 s windows): with the machine otherwise idle, the same requests/s either way (median 1358
    off, 1378 on) for 0.84-0.91 against 1.03-1.11 ms of server CPU a request; with other processes on the cores (load
    9-15), 1006/947/1095 requests/s off against 598/662/579 on. An in-process caller running batches back to back
    gains from spinning; a server between requests does not."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(parameters.get("intra_op_threads") or os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    spin = parameters.get("allow_spinning") or "0"
    if spin not in ("0", "1"):
        raise ValueError(f'config parameter allow_spinning must be "0" or "1", got {spin!r}')
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return options


class TritonPythonModel:
    """Loaded once per model instance; `execute` serves each batch of requests Triton forms."""

    def initialize(self, args: dict[str, Any]) -> None:
        import onnxruntime as ort

        config = json.loads(args["model_config"])
        parameters = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        path = Path(args["model_repository"]) / args["model_version"] / MODEL_FILE
        options = session_options(ort, parameters)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.ragged_mode = parameters.get("ragged_batching", "group")
        self.batched = int(config.get("max_batch_size", 0) or 0) > 0
        self.input_names = [t["name"] for t in config["input"]]
        self.output_names = [t["name"] for t in config["output"]]
        self.input_dims = {i.name: dict(enumerate(i.shape)) for i in self.session.get_inputs()}
        self.output_dims = {o.name: list(o.shape) for o in self.session.get_outputs()}

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request; a request that fails gets an error response, never a crashed stub."""
        responses: list[Any] = [None] * len(requests)
        feeds: list[tuple[int, dict[str, np.ndarray]]] = []
        for i, request in enumerate(requests):
            try:
                feeds.append((i, self._request_feeds(request)))
            except Exception as exc:  # reported to that request's client
                responses[i] = _error_response(f"bad request: {exc}")
        for group in self._groups(feeds):
            self._run_group(group, responses)
        return responses

    def _request_feeds(self, request: Any) -> dict[str, np.ndarray]:
        feeds = {}
        for name in self.input_names:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input '{name}'")
            feeds[name] = onnx_feed(tensor.as_numpy())
        return feeds

    def _groups(self, feeds: list[tuple[int, dict[str, np.ndarray]]]) -> list[list[tuple[int, dict[str, np.ndarray]]]]:
        if self.ragged_mode == "pad":
            return [feeds] if feeds else []
        groups: dict[tuple, list[tuple[int, dict[str, np.ndarray]]]] = {}
        for item in feeds:
            key = tuple(a.shape[1:] for a in item[1].values())
            groups.setdefault(key, []).append(item)
        return list(groups.values())

    def _run_group(self, group: list[tuple[int, dict[str, np.ndarray]]], responses: list[Any]) -> None:
        try:
            outputs = self._run_batched([f for _, f in group])
        except Exception as exc:
            if len(group) > 1:  # each request alone: one client's bad row failed every good request batched with it
                for item in group:
                    self._run_group([item], responses)
                return
            responses[group[0][0]] = _error_response(f"inference failed: {exc}")
            return
        for (i, _), per_request in zip(group, outputs, strict=True):
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(per_request[name])) for name in self.output_names]
            responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)

    def _run_batched(self, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Concatenate (padding where lengths differ), run ONE session call, split back per request. A model served
        with max_batch_size 0 runs each request alone, its outputs whole: an NMS output's K rows are not one per input
        row, and cutting them to the request's one row answered [[0, 0, 1]] for 4 detections."""
        if not self.batched:
            return [dict(zip(self.output_names, self.session.run(self.output_names, f), strict=True)) for f in feeds]
        return run_as_one_batch(
            self.session, feeds, self.input_names, self.output_names, self.input_dims, self.output_dims
        )

    def finalize(self) -> None:
        self.session = None


def _error_response(message: str) -> Any:
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))
