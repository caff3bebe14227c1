"""Triton's own counters, scraped from its Prometheus metrics endpoint, as a delta over a window.

The server-side breakdown (queue, compute input/infer/output) and the average batch size
(`nv_inference_count / nv_inference_exec_count`) come from here, never from the client.
Triton keeps these counters per model version, from zero each time it loads one and at zero once it has unloaded
it (an unload finishing after a scrape still lists the version's counts), so each scrape keeps them per version
too: a delta across a deploy or a rollback is no window's figure.
"""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from quantserve.errors import QuantserveError

# The per-model counters the evaluator reads; all are cumulative since the server started.
COUNTERS = (
    "nv_inference_request_success",
    "nv_inference_request_failure",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

# Triton's successful-request count over a window may miss the client's by the requests answered while a scrape at
# either end was being read: the client's rate × the scrapes' time (`Window.scrape_s`), no less than SCRAPE_FLOOR_S
# of it (the 10 % first set on 2 s windows at 1.7k req/s on 2 shared cores), plus this many requests. A window from
# before the scrapes were timed keeps that share, COUNT_SLACK, of the count: over 30 s it is 3 s of traffic, and
# another client's 1274 requests (8.4 %) on the model went unsaid (session 47)
COUNT_SLACK = 0.1
SCRAPE_FLOOR_S = 0.2
COUNT_FLOOR = 10
VERSIONS = "versions"  # a model's entry also holds its counters per version: {version: {counter: value}}
SUCCESS = "nv_inference_request_success"
FAILURE = "nv_inference_request_failure"
# Triton 24.x+ (tritonserver 2.4x) labels its failure counter by `reason`: REJECTED, CANCELED, BACKEND, OTHER; each
# reason's count is also kept as `FAILURE:<reason>` beside the sum (older servers have no label, and no such keys)
REASON_KEY = FAILURE + ":"

# Triton's request latency summary (`--metrics-config=summary_latencies=true`, `quantserve serve`'s default): quantiles
# over a sliding window of the last 48-60 s (prometheus-cpp's 60 s in 5 buckets), not the run's window; kept per model
# as {QUANTILES: {version: {"0.5": us, "0.99": us, ...}}}, beside the counters and never summed over versions
REQUEST_SUMMARY = "nv_inference_request_summary_us"
QUANTILES = "request_quantiles_us"
SUMMARY_WINDOW_S = (48.0, 60.0)

# {counter: value summed over versions, VERSIONS: {version: {counter: value}}}; plain dicts, saved as JSON
ModelCounters = dict[str, Any]


def parse_metrics(text: str) -> dict[str, ModelCounters]:
    """Prometheus text → `{model name: {counter: value summed over versions, "versions": {version: counters}}}`
    for `COUNTERS`."""
    models: dict[str, ModelCounters] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match["name"] not in (*COUNTERS, REQUEST_SUMMARY):
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        model = labels.get("model")
        if model is None:
            continue
        counters = models.setdefault(model, {**dict.fromkeys(COUNTERS, 0.0), VERSIONS: {}})
        if match["name"] == REQUEST_SUMMARY:
            _add_quantile(counters, labels, match["value"])
            continue
        version = counters[VERSIONS].setdefault(labels.get("version", ""), dict.fromkeys(COUNTERS, 0.0))
        counters[match["name"]] += float(match["value"])
        version[match["name"]] += float(match["value"])
        if match["name"] == FAILURE and "reason" in labels:
            key = REASON_KEY + labels["reason"]
            for counted in (counters, version):
                counted[key] = counted.get(key, 0.0) + float(match["value"])
    return models


def _add_quantile(counters: ModelCounters, labels: dict[str, str], value: str) -> None:
    """Keep one quantile of the request summary by version; NaN (no request in Triton's window) is not kept."""
    if "quantile" in labels and math.isfinite(float(value)):
        version = counters.setdefault(QUANTILES, {}).setdefault(labels.get("version", ""), {})
        version[labels["quantile"]] = float(value)


def request_quantiles(scrape: dict[str, ModelCounters], model: str, version: str = "") -> dict[str, float]:
    """Triton's request latency quantiles of `model` in one scrape (µs, by quantile: "0.5", "0.99"), of `version`
    where one is named, else of its one version that has them; empty where the summary is not exported, its window
    held no request, or several versions answered (quantiles of two versions cannot be merged)."""
    by_version = scrape.get(model, {}).get(QUANTILES, {})
    if version:
        return dict(by_version.get(version, {}))
    return dict(next(iter(by_version.values()))) if len(by_version) == 1 else {}


def failure_reasons(start: dict[str, Any], end: dict[str, Any]) -> dict[str, int]:
    """Triton's failures of one model (or version) between two scrapes by `reason` (empty: a server, or a scrape,
    without the label)."""
    reasons = sorted({key for key in (*start, *end) if isinstance(key, str) and key.startswith(REASON_KEY)})
    return {key[len(REASON_KEY) :]: int(end.get(key, 0.0) - start.get(key, 0.0)) for key in reasons}


def metrics_endpoint(url: str) -> str:
    """`host:port` or a full URL → the full `/metrics` URL."""
    if not url.startswith(("http://", "https://")):
        url = f"http://{url}"
    return url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"


def scrape(url: str, timeout_s: float = 5.0) -> dict[str, ModelCounters]:
    """Read the metrics endpoint once; a server that does not answer is a user error."""
    endpoint = metrics_endpoint(url)
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout_s) as response:
            return parse_metrics(response.read().decode())
    except (urllib.error.URLError, OSError) as exc:
        raise QuantserveError(f"{endpoint}: Triton metrics endpoint not reachable ({exc})") from exc


