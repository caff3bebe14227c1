"""`TritonRunner`: a model served by Triton as a Runner over gRPC, so the evaluator compares a Triton endpoint with
in-process runners the same way; batches larger than its max_batch_size are sent in slices.

Every request can name one version (`version`): with two versions live (an A/B), version 1 is measured beside version
2, not whichever is newest. Without one, `pin_version` asks for the newest served at activation by number, so that a
deploy meanwhile fails the run instead of mixing two versions' answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from quantserve.artifact import TensorSpec
from quantserve.errors import InternalError, QuantserveError
from quantserve.runner import Runner, concat_outputs, request_rows
from serving.build_parameters import recorded_precision
from serving.call_failures import reloading
from serving.client import TritonGrpcClient
from serving.declared_outputs import DeclaredOutput, array_mismatch, declared_outputs
from serving.model_config import check_version_name, is_version_name
from serving.model_version import NOT_PER_VERSION, version_precision
from serving.reshaped import Reshapes, reshaped_tensors
from serving.response_rows import row_mismatch
from serving.tls import ClientTls

LIVENESS_TIMEOUT_S = 5.0  # a server that does not say it is live within this, after a failed request, has stopped
# the least time a control call (readiness, metadata, config) is given: the runner's `timeout_s` is a request's deadline
# (`evaluate --request-timeout`), and at 3 ms on a busy machine a ready model read "not ready after 0 s", its config
# call "DEADLINE_EXCEEDED" and a request's timeout "version 1 stopped being served", none naming the flag (session 40)
CONTROL_TIMEOUT_S = 10.0
# a version found loading or unloading after a failed request is waited for this long (serve's reload of a dead
# instance took 2.3 s for a small model; a model's own load time adds to it), and one neither ready nor reloading
# for SETTLE_S is gone (serve's unload and load are a few ms apart)
RELOAD_WAIT_S = 120.0
SETTLE_S = 1.0
STUB_DEAD = ("is not healthy", "health mutex")  # Triton's words for a request to a Python model whose process died


class ServerStopped(QuantserveError):
    """The server went away during a run (not live, or unreachable): not a deploy, whatever readiness reads."""

    def __init__(self, url: str, answered: int) -> None:
        self.url, self.answered = url, answered
        super().__init__(
            f"the server at {url} stopped answering during the run (after {answered} batches answered); nothing of "
            "the run counts: start it again and run again"
        )


class VersionGone(QuantserveError):
    """The pinned version stopped being served during a run (a deploy or rollback): the rows answered before are
    another version's than any answered after would be."""

    def __init__(self, url: str, model: str, version: str, rows: int) -> None:
        self.url, self.model, self.version, self.rows = url, model, version, rows
        super().__init__(
            f"{url}: model '{model}' version {version} stopped being served during the run (after {rows} rows "
            "answered; a deploy or rollback meanwhile?); answers of two versions would be mixed, so none count: run "
            "it again"
        )


