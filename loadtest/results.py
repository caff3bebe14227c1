"""One measured load step and the notes on it: `LoadResult`, its figures as saved to and loaded from JSON in
`loadtest.step_figures` (a run of them, its file: `loadtest.load_run`; accuracy's: `loadtest.accuracy_results`). Its
notes' words are in `loadtest.failure_notes`, `loadtest.server_figure_notes`, `loadtest.step_label` and the other
`*_notes` modules.

Reports are rendered from these files only; nothing here or in the renderers recomputes a
measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.client_lags import ClientLags, ClientWindow, peak_in_flight
from loadtest.failure_notes import (
    ClientFailures,
    failed_share_line,
    failure_note,
    late_answers,
    others_failures,
    server_failures_note,
)
from loadtest.send_lag import queue_refused, unsent_held_by, window_note
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
from loadtest.stage_figures import spans_note, stages_note, versions_note
from loadtest.step_figures import StepFigures
from loadtest.step_label import step_label
from loadtest.timeline import Stall, peak_offered_rps, stall
from loadtest.unanswered_notes import OfferedRequests, in_flight_note, unanswered_note, unsent_note
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
class LoadResult(StepFigures):
    """One measured load step: its figures (`loadtest.step_figures.StepFigures`, the JSON fields) and the notes on
    what they alone do not say."""

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
        return window_note(self.label, self.client_window(), LATE_SEND_MS, self.workers, self._cores())

    def client_window(self) -> ClientWindow:
        """All the send-lag reading reads of this step (`send_lag.window_cause`): tune records it per window."""
        lags, _ = self._client_lags()
        stalled, offered = self._stalled()
        busiest = self.busiest_second_rps()  # with the outages: slots they filled (`send_lag.outage_slots`)
        return ClientWindow(lags, stalled, offered, busiest, tuple(self.outages), tuple(self.timeline))

    def busiest_second_rps(self) -> float | None:
        """The window's busiest second's offered arrivals, per second, as recorded; the timeline's busiest whole
        second in a file from before it was (`loadtest.timeline.peak_offered_rps`)."""
        return self.peak_offered_rps if self.peak_offered_rps is not None else peak_offered_rps(self.timeline)

    def _client_lags(self) -> tuple[ClientLags, float]:
        lags = (self.send_lag_p99_ms, self.send_lag_p50_ms, self.generator_lag_p99_ms)
        slots = self.peak_in_flight, self.max_in_flight, queue_refused(self.errors)
        held = self.in_flight_at_end + self.errors.get(UNANSWERED_ERROR, 0) + self.cut_at_end  # sent, unanswered
        offered = self.offered_rps or self.rate_rps
        return ClientLags(*lags, *slots, max(1, self.workers), held, self.unsent, offered), LATE_SEND_MS

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
        lags, late_ms = self._client_lags()
        held = unsent_held_by(lags, late_ms, *self._stalled(), self.outages, self.timeline)  # not the rate's
        return unsent_note(self.label, requests, self.max_in_flight, peak_in_flight(lags), held, max(1, self.workers))

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