def counters_went_back(before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str) -> bool:
    """Any of the model's cumulative counters lower at the end than at the start: the server restarted (or the
    model was reloaded) in between, and the delta covers only the time since."""
    start, end = before.get(model), after.get(model)
    if start is None:
        return False
    return end is None or any(end[name] < start[name] for name in COUNTERS)


def others_kept_counting(before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str) -> bool:
    """Whether another model's counters, of something counted by the start, went on across the window (none lower
    at the end): then the tritonserver process that counted them was not restarted, whatever became of `model`.
    A restart takes every model's counters back to zero at once."""
    return any(
        name != model and any(counters[c] for c in COUNTERS) and not counters_went_back(before, after, name)
        for name, counters in before.items()
    )


def model_reset(
    before: dict[str, ModelCounters],
    after: dict[str, ModelCounters],
    model: str,
    told_unknown: bool = False,
    version: str = "",
) -> str | None:
    """How the model's own counters went back while the server stayed (None: they did not): its series gone from
    the scrape, or listed again at zero (tritonserver 2.51 after an unload), is a model unloaded, losing its
    versions (a folder moved out of the repository, an unload call); lower but counting again under the same
    versions, a reload. `told_unknown`: Triton answered the client that it has no such model (NOT_FOUND), which
    tells an unload where its counters were at zero already at the start (a model loaded again just before).
    `version`: the one version the scrapes were narrowed to (--model-version, `addressed_version`): that version,
    not the model, went: a run pinned to version 3 across a rollback to 5 read "model 'digits_int8' was unloaded
    … (version 3 → none served)" while version 5 served (session 54)."""
    went_back, end = counters_went_back(before, after, model), after.get(model)
    if end is not None and versions_changed(before, after, model):  # a deploy or rollback: `versions_changed` says
        return None  # (a new version listed at zero, not served yet, is no unload)
    what = f"version {version} of model '{model}' (the one addressed)" if version else f"model '{model}'"
    if (went_back or told_unknown) and (end is None or not any(end[name] for name in COUNTERS)):
        if version:
            return f"{what} was unloaded during the window (a rollback or deploy?) and Triton dropped its counters"
        start = served_versions(before, model)
        versions = f" (version{'s' if len(start) > 1 else ''} {_shown(start)} → none served)" if start else ""
        return (
            f"{what} was unloaded during the window: it lost its versions{versions} and Triton dropped their counters"
        )
    if not went_back:
        return None
    return f"{what} was reloaded during the window: Triton's counters of it began again at zero"


def other_models_requests(
    before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str
) -> dict[str, int]:
    """Requests (successful and failed) Triton counted for each other model of the server between two scrapes, for
    those it counted any: that load shared the server's CPU and queues with `model`'s. One whose counters went back
    (reloaded) counted at least its count at the end."""
    counted = ("nv_inference_request_success", "nv_inference_request_failure")
    moved: dict[str, int] = {}
    for name, end in after.items():
        if name == model:
            continue
        start = before.get(name) if not counters_went_back(before, after, name) else None
        requests = sum(end[c] - (start[c] if start else 0.0) for c in counted)
        if requests >= 1:
            moved[name] = int(requests)
    return moved


