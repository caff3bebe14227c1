"""Triton's HTTP health and repository API (KServe v2) over the standard library, for the process that runs it.

quantserve's own supervision and model reloads use this endpoint, which stays on loopback when
gRPC is served over TLS; `urllib` keeps it free of gevent and of any client TLS setup.

A load waits for Triton's answer, as long as a model takes to load; a server killed meanwhile used to leave it
waiting out its whole timeout (tune's 120 s): the model's Python stub, a child of the server, inherits the connection
and holds it open after the server is gone. So a load also watches its server while it waits (`load`).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from quantserve.errors import QuantserveError
from serving.model_config import check_model_name, is_version_name

WATCH_S = 0.5  # how often a load waiting for Triton's answer looks whether its server is still there


class ServerGone(Exception):
    """The server went away while a call waited for its answer: its exit cause ("killed by SIGKILL")."""


class LoadStuck(QuantserveError):
    """A load Triton will never finish: a process it started for the model died while it loaded (session 46: a
    stub killed during serve's reload left the model LOADING for minutes, every deploy hanging; only a restart
    clears it)."""


class ControlClient:
    """Health, repository index and model load/unload at `http://host:port`; every call bounded by `timeout_s`.
    `exit_cause`: where the caller runs the server, how its process ended (None while it runs), watched by `load`."""

    def __init__(self, url: str, timeout_s: float = 30.0, exit_cause: Callable[[], str | None] | None = None) -> None:
        self.url = url if url.startswith("http") else f"http://{url}"
        self.timeout_s = timeout_s
        self.exit_cause = exit_cause

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, {"error": raw.decode(errors="replace")}
        except (http.client.HTTPException, ValueError) as exc:  # not HTTP/JSON: the gRPC port given for --url
            raise QuantserveError(
                f"{self.url}: not a Triton HTTP endpoint ({type(exc).__name__}); --url takes the HTTP port "
                "(8000 by default), not the gRPC one"
            ) from exc

    def _ok(self, path: str) -> bool:
        try:
            return self._request("GET", path)[0] == 200
        except (OSError, QuantserveError):  # a half answer from a dying server is no answer
            return False

    def is_live(self) -> bool:
        return self._ok("/v2/health/live")

    def is_ready(self) -> bool:
        return self._ok("/v2/health/ready")

    def repository_index(self) -> list[dict[str, Any]]:
        """Every model the server knows: name, version, state (READY/UNAVAILABLE/LOADING) and reason."""
        try:
            code, body = self._request("POST", "/v2/repository/index", {})
        except OSError as exc:
            raise QuantserveError(f"{self.url}: repository index failed ({exc})") from exc
        if code != 200:
            raise QuantserveError(f"{self.url}: repository index failed: {_error(body)}")
        return list(body or [])

    def ready_versions(self, model: str) -> list[int]:
        """The versions of `model` that are READY, ascending."""
        return sorted(
            int(m["version"])
            for m in self.repository_index()
            if m.get("name") == model and m.get("state") == "READY" and is_version_name(str(m.get("version", "")))
        )

    def load(self, model: str, stuck: Callable[[], str | None] | None = None) -> None:
        """Load or reload `model` from the repository (explicit model control); blocks until Triton answers, or until
        its server is found gone: its process ended (`exit_cause`), or, with no process known, its port refuses
        connections; or until `stuck()` says why the load will never end (`LoadStuck`).

        Triton keeps serving the versions already loaded until the new ones are ready.
        """
        check_model_name(model)
        path = f"/v2/repository/models/{quote(model)}/load"
        found: list[str] = []

        def gone() -> str | None:
            cause = stuck() if stuck is not None else None
            if cause:
                found.append(cause)
                return cause
            return (self.exit_cause or self.refused)()

        try:
            code, body = watched(lambda: self._request("POST", path, {}), gone)
        except ServerGone as gone_cause:
            if found:
                raise LoadStuck(f"{self.url}: loading '{model}' will not end: {found[0]}") from None
            raise QuantserveError(
                f"{self.url}: loading '{model}' failed: tritonserver {gone_cause} while loading it"
            ) from None
        except OSError as exc:
            raise QuantserveError(f"{self.url}: loading '{model}' failed ({exc})") from exc
        if code != 200:
            raise QuantserveError(f"{self.url}: loading '{model}' failed: {_load_refusal(body)}")

    def refused(self) -> str | None:
        """How the server is gone where nothing listens at its port any more (a connection refused); None while
        something does, or where a connection cannot tell (a timeout on a busy machine is no proof)."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname, port), timeout=WATCH_S).close()
        except ConnectionRefusedError:
            return f"stopped listening on port {port} (connection refused)"
        except OSError:
            return None
        return None

    def unload(self, model: str) -> None:
        """Ask Triton to unload `model`; it answers at once, while the model is still UNLOADING."""
        check_model_name(model)
        try:
            code, body = self._request("POST", f"/v2/repository/models/{quote(model)}/unload", {})
        except OSError as exc:
            raise QuantserveError(f"{self.url}: unloading '{model}' failed ({exc})") from exc
        if code != 200:
            raise QuantserveError(f"{self.url}: unloading '{model}' failed: {_error(body)}")

    def wait_versions(self, model: str, versions: list[int], timeout_s: float = 60.0) -> None:
        """Block until exactly `versions` of `model` are READY."""
        deadline = time.monotonic() + timeout_s
        ready: list[int] = []
        while time.monotonic() < deadline:
            ready = self.ready_versions(model)
            if ready == sorted(versions):
                return
            time.sleep(0.2)
        raise QuantserveError(f"{self.url}: '{model}' serves versions {ready}, expected {sorted(versions)}")


def watched(call: Callable[[], Any], gone: Callable[[], str | None]) -> Any:
    """`call()`'s answer, run in a thread while `gone()` is asked every WATCH_S; `ServerGone` with its answer where
    the server went away before the call ended, or where the call failed and the server is gone (a stub killed with
    its server closes the connection: that read as "not a Triton HTTP endpoint")."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="control call", daemon=True)  # left to its timeout if the server went
    worker.start()
    while not outcome:
        worker.join(WATCH_S)
        cause = None if outcome and outcome[0][0] else gone()
        if cause:
            raise ServerGone(cause)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


# Triton 2.51's answer to a load under --model-control-mode none as well as poll (session 43: a serve run with
# --model-control none, no polling on; the deploy passed the words on as they were)
NO_LOAD_API = "explicit model load / unload is not allowed if polling is enabled"


def _load_refusal(body: Any) -> str:
    """Triton's reason a load failed; its words for a server that takes no loads told what its mode may be."""
    reason = _error(body)
    if NO_LOAD_API in reason:
        return (
            f"the server takes no model loads: it runs with --model-control-mode none or poll, not explicit "
            f"(Triton: {reason})"
        )
    return reason


def _error(body: Any) -> str:
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"]).strip().splitlines()[0]
    return "no reason given"
