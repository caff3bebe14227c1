"""A thin `tritonclient.grpc` wrapper with timeouts and retries of idempotent inferences.

`serving.triton_runner.TritonRunner` runs a served model through it as a Runner, so the evaluator compares a Triton
endpoint with in-process runners the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import numpy as np

from quantserve.artifact import Dim, TensorSpec
from quantserve.data import as_sent
from quantserve.errors import QuantserveError
from serving.build_parameters import recorded_precision
from serving.call_failures import (
    NO_RETRY,
    RetryPolicy,
    call_with_retry,
    no_answer_line,
    repository_unreadable,
    server_error,
    takes_connections,
    unreadable_folder,
)
from serving.endpoints import find_endpoints, grpc_address_problem, http_port_problem, refused_reason
from serving.model_version import version_precision
from serving.reshaped import Reshapes, as_model_shape, as_served, model_spec, reshaped_tensors
from serving.server_mode import listening_tritonserver
from serving.tls import HANDSHAKE_TIMEOUT_S, ClientTls, tls_problem

# Triton's wire datatypes and numpy's names for them.
TRITON_TO_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
# How long to wait for a server that does not answer at all before saying so.
CONNECT_TIMEOUT_S = 10.0


def _grpc() -> Any:
    # gRPC's own INFO lines (each failed TLS handshake) would bury the one line that names the cause; ERROR keeps
    # its real errors. Read once, when grpc is first imported; a value the user set wins.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    import tritonclient.grpc as grpcclient

    return grpcclient


class TritonGrpcClient:
    """Health, metadata, inference and statistics over gRPC; every call bounded by `timeout_s`."""

    def __init__(
        self, url: str, timeout_s: float = 30.0, tls: ClientTls | None = None, retry: RetryPolicy | None = None
    ) -> None:
        problem = grpc_address_problem(url)
        if problem is not None:
            raise QuantserveError(problem)
        self.url = url
        self.timeout_s = timeout_s
        self.tls = tls if tls is not None else ClientTls.from_env()
        self.retry = retry if retry is not None else RetryPolicy(deadline_s=timeout_s)
        self._client = _grpc().InferenceServerClient(url=url, **(self.tls.grpc_kwargs() if self.tls else {}))
        self._reshapes: dict[str, Reshapes] = {}  # model: its config's reshapes, read on its first request

    def __enter__(self) -> TritonGrpcClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(*args, client_timeout=self.timeout_s, **kwargs)
        except server_error() as exc:
            raise QuantserveError(f"{self.url}: {what} failed: {exc}") from exc

    def is_server_live(self) -> bool:
        """Whether the server answers; what no retry mends raises the one line that names it instead: Triton's HTTP
        or metrics port given for its gRPC one, a TLS mismatch (an unknown CA, an expired certificate, a missing
        client certificate)."""
        try:
            return bool(self._client.is_server_live(client_timeout=self.timeout_s))
        except server_error() as exc:
            if str(getattr(exc, "status", lambda: None)()) == "StatusCode.UNAVAILABLE":
                http = http_port_problem(self.url, timeout_s=min(self.timeout_s, HANDSHAKE_TIMEOUT_S))
                if http is not None:
                    raise QuantserveError(http) from None
            cause = self._tls_cause(exc)
            if cause is not None:
                raise QuantserveError(f"{self.url}: {cause}") from None
            return False

    def _tls_cause(self, exc: Exception) -> str | None:
        """The TLS cause of an unreachable server (gRPC says only UNAVAILABLE), or None where TLS is not it."""
        if str(getattr(exc, "status", lambda: None)()) != "StatusCode.UNAVAILABLE":
            return None  # a hung server's DEADLINE_EXCEEDED is no TLS matter: spare it a handshake's wait
        return tls_problem(self.url, self.tls, timeout_s=min(self.timeout_s, HANDSHAKE_TIMEOUT_S))

    def is_server_ready(self) -> bool:
        try:
            return bool(self._client.is_server_ready(client_timeout=self.timeout_s))
        except server_error():
            return False

    def is_model_ready(self, model: str, version: str = "") -> bool:
        try:
            return bool(self._client.is_model_ready(model, version, client_timeout=self.timeout_s))
        except server_error():
            return False

    def wait_model_ready(self, model: str, timeout_s: float = 60.0) -> None:
        """Block until `model` is ready; raise at once if the server is up but does not serve it."""
        start = time.monotonic()
        deadline = start + timeout_s
        connect_deadline = start + min(timeout_s, CONNECT_TIMEOUT_S)
        while True:
            asked = time.monotonic()
            if self.is_model_ready(model):
                return
            # unanswered for the call's whole deadline on a port that takes connections: hung, said now (a liveness
            # call would wait as long again: `infer --timeout 5` said so of a SIGSTOPped server after 27 s, session 54)
            if time.monotonic() - asked >= 0.95 * self.timeout_s and takes_connections(self.url):
                raise QuantserveError(no_answer_line(self.url))
            if self.is_server_live():
                self._check_served(model, time.monotonic() - start)
            elif time.monotonic() > connect_deadline:
                raise QuantserveError(no_answer_line(self.url))
            if time.monotonic() > deadline:
                raise QuantserveError(f"{self.url}: model '{model}' not ready after {timeout_s:.0f} s")
            time.sleep(0.2)

    def _check_served(self, model: str, waited_s: float = 0.0) -> None:
        """Raise at once where `model` is not served and no load of it may come; return where one may (`waited_s`:
        how long it has been waited for so far)."""
        try:
            index = self.repository_index()
        except QuantserveError as exc:
            folder = unreadable_folder(exc)
            if folder is None:
                raise
            raise QuantserveError(
                f"{self.url}: model '{model}' is not ready, and the server cannot say why: "
                f"{repository_unreadable(folder)}"
            ) from exc
        states = {m["name"]: m.get("state", "") for m in index}
        if model not in states:
            served = ", ".join(sorted(states)) or "none"
            raise QuantserveError(f"{self.url}: serves no model '{model}' (models: {served})")
        why, _coming = self._not_served(model, index, waited_s)
        if why:
            raise QuantserveError(why)

    def not_served_because(self, model: str) -> tuple[str | None, bool]:
        """For a model not ready: why it is not served, said at once (None where that is not known), and whether a
        load of it may still come (then wait for it). See `_not_served`."""
        return self._not_served(model, self.repository_index())

    def _not_served(self, model: str, index: list[dict[str, Any]], waited_s: float = 0.0) -> tuple[str | None, bool]:
        """Triton's reason for a model UNAVAILABLE; for one listed with no state, serve's reason where its record says
        it left the model out (refused by its own check, never handed to Triton: clients waited 30 s, then said "not
        ready", session 58). A load may still come for one LOADING, or one not loaded yet that the recorded serve
        loads when it sees it (a deploy after its last look); with no serve recorded, the listening tritonserver's
        own model control mode says (`_plain_server`)."""
        entries = [m for m in index if m.get("name") == model]
        states = {m.get("state", "") for m in entries}
        if "LOADING" in states:
            return None, True
        if "UNAVAILABLE" in states:
            reason = next((m.get("reason", "") for m in entries if m.get("state") == "UNAVAILABLE"), "")
            first = (str(reason).strip().splitlines() or ["no reason given"])[0]
            return f"{self.url}: model '{model}' is unavailable: {first}", False
        if not entries or states - {""}:  # absent, or in a state with no load to come (UNLOADING, READY)
            return None, False
        left_out = refused_reason(self.url, model)
        if left_out:
            return f"{self.url}: model '{model}' is not served: {left_out}", False
        endpoints = find_endpoints(self.url)
        if endpoints is None:
            return self._plain_server(model, waited_s)
        if not endpoints.loads_changes:
            return (
                f"{self.url}: model '{model}' is not served: quantserve serve (pid {endpoints.pid}) runs with "
                "--model-control none and loads the repository only when tritonserver starts; restart serve to "
                "serve it",
                False,
            )
        return None, True

    def _plain_server(self, model: str, waited_s: float) -> tuple[str | None, bool]:
        """For a model listed unloaded by a tritonserver no serve recorded (started by hand): under none or explicit
        control nothing loads it, said at once; under poll its next look may (session 58: waited 30 s, then "not
        ready"). Where its process cannot be read (another user's, a remote URL): not known, waited for."""
        server = listening_tritonserver(self.url)
        if server is None:
            return None, False
        return server.unloaded(self.url, model, waited_s)

    def repository_index(self) -> list[dict[str, Any]]:
        """Every model the server knows: name, version, state (READY/UNAVAILABLE/LOADING) and reason."""
        index = self._call("repository index", "get_model_repository_index", as_json=True)
        return list(index.get("models", []))

    def failed_models(self) -> dict[str, str]:
        """Models whose load failed, with Triton's reason."""
        return {
            m["name"]: m.get("reason", "unknown reason")
            for m in self.repository_index()
            if m.get("state") == "UNAVAILABLE" and m.get("reason")
        }

    def ready_models(self) -> dict[str, list[str]]:
        models: dict[str, list[str]] = {}
        for m in self.repository_index():
            if m.get("state") == "READY":
                models.setdefault(m["name"], []).append(m.get("version", ""))
        return models

    def all_models_ready(self) -> bool:
        """True when nothing in the repository index is still loading or failed."""
        return all(m.get("state", "READY") == "READY" for m in self.repository_index() if "version" in m)

    def model_config(self, model: str) -> dict[str, Any]:
        return dict(self._call(f"config of '{model}'", "get_model_config", model, as_json=True)["config"])

    def served_precision(self, model: str) -> str | None:
        """The precision `deploy` recorded in the model's config (int8, fp16, fp32), or None where none is."""
        return recorded_precision(self.model_config(model))

    def ready_versions(self, model: str) -> list[str]:
        """The versions of `model` the server has ready, ascending by number. Where the repository index fails (Triton
        reads the repository folder for it: moved away, a network filesystem's blip), the model's own metadata names
        them: the models loaded keep serving, and `infer m@1` stopped on the index (session 55)."""
        try:
            ready = self.ready_models().get(model, [])
        except QuantserveError as exc:
            ready = self._metadata_versions(model, exc)
        return sorted(ready, key=lambda v: (len(v), v))

    def _metadata_versions(self, model: str, index_failed: QuantserveError) -> list[str]:
        """The ready versions `model`'s metadata lists (Triton answers it from the loaded model, not the folder); a
        model it does not answer for is one line naming both failures, the folder's cause first."""
        try:
            meta = self._client.get_model_metadata(model, as_json=True, client_timeout=self.timeout_s)
        except server_error() as exc:
            folder = unreadable_folder(index_failed)
            if folder is None:
                raise index_failed from None
            raise QuantserveError(
                f"{self.url}: model '{model}' is not served ({exc}), and {repository_unreadable(folder)}"
            ) from None
        return [str(v) for v in meta.get("versions", [])]

    def version_precision(self, model: str, version: str = "") -> str | None:
        """The precision `version` of `model` was deployed with ("": the newest served, which answers a request that
        names none); None where it is not recorded for that version (`serving.model_version.version_precision`)."""
        served = self.ready_versions(model)
        return version_precision(self.model_config(model), version or (served or [""])[-1], served)

    def check_version_served(self, model: str, version: str) -> None:
        """Refuse, in one line and before any request, a version of `model` the server does not have ready."""
        if self.is_model_ready(model, version):
            return
        served = ", ".join(self.ready_versions(model)) or "none"
        raise QuantserveError(
            f"{self.url}: model '{model}' has no version {version} served (versions served: {served}); name one of "
            "those, or serve that version first (deploy --live-versions, rollback --to)"
        )

    def model_metadata(self, model: str, version: str = "") -> tuple[list[TensorSpec], list[TensorSpec]]:
        """The inputs and outputs of `model` (of `version`; "": the newest served); the batch axis (when batched) is
        named "batch". A tensor the config reshapes has the model's own shape (an argmax label: [batch], not the
        served [batch, 1])."""
        meta = self._call(f"metadata of '{model}'", "get_model_metadata", model, version, as_json=True)
        config = self.model_config(model)
        batched, reshaped = int(config.get("max_batch_size", 0)) > 0, reshaped_tensors(config)
        specs = [
            [model_spec(_spec(t, batched), reshaped) for t in meta.get(side, [])] for side in ("inputs", "outputs")
        ]
        return specs[0], specs[1]

    def _model_reshapes(self, model: str) -> Reshapes:
        """`model`'s tensors its config reshapes (`reshaped_tensors`), read once per model and client, retried as an
        inference is (a server restarting answers its first request); tritonclient's error where it fails."""
        if model not in self._reshapes:

            def once(timeout_s: float) -> Any:
                return self._client.get_model_config(model, as_json=True, client_timeout=timeout_s)

            config = call_with_retry(once, self.retry, self.timeout_s)["config"]
            self._reshapes[model] = reshaped_tensors(dict(config))
        return self._reshapes[model]

    def infer(
        self,
        model: str,
        feeds: dict[str, np.ndarray],
        outputs: Sequence[str] | None = None,
        version: str = "",
        reshapes: Reshapes | None = None,
    ) -> dict[str, np.ndarray]:
        """One request: `{input name: array}` in, `{output name: array}` out, in the model's own shapes, as
        `model_metadata` gives them: a tensor the config reshapes (an argmax label, served [N, 1]) is taken and
        answered as the model has it ([N]); an [N, 1] input is sent as it is. `reshapes`: the model's
        (`reshaped_tensors` of its config) where the caller has read them, else read here on the first request."""
        try:
            shapes = self._model_reshapes(model) if reshapes is None else reshapes
            request = self._request(model, feeds, shapes, outputs, version)
            result = call_with_retry(request, self.retry, self.timeout_s)
        except server_error() as exc:
            cause = self._tls_cause(exc)
            raise QuantserveError(f"{self.url}: inference on '{model}' failed: {cause or exc}") from exc
        names = outputs or [o["name"] for o in result.get_response(as_json=True)["outputs"]]
        return {name: as_model_shape(name, result.as_numpy(name), shapes) for name in names}

    def _request(
        self, model: str, feeds: dict[str, np.ndarray], shapes: Reshapes, outputs: Sequence[str] | None, version: str
    ) -> Callable[[float], Any]:
        """One inference as a call of its timeout, its inputs in the served shapes."""
        grpc = _grpc()
        inputs = []
        for name, array in feeds.items():
            array = np.ascontiguousarray(as_served(name, as_sent(array), shapes))  # str (U) as UTF-8: Triton's BYTES
            tensor = grpc.InferInput(name, list(array.shape), _triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        requested = [grpc.InferRequestedOutput(n) for n in outputs] if outputs else None

        def once(timeout_s: float) -> Any:
            return self._client.infer(model, inputs, model_version=version, outputs=requested, client_timeout=timeout_s)

        return once

    def statistics(self, model: str = "") -> dict[str, Any]:
        """Triton's per-model counters (inference_count, execution_count, queue/compute times)."""
        return dict(self._call("statistics", "get_inference_statistics", model, as_json=True))


def served_precision(
    url: str, model: str, tls: ClientTls | None = None, timeout_s: float = 10.0, version: str = ""
) -> str | None:
    """The precision `deploy` recorded for `model` (for its `version`, where one is named) on the server at `url`;
    None where none is recorded (deployed before it was, or not by quantserve) or the config cannot be read: the
    report then says it went by the name."""
    try:
        with TritonGrpcClient(url, timeout_s, tls, NO_RETRY) as client:
            return client.version_precision(model, version) if version else client.served_precision(model)
    except QuantserveError:
        return None


def _triton_dtype(dtype: np.dtype) -> str:
    from tritonclient.utils import np_to_triton_dtype

    name = np_to_triton_dtype(np.dtype(dtype))
    if name is None:
        raise QuantserveError(f"dtype {dtype} cannot be sent to Triton")
    return str(name)


def _spec(tensor: dict[str, Any], batched: bool) -> TensorSpec:
    shape: list[Dim] = []
    for axis, dim in enumerate(int(d) for d in tensor["shape"]):
        if dim >= 0:
            shape.append(dim)
        else:
            shape.append("batch" if batched and axis == 0 else f"dim{axis}")
    dtype = TRITON_TO_NUMPY.get(tensor["datatype"], tensor["datatype"].lower())
    return TensorSpec(name=tensor["name"], dtype=dtype, shape=tuple(shape))