def served_versions(scrape: dict[str, ModelCounters], model: str) -> dict[str, dict[str, float]]:
    """The model's counters per version in one scrape (empty: not served, or a scrape from before versions were
    kept)."""
    return dict(scrape.get(model, {}).get(VERSIONS, {}))


def versions_changed(before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str) -> str | None:
    """How the versions of `model` in Triton's counters changed between two scrapes (None: they did not): their
    counters are then no delta over the time between, since Triton's counters of a version go to zero once it has
    unloaded it (tritonserver 2.51 may list it again at zero; an unload finishing after the scrape still lists them)
    and a new version's begin at zero. A version unloaded and loaded
    again under the same number, as a rollback to it does, is not seen here: the client's count tells that
    (`counts_disagree`). The same versions listed at both ends, two or more of them answering in between, is a
    rollback (or deploy) among versions both still loaded (v2 → v1 at 9 s of 12: Triton listed both before and after,
    the counts agreed, the client's figures mixed two versions' answers and nothing said so), or another client
    addressing a version by number: either way the window's answers may be two versions'."""
    start, end = served_versions(before, model), served_versions(after, model)
    if not start:  # not served at the start (the readiness check says so)
        return None
    if set(start) == set(end):
        answered = [v for v in end if end[v].get(SUCCESS, 0.0) > start[v].get(SUCCESS, 0.0)]
        if len(answered) < 2:
            return None
        shown = ", ".join(sorted(answered, key=lambda v: (len(v), v)))
        return (
            f"model '{model}' answered from versions {shown} during the window (a rollback or deploy meanwhile, or "
            "another client addressing a version): its figures may mix two versions' answers"
        )
    line = f"model '{model}' served versions changed during the window ({_shown(start)} → {_shown(end, start)})"
    idle = sorted((v for v in end if v not in start and not any(end[v].values())), key=lambda v: (len(v), v))
    if idle and len(end) > 1:  # traffic34: deploy v3, rollback to v2 read "2 → 2, 3" with v3 unloaded at the end
        listed = ", ".join(idle)
        line += (
            f"; {listed} listed at zero at the end: loaded late and not yet answering, or unloaded again (a rollback "
            "drops its counters)"
        )
    return line


def scrape_answers(client_succeeded: int, window_s: float, scrape_s: float | None) -> float:
    """The client's answers while the scrapes at the window's ends were being read: its rate over the window ×
    `scrape_s` (no less than SCRAPE_FLOOR_S); `scrape_s` None (not recorded) or no window: `COUNT_SLACK` of them."""
    if scrape_s is None or window_s <= 0:
        return COUNT_SLACK * client_succeeded
    return client_succeeded / window_s * max(scrape_s, SCRAPE_FLOOR_S)


def counts_disagree(
    server_succeeded: int, client_succeeded: int, in_flight: int, unreported: int = 0, scraping: float | None = None
) -> bool:
    """Whether Triton's count of a model's successful requests over the window is off the client's by more than
    the noise at its ends: requests in flight when each scrape was taken (up to `in_flight` each), and those
    answered while a scrape was read (`scraping`, `scrape_answers`; None: `COUNT_SLACK` of the count); Triton may
    count up to `unreported` more, the closed-loop users' warm-up requests that ended in the window (past the
    window's cap on them). A version unloaded or reloaded during the window (the same version number again, which
    nothing else shows) dropped its counters; another client's load on the model added to them."""
    scraped = COUNT_SLACK * client_succeeded if scraping is None else scraping
    allowed = scraped + 2 * in_flight + COUNT_FLOOR
    return not -allowed <= server_succeeded - client_succeeded <= allowed + unreported


def addressed_version(scrape: dict[str, ModelCounters], model: str, version: str) -> dict[str, ModelCounters]:
    """`scrape` with `model`'s counters those of `version` alone (`--model-version`), others' as they are: Triton
    sums every served version into the model's, so another client's load on version 2 read as version 1's and its
    deploy read as this version's counters not covering the window. `version` not served: the model absent, as
    after an unload. No `version`, or a scrape from before versions were kept: `scrape` unchanged."""
    versions = scrape.get(model, {}).get(VERSIONS)
    if not version or not versions:
        return scrape
    view = {name: counters for name, counters in scrape.items() if name != model}
    if version in versions:
        view[model] = {**versions[version], VERSIONS: {version: versions[version]}}
        quantiles = scrape[model].get(QUANTILES, {})
        if version in quantiles:
            view[model][QUANTILES] = {version: quantiles[version]}
    return view


