"""How a failed call to Triton is read and retried: which gRPC failures an idempotent inference may be sent again
after (`RetryPolicy`, `call_with_retry`), whether a server that does not answer is gone or hung (`no_answer_line`),
and Triton's own words for a model reloading or a repository folder it cannot read. Split from `serving.client`,
whose wrapper and the load test's users read failures the same way.
"""

from __future__ import annotations

import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quantserve.errors import InternalError

# gRPC codes after which an idempotent inference may be sent again (server restarting, a lost deadline).
RETRYABLE = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")
# Triton's own UNAVAILABLE answers for a model or version it does not serve (`Request for unknown model: 'm' version 3
# is not at ready state`, `… is not found`, `… has no available versions`): the server speaking, in milliseconds, not a
# connection that failed. Sent again they were answered the same up to 20 times, and a rolled-back version was named
# ~21 s late.
NOT_SERVED = ("Request for unknown model", "is not at ready state")
# a model between versions of itself: serve's reload of a model whose instance died unloads and loads the same version
RELOADING_STATES = ("LOADING", "UNLOADING")


def reloading(index: list[dict[str, Any]], addressed: tuple[str, str]) -> bool:
    """Whether Triton's repository index (`get_model_repository_index`'s "models") shows the model, or the version
    `addressed` names, loading or unloading."""
    model, version = addressed
    return any(
        m.get("name") == model and m.get("state") in RELOADING_STATES and (not version or m.get("version") == version)
        for m in index
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent inferences: jittered exponential backoff, all attempts within `deadline_s`."""

    deadline_s: float = 30.0
    initial_s: float = 0.05
    max_s: float = 2.0
    max_attempts: int = 20

    def backoff_s(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * 2**attempt) * random.uniform(0.5, 1.0)


NO_RETRY = RetryPolicy(max_attempts=1)


def call_with_retry(call: Callable[[float], Any], policy: RetryPolicy, per_call_timeout_s: float) -> Any:
    """`call(timeout_s)` again after a retryable gRPC error while attempts and the overall deadline last."""
    error = server_error()
    deadline = time.monotonic() + policy.deadline_s
    for attempt in range(max(1, policy.max_attempts)):
        remaining = deadline - time.monotonic()
        try:
            return call(max(0.001, min(per_call_timeout_s, remaining)))
        except error as exc:
            wait = policy.backoff_s(attempt)
            last = attempt + 1 >= policy.max_attempts or time.monotonic() + wait >= deadline
            if not retryable(exc) or last:
                raise
            time.sleep(wait)
    raise InternalError("retry loop ended without a result")


def retryable(exc: Exception) -> bool:
    """Whether an inference that failed with `exc` may be answered if sent again: a connection that failed or a lost
    deadline, not the server saying it does not serve the model or version asked for (`NOT_SERVED`)."""
    if str(getattr(exc, "status", lambda: None)()) not in RETRYABLE:
        return False
    message = str(getattr(exc, "message", lambda: exc)())
    return not any(said in message for said in NOT_SERVED)


def server_error() -> type[Exception]:
    from tritonclient.utils import InferenceServerException

    return InferenceServerException


PORT_OPEN_TIMEOUT_S = 2.0  # for a TCP connection to a server that does not answer: open (hung) or refused (gone)


def takes_connections(url: str, timeout_s: float = PORT_OPEN_TIMEOUT_S) -> bool:
    """Whether a TCP connection to `url` (host:port) opens: the kernel still accepts them for a stopped process."""
    host, _, port = url.rpartition(":")
    if not port.isdigit():
        return False
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def no_answer_line(url: str, supervisor: str = "") -> str:
    """The line for a server that does not answer at `url`: gone, or hung where its port still takes connections.
    A SIGSTOPped tritonserver was "no Triton server answers" to loadtest (after 12 s) and infer (26.6 s), as if
    nothing ran there, while evaluate said it was hung (session 45). `supervisor`: the `quantserve serve` that
    restarts it ("quantserve serve (pid N)"), named in place of the advice to restart it."""
    if takes_connections(url):
        advice = (
            f"{supervisor} restarts it once its --hang-timeout passes"
            if supervisor
            else "kill it (SIGKILL: a hung process ignores SIGTERM) and start it again, or let `serve` restart it "
            "(--hang-timeout)"
        )
        hung = "its port takes connections but it answers nothing (stopped, deadlocked?)"
        return f"the Triton server at {url} is hung: {hung}; {advice}"
    return f"no Triton server answers at {url}"


# Triton's answer to a repository index when it cannot read its repository folder (model_repository_manager.cc)
UNREADABLE_FOLDER = re.compile(r"failed to open directory (\S.*?)\s*$", re.MULTILINE)


def unreadable_folder(exc: Exception) -> str | None:
    """The repository folder a failed repository index says Triton cannot open, or None for another failure."""
    match = UNREADABLE_FOLDER.search(str(exc))
    return match[1] if match else None


def repository_unreadable(folder: str) -> str:
    """The cause of a failed repository index, in serve's words for it: the loaded models keep serving."""
    return (
        f"the server's repository folder {folder} cannot be read (moved away, unmounted, a network filesystem's "
        "blip?): the models it loaded keep serving, but none can be listed, loaded or unloaded until it is back"
    )
