"""The figures of one measured load step, as saved to and loaded from JSON (`StepFigures`):
`loadtest.results.LoadResult` adds the notes on what they alone do not say.

Reports are rendered from these files only; nothing here recomputes a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Self

from loadtest.length_figures import LengthFigures
from loadtest.percentiles import LatencySummary
from loadtest.stage_figures import StageFigures
from loadtest.timeline import Outage, SecondStats
from loadtest.triton_metrics import ServerBreakdown
from loadtest.utilization import Utilization


@dataclass
class StepFigures:
    """What one measured load step recorded, field by field as its JSON holds them: a model at a fixed concurrency
    (closed loop) or request rate (open loop)."""

    model: str
    url: str
    mode: str  # "closed" (N users in a loop), "open" (fixed arrival rate) or "staged" (users per stage)
    users: int
    # the measured window: all users spawned and warm → its planned end, or the last answer after it before Locust's
    # stop (`recording_files.measured_end`); its rates divide the requests answered in it by it
    window_s: float
    requests: int
    failed_requests: int
    throughput_rps: float  # successful requests per second of the window (open loop: of its planned part)
    inferences_per_s: float  # samples per second (requests × request batch)
    latency: LatencySummary
    request_batch: int | None = 1  # None: a replayed trace set each request's samples (`trace`: their mean, max)
    rate_rps: float | None = None  # open loop: the offered rate
    arrivals: str | None = None  # open loop: "constant", "poisson" or "trace"
    workers: int = 0  # Locust worker processes (0: one local process)
    server: ServerBreakdown | None = None
    utilization: Utilization | None = None
    cdf: list[tuple[float, float]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    locust_csv_prefix: str = ""
    timeline: list[SecondStats] = field(default_factory=list)  # per second of the window (empty before it existed)
    outages: list[Outage] = field(default_factory=list)  # failures and no success for a second or more (`outages`)
    trace: dict[str, Any] | None = None  # a replayed trace: its file, speed, mean/peak rate (`ArrivalTrace.summary`)
    send_lag_p50_ms: float | None = None  # open loop: how long after its arrival time a request left the client
    send_lag_p99_ms: float | None = None
    generator_lag_p99_ms: float | None = None  # ... the part the generator woke late (the rest: a full in-flight pool)
    max_in_flight: int | None = None  # open loop: requests each Locust process kept in flight at most
    # open loop: the most one user had in flight, counted as each arrives (max_in_flight + 1: one found all slots taken)
    peak_in_flight: int | None = None
    # the server was replaced during the window (how it showed): its counters and samples cover only part of it
    server_restarted: str | None = None
    # the server stayed, but its counters cover only part of the window (a version swapped or reloaded): why
    server_counters_left_out: str | None = None
    other_models: dict[str, int] = field(default_factory=dict)  # requests Triton counted of its other models meanwhile
    unanswered_max_ms: float | None = None  # requests the server never answered by the window's end: the longest wait
    metrics_missing: str | None = None  # why Triton's counters were not read at an end of the window
    # requests unanswered at the end, long overdue, with nothing answered and the server alive: a model slower than
    # the window, not failures (how many, and the longest wait)
    in_flight_at_end: int = 0
    in_flight_max_ms: float | None = None
    # open loop: arrivals the schedule offered in the window (due from its start to its end: answered, failed, in
    # flight, unsent), and those still waiting in the client when it stopped, never sent: not served on time, so the
    # run fails like on failures
    offered_requests: int | None = None
    # open loop: the part of the window the schedule offered them in, to its planned end (the window runs on to the
    # last answer after it): the offered rate divides by it; None: the whole window (a file from before)
    offered_window_s: float | None = None
    # open loop: the most arrivals the schedule offered in a second of the window, a sliding second as the trace's
    # "busiest second" (`loadtest.timeline.busiest_second_rps`); None: a file from before session 52
    peak_offered_rps: float | None = None
    unsent: int = 0
    # requests sent and still on their way, not overdue, when the window ended (Locust's stop dropped them; open loop
    # also those answered after it and arrivals due in its last UNSENT_FLOOR_MS not yet sent, as many as free slots
    # could take; the rest are unsent): in the offered count
    # and in no other, so offered = requests - arrived_before_window + unsent + in_flight_at_end + cut_at_end
    cut_at_end: int = 0
    cut_max_ms: float | None = None  # ... the longest of their waits by then
    # open loop: requests answered or failed in the window that arrived before it opened (0 since every schedule
    # starts at the window's opening, `loadtest.recording.schedule_start`; results of older runs): in `requests`,
    # not in `offered_requests`
    arrived_before_window: int = 0
    deadline_failures: int = 0  # failed with gRPC's DEADLINE_EXCEEDED (--request-timeout), not refused by the server
    early_deadline_failures: int = 0  # ... of them, those that ended before 0.99 of that deadline had passed
    # ... while the server answered no request at all: the span, seconds from the window's start
    # (`loadtest.timeline.deadline_silence`; None: others were answered meanwhile, or a file from before session 42)
    deadline_silence: tuple[float, float] | None = None
    request_timeout_s: float | None = None  # that deadline (None: a file from before it was recorded)
    queue_delay_s: float | None = None  # the model's max_queue_delay as configured (None: none, or not read)
    lost_workers: list[str] = field(default_factory=list)  # Locust workers that died before the end, and how
    # stopped by Ctrl-C or SIGTERM: the figures cover `window_s`, measured up to the interrupt, of the
    # `planned_window_s` asked for
    interrupted: bool = False
    planned_window_s: float | None = None
    stages: list[StageFigures] = field(default_factory=list)  # staged: each stage between the shape's switches
    # each model version that answered in the window, as Triton's answers named it: its first and last answer (s
    # from the window's start) and its answers (`stage_figures.version_spans`; None: an older record)
    version_spans: list[dict[str, float]] | None = None
    # the users' warm-up requests (each one's first), left out of the window, which opened once all had ended
    # (requests, failed, max_ms, warm_up_s, in_window, unfinished: `loadtest.step_result.warm_up`); None: older files
    warm_up: dict[str, Any] | None = None
    # the model (or version) stopped being served, which ended the run (`loadtest.model_gone.ModelGone`: its line,
    # after_s into the window, steps_left not run); None: it ran as planned (or an older file)
    model_gone: dict[str, Any] | None = None
    # requests cut to their real length went at 2 or more lengths: each length's (or range's) share, p50, p99
    # (`loadtest.length_figures`; None: one length, uncut, or an older file)
    lengths: LengthFigures | None = None
    # how the requests' padding was sent: each input that marks a padded axis (a length input, a mask) and the inputs
    # it cut to the request's own length (`request_data.cut_inputs`; {}: none cut; None: not read, or an older file),
    # and the line that says so, as printed before the load (`request_data.padding_note`; None: no padding to speak
    # of). Only printed before session 60: the results did not say the requests had been cut, nor by which input
    cut_by: dict[str, list[str]] | None = None
    padding_note: str | None = None

    @property
    def latency_p50_ms(self) -> float:
        return self.latency.p50_ms

    @property
    def latency_p99_ms(self) -> float:
        return self.latency.p99_ms

    @property
    def stage_latencies(self) -> list[LatencySummary]:
        """Each stage's latency (a staged load's; empty otherwise): its stall is judged stage by stage."""
        return [stage.latency for stage in self.stages]

    @property
    def server_figures(self) -> ServerBreakdown | None:
        """Triton's breakdown where it has figures to show: None without metrics, or when the model ran no batch in
        the window (a batch size and queue time of nothing is no 0)."""
        return self.server if self.server is not None and self.server.executions > 0 else None

    @property
    def avg_batch_size(self) -> float:
        """Triton's own `nv_inference_count / nv_inference_exec_count` over the window (NaN without metrics or
        executions)."""
        return self.server_figures.avg_batch_size if self.server_figures is not None else math.nan

    @property
    def has_failures(self) -> bool:
        """Whether this step fails the run: failed requests, open-loop arrivals never sent, or a Locust worker lost
        (its requests are in no count)."""
        return bool(self.failed_requests or self.unsent or self.lost_workers)

    @property
    def measured_nothing(self) -> bool:
        """No request completed (succeeded or failed) in the window: its figures measure nothing."""
        return self.requests == 0 and not self.interrupted and not self.model_gone

    @property
    def offered_rps(self) -> float | None:
        """Open loop: the arrivals offered per second of the schedule that offered them (`offered_window_s`); None
        where none were counted."""
        span = self.offered_window_s or self.window_s
        return self.offered_requests / span if self.offered_requests is not None and span > 0 else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        fields = dict(data)
        fields["latency"] = LatencySummary(**data["latency"])
        fields["server"] = ServerBreakdown(**data["server"]) if data.get("server") else None
        fields["utilization"] = Utilization(**data["utilization"]) if data.get("utilization") else None
        fields["cdf"] = [tuple(point) for point in data.get("cdf", [])]
        fields["timeline"] = [SecondStats(**second) for second in data.get("timeline", [])]
        fields["outages"] = [Outage(**outage) for outage in data.get("outages", [])]
        fields["stages"] = [StageFigures.from_dict(stage) for stage in data.get("stages", [])]
        fields["lengths"] = LengthFigures.from_dict(data["lengths"]) if data.get("lengths") else None
        silence = data.get("deadline_silence")
        fields["deadline_silence"] = (float(silence[0]), float(silence[1])) if silence else None
        return cls(**fields)