class TritonRunner(Runner):
    """Runs a model served by Triton over gRPC; batches larger than max_batch_size are sent in slices."""

    def __init__(
        self,
        url: str,
        model: str,
        version: str = "",
        timeout_s: float = 30.0,
        tls: ClientTls | None = None,
        pin_version: bool = False,
    ) -> None:
        """`version`: the one version every request names (refused at activation unless served); "" for Triton's
        choice, the newest served. `pin_version` (without `version`): ask for the newest version served at activation
        by number in every request, so that a deploy or rollback meanwhile fails the run in one line instead of
        mixing two versions' answers."""
        super().__init__()
        self.tls = tls
        self.url = url
        self.model = model
        self.version = str(check_version_name(version)) if version else ""
        self.pin_version = pin_version and not version
        self.timeout_s = timeout_s
        self.name = f"triton:{model}@{url}"
        self._client: TritonGrpcClient | None = None
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []
        self._max_batch = 0
        self.precision: str | None = None  # as its deployment recorded it (None: not recorded); known once active
        self.precision_note: str | None = None  # why `precision` is None where the config names one (another version's)
        self._reshaped: Reshapes = {}  # name: (served dims, model shape); known once active
        self._declared: dict[str, DeclaredOutput] = {}  # the outputs as its config declares them; known once active
        self._rows_answered = 0  # rows answered since activation: where a wrong answer's rows stand in the data
        self.answered = 0  # batches answered since activation: how far a run got when the server went away

    def input_specs(self) -> Sequence[TensorSpec]:
        return self._inputs

    @property
    def max_batch_size(self) -> int:
        """The served model's max_batch_size (0: it does not batch); known once active."""
        return self._max_batch

    @property
    def request_client(self) -> TritonGrpcClient:
        """The client requests go through once active (its retry policy may be replaced: `evaluate` counts resends)."""
        if self._client is None:
            raise InternalError("gRPC client used before activate()")
        return self._client

    @property
    def control_timeout_s(self) -> float:
        return max(self.timeout_s, CONTROL_TIMEOUT_S)

    def activate_impl(self) -> None:
        self._client = TritonGrpcClient(self.url, self.control_timeout_s, self.tls)
        self.answered = 0
        try:
            self._client.wait_model_ready(self.model, timeout_s=self.control_timeout_s)
            served = self._client.ready_versions(self.model)
            if self.version:
                self._client.check_version_served(self.model, self.version)
            elif self.pin_version:
                self.version = max((v for v in served if is_version_name(v)), key=int, default="")
            self._inputs, self._outputs = self._client.model_metadata(self.model, self.version)
            config = self._client.model_config(self.model)
            self._max_batch = int(config.get("max_batch_size", 0) or 0)
            # the answering version's own (one config serves every version): the newest where none is named
            self.precision = version_precision(config, self.version or (served or [""])[-1], served)
            self.precision_note = self._precision_note(recorded_precision(config), served)
            self._reshaped = reshaped_tensors(config)
            self._declared, self._rows_answered = declared_outputs(config, model_shapes=True), 0
        except BaseException:
            self._client.close()
            self._client = None
            raise
        self._client.close()  # the control calls' client; requests get their own deadline
        self._client = TritonGrpcClient(self.url, self.timeout_s, self.tls)

    def _precision_note(self, configured: str | None, served: list[str]) -> str | None:
        """One line where the config names a precision that is not recorded as this version's: it may be another's."""
        if self.precision is not None or configured is None:
            return None
        which = f"version {self.version}" if self.version else "the version that answers"
        return (
            f"{NOT_PER_VERSION}: model '{self.model}' serves versions {', '.join(served)} and its config's precision "
            f"({configured}) is the last deploy's, not recorded for {which}; a deploy records each version's"
        )

    def infer_impl(self, feeds: dict[str, np.ndarray], resent: bool = False) -> dict[str, np.ndarray]:
        """The answers to `feeds`; sent once more where `serve` reloaded the version meanwhile (its instance died),
        but not twice: a request that takes the instance down each time it is sent (1 024 000 rows on the demo's
        model: 20 GB, killed by the kernel) was sent again after every reload, for 312 s (session 54)."""
        if self._client is None:
            raise InternalError("gRPC client used before activate()")
        n = request_rows(feeds)
        rows_before = self._rows_answered
        try:
            if self._max_batch <= 0 or n <= self._max_batch:
                results = self._request(feeds)
            else:
                step = self._max_batch
                results = concat_outputs(
                    [self._request({k: v[i : i + step] for k, v in feeds.items()}) for i in range(0, n, step)]
                )
        except QuantserveError as exc:
            if self._server_gone():
                raise ServerStopped(self.url, self.answered) from exc
            # a version named (`--model-version`) or pinned: its going away is said alike (named, it read Triton's line)
            if self.version and not self._version_ready():
                if not self._back_after_reload():
                    raise VersionGone(self.url, self.model, self.version, self._rows_answered) from exc
                if resent:
                    raise QuantserveError(
                        f"{exc}: model '{self.model}' version {self.version} went down while answering this request, "
                        f"and again when it was sent once more after serve reloaded it: a request of {n} rows may be "
                        "more than the model's process can hold; send fewer rows per request"
                    ) from exc
                self._rows_answered = rows_before  # the same version's files answer the batch again, whole
                return self.infer_impl(feeds, resent=True)
            raise
        self.answered += 1
        return results

    def _version_ready(self) -> bool:
        """Whether the version requests name is still ready, asked with a control call's time, not a request's."""
        with TritonGrpcClient(self.url, self.control_timeout_s, self.tls) as probe:
            return probe.is_model_ready(self.model, self.version)

    def _back_after_reload(self) -> bool:
        """Whether the version requests name is ready again after Triton's index showed it loading or unloading:
        `serve` reloads a model whose instance died by unloading and loading the same version (its files, its answers),
        and `evaluate` said "a deploy or rollback meanwhile?; answers of two versions would be mixed, so none count"
        of 2361 rows answered, though version 1 served again 2.3 s later (session 46). Waits while it reloads, up to
        RELOAD_WAIT_S; a version neither ready nor reloading for SETTLE_S is gone."""
        started = time.monotonic()
        unready_since = started
        with TritonGrpcClient(self.url, self.control_timeout_s, self.tls) as probe:
            while time.monotonic() - started < RELOAD_WAIT_S:
                if probe.is_model_ready(self.model, self.version):
                    return True
                if reloading(probe.repository_index(), (self.model, self.version)):
                    unready_since = time.monotonic()
                elif time.monotonic() - unready_since >= SETTLE_S:
                    return False
                time.sleep(0.2)
        return False

    def _server_gone(self) -> bool:
        """Whether the server stopped answering: not live, or unreachable. Asked before the model's readiness, which
        reads False on a connection error too: a server stopped mid-run was blamed on a deploy."""
        try:
            with TritonGrpcClient(self.url, LIVENESS_TIMEOUT_S, self.tls) as probe:
                return not probe.is_server_live()
        except QuantserveError:  # no answer that says live (its port now speaks HTTP, a handshake fails): gone
            return True

    def _request(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One request, its answer checked to hold one row per row sent in every output (a batching model), each of
        the datatype and dims its config declares; tensors the config reshapes travel in the model's own shape."""
        if self._client is None:
            raise InternalError("gRPC client used before activate()")
        sent = request_rows(feeds)
        first, last = self._rows_answered + 1, self._rows_answered + sent
        try:
            results = self._client.infer(self.model, feeds, version=self.version, reshapes=self._reshaped)
        except QuantserveError as exc:  # which rows to look at: "inference on 'mlp2' failed: ... idx=1000" named none
            # and the shapes sent: SpliceAI's runtime said only "QLinearConv … Invalid input shape: {0}" of a sequence
            # shorter than its 10 000-position context (session 52)
            died = " (the model's process died while answering it: serve's output says why)" if _died(exc) else ""
            raise QuantserveError(
                f"{exc}{died} (the request held {_rows(first, last)} of the data, {_sent(feeds)})"
            ) from exc
        if self._max_batch > 0:
            problem = row_mismatch(self.model, sent, ((name, value.shape) for name, value in results.items()))
            if problem is not None:
                raise QuantserveError(
                    f"{self.url}: {problem}; a model with max_batch_size {self._max_batch} answers one row per row sent"
                )
        self._rows_answered = last
        problem = array_mismatch(self._declared, results, _rows(first, last))
        if problem is not None:
            raise QuantserveError(f"{self.url}: model '{self.model}': {problem}")
        return results

    def deactivate_impl(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _died(exc: QuantserveError) -> bool:
    """Whether Triton's error says the Python model's process (its stub) is dead: Triton 2.51 words it "Stub process
    '…' is not healthy", or, where it died during the request, "Failed to obtain the health mutex"."""
    return any(words in str(exc) for words in STUB_DEAD)


def _sent(feeds: dict[str, np.ndarray]) -> str:
    """`sent as input 'x' [32, 400, 4]`: the request's shapes, as the model got them."""
    shapes = ", ".join(f"'{name}' {list(np.shape(value))}" for name, value in feeds.items())
    return f"sent as input{'s' if len(feeds) > 1 else ''} {shapes}"


def _rows(first: int, last: int) -> str:
    """`row 7` or `rows 1–32`: a request's rows, counted from 1 in the data."""
    return f"row {first}" if first == last else f"rows {first}–{last}"
