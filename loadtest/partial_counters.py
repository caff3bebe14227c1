"""Why a step's window is not measured whole by Triton's counters though a server listened at both ends: the server
shutting down at the end (`server_shutting_down`), or its counters not covering the window (`counters_not_whole`: a
version swapped, the model reloaded, another client or server counted). Split from `loadtest.step_result`, which
reads each step's result and says these beside it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from loadtest import recording_files
from loadtest.metrics_owner import other_server_too, other_servers_counters
from loadtest.results import NO_TRITON_COUNTERS, SHUTTING_DOWN_AT_END, LoadResult
from loadtest.stage_figures import answering_order
from loadtest.triton_metrics import (
    COUNTERS,
    SUCCESS,
    counters_went_back,
    counts_disagree,
    idle_versions_added,
    model_reset,
    others_kept_counting,
    scrape_answers,
    served_versions,
    versions_changed,
)

# why a swap leaves the counters short, as tritonserver 2.51 showed it: a rollback to version 1 at 24.0 s of 25 left
# version 1 at 2047 though it answered 34360 in the window (its count began again at its load), and version 2, still
# being unloaded as the window closed, listed with all its 18207 answers (session 63); a deploy's unloaded version 3
# was listed at zero once its unload ended (157827 → 0)
COUNTS_FROM_LOAD = "a version's counters start from zero each time Triton loads it and go to zero once it is unloaded"
# how Triton refuses a request for a model it does not serve (NOT_FOUND): "… 'm' has no available versions", "… 'm'
# is not found"
UNKNOWN_MODEL = "Request for unknown model"
# how a tritonserver shutting down refuses a request it has not begun (UNAVAILABLE), before its models are unloaded
SERVER_STOPPING = "Server is stopping"


def server_shutting_down(
    pid: int, errors: dict[str, int], window: recording_files.Window, model: str, live: Callable[[], bool]
) -> str | None:
    """How the process that served the window (`pid`, listening at both ends) showed it was shutting down at the
    end (None: it did not): it refused requests with "Server is stopping", or the model's counters went back and it
    no longer answered a liveness check (`live`, asked only then: a model unloaded from a running server leaves it
    live). Measured with the tests' tritonserver 2.51 after a SIGTERM: for ~2 s its liveness check said no, its
    model-ready question got an error, not an answer, and its metrics listed every model at zero, before the ports
    closed. A `serve` stopped by SIGTERM 5.2 s into a 16 s open loop (session 41): Triton, shutting down, answered
    31 requests "Server is stopping" and 289 "unknown model … has no available versions" for ~10 s (so the run went
    on, `loadtest.model_gone`), every model at zero at the end: the note said "model 'digits_int8' was unloaded
    during the window", not that the server stopped."""
    refused = sum(count for error, count in errors.items() if SERVER_STOPPING in error)
    before, after = window.metrics_before, window.metrics_after
    went_back = before is not None and after is not None and counters_went_back(before, after, model)
    if not refused and not went_back:
        return None
    silent = not live()
    if not refused and not silent:
        return None
    requests = "request" if refused == 1 else "requests"
    evidence = [f"it refused {refused} {requests} with '{SERVER_STOPPING}'"] if refused else []
    if went_back and before is not None and after is not None:
        others = [name for name, counters in before.items() if name != model and any(counters[c] for c in COUNTERS)]
        if others and not others_kept_counting(before, after, model):
            evidence.append("every model's counters went back to zero at once")
    if silent:
        evidence.append("it no longer answered a liveness check")
    return f"pid {pid} listened on its port at the start; {', '.join(evidence)}: {SHUTTING_DOWN_AT_END}"


