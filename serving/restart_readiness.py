"""What a restart asks Triton to load, and how the restarted server is said to come back: ready, or unready with what
it waits on, followed by one line once it is ready.

Probe 65A: `kill -9` under load, then at once `deploy --url`. The deploy's load began as the restart's own start
ended, and Triton 2.51's strict readiness holds /v2/health/ready false while any version loads or unloads (measured:
false from a load's start until the replaced version is gone), so serve said "back … but not ready", naming nothing,
and never spoke again though the server was ready seconds later. `RestartReadiness` names the versions in flight and
asks again at each of the supervisor's polls (never a wait of its own) until ready; past `timeout_s` it warns once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from serving.control import ControlClient
from serving.model_config import MODEL_NAME
from serving.model_states import restarted_line
from serving.server_options import ServerOptions

IN_FLIGHT = {"LOADING": "loading", "UNLOADING": "unloading"}  # states that hold strict readiness false for a while


def options_skipping(options: ServerOptions, skipped: dict[str, str], watches_repository: bool) -> ServerOptions:
    """The options with the skipped folders left out of the models to load (explicit control: otherwise
    Triton loads every folder, and a failed one is set aside once the server is up)."""
    if not skipped or not watches_repository:
        return options
    wanted = options.load_models
    if "*" in wanted:
        wanted = tuple(p.name for p in sorted(options.repo.iterdir()) if MODEL_NAME.fullmatch(p.name))
    return replace(options, load_models=tuple(n for n in wanted if n not in skipped))


def skipped_reasons(repo: Path, skipped: dict[str, str]) -> dict[str, str]:
    """Each skipped folder's reason, prefixed with its path, as serve says it."""
    return {name: f"{repo / name} {reason}" for name, reason in skipped.items()}


def versions_in_flight(index: list[dict[str, Any]]) -> list[str]:
    """Each version of Triton's repository index still loading or unloading: "model 'm' version 2 is loading"."""
    return [
        f"model '{m.get('name')}' version {m.get('version')} is {IN_FLIGHT[m['state']]}"
        for m in index
        if m.get("state") in IN_FLIGHT
    ]


def in_flight_now(control: ControlClient) -> list[str]:
    """`versions_in_flight` of the server's index now; [] where it does not answer."""
    try:
        return versions_in_flight(control.repository_index())
    except QuantserveError:
        return []


class RestartReadiness:
    """Says how one restarted server came back and, where it came back unready with no model failed (a load still
    running), says once when it turns ready, and warns once if it is still unready `timeout_s` after the restart."""

    def __init__(self, timeout_s: float, log: Callable[[str], None]) -> None:
        self.timeout_s = timeout_s
        self.log = log
        self._pid: int | None = None  # the server followed, None when none is
        self._started = 0.0
        self._warned = False

    def back(
        self, control: ControlClient, pid: int | None, started: float, now: float, not_loaded: dict[str, str]
    ) -> None:
        """Say how the server restarted at `started` (monotonic) came back; follow it where it is unready."""
        ready = control.is_ready()
        follow = not ready and not not_loaded
        self._pid, self._started, self._warned = (pid if follow else None), started, False
        self.log(restarted_line(pid, now - started, ready, not_loaded, in_flight_now(control) if follow else []))

    def follow_up(self, control: ControlClient, pid: int | None, now: float) -> None:
        """At a supervisor's poll: the ready line once the followed server is ready (another pid: restarted again,
        and that restart speaks for itself), or the warning once it is past `timeout_s`."""
        if self._pid is None or pid != self._pid:
            self._pid = None
            return
        after_s = now - self._started
        if control.is_ready():
            self._pid = None
            self.log(f"tritonserver ready (pid {pid}) {after_s:.1f} s after restart")
        elif after_s > self.timeout_s and not self._warned:
            self._warned = True
            waiting = ", ".join(in_flight_now(control)) or "no model is loading"
            self.log(
                f"warning: tritonserver still not ready (pid {pid}) {after_s:.1f} s after restart: {waiting}"
                + (" (a slow initialize?)" if "is loading" in waiting else "")
            )