def idle_versions_added(before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str) -> list[str]:
    """The versions listed at the end only, at zero, where that is the whole change and the versions served at the
    start still count upwards: e.g. a version whose load failed (tritonserver 2.51 lists it at zero while it tries)
    or still loading. The carried versions' counters then cover the window, if the client's count agrees (a version
    that answered and was unloaded again would have taken answers with it). Else []."""
    start, end = served_versions(before, model), served_versions(after, model)
    added = [v for v in end if v not in start]
    if not start or not added or not set(start) <= set(end) or any(any(end[v].values()) for v in added):
        return []
    if any(end[v].get(SUCCESS, 0.0) < start[v].get(SUCCESS, 0.0) for v in start):
        return []
    return sorted(added, key=lambda v: (len(v), v))


def _shown(versions: dict[str, dict[str, float]], before: dict[str, dict[str, float]] | None = None) -> str:
    """The versions that counted anything, or are new since `before` (a deploy's, listed at zero until it serves),
    else all listed: one listed at zero after an unload is not served (a swap read "1 → 1, 2")."""
    counted = [
        v for v, counters in versions.items() if any(counters.values()) or (before is not None and v not in before)
    ]
    return ", ".join(sorted(counted or versions, key=lambda v: (len(v), v))) or "none"


@dataclass
class ServerBreakdown:
    """Triton's view of one model over the measured window (a delta of its cumulative counters)."""

    requests_succeeded: int
    requests_failed: int
    inferences: int  # samples, summed over every request's batch dimension
    executions: int  # model executions (batches run by the backend)
    avg_batch_size: float
    avg_request_us: float
    avg_queue_us: float
    avg_compute_input_us: float
    avg_compute_infer_us: float
    avg_compute_output_us: float
    version: str = ""  # the one version counted (--model-version: `addressed_version`); "": all versions summed
    # `requests_failed` by Triton's `reason` label (REJECTED, CANCELED, BACKEND, OTHER); empty: a server without the
    # label (before Triton 24.x), or a file from before session 57
    failure_reasons: dict[str, int] = field(default_factory=dict)
    # Triton's own request latency p50/p99 from its summary at the window's end (`request_quantiles`): its sliding
    # window (SUMMARY_WINDOW_S), every client's requests of the model; None where the server exports no summary
    request_p50_us: float | None = None
    request_p99_us: float | None = None


def breakdown(
    before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str, version: str = ""
) -> ServerBreakdown:
    """The per-request averages of one model's counters between two scrapes: of `version` alone where one is
    addressed and the scrapes keep versions (`addressed_version`), else of all its versions summed."""
    counted = version if served_versions(after, model) or served_versions(before, model) else ""
    quantiles = request_quantiles(after, model, counted)
    before, after = addressed_version(before, model, counted), addressed_version(after, model, counted)
    zero = dict.fromkeys(COUNTERS, 0.0)
    start, end = before.get(model, zero), after.get(model, zero)
    delta = {name: end[name] - start[name] for name in COUNTERS}
    succeeded = delta["nv_inference_request_success"]
    executions = delta["nv_inference_exec_count"]

    def per_request(name: str) -> float:
        return delta[name] / succeeded if succeeded else 0.0

    return ServerBreakdown(
        requests_succeeded=int(succeeded),
        requests_failed=int(delta["nv_inference_request_failure"]),
        inferences=int(delta["nv_inference_count"]),
        executions=int(executions),
        avg_batch_size=delta["nv_inference_count"] / executions if executions else 0.0,
        avg_request_us=per_request("nv_inference_request_duration_us"),
        avg_queue_us=per_request("nv_inference_queue_duration_us"),
        avg_compute_input_us=per_request("nv_inference_compute_input_duration_us"),
        avg_compute_infer_us=per_request("nv_inference_compute_infer_duration_us"),
        avg_compute_output_us=per_request("nv_inference_compute_output_duration_us"),
        version=counted,
        failure_reasons=failure_reasons(start, end),
        request_p50_us=quantiles.get("0.5"),
        request_p99_us=quantiles.get("0.99"),
    )
