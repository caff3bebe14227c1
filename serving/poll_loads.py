"""Under poll model control Triton reloads a changed model by itself, and says how it went only in its log: serve reads
the log's new lines each poll and names each failed reload once, then the reload that succeeds. Under explicit model
control a load refused for a config Triton rejects says only "failed to poll from model repository" (its repository
index names no reason either): the reason is read from the log lines that load wrote.

Measured (issue 11): with REPO/mlp/1/model.onnx moved away under `serve --model-control poll`, Triton kept the loaded
instance serving and retried the load every ~15 s (8 failed loads in 2 minutes, each starting a Python stub), and
nothing but its log said so. A failure is said again only with another reason, or after the model loaded in between.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.control import ControlClient
from serving.model_states import ready_versions_now

# Triton 2.51's lines (model_lifecycle.cc); a reason's newlines are written as the two characters \n, so it is one line.
FAILED = re.compile(r"failed to load '([A-Za-z0-9_.-]+)' version (\d+): (.*?)(?:\\n|\"?$)")
LOADED = re.compile(r"successfully loaded '([A-Za-z0-9_.-]+)'")
POLL_FAILED = re.compile(r"Poll failed for model directory '([A-Za-z0-9_.-]+)': (.*?)(?:\\n|\"?$)")
NO_REASON = "failed to poll from model repository"  # all a refused explicit load says over HTTP
LOG_WAIT_S = 1.0  # how long a refused load's reason may take to reach the log
MAX_READ = 1 << 20  # the most of the log read in one poll (a verbose log grows fast; its end matters)


@dataclass(frozen=True)
class PollLoad:
    """A reload Triton did by itself: failed (`reason`) or, after a failure was said, succeeded (`reason` None)."""

    model: str
    version: str
    reason: str | None


class PollLoadWatch:
    """Reads the lines a tritonserver's log gained since the last look; `begin` at each start, from the log's end
    (a start names its own failures)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._offset = 0
        self._rest = b""
        self._said: dict[str, tuple[str, str]] = {}  # model → the (version, reason) said last

    def begin(self, log_path: Path | None) -> None:
        self._path, self._rest, self._said = log_path, b"", {}
        try:
            self._offset = log_path.stat().st_size if log_path is not None else 0
        except OSError:
            self._offset = 0

    def news(self) -> list[PollLoad]:
        """The failed reloads not said yet, and the loads that ended a failure said before."""
        found: list[PollLoad] = []
        for line in self._new_lines():
            failed, loaded = FAILED.search(line), LOADED.search(line)
            if failed:
                model, said = failed[1], (failed[2], failed[3].strip())
                if self._said.get(model) != said:
                    self._said[model] = said
                    found.append(PollLoad(model, *said))
            elif loaded and loaded[1] in self._said:
                version, _ = self._said.pop(loaded[1])
                found.append(PollLoad(loaded[1], version, None))
        return found

    def _new_lines(self) -> list[str]:
        if self._path is None:
            return []
        try:
            with open(self._path, "rb") as log:
                size = log.seek(0, 2)
                if size < self._offset:  # the log was cut or replaced: read it from its start
                    self._offset, self._rest = 0, b""
                if size - self._offset > MAX_READ:  # the end matters; a cut line at the start matches nothing
                    self._offset, self._rest = size - MAX_READ, b""
                log.seek(self._offset)
                data = log.read(size - self._offset)
        except OSError:
            return []
        self._offset += len(data)
        *lines, self._rest = (self._rest + data).split(b"\n")
        return [line.decode(errors="replace") for line in lines]


def log_size(log_path: Path | None) -> int:
    """Where the log ends now (0 where it cannot be read): the start of what a load about to begin writes."""
    try:
        return log_path.stat().st_size if log_path is not None else 0
    except OSError:
        return 0


def with_poll_reason(error: str, log_path: Path | None, offset: int, model: str) -> str:
    """A refused load's `error` with Triton's reason appended, read from the log past `offset`, where it only says
    "failed to poll from model repository" (a config Triton rejects: 'dynamic batching preferred size must be <=
    max batch size'); `error` as it is otherwise."""
    if NO_REASON not in error or log_path is None:
        return error
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        reason = _poll_failure(log_path, offset, model)
        if reason is not None or time.monotonic() >= deadline:
            return f"{error}: {reason}" if reason else error
        time.sleep(0.1)


def _poll_failure(log_path: Path, offset: int, model: str) -> str | None:
    try:
        with open(log_path, "rb") as log:
            log.seek(max(offset, log.seek(0, 2) - MAX_READ))
            text = log.read(MAX_READ).decode(errors="replace")
    except OSError:
        return None
    found = [POLL_FAILED.search(line) for line in text.splitlines()]
    reasons = [match[2].strip() for match in found if match and match[1] == model]
    return reasons[-1] if reasons else None


def say_news(news: list[PollLoad], control: ControlClient, log: Callable[[str], None]) -> list[PollLoad]:
    """Name each reload Triton failed by itself once (it retries every poll), and the reload that ends such
    failures, with the versions `control`'s server serves now; returns `news`."""
    for load in news:
        served = ready_versions_now(control, load.model)
        if load.reason is None:
            log(f"model '{load.model}' reloaded by Triton's poll: versions {served} live")
            continue
        kept = f"versions {served} keep serving the files loaded before" if served else "not served"
        log(
            f"model '{load.model}' version {load.version} failed to reload ({load.reason}): {kept}; Triton "
            "retries at each repository poll, said again here only once it loads or fails otherwise"
        )
    return news
