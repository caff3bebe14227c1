"""How to run one tritonserver: repository, address and ports, model control, TLS, log, timeouts, checked at once.

Built by `quantserve serve`, the demo, the benchmarks and tune (often on ports free now) and handed to
`serving.server.TritonServer`; a bad port or host, or an unknown model control mode, is refused here, in one line,
before anything starts. Kept apart from the process it configures so that its checks read on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from serving.bind_host import bind_address
from serving.ports import free_ports
from serving.tls import ServerTls, is_loopback

MODEL_CONTROL_MODES = ("none", "explicit", "poll")


@dataclass(frozen=True)
class ServerOptions:
    """How to run one tritonserver: repository, address and ports, model control, log, timeouts.

    Built once by `quantserve serve` (or a caller) and handed to `TritonServer`.
    """

    repo: Path
    grpc_port: int = 8001
    http_port: int = 8000
    metrics_port: int = 8002
    host: str = "127.0.0.1"
    log_path: Path | None = None  # default: a new file in the temp folder
    model_control: str = "none"
    load_models: tuple[str, ...] = ()  # with model_control "explicit": the models to load at start
    startup_timeout_s: float = 120.0
    stop_timeout_s: float = 20.0
    log_verbose: int = 0
    tls: ServerTls | None = None  # gRPC over TLS (mutual with a client CA); HTTP and metrics then stay on loopback
    # Serve the models that load and name the others (Triton's --exit-on-error=false), with readiness judged per model:
    # under Triton's strict readiness one model that failed to load held /v2/health/ready false for all of them.
    allow_failed_models: bool = False
    # The tool picked the ports itself (`on_free_ports`): a port taken between the pick and tritonserver's bind (an
    # ephemeral port an outgoing connection took meanwhile; CI saw gRPC's "already in use") is picked again at start.
    ports_chosen: bool = False
    # Triton's latency summaries (`--metrics-config=summary_latencies=true`): p50/p90/p95/p99 of each model's request,
    # queue and compute times over a sliding window, beside its cumulative counters; a load test reads them
    summary_latencies: bool = True

    def __post_init__(self) -> None:
        bind_address(self.host)  # a name that resolves to nothing is refused here, before anything starts
        if self.model_control not in MODEL_CONTROL_MODES:
            raise QuantserveError(
                f"model control mode '{self.model_control}' is not one of {', '.join(MODEL_CONTROL_MODES)}"
            )
        self._check_ports()
        object.__setattr__(self, "repo", Path(self.repo).resolve())
        object.__setattr__(self, "log_path", Path(self.log_path) if self.log_path else None)
        object.__setattr__(self, "load_models", tuple(self.load_models))

    def _check_ports(self) -> None:
        """Ports in 1–65535 and three different ones (70000 was an OverflowError traceback; one port for gRPC and
        HTTP was tritonserver's exit 1 under its usage text)."""
        for role, port in self.ports.items():
            if not 0 < port < 65536:
                raise QuantserveError(f"--{role}-port {port} is not a port (1–65535)")
        if len(set(self.ports.values())) < 3:
            listed = ", ".join(f"--{role}-port {port}" for role, port in self.ports.items())
            raise QuantserveError(f"the three ports must differ: {listed}")

    @classmethod
    def on_free_ports(cls, repo: Path | str, **changes: Any) -> ServerOptions:
        """Options for a local server on three different ports free now, asked for together (one by one from a short
        --port-range, a server got one port three times)."""
        grpc, http, metrics = free_ports(3)
        ports = {"grpc_port": grpc, "http_port": http, "metrics_port": metrics, "ports_chosen": True}
        return cls(Path(repo), **{**ports, **changes})

    def on_other_free_ports(self) -> ServerOptions:
        """These options on three ports free now (a port the tool chose was taken before tritonserver bound it)."""
        grpc, http, metrics = free_ports(3)
        return replace(self, grpc_port=grpc, http_port=http, metrics_port=metrics)

    @property
    def ports(self) -> dict[str, int]:
        """Port by role ("grpc", "http", "metrics"), the order tritonserver's flags take."""
        return {"grpc": self.grpc_port, "http": self.http_port, "metrics": self.metrics_port}

    def address(self, role: str) -> str:
        """Where `role` binds: the host, except HTTP and metrics stay on loopback under TLS (Triton has no HTTPS)."""
        if self.tls is not None and role != "grpc":
            return "127.0.0.1"
        return self.bound_host

    @property
    def bound_host(self) -> str:
        """The one address `host` binds (serving.bind_host: tritonserver's HTTP and metrics take no names)."""
        return bind_address(self.host)

    @property
    def models_asked_for(self) -> tuple[str, ...] | None:
        """The models loaded at start: those named under explicit model control, else (None) every one."""
        return self.load_models if self.model_control == "explicit" else None

    @property
    def exposed_without_tls(self) -> bool:
        """True when gRPC listens beyond loopback in plain text."""
        return self.tls is None and not is_loopback(self.bound_host)
