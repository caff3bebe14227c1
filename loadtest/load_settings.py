"""What one load run measures and how (`LoadSettings`: the target, the data, the load pattern, the Locust processes),
checked before any process starts, and where each step's files go. Apart from the harness so that the command
lines it builds and the result it reads (`loadtest.step_result`) share one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from loadtest.data_file import read_data
from loadtest.load_pattern import ClosedLoop, LoadPattern, LoadStep, OpenLoop, TraceReplay
from loadtest.request_data import check_request_size
from loadtest.result_files import safe_name
from loadtest.trace_plan import figure, span
from quantserve.checks import positive_seconds
from quantserve.errors import QuantserveError
from serving.model_config import check_version_name
from serving.model_version import addressed
from serving.tls import ClientTls

ONE_USER = ClosedLoop(users=1)  # frozen, so one shared default is safe


@dataclass
class LoadSettings:
    """What to load and how: the target, the data, the load pattern, the Locust processes."""

    url: str
    model: str
    data: Path
    pattern: LoadPattern = ONE_USER
    duration_s: float = 10.0  # per measured step
    request_batch: int = 1
    workers: int = 0
    metrics_url: str | None = None
    tls: ClientTls | None = None  # gRPC over TLS (mutual with a client certificate)
    max_in_flight: int = 64  # open loop: requests a Locust process keeps in flight; later arrivals wait in the client
    request_timeout_s: float = 30.0  # the client's deadline per request (gRPC): a slower answer fails
    model_version: str = ""  # the version every request names (--model-version); "": Triton's choice, the newest
    # the version whose counters Triton's figures count where the requests name none (tune: the version it just
    # deployed; the one before, still unloading as a window opened, had its counts summed in and then zeroed: -413
    # requests, the trial's Triton figures lost, probe 64D); "": every served version summed
    counters_version: str = ""
    # the input that counts each row's real positions, which requests are cut by (--length-input NAME|none); None: the
    # one the model's build was told, recorded in its served config (`request_shapes.ServedInputs.told`)
    length_input: str | None = None
    queue_delay_s: float | None = None  # the model's max_queue_delay, read by `harness.check_ready` (None: not read)
    # how the requests' padding is sent, read by `harness.check_ready` and recorded with each step: the inputs each
    # length (or mask) input cuts (`request_data.cut_inputs`; None: not read) and the line that says so (`padding_note`)
    cut_by: dict[str, list[str]] | None = None
    padding_note: str | None = None

    @property
    def label(self) -> str:
        """The run's name in results and reports: `model@version` where one version is addressed (an A/B of two
        live versions loaded into one folder keeps both runs), else the model's."""
        return addressed(self.model, self.model_version)

    @property
    def counted_version(self) -> str:
        """The one version Triton's counters are read for: the addressed one, else `counters_version` ("": all)."""
        return self.model_version or self.counters_version

    def check(self) -> None:
        """Reject impossible settings before any process starts."""
        self.pattern.check()
        if self.duration_s <= 0:
            raise QuantserveError(f"--duration must be positive, got {self.duration_s:g} s")
        if self.workers < 0:
            raise QuantserveError(f"--workers must be 0 or more, got {self.workers}")
        if self.request_batch < 1:
            raise QuantserveError(f"--request-batch must be at least 1, got {self.request_batch}")
        if self.max_in_flight < 1:
            raise QuantserveError(f"--max-in-flight must be at least 1, got {self.max_in_flight}")
        positive_seconds("--request-timeout", self.request_timeout_s)
        check_expected_arrivals(self.pattern, self.duration_s)
        if self.model_version:
            check_version_name(self.model_version)
        data = read_data(self.data)  # a missing or unreadable data file is one clear line, here
        check_request_size(self.data, data, self.request_batch, 0, "--request-batch")

    def step_name(self, step: LoadStep) -> str:
        """Where one step's raw files and Locust CSVs go: `<model>-u16`, `<model>-rate50-poisson` (`<model>_2-u16`
        for version 2)."""
        return f"{safe_name(self.label)}-{step.name}"


def check_expected_arrivals(pattern: LoadPattern, duration_s: float) -> None:
    """Refuse an open loop that expects under one arrival in the window: a rate would measure nothing and pass; a
    trace's window before its first arrival (an Azure Functions day, the first 38 s in, over 1 s) ran, measured
    nothing and exited 1."""
    for step in pattern.steps():
        if isinstance(step, OpenLoop) and step.rate * duration_s < 1:
            raise QuantserveError(
                f"--rate {step.rate:g} over --duration {duration_s:g}s expects {step.rate * duration_s:.2g} requests, "
                "fewer than one: raise --rate or --duration"
            )
        if isinstance(step, TraceReplay) and step.trace.arrivals_within(duration_s) < 1:
            first = float(step.trace.offsets_s[0])
            raise QuantserveError(
                f"--trace {step.trace.source} over --duration {duration_s:g}s offers no arrival (the trace's mean "
                f"{figure(step.trace.mean_rate_rps)} req/s, its first arrival {span(first)} in): raise --duration to "
                f"at least {math.floor(first) + 1}s or --trace-speed"
            )


def step_paths(settings: LoadSettings, step: LoadStep, out_dir: Path) -> tuple[Path, Path]:
    """Where a step's Locust processes record (`raw/<step>`) and the prefix of Locust's CSVs (`locust/<step>`)."""
    return out_dir / "raw" / settings.step_name(step), out_dir / "locust" / settings.step_name(step)
