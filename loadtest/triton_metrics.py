"""Triton's own counters, scraped from its Prometheus metrics endpoint, as a delta over a window.

The server-side breakdown (queue, compute input/infer/output) and the average batch size
(`nv_inference_count / nv_inference_exec_count`) come from here, never from the client.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass

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

ModelCounters = dict[str, float]


def parse_metrics(text: str) -> dict[str, ModelCounters]:
    """Prometheus text → `{model name: {counter: value summed over versions}}` for `COUNTERS`."""
    models: dict[str, ModelCounters] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match["name"] not in COUNTERS:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        model = labels.get("model")
        if model is None:
            continue
        counters = models.setdefault(model, dict.fromkeys(COUNTERS, 0.0))
        counters[match["name"]] += float(match["value"])
    return models


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


def breakdown(before: dict[str, ModelCounters], after: dict[str, ModelCounters], model: str) -> ServerBreakdown:
    """The per-request averages of one model's counters between two scrapes."""
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
    )
