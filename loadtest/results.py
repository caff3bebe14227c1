"""One measured load step as a dataclass that saves to and loads from JSON: `LoadResult` (a run of them, its file:
`loadtest.load_run`; accuracy's: `loadtest.accuracy_results`). Its notes' words are in `loadtest.failure_notes`,
`loadtest.server_figure_notes`, `loadtest.step_label` and the other `*_notes` modules.

Reports are rendered from these files only; nothing here or in the renderers recomputes a
measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loadtest.failure_notes import (
    ClientFailures,
    failed_share_line,
    failure_note,
    late_answers,
    others_failures,
    server_failures_note,
)
from loadtest.length_figures import LengthFigures
from loadtest.percentiles import LatencySummary
from loadtest.send_lag import ClientLags, queue_refused, send_lag_note, unsent_held_by
from loadtest.server_figure_notes import (
    ClientPercentiles,
    counters_note,
    lost_workers_note,
    metrics_note,
    outside_fraction,
    outside_server_note,
    restart_note,
    server_percentiles_note,
)
from loadtest.stage_figures import StageFigures, spans_note, stages_note, versions_note
from loadtest.step_label import step_label
from loadtest.timeline import Outage, SecondStats, Stall, peak_offered_rps, stall
from loadtest.triton_metrics import ServerBreakdown
from loadtest.unanswered_notes import OfferedRequests, in_flight_note, unanswered_note, unsent_note
from loadtest.utilization import Utilization
from loadtest.window_notes import (
    cut_note,
    deadline_note,
    other_load_note,
    stall_note,
    tail_note,
)

# what a step's warm-up record says of it: requests the warm-up left unfinished, a server restarted before the window
WARM_UP_NOTES = ("unfinished", "server_restarted", "restarted_between_steps")  # the last: `server_back.server_back`
UNANSWERED_ERROR = "no reply by the end of the measured window"  # the error a request the server never answered gets
# a closed loop's mean latency spent outside Triton (client mean minus Triton's own time per request) from which it
# is reported: at least this share of the latency, and this many ms (500 Locust users on 2 shared cores: 243 ms
# p50 at the client for 36.7 ms in Triton; 16 users: 11.6 ms for 1.7 ms)
OUTSIDE_SHARE = 0.5
OUTSIDE_MIN_MS = 5.0
LATE_SEND_MS = 10.0  # an open-loop p99 send lag above this is reported: the client, not the server, added it
NO_PROCESS_AT_END = "no process at the end"  # how `server_restarted` says the server stopped and none took its place
# how `server_restarted` ends where the process that served the window was shutting down at its end (still listening)
SHUTTING_DOWN_AT_END = "shutting down at the end"
# how `server_counters_left_out` begins where the metrics address was no Triton's: the model itself did not change
NO_TRITON_COUNTERS = "the metrics address answered with no Triton counters"


@dataclass
class LoadResult:
    """One measured load step: a model at a fixed concurrency (closed loop) or request rate (open loop)."""

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

    @property
    def label(self) -> str:
        """The step as tables and notes name it; a step cut short by an interrupt or by its model's going away says
        so, with its real window."""
        if not self.interrupted and not self.model_gone:
            return self._load_label()
        planned = f" of {self.planned_window_s:g}" if self.planned_window_s else ""
        why = "interrupted" if self.interrupted else "cut short, the model no longer served"
        return f"{self._load_label()} ({why}: {self.window_s:.1f}{planned} s measured)"

    def gone_note(self) -> str | None:
        """The line of a step its model's going away cut short (`loadtest.model_gone.ModelGone.line`)."""
        return f"{self._load_label()}: {self.model_gone['line']}" if self.model_gone else None

    def _load_label(self) -> str:
        """The step's label without a cut's words (`loadtest.step_label.step_label`)."""
        how = (self.mode, self.users, self.rate_rps, self.arrivals, self.trace, self.offered_rps)
        return step_label(self.model, *how, self.stages)

    def send_lag_note(self) -> str | None:
        """One line when open-loop requests left the client late (`loadtest.send_lag.send_lag_note`), its advice
        knowing the --workers used, the cores the run saw, and a stall that filled the in-flight slots."""
        lags = (*self._client_lags(), self.workers, self._cores(), *self._stalled())
        return send_lag_note(self.label, *lags, peak_offered_rps=self.busiest_second_rps())

    def busiest_second_rps(self) -> float | None:
        """The window's busiest second's offered arrivals, per second, as recorded; the timeline's busiest whole
        second in a file from before it was (`loadtest.timeline.peak_offered_rps`)."""
        return self.peak_offered_rps if self.peak_offered_rps is not None else peak_offered_rps(self.timeline)

    def _client_lags(self) -> tuple[ClientLags, float]:
        lags = (self.send_lag_p99_ms, self.send_lag_p50_ms, self.generator_lag_p99_ms)
        slots = self.peak_in_flight, self.max_in_flight, queue_refused(self.errors)
        return ClientLags(*lags, *slots, processes=max(1, self.workers)), LATE_SEND_MS

    def _stalled(self) -> tuple[Stall | None, float | None]:
        """The step's stall (`loadtest.timeline.stall`) and the rate its window offered."""
        stalled = stall(self.mode, self.latency, self.timeline, self.stage_latencies, self.peak_offered_rps)
        return stalled, self.offered_rps or self.rate_rps

    def _cores(self) -> int | None:
        return (self.utilization.usable_cores or self.utilization.cpu_count) if self.utilization else None

    def outside_server_note(self) -> str | None:
        """One line when most of a closed loop's latency was spent outside Triton
        (`server_figure_notes.outside_server_note`)."""
        share = self.outside_share()
        if share is None or self.server is None:
            return None
        return outside_server_note(self.label, share, self.server.avg_request_us, self.latency.mean_ms)

    def server_percentiles_note(self) -> str | None:
        """Triton's own request p50/p99 beside the client's (`server_figure_notes.server_percentiles_note`)."""
        client = ClientPercentiles(self.latency.p50_ms, self.latency.p99_ms, self.window_s, self.send_lag_p99_ms)
        return server_percentiles_note(self.label, self.server, client)

    def outside_share(self) -> float | None:
        """The share of a closed loop's mean latency spent outside Triton, where it is OUTSIDE_SHARE or more and at
        least OUTSIDE_MIN_MS (None: less, open loop, or no counters)."""
        share = self.outside_fraction()
        if share is None:
            return None
        outside = share * self.latency.mean_ms
        if not (outside >= OUTSIDE_MIN_MS and share >= OUTSIDE_SHARE):
            return None
        return share

    def outside_fraction(self) -> float | None:
        """The share of a closed loop's mean latency spent outside Triton, however small
        (`server_figure_notes.outside_fraction`): `tune` records it per trial."""
        return outside_fraction(self.mode, self.latency.mean_ms, self.server)

    def restart_note(self) -> str | None:
        """One line when tritonserver was replaced during the window (`server_figure_notes.restart_note`)."""
        if not self.server_restarted:
            return None
        stopped = self.server_restarted.endswith((NO_PROCESS_AT_END, SHUTTING_DOWN_AT_END))
        return restart_note(self.label, self.server_restarted, stopped)

    def counters_note(self) -> str | None:
        """One line when Triton's own figures were left out (`server_figure_notes.counters_note`)."""
        left_out = self.server_counters_left_out
        return counters_note(self.label, left_out) if left_out else None

    def client_failures(self) -> ClientFailures:
        """This step's failures as the client counted them, for the notes beside Triton's counter
        (`loadtest.failure_notes`)."""
        counted = (self.requests, self.failed_requests, self.deadline_failures, self.late_answers())
        return ClientFailures(self.label, *counted, self.errors, bool(self.lost_workers))

    def others_failures(self, server_failed: int) -> str | None:
        """Failures Triton counted beyond the client's: another client's (`failure_notes.others_failures`)."""
        return others_failures(self.client_failures(), server_failed, self.server)

    def server_failures_note(self) -> str | None:
        """Triton's failure counter below (or above) the client's failures (`failure_notes.server_failures_note`)."""
        return server_failures_note(self.client_failures(), self.server) if self.server is not None else None

    def late_answers(self) -> int:
        """The client's deadline failures Triton answered anyway (`failure_notes.late_answers`)."""
        return late_answers(self.server, self.requests - self.failed_requests, self.deadline_failures)

    def unanswered_note(self) -> str | None:
        """One line when requests were still waiting at the window's end, long unanswered
        (`loadtest.unanswered_notes.unanswered_note`)."""
        return unanswered_note(self.label, self.errors.get(UNANSWERED_ERROR, 0), self.unanswered_max_ms)

    def lost_workers_note(self) -> str | None:
        """One line when Locust worker processes died before the end (`server_figure_notes.lost_workers_note`)."""
        return lost_workers_note(self.label, self.lost_workers) if self.lost_workers else None

    def unsent_note(self) -> str | None:
        """One line when open-loop arrivals were never sent (`loadtest.unanswered_notes.unsent_note`)."""
        answered, on_way = self.requests - self.failed_requests, self.cut_at_end + self.in_flight_at_end
        before = self.arrived_before_window
        requests = OfferedRequests(self.offered_requests, answered, self.failed_requests, on_way, before, self.unsent)
        held = unsent_held_by(*self._client_lags(), *self._stalled())  # the stall's wait, not the rate's
        return unsent_note(self.label, requests, self.max_in_flight, self.peak_in_flight, held, max(1, self.workers))

    def in_flight_note(self) -> str | None:
        """One line when requests were still in flight at the end of a window that answered none: a model slower
        than the window (`loadtest.unanswered_notes.in_flight_note`)."""
        return in_flight_note(self.label, self.in_flight_at_end, self.in_flight_max_ms, self.failed_requests)

    def metrics_note(self) -> str | None:
        """One line when Triton's metrics endpoint gave nothing at an end of the window
        (`server_figure_notes.metrics_note`)."""
        return metrics_note(self.label, self.metrics_missing) if self.metrics_missing else None

    def failed_share_line(self) -> str:
        """`label: F of N requests failed (P %)` (`failure_notes.failed_share_line`)."""
        return failed_share_line(self.client_failures())

    def failure_note(self) -> str | None:
        """One line when requests failed (`failure_notes.failure_note`)."""
        return failure_note(self.client_failures(), self.outages) if self.failed_requests else None

    def deadline_line(self) -> str | None:
        """The client's-deadline line (`loadtest.window_notes.deadline_note`) from everything this step knows: its
        queue delay and the server's silence too, in the printed notes and the report's alike (session 43: the
        report's line left the queue delay out and named no cause where the printed one did)."""
        return deadline_note(
            self.label,
            self.deadline_failures,
            self.request_timeout_s,
            self.server_restarted,
            self.queue_delay_s,
            self.deadline_silence,
            self.late_answers(),  # given up on, answered anyway: Triton counted more successes than the client
            self.early_deadline_failures,
        )

    def notes(self) -> list[str]:
        """What the figures alone do not say: failures, a restarted server, late requests, a p99 on few requests."""
        notes = (
            self.gone_note(),
            self.failure_note(),
            self.lost_workers_note(),
            self.unsent_note(),
            self.unanswered_note(),
            self.in_flight_note(),
            self.restart_note(),
            self.counters_note(),
            self.server_failures_note(),
            self.metrics_note(),
            self.outside_server_note(),
            self.server_percentiles_note(),
            self.utilization.busy_note(self.label) if self.utilization and not self.server_restarted else None,
            other_load_note(self.label, self.other_models, self.requests),
            self.deadline_line(),
            stall_note(self.label, self.mode, self.latency, self.timeline, self.stage_latencies),
            cut_note(
                self.label,
                self.mode,
                self.cut_at_end,
                self.requests - self.failed_requests,
                self.cut_max_ms,
                self.unsent,
            ),
            tail_note(self.label, self.latency.count),
            *self.stage_tail_notes(),
            *(f"{self.label}: {said}" for key in WARM_UP_NOTES if (said := (self.warm_up or {}).get(key))),
        )
        staged = (f"{self.label}, {stage.label}: {stage.note}" for stage in self.stages if stage.note)  # --shape
        swapped = versions_note(self.label, self.stages) or spans_note(self.label, self.version_spans)  # a swap
        mixed = (self.lengths.line(self.label), self.lengths_note()) if self.lengths else ()
        return [n for n in (*notes, self.send_lag_note(), self.stages_note(), swapped, *staged, *mixed) if n]

    def lengths_note(self) -> str | None:
        """One line where short requests waited as long as long ones (`length_figures.LengthFigures.batched_note`)."""
        return self.lengths.batched_note(self.label) if self.lengths else None

    def stage_tail_notes(self) -> list[str]:
        """A staged step's stages whose p99 rests on few requests, each one line as the whole window's is
        (`window_notes.tail_note`): session 45's `--shape` of 4, 0 and 4 users showed the 0-user stage's p99 of
        1.33 ms, from the 4 requests answered after its switch, with no word while its row reads as the others'."""
        return [
            n for stage in self.stages if (n := tail_note(f"{self.model} staged, {stage.label}", stage.latency.count))
        ]

    def stages_note(self) -> str | None:
        """Each stage's others' share of the cores where it differs between stages (`stage_figures.stages_note`);
        none where the server was replaced (the samples followed a process that stopped, as `busy_note`'s)."""
        return None if self.server_restarted else stages_note(self.label, self.stages)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
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
