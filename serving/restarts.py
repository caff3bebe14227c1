"""How restarts of a `tritonserver` are paced and what a restart is said to have changed: `RestartPolicy` (backoff,
a crash loop reported), `LivenessWatchdog` (a hung server told from a busy one), and the lines naming versions or
interfaces a restart served differently from before it. Split from `serving.supervisor`, which applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantserve.errors import InternalError, QuantserveError
from serving.config_check import interface_change


@dataclass(frozen=True)
class RestartPolicy:
    """How often a dead server is restarted: backoff from `initial_s` doubling to `max_s`, at most
    `max_restarts` within any `window_s` seconds."""

    max_restarts: int = 5
    window_s: float = 300.0
    initial_s: float = 0.5
    max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.window_s <= 0 or self.initial_s < 0 or self.max_s < self.initial_s:
            raise QuantserveError(f"invalid restart policy {self}")

    def backoff_s(self, recent_restarts: int) -> float:
        """The wait before the next restart, given how many happened within the window."""
        return min(self.max_s, self.initial_s * 2**recent_restarts)


class LivenessWatchdog:
    """Tells a hung server from a busy one: hung after `hang_s` seconds in a row with no 'live' answer (0: never).

    Asked every `check_every_s` (default min(5, hang_s/3)), each ask bounded by `timeout_s` (min(5, hang_s)):
    liveness is cheap in Triton, so even a loaded server answers well within it. The silence counts from the
    start of the first unanswered ask, so time the asking thread spent elsewhere never counts against the server.
    """

    def __init__(self, hang_s: float = 30.0, check_every_s: float | None = None) -> None:
        if hang_s < 0:
            raise QuantserveError(f"hang timeout {hang_s:g} s: give seconds above 0, or 0 for no hang watchdog")
        if check_every_s is not None and check_every_s <= 0:
            raise InternalError(f"liveness check interval {check_every_s} s is not above 0")
        self.hang_s = hang_s
        self.check_every_s = check_every_s or min(5.0, hang_s / 3)
        self.timeout_s = min(5.0, hang_s)
        self._asked_at: float | None = None
        self._silent_since: float | None = None

    def reset(self, now: float) -> None:
        """Forget past silence (after a start, or when the server just answered something); next ask in a period."""
        self._asked_at, self._silent_since = now, None

    def due(self, now: float) -> bool:
        return self.hang_s > 0 and (self._asked_at is None or now - self._asked_at >= self.check_every_s)

    def record(self, asked_at: float, live: bool, now: float) -> bool:
        """Note an ask begun at `asked_at` and its answer; True when the server has been silent for `hang_s`."""
        self._asked_at = asked_at
        if live:
            self._silent_since = None
            return False
        if self._silent_since is None:
            self._silent_since = asked_at
        return now - self._silent_since >= self.hang_s


def served_changes(before: dict[str, list[str]], after: dict[str, list[str]], model_control: str) -> list[str]:
    """One line per model whose READY versions differ after a restart from those served before it ("now serves
    version 2 of 'm', was 1"). Under --model-control none the repository is read only at a start: a deploy of a worse
    INT8 version 2 was served from an unrelated kill -9's restart on, and serve said only "ready again" (session 43).
    Under poll Triton reloads by itself, so the versions before are not known: nothing is said."""
    if model_control == "poll":
        return []
    why = " (changed on disk while it ran: --model-control none loads the repository only at a start)"
    why = why if model_control == "none" else ""
    lines = []
    for name in sorted(after):
        now = ", ".join(sorted(after[name], key=_number))
        was = ", ".join(sorted(before[name], key=_number)) if name in before else "not served before the restart"
        if now != was:
            lines.append(f"now serves version {now} of '{name}', was {was}{why}")
    return lines


def restart_interface_changes(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    """A warning per model whose config, as a restart loaded it from disk, changes the interface served before it
    (`interface_change`): a hand edit the watcher refused to load (a lower max_batch_size) is loaded by the next
    restart, as any start loads what is on disk, and was then served with no word."""
    lines = []
    for name in sorted(set(before) & set(after)):
        change = interface_change(before[name], after[name])
        if change:
            lines.append(
                f"warning: model '{name}': the restart loaded its config.pbtxt as it is on disk, which {change}"
            )
    return lines


def _number(version: str) -> tuple[int, str]:
    return (len(version), version)