def counters_not_whole(
    window: recording_files.Window, result: LoadResult, warm_ups: int = 0, version: str = ""
) -> str | None:
    """Why Triton's counters over the window do not cover it though the server stayed up (None: they do): the
    model's served versions changed (a deploy or rollback: `COUNTS_FROM_LOAD`, said in the order the versions
    answered and with the versions Triton counted short, `_swapped`), the model was
    unloaded or reloaded (its counters went back, the server's others did not), or Triton's count of successful
    requests is off the client's beyond noise (a version reloaded under the same number). Requests the client gave up
    on at its deadline (--request-timeout) that Triton still answered are no such cause: 1227 of them were blamed on a
    deploy or another client that never happened, and Triton's columns dropped (session 44). `version`: the one a
    pinned run addressed (--model-version), to which `window`'s scrapes are narrowed (`addressed_window`)."""
    before, after, server = window.metrics_before, window.metrics_after, result.server
    if before is None or after is None or server is None:
        return None
    if not before and not after and result.requests > result.failed_requests:  # an address that is not Triton's
        return (
            f"{NO_TRITON_COUNTERS} for any model (no nv_inference_* series) while "
            f"model '{result.model}' served {result.requests - result.failed_requests} requests: is --metrics-url "
            "Triton's metrics port (8002 by default)?"
        )
    told_unknown = any(UNKNOWN_MODEL in error for error in result.errors)
    if reset := model_reset(before, after, result.model, told_unknown, version):  # version: a pinned run's
        return reset
    changed = versions_changed(before, after, result.model)
    idle_added = idle_versions_added(before, after, result.model)  # whole if the counts agree: judged below
    if changed and not idle_added:  # a version loaded or unloaded meanwhile, or two versions both loaded answering
        unloaded = set(served_versions(before, result.model)) != set(served_versions(after, result.model))
        return _swapped(changed, window, result) if unloaded else changed
    client = result.requests - result.failed_requests
    if result.lost_workers and server.requests_succeeded >= client:  # Triton answered the lost workers' requests too
        return None
    slack = result.users * (result.max_in_flight or 1)
    scraping = scrape_answers(result.requests, window.end - window.start, window.scrape_s)
    if not counts_disagree(server.requests_succeeded, client, slack, warm_ups, scraping):
        return None
    if other := other_servers_counters(before, after, result.model, client):  # no deploy moves none of them
        return other
    if result.failed_requests and not counts_disagree(
        server.requests_succeeded, result.requests, slack, warm_ups, scraping
    ):
        return None  # Triton answered them all; the client failed answers it checked (rows short of those sent)
    if result.deadline_failures and not counts_disagree(
        server.requests_succeeded, client, slack, warm_ups + result.deadline_failures, scraping
    ):  # Triton answered some the client had given up on at its deadline (`LoadResult.deadline_line` says so)
        return None
    if changed:  # a version listed at zero at the end, and the counts disagree: it answered some, and went
        return _swapped(changed, window, result)
    counted = f"model '{result.model}'" + (f" version {server.version}" if server.version else "")
    others = result.others_failures(server.requests_failed)  # said here: `server_failures_note` needs the columns
    failed = f"; and {others}" if others else ""
    return (
        f"Triton counted {server.requests_succeeded} successful requests of {counted} over the window, "
        f"the client {client}: a version unloaded or reloaded during it (a deploy, a rollback) takes its counters "
        f"with it, another client's load adds to them{failed}{other_server_too(before, after, result.model)}"
    )


def _swapped(changed: str, window: recording_files.Window, result: LoadResult) -> str:
    """The served versions' change (`versions_changed`'s line, its "before → after" the versions in the order the
    answers named them where the window kept them, "1 → 2 → 1": Triton's counters listed "1 → 1, 2" for it),
    the versions Triton counted fewer answers of than the client got, and why (`COUNTS_FROM_LOAD`)."""
    order = answering_order(result.version_spans)
    if order:
        changed = re.sub(r"\(([^)]*)\)", lambda listed: f"({order})", changed, count=1)
    short = _counted_short(window, result)
    return f"{changed}: {short + '; ' if short else ''}{COUNTS_FROM_LOAD}"


def _counted_short(window: recording_files.Window, result: LoadResult) -> str:
    """`version 1 answered 34360 times, Triton counted 2041 of them` for each version whose counters' change over the
    window falls short of the answers the client got from it by more than the requests in flight ("": none)."""
    if not result.version_spans or window.metrics_before is None or window.metrics_after is None:
        return ""
    answered: Counter[int] = Counter()
    for span in result.version_spans:
        answered[int(span["version"])] += int(span["answers"])
    start = served_versions(window.metrics_before, result.model)
    end = served_versions(window.metrics_after, result.model)
    slack = result.users * (result.max_in_flight or 1)
    said = []
    for version, answers in sorted(answered.items()):
        at_end = end.get(str(version), {}).get(SUCCESS, 0.0)
        counted = at_end - start.get(str(version), {}).get(SUCCESS, 0.0)
        counted = int(at_end if counted < 0 else counted)  # went back: counted from zero since
        if answers - counted > slack:
            said.append(f"version {version} answered {answers} times, Triton counted {counted} of them")
    return "; ".join(said)
