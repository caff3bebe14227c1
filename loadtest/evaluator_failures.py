"""Why a served model's requests in `evaluate` stopped, told in the run's terms: which request ran past its deadline,
or how far the run got before the server went away (it was blamed on a deploy: the model reads not ready then too),
and whether it answers again by then (`serve` restarts a hung server: "start it again" was moot), or is hung rather than
gone (its port still takes connections: "start it again" told the user of a SIGSTOPped server it had gone); and, for a
run that retried through a restart and ended answered, the note saying so (`ResentCount`, `restart_note`): the probe's
kill -9 of tritonserver 8 s into a 60 000-row run, restarted by `serve`, ended exit 0 with the same figures and no
word."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from quantserve.errors import QuantserveError
from quantserve.runner import request_rows
from serving.call_failures import RetryPolicy, takes_connections
from serving.triton_runner import LIVENESS_TIMEOUT_S, ServerStopped

DEADLINE_EXCEEDED = "StatusCode.DEADLINE_EXCEEDED"  # in the client's error: a request ran past its deadline


class RowsSent:
    """The batches of a data set, remembering where the one last taken starts and how many rows it holds: which
    request a timeout cut short. `total` rows in `batches` requests (one row a request for a stream; one for a request
    of scalars alone, an --unbatched sample: `request_rows`, where `batch_rows`' 0 named "rows 1–0")."""

    def __init__(self, batches: Iterable[dict[str, np.ndarray]], total: int, requests: int) -> None:
        self.batches, self.first, self.rows = batches, 0, 0
        self.total, self.requests = total, requests

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for batch in self.batches:
            self.first += self.rows
            self.rows = request_rows(batch)
            yield batch


def answers_now(url: str) -> bool:
    """Whether the server at `url` says it is live now, asked once without retries."""
    from serving.call_failures import NO_RETRY
    from serving.client import TritonGrpcClient

    try:
        with TritonGrpcClient(url, LIVENESS_TIMEOUT_S, None, NO_RETRY) as probe:
            return probe.is_server_live()
    except QuantserveError:
        return False


def request_failure(
    exc: QuantserveError, url: str, model: str, sent: RowsSent, request_timeout_s: float, max_batch: int = 0
) -> QuantserveError | None:
    """The one line for a run of `model` that stopped on `exc`, or None where `exc` says it already. `max_batch`: the
    served model's max_batch_size, above which a batch goes in slices (a deadline is a slice's: "a request of 64
    samples" timed out where the requests were its 32-row slices, session 45)."""
    if isinstance(exc, ServerStopped):
        stopped = (
            f"the server at {url} stopped answering during the run (after {exc.answered} of {sent.requests} batches "
            f"of model '{model}')"
        )
        if answers_now(url):  # `serve`'s watchdog restarted a hung one meanwhile: "start it again" was moot
            return QuantserveError(
                f"{stopped} and answers again now (restarted meanwhile?); no figure of this run counts: run evaluate "
                "again"
            )
        if takes_connections(url):  # alive and silent (SIGSTOPped, deadlocked): "start it again" read as gone
            return QuantserveError(
                f"{stopped} and is hung, not gone: its port still takes connections but it answers nothing; no figure "
                "of this run counts: kill it (SIGKILL: a hung process ignores SIGTERM) and start it again, or let "
                "`serve` restart it (--hang-timeout), then run evaluate again"
            )
        return QuantserveError(f"{stopped}; no figure of this run counts: start it again and run evaluate again")
    if DEADLINE_EXCEEDED not in str(exc):
        return None
    rows = f"rows {sent.first + 1}–{sent.first + sent.rows} of {sent.total}"
    if 0 < max_batch < sent.rows:
        request = (
            f"a request of at most {max_batch} samples (a slice of {rows}: the model's max_batch_size {max_batch})"
        )
        fewer = f"--batch-size below {max_batch}"
    else:
        request, fewer = f"a request of {sent.rows} samples ({rows})", "--batch-size"
    return QuantserveError(
        f"{url}: model '{model}' did not answer {request} within {request_timeout_s:g} s, the limit per request "
        f"(--request-timeout, default 30): raise --request-timeout, or send fewer samples a request ({fewer})"
    )


def rows_sent_words(batch_size: int, max_batch: int) -> str:
    """How `batch_size` rows went out a request, in order: capped by the served model's `max_batch` (0: it does not
    batch), above which `TritonRunner` sends a batch in slices. "at --batch-size 64 in order" described requests of
    32 rows (an LSTM served at max batch 32; --batch-size 64 and 32 read the same figures, session 59)."""
    if 0 < max_batch < batch_size:
        capped = f"capped by the model's max_batch_size {max_batch}"
        return f"{max_batch} rows a request in order (--batch-size {batch_size}, {capped})"
    return f"--batch-size {batch_size} in order"


@dataclass(frozen=True)
class ResentCount(RetryPolicy):
    """A client's retry policy (`serving.call_failures.call_with_retry`) that counts the waits it is asked for: one
    before each request sent again. The wait before a last failure is asked for too, but that request fails the run
    (or the runner sends it once more itself, `TritonRunner`'s reload): in a run that ended answered, each is one
    resend, attempt 0 a request's first."""

    waits: list[int] = field(default_factory=list, compare=False, hash=False)

    def backoff_s(self, attempt: int) -> float:
        self.waits.append(attempt)
        return super().backoff_s(attempt)

    @classmethod
    def installed(cls, client: Any) -> ResentCount:
        """`client`'s (a `TritonGrpcClient`'s) retry policy replaced by a counting one of the same settings."""
        counting = cls(**{f.name: getattr(client.retry, f.name) for f in fields(RetryPolicy)})
        client.retry = counting
        return counting


def restart_note(url: str, before: int | None, after: int | None, waits: list[int]) -> str | None:
    """One line where a run that ended answered had requests sent again (`waits`: `ResentCount.waits`, attempt 0
    the first resend of a request), or the process listening at `url` changed (`before`, `after`: pids, None where
    unknown): the server restarted during it, the figures stand. None where neither."""
    restarted = before is not None and after is not None and before != after
    resent = waits.count(0)  # requests sent again, each as often as it took (the probe's one request: 8 times)
    if not resent and not restarted:
        return None
    said = (
        f"the server at {url} restarted during the run (pid {before} → pid {after})"
        if restarted
        else f"the server at {url} did not answer for a while during the run (restarted?)"
    )
    many = resent != 1
    again = f"{resent} request{'s' if many else ''} went unanswered and {'were' if many else 'was'} sent again"
    again += f" ({len(waits)} resends in all, until answered)" if len(waits) > resent else ""
    return f"{said}; {again if resent else 'no request was sent again'}; the figures stand (each row answered once)"
