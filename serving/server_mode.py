"""How a tritonserver that no `quantserve serve` recorded loads models, read from its command line.

A plain `tritonserver` started by hand leaves no serve record (serving.endpoints), so a client asking for a model its
repository index lists with no state (in the repository, not loaded) could not tell whether a load would come: it
waited its whole timeout and said only "model 'm' not ready after 30 s" (session 58). The server's
--model-control-mode says: under none (Triton's default) and explicit nothing loads the model unasked; under poll
Triton loads it at its next look at the repository, every --repository-poll-secs. The server is the process that
listens on the URL's port on this machine (serving.port_holder); one that cannot be read (another user's, a remote
URL) is not known, and the client waits as before. Where a poll did not load the model, the line names the server's
log: its --log-file, else the file its stderr goes to, else its stderr by pid (it had said "its log" and named none,
session 60).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from serving.port_holder import TRITONSERVER, listener_pids
from serving.tls import reaches_this_machine

DEFAULT_MODEL_CONTROL = "none"  # Triton's defaults, where its command line names no value
DEFAULT_POLL_S = 15.0
DEFAULT_HTTP_PORT = 8000
# A poll's loads show as LOADING, waited for; the margin covers the look itself and a poll held up by other loads.
POLL_MARGIN_S = 10.0


@dataclass(frozen=True)
class ListeningServer:
    """A tritonserver listening on a client's port, and how it loads models (its command line's options)."""

    pid: int
    model_control: str
    poll_s: float
    http_port: int
    log_path: str | None = None  # where its log goes: --log-file, else the file its stderr writes (`stderr_file`)

    @classmethod
    def from_argv(cls, pid: int, argv: list[str]) -> ListeningServer | None:
        """The server a command line starts, or None where it is not tritonserver's."""
        if not argv or Path(argv[0]).name != TRITONSERVER:
            return None
        poll = option_value(argv, "--repository-poll-secs")
        http = option_value(argv, "--http-port")
        return cls(
            pid,
            option_value(argv, "--model-control-mode") or DEFAULT_MODEL_CONTROL,
            float(poll) if poll and _is_number(poll) else DEFAULT_POLL_S,
            int(http) if http and http.isdigit() else DEFAULT_HTTP_PORT,
            option_value(argv, "--log-file") or None,
        )

    def unloaded(self, url: str, model: str, waited_s: float) -> tuple[str | None, bool]:
        """For `model` listed unloaded after a wait of `waited_s`: why it will not be served (None while a poll may
        still load it), and whether a load may still come."""
        if self.model_control != "poll":
            return self.never_loads_line(url, model), False
        if waited_s <= self.poll_s + POLL_MARGIN_S:
            return None, True
        return self.poll_missed_line(url, model, waited_s), False

    def never_loads_line(self, url: str, model: str) -> str:
        """The one line for a model a server under none or explicit control will not load unasked."""
        runs = f"{url}: model '{model}' is in the repository but not loaded: tritonserver (pid {self.pid}) runs with"
        if self.model_control == "explicit":
            load = f"http://{url.rpartition(':')[0]}:{self.http_port}/v2/repository/models/{model}/load"
            return (
                f"{runs} --model-control-mode=explicit and loads a model only when asked: load it (POST {load}, "
                f"Triton's load API) or restart it with --load-model={model}"
            )
        return (
            f"{runs} --model-control-mode=none (Triton's default) and loads the repository only "
            "at its start; restart it to serve the model, or run it with --model-control-mode=explicit or poll"
        )

    def poll_missed_line(self, url: str, model: str, waited_s: float) -> str:
        """The one line for a model a polling server left unloaded past its next look, naming where its log is
        (`(log: …)`, as the lines of a server that quantserve started name theirs)."""
        log = self.log_path or f"tritonserver's stderr, where pid {self.pid} was started (no --log-file; not a file)"
        return (
            f"{url}: model '{model}' is in the repository but not loaded after {waited_s:.0f} s: tritonserver "
            f"(pid {self.pid}) runs with --model-control-mode=poll and looks every {self.poll_s:g} s, yet did not load "
            "it: it refused the folder before loading it (its log names why: a config.pbtxt it cannot read, or one "
            f"named unlike its folder; log: {log})"
        )


def listening_tritonserver(url: str) -> ListeningServer | None:
    """The tritonserver listening on `url`'s port on this machine, or None: not local, no listener we can see, or
    another program (a listener of another user is not seen: its sockets are not ours to read)."""
    host, _, port = url.rpartition(":")
    if not port.isdigit() or not reaches_this_machine(host):
        return None
    for pid in listener_pids(int(port)):
        try:
            server = ListeningServer.from_argv(pid, psutil.Process(pid).cmdline())
        except psutil.Error:  # ended while we looked, or another user's
            continue
        if server is not None:
            return replace(server, log_path=server.log_path or stderr_file(pid))
    return None


def stderr_file(pid: int) -> str | None:
    """The file process `pid`'s stderr writes to (`tritonserver … 2> log`, or quantserve's own servers), or None:
    a terminal or a pipe, a file since removed, or a process we cannot read."""
    try:
        files = psutil.Process(pid).open_files()  # regular files only, with their descriptors on Linux
    except psutil.Error:
        return None
    return next((f.path for f in files if f.fd == 2), None)


def option_value(argv: list[str], name: str) -> str | None:
    """The value a command line gives option `name`, as `--name=value` or `--name value` (the last one wins, as in
    Triton's getopt parsing); None where it is not given."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith(f"{name}="):
            value = arg.partition("=")[2]
        elif arg == name and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
