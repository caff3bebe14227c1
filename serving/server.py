"""Start and stop a real `tritonserver` as a child process and wait until it and its models are ready.

The binary and its backends are found by serving.triton_install (NVIDIA's NGC image, or the `nvidia-pytriton` wheel).

A repository whose path the Python backend's stub cannot start from (a space, a non-ASCII letter) is handed to
tritonserver as a plainly named symlink, made at each start and removed at each stop (see serving.stub_path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from quantserve.errors import InternalError, QuantserveError
from serving.bind_host import triton_address, url_host
from serving.control import ControlClient
from serving.model_states import (
    aborted_because,
    models_not_loaded,
    not_loaded_line,
    not_ready_line,
    stubs_not_started,
)
from serving.port_holder import starter_env
from serving.ports import accepts_connections, check_port_free
from serving.process_group import die_with_parent, terminate_group
from serving.server_options import ServerOptions
from serving.shm_regions import SHM_DIR as SHM_DIR  # where tests look for a server's regions
from serving.shm_regions import python_shm_prefix, remove_shm_regions
from serving.stub_path import RepositoryLink, link_for_stub, plain_temp_parent
from serving.tls import connect_host
from serving.triton_install import TritonInstall, explain_missing_backend, locate_tritonserver

LOG_TAIL_LINES = 15
PORT_PICKS = 4  # tries on ports the tool chose before a port taken at each is an error
METRICS_WAIT_S = 10.0  # at most this long for the metrics endpoint once the server is ready
PORT_TAKEN = "already in use"  # how tritonserver's log says a port it was to bind was taken (gRPC, HTTP, metrics)
# quantiles of each model's latencies over Triton's sliding window (prometheus-cpp's summary: the last 60 s)
SUMMARY_LATENCIES = "summary_latencies=true"


class _PortTaken(QuantserveError):
    """tritonserver could not bind a port: taken since it was checked free."""


class TritonServer:
    """A `tritonserver` child process run with `ServerOptions`; a context manager that always stops it."""

    def __init__(self, options: ServerOptions, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.log = log  # told what the server does that its caller did not ask for (a repository served by a link)
        self.repo = options.repo
        self.host = url_host(options.host)
        self.ports = options.ports
        self.log_path = options.log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._install: TritonInstall | None = None
        self.shm_prefix = python_shm_prefix()
        self.not_loaded: dict[str, str] = {}  # after a lenient start: model → why Triton did not load it
        self.still_running: list[int] = []  # after `stop`: pids of its process group that had not ended (rare)
        self.killed_at_stop = False  # after `stop`: tritonserver outlived SIGTERM by `stop_timeout_s` and was killed
        self.link: RepositoryLink | None = None  # while running: the plain path tritonserver is given for `repo`
        # the log made in the temp folder (no log_path given): removed at a clean stop unless something went wrong
        # while it was written (a start failed, the server died or was killed): the error lines name it
        self._temp_log: Path | None = None
        self._log_kept = False
        self._log_start = 0  # where this start's lines begin in the log

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.ports['grpc']}"

    @property
    def http_url(self) -> str:
        return f"{url_host(self.options.address('http'))}:{self.ports['http']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{url_host(self.options.address('metrics'))}:{self.ports['metrics']}/metrics"

    @property
    def control_url(self) -> str:
        """The HTTP endpoint this process uses for health and model loads (loopback when bound to all addresses)."""
        return f"http://{url_host(connect_host(self.options.address('http')))}:{self.ports['http']}"

    def control(self, timeout_s: float = 5.0) -> ControlClient:
        """A control client whose model loads watch this process: one killed meanwhile names how it ended."""
        return ControlClient(self.control_url, timeout_s, exit_cause=self.exit_cause)

    @property
    def served_repo(self) -> Path:
        """The repository path tritonserver is given: `repo`, or a plainly named link to it (serving.stub_path)."""
        return self.link.link if self.link is not None else self.repo

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, strict: bool = True) -> None:
        """Launch the server and block until it and every model it was asked to load are ready.

        A model Triton does not load is an error naming each such model (`strict`), or else (a restart, where
        the healthy models must come back, or `allow_failed_models`) noted in `not_loaded`; the others serve.
        """
        if self._process is not None:
            raise QuantserveError(f"tritonserver already running (pid {self.pid})")
        if not self.repo.is_dir():
            raise QuantserveError(f"{self.repo}: model repository not found")
        for pick in range(1, PORT_PICKS + 1):
            try:
                return self._start_on_ports(strict and not self.options.allow_failed_models)
            except _PortTaken:
                if not self.options.ports_chosen or pick == PORT_PICKS:
                    raise
                self.options = self.options.on_other_free_ports()
                self.ports = self.options.ports
                self._log_kept = False  # the log names the taken port; a start that then runs may remove it

    def _start_on_ports(self, strict: bool) -> None:
        for role, port in self.ports.items():
            try:
                check_port_free(self.options.address(role), port, role)
            except QuantserveError as exc:
                raise _PortTaken(str(exc)) from exc
        if self.log_path is None:
            self.log_path = self._temp_log = Path(tempfile.mkstemp(prefix="quantserve-tritonserver-", suffix=".log")[1])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.shm_prefix = python_shm_prefix()  # a restart's regions never share a name with the dead server's
        try:
            self._install = locate_tritonserver(plain_temp_parent())  # the stub's own path must be plain too
            self.link = link_for_stub(self.repo)  # else a stub dies and Triton waits out its startup timeout
            if self.link is not None and self.log is not None:
                self.log(self.link.line())
            # the log is appended to: this start's lines follow what is there
            self._log_start = self.log_path.stat().st_size if self.log_path.is_file() else 0
            self._launch(self._install)
            self.not_loaded = self._wait_ready(strict)
        except BaseException:
            self._log_kept = True  # the line that says why names the log
            self.stop()
            raise

    def _launch(self, install: TritonInstall) -> None:
        with open(self.log_path, "ab") as log:  # type: ignore[arg-type]  # appended: a restart keeps the crash
            self._process = subprocess.Popen(
                self.command(install),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **install.env, **starter_env()},  # known as ours once we are gone
                start_new_session=True,  # own process group: stopped by pid, never by name
                preexec_fn=die_with_parent(),
            )

    def command(self, install: TritonInstall) -> list[str]:
        """The tritonserver command line for this configuration."""
        args = [
            str(install.binary),
            f"--model-repository={self.served_repo}",
            f"--backend-directory={install.backends}",
            f"--model-control-mode={self.options.model_control}",
            "--exit-on-error=false",  # a model that fails to load is reported by name, not as a dead server
            # Strict: /v2/health/ready is false while any model failed to load; else true while the server is.
            f"--strict-readiness={str(not self.options.allow_failed_models).lower()}",
            f"--log-verbose={self.options.log_verbose}",
        ]
        for role, port in self.ports.items():
            args += [f"--{role}-address={triton_address(role, self.options.address(role))}", f"--{role}-port={port}"]
        if self.options.tls is not None:
            args += self.options.tls.flags()
        # Regions named by this start alone, so `stop` can remove what a killed server leaves in /dev/shm.
        args.append(f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}")
        if self.options.summary_latencies:
            args.append(f"--metrics-config={SUMMARY_LATENCIES}")
        args += [f"--load-model={name}" for name in self.options.load_models]
        return args

    def _wait_ready(self, strict: bool) -> dict[str, str]:
        deadline = time.monotonic() + self.options.startup_timeout_s
        client = self.control()
        while time.monotonic() < deadline:
            self._check_alive()
            never_loading = stubs_not_started(self._log_since_start())
            if never_loading:  # Triton waits on such a model forever: endpoints never open, strict or not
                raise QuantserveError(not_loaded_line(self.in_user_paths(never_loading), self.log_path))
            if client.is_live():  # Triton opens its endpoints once the models to load at start are tried
                index = client.repository_index()
                failed = self.in_user_paths(
                    models_not_loaded(index, self.repo, self.options.models_asked_for, self._log_since_start())
                )
                if failed and strict:
                    raise QuantserveError(not_loaded_line(failed, self.log_path))
                settled = all(m.get("state") != "LOADING" for m in index)
                if settled and (failed or client.is_ready()):  # a failed model holds strict readiness false
                    self._wait_metrics(deadline)
                    return failed
            time.sleep(0.25)
        raise QuantserveError(not_ready_line(self.options.startup_timeout_s, self.log_path) + self._log_tail())

    def _wait_metrics(self, deadline: float) -> None:
        """Until the metrics endpoint listens: Triton opens it after gRPC and HTTP (94 ms later in one log here), so
        ready came before it and a scrape straight after `start` was refused (a load test's first read of the
        counters; CI saw a test's watcher die of it). Bounded: a server whose metrics never open still serves."""
        host, port = self.options.address("metrics"), self.ports["metrics"]
        until = min(deadline, time.monotonic() + METRICS_WAIT_S)
        while not accepts_connections(host, port) and time.monotonic() < until:
            self._check_alive()
            time.sleep(0.05)

    def in_user_paths(self, reasons: dict[str, str]) -> dict[str, str]:
        """Triton's reasons with the link path put back as the repository path its user gave."""
        if self._install is not None:  # Triton's "unable to find backend library" named no backend it has
            reasons = {name: explain_missing_backend(why, self._install) for name, why in reasons.items()}
        if self.link is None:
            return reasons
        return {name: why.replace(str(self.link.link), str(self.repo)) for name, why in reasons.items()}

    def _check_alive(self) -> None:
        if self._process is None:
            raise InternalError("tritonserver checked before it was started")
        code = self._process.poll()
        if code is not None:
            error = _PortTaken if PORT_TAKEN in self._log_since_start() else QuantserveError
            raise error(f"tritonserver exited with code {code} while starting{self._log_tail()}")

    def _log_since_start(self) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return "\n  " + "\n  ".join(lines) if lines else ""

    def loaded_models(self) -> dict[str, list[str]]:
        """Ready models and their ready versions, from the server's repository index."""
        models: dict[str, list[str]] = {}
        for m in self.control().repository_index():
            if m.get("state") == "READY":
                models.setdefault(m["name"], []).append(str(m.get("version", "")))
        return models

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_cause(self) -> str | None:
        """None while running; else how the process ended: 'killed by SIGKILL', 'exited with code 1', or, where its
        log says it threw, 'aborted (SIGABRT): terminate called after throwing …' (it crashed by itself)."""
        code = self._process.poll() if self._process is not None else None
        if code is None:
            return None
        if code < 0:
            aborted = aborted_because(self._log_since_start())
            with contextlib.suppress(ValueError):
                name = signal.Signals(-code).name
                return f"aborted ({name}): {aborted}" if aborted else f"killed by {name}"
            return f"killed by signal {-code}"
        return f"exited with code {code}"

    def stop(self, kill: bool = False) -> None:
        """SIGTERM the server (it unloads models and stops its stubs), SIGKILL its process group after a timeout,
        and return once the group is gone (or `still_running` names what is left after GROUP_EXIT_S).

        `kill`: SIGKILL at once, for a hung server: a stopped or deadlocked process never honours SIGTERM, and
        waiting `stop_timeout_s` for it would only lengthen the outage.
        """
        process, self._process = self._process, None
        self.still_running, self.killed_at_stop = [], False
        if process is not None:
            ran = process.poll() is None  # not dead by itself before this stop
            self.still_running = terminate_group(process, self.options.stop_timeout_s, graceful=not kill)
            self.killed_at_stop = ran and not kill and process.returncode == -signal.SIGKILL
            remove_shm_regions(self.shm_prefix)
            self._log_kept = self._log_kept or not ran or process.returncode != 0
            self._remove_temp_log()
        if self._install is not None and self._install.scratch is not None:
            shutil.rmtree(self._install.scratch, ignore_errors=True)
        self._install = None
        if self.link is not None:
            self.link.remove()
        self.link = None

    def _remove_temp_log(self) -> None:
        """Remove the temp-folder log of a server that ran and stopped cleanly (exit 0 on SIGTERM): one was left per
        start, piling up in /tmp. A start after it makes a new one."""
        if self._temp_log is None or self._log_kept:
            return
        with contextlib.suppress(FileNotFoundError):
            self._temp_log.unlink()
        self.log_path = self._temp_log = None
