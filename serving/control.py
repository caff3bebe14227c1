"""Triton's HTTP health and repository API (KServe v2) over the standard library, for the process that runs it.

quantserve's own supervision and model reloads use this endpoint, which stays on loopback when
gRPC is served over TLS; `urllib` keeps it free of gevent and of any client TLS setup.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from quantserve.errors import QuantserveError
from serving.model_config import check_model_name


class ControlClient:
    """Health, repository index and model load/unload at `http://host:port`; every call bounded by `timeout_s`."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url if url.startswith("http") else f"http://{url}"
        self.timeout_s = timeout_s

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
            if m.get("name") == model and m.get("state") == "READY" and str(m.get("version", "")).isdigit()
        )

    def load(self, model: str) -> None:
        """Load or reload `model` from the repository (explicit model control); blocks until Triton answers.

        Triton keeps serving the versions already loaded until the new ones are ready.
        """
        check_model_name(model)
        try:
            code, body = self._request("POST", f"/v2/repository/models/{quote(model)}/load", {})
        except OSError as exc:
            raise QuantserveError(f"{self.url}: loading '{model}' failed ({exc})") from exc
        if code != 200:
            raise QuantserveError(f"{self.url}: loading '{model}' failed: {_error(body)}")

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


def _error(body: Any) -> str:
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"]).strip().splitlines()[0]
    return "no reason given"
