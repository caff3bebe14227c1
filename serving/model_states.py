"""Which models a tritonserver does not serve: those it did not load, and why; and loaded ones whose process died.

Triton lists a model that failed to load as UNAVAILABLE with a reason, but one it refused before loading (a
config.pbtxt it cannot parse, a config whose name is not its folder's) only by name, with no state and no reason:
the reason is in its log alone. A config that does not parse is named with the same parse, by Triton's own message
type; for any other, the first error line of the log that names the model is its reason (session 48: a name that
was not the folder's said "not loaded, no reason given" while the log said "unexpected directory name").

A Python backend model instance runs in its own process (`triton_python_backend_stub`, a child of
tritonserver whose command line names the model's folder and the instance). When it dies (kill -9, the
kernel's out-of-memory killer) Triton 2.51 keeps the model READY and fails every request to it with "Stub
process '<instance>' is not healthy"; its backend reaps a stub only when it unloads the instance, so the dead
one stays a zombie child of tritonserver, and how it ended can be read from /proc. `InstanceWatch` finds them.
"""

from __future__ import annotations

import contextlib
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from quantserve.errors import QuantserveError
from serving.control import ControlClient
from serving.model_config import CONFIG_NAME, parse_config

STUB_PROGRAM = "triton_python_backend_stub"
PROC_DIR = Path("/proc")
# Triton's log lines for a model load: begun per version, ended once per model (model_lifecycle.cc, Triton 2.51).
LOADING = re.compile(r'"loading: ([A-Za-z0-9_.-]+):(\d+)"')
LOAD_ENDED = re.compile(r"(?:successfully loaded|failed to load) '([A-Za-z0-9_.-]+)'")
# Triton's error lines: 'E1205 10:30:03.035724 23160 model_repository_manager.cc:1460] "<message>"'; a message's
# newlines are written as the two characters \n, and its first line is the reason.
ERROR_LINE = re.compile(r'^E\d{4} [^\]\n]*\] "(.*?)(?:\\n|"?$)', re.MULTILINE)
# A Python model's stub that could not start (no model.py): logged at info level, naming the file it looked for;
# Triton 2.51 then waits on that model forever, never opening its endpoints (session 48).
STUB_NOT_STARTED = re.compile(r"Failed to preinitialize Python stub: ([^\n]*?'([^'\n]*)'[^\n]*)$", re.MULTILINE)
# A C++ exception nobody caught (libstdc++'s words on stderr, which the log receives), and its what() line.
THREW = re.compile(r"terminate called after throwing an instance of '([^'\n]+)'(?:\n\s*what\(\):\s*([^\n]*))?")
STOPPED_BY = {psutil.STATUS_STOPPED: "SIGSTOP", psutil.STATUS_TRACING_STOP: "a debugger"}  # states T and t
STOP_SAID_AFTER_S = 1.0  # a stop shorter than this is not said


def models_not_loaded(
    index: list[dict[str, Any]], repo: Path, asked: tuple[str, ...] | None, log_text: str
) -> dict[str, str]:
    """Each model asked for (`asked`: names, "*" for all; None: every model) that is not READY → Triton's reason
    (its first line; a Python traceback follows in the log) or, for one listed with no state, why its config
    cannot be read or what Triton's log (`log_text`: this start's lines) says of it."""
    ready = {m["name"] for m in index if m.get("state") == "READY"}
    failed: dict[str, str] = {}
    for m in index:
        name, state = m.get("name", ""), m.get("state")
        if (asked is not None and "*" not in asked and name not in asked) or state not in ("UNAVAILABLE", None):
            continue
        if state == "UNAVAILABLE":
            failed[name] = (str(m.get("reason", "")).strip().splitlines() or ["unavailable"])[0]
        elif name not in ready:
            failed.setdefault(name, config_problem(repo / name, log_text))
    return failed


def config_problem(model_dir: Path, log_text: str) -> str:
    try:
        parse_config(model_dir / CONFIG_NAME)
    except QuantserveError as exc:
        return str(exc)
    return logged_error(log_text, model_dir.name) or "not loaded, no reason given"


def logged_error(log_text: str, name: str) -> str | None:
    """The first error Triton logged that names model or model folder `name` (it quotes both: 'x'), or None."""
    return next((m[1] for m in ERROR_LINE.finditer(log_text) if f"'{name}'" in m[1]), None)


def stubs_not_started(log_text: str) -> dict[str, str]:
    """The Python models whose stub could not start, name → Triton's reason (the model named by the path the stub
    looked in, `<repo>/<model>/<version>/<file>`): models Triton will wait on forever."""
    failed: dict[str, str] = {}
    for match in STUB_NOT_STARTED.finditer(log_text):
        failed.setdefault(Path(match[2]).parent.parent.name, match[1].strip())
    return failed


def aborted_because(log_text: str) -> str | None:
    """Why a tritonserver that died of a signal aborted by itself, from its log: "terminate called after throwing an
    instance of 'std::length_error' (basic_string::_M_replace_aux)", the last such; None if its log says none."""
    threw = list(THREW.finditer(log_text))
    if not threw:
        return None
    last = threw[-1]
    what = f" ({last[2].strip()})" if last[2] and last[2].strip() else ""
    return f"terminate called after throwing an instance of '{last[1]}'{what}"


def not_loaded_line(failed: dict[str, str], log_path: Path | None) -> str:
    """One line naming every model that failed to load, with its reason."""
    if len(failed) == 1:
        name, reason = next(iter(failed.items()))
        return f"model '{name}' failed to load: {reason} (log: {log_path})"
    listed = "; ".join(f"'{name}': {reason}" for name, reason in failed.items())
    return f"{len(failed)} models failed to load: {listed} (log: {log_path})"


def models_still_loading(log_path: Path | None) -> list[str]:
    """The models whose load Triton's log shows begun and not ended, in order: what a start that timed out waits on.

    Triton opens its endpoints only once every model asked for at start is tried, so the log is the only witness.
    """
    try:
        text = log_path.read_text(errors="replace") if log_path is not None else ""
    except OSError:
        return []
    begun = dict.fromkeys(m.group(1) for m in LOADING.finditer(text))
    ended = {m.group(1) for m in LOAD_ENDED.finditer(text)}
    return [name for name in begun if name not in ended]


def not_ready_line(waited_s: float, log_path: Path | None) -> str:
    """Why a start timed out: the models still loading, if the log names any, and the option that gives them longer."""
    loading = models_still_loading(log_path)
    if not loading:
        return f"tritonserver not ready after {waited_s:.0f} s (log: {log_path})"
    names = ", ".join(f"'{name}'" for name in loading)
    which = f"model {names} was" if len(loading) == 1 else f"models {names} were"
    return (
        f"tritonserver not ready after {waited_s:.0f} s: {which} still loading (a slow initialize?); "
        f"give it longer with --startup-timeout (log: {log_path})"
    )


@dataclass(frozen=True)
class ModelInstance:
    """One Python backend model instance: the process that runs `<repo>/<model>/<version>/model.py`."""

    model: str
    version: str
    name: str  # Triton's instance name, e.g. "dense_0_0"
    pid: int


@dataclass(frozen=True)
class InstanceStop:
    """A model instance's process found stopped (`still`), or running again after a stop of `seconds`; `how`: by
    what it was stopped."""

    instance: ModelInstance
    how: str
    seconds: float
    still: bool


def model_instance(pid: int, argv: list[str]) -> ModelInstance | None:
    """The instance a stub's command line names (stub, model file, shm region, two sizes, parent pid, library
    folder, ipc handle, instance name, …); None for any other process."""
    if len(argv) < 9 or Path(argv[0]).name != STUB_PROGRAM:
        return None
    model_file = Path(argv[1])
    return ModelInstance(model_file.parent.parent.name, model_file.parent.name, argv[8], pid)


def how_it_ended(pid: int) -> str:
    """How a process that its parent has not reaped yet ended: its wait status, field 52 of /proc/PID/stat."""
    try:
        stat = (PROC_DIR / str(pid) / "stat").read_text()
        status = int(stat[stat.rindex(")") + 2 :].split()[49])
    except (OSError, ValueError, IndexError):
        return "ended (how is not known)"
    if not status & 0x7F:
        return f"exited with code {status >> 8 & 0xFF}"
    number = status & 0x7F
    with contextlib.suppress(ValueError):
        if signal.Signals(number) == signal.SIGKILL:
            return "killed by SIGKILL (kill -9, or the kernel's out-of-memory killer)"
        return f"killed by {signal.Signals(number).name}"
    return f"killed by signal {number}"


class InstanceWatch:
    """Names the model instances of one tritonserver whose process died while Triton still serves them.

    A stub Triton stops on an unload is reaped at once, so a zombie stub seen at two looks in a row is one that
    died unasked. Each is named once; a new server (another pid) starts a new watch. A stub stopped (SIGSTOP, a
    debugger) keeps Triton's live and ready endpoints answering while its requests fail: `stops` names it.
    """

    def __init__(self) -> None:
        self._server_pid: int | None = None
        self._forget()

    def _forget(self) -> None:
        self._known: dict[int, ModelInstance] = {}  # stub pid → its instance, read while it ran
        self._zombies: set[int] = set()  # stubs ended but not reaped at the last look
        self._named: set[int] = set()
        self._running: set[int] = set()  # children not ended at the latest look
        self._stopped: dict[int, str] = {}  # stubs stopped at the latest look → by what
        self._stopped_since: dict[int, float] = {}  # stubs seen stopped by `stops` → when first seen so
        self._said_stopped: set[int] = set()

    def learn(self, server_pid: int | None) -> tuple[set[int], set[int]]:
        """Note the instances of the server's running stubs; returns the pids of its children and of its zombies.

        Called after a start or a load too: a stub is named by the command line read while it ran, so one killed
        before the next poll would otherwise go unnamed.
        """
        if server_pid is None:
            return set(), set()
        if server_pid != self._server_pid:
            self._forget()
            self._server_pid = server_pid
        try:
            children = psutil.Process(server_pid).children()
        except psutil.Error:  # the server itself is gone: the supervisor restarts it
            return set(), set()
        self._stopped = {}
        zombies = {child.pid for child in children if self._look(child)}
        self._running = {child.pid for child in children} - zombies
        return {child.pid for child in children}, zombies

    def running(self, model: str) -> set[int]:
        """The pids of `model`'s stubs that had not ended at the latest look."""
        return {pid for pid, instance in self._known.items() if instance.model == model and pid in self._running}

    def dead(self, server_pid: int | None) -> list[tuple[ModelInstance, str]]:
        """Instances whose process died since the last looks, each with how it ended; look every poll."""
        present, zombies = self.learn(server_pid)
        found = [(self._known[pid], how_it_ended(pid)) for pid in sorted(zombies & self._zombies - self._named)]
        self._named = {pid for pid in self._named | {i.pid for i, _ in found} if pid in present}
        self._known = {pid: instance for pid, instance in self._known.items() if pid in present}
        self._zombies = {pid for pid in zombies if pid in self._known}
        return found

    def stops(self, now: float) -> list[InstanceStop]:
        """Stubs stopped at two looks `STOP_SAID_AFTER_S` apart, and those said so that run again; each said once.

        Call after `dead` (its look), every poll: a stub stopped and then killed is named by `dead` alone.
        """
        found = []
        for pid, how in self._stopped.items():
            since = self._stopped_since.setdefault(pid, now)
            if pid not in self._said_stopped and now - since >= STOP_SAID_AFTER_S and pid in self._known:
                self._said_stopped.add(pid)
                found.append(InstanceStop(self._known[pid], how, now - since, still=True))
        for pid in [pid for pid in self._stopped_since if pid not in self._stopped]:
            since = self._stopped_since.pop(pid)
            if pid in self._said_stopped and pid in self._known and pid in self._running:
                found.append(InstanceStop(self._known[pid], "", now - since, still=False))
            self._said_stopped.discard(pid)
        return found

    def _look(self, child: psutil.Process) -> bool:
        """Note a running stub's instance, and whether it is stopped; True for a zombie (its command line is gone)."""
        try:
            status = child.status()
            if status == psutil.STATUS_ZOMBIE:
                return True
            if child.pid not in self._known:
                instance = model_instance(child.pid, child.cmdline())
                if instance is not None:
                    self._known[child.pid] = instance
            if status in STOPPED_BY:
                self._stopped[child.pid] = STOPPED_BY[status]
        except psutil.Error:  # ended while we looked: seen at the next look
            pass
        return False


def restarted_line(
    pid: int | None, after_s: float, ready: bool, not_loaded: dict[str, str], in_flight: list[str] | None = None
) -> str:
    """How a restarted tritonserver came back: ready again, or up but not ready, naming the models it does not serve,
    or else the versions still loading or unloading (`in_flight`, serving.restart_readiness) that hold it unready.

    Measured (issue 11): a restart that could not load a model (its file moved away) printed "tritonserver ready
    again" while /v2/health/ready answered 400: under strict readiness one model not loaded holds the server unready.
    """
    back = f"(pid {pid}) {after_s:.1f} s after restart"
    names = ", ".join(f"'{name}'" for name in not_loaded)
    which = f"model {names} is" if len(not_loaded) == 1 else f"models {names} are"
    if ready:
        return f"tritonserver ready again {back}" + (f"; {which} not served (named above)" if not_loaded else "")
    if not not_loaded:
        why = f" while {', '.join(in_flight)}" if in_flight else "; no model failed to load and none is loading"
        return (
            f"tritonserver back {back} but not ready yet (/v2/health/ready false{why}); a line follows once it is ready"
        )
    return (
        f"tritonserver back {back} but not ready (/v2/health/ready false while {which} not served, named above); "
        "the other models serve: deploy a version that loads, or run serve --allow-failed-models to judge readiness "
        "per model"
    )


_LOADING = re.compile(r'"loading: (?P<model>[^"]+):(?P<version>\d+)"')
_LOADED = re.compile(r"successfully loaded '(?P<model>[^']+)'")
_INSTANCE = re.compile(r"TRITONBACKEND_ModelInstanceInitialize: (?P<instance>\S+?)_\d+_\d+ ")


def crash_suspect(log_tail: str) -> str:
    """Which model a tritonserver that died while starting was bringing up, from its log's tail: "; it was loading model
    'bad' (its instance was initializing): remove it from the repository or roll it back", or "".

    Session 46: a model whose initialize crashed the server (SIGSEGV) took every model down on each restart, and serve
    said "gave up after 3 restarts … (tritonserver exited with code -11 while starting)", never naming it, though
    each crash's log ended with "TRITONBACKEND_ModelInstanceInitialize: bad_0_0". The model whose instance began
    initializing last, of those whose load began and never ended, is named; else the unfinished loads are."""
    loading = [m["model"] for m in _LOADING.finditer(log_tail)]
    loaded = {m["model"] for m in _LOADED.finditer(log_tail)}
    unfinished = [model for model in dict.fromkeys(loading) if model not in loaded]
    initializing = [m["instance"] for m in _INSTANCE.finditer(log_tail) if m["instance"] in unfinished]
    if initializing:
        return (
            f"; it was loading model '{initializing[-1]}' (its instance was initializing): remove it from the "
            "repository or roll it back"
        )
    if unfinished:
        named = ", ".join(f"'{model}'" for model in unfinished)
        return f"; it was loading {named}"
    return ""


def load_failed_words(served: list[int], exc: str, change: str) -> str:
    """A failed load leaves what was served before (`served`, READY now) serving: say so and which versions, or that
    nothing of the model is served. After a `change` to a served version's files, what serves is what was loaded
    before it."""
    if not served:
        return f"{'reload failed' if change else 'failed to load'}, not served: {exc}"
    if change:
        return (
            f"reload failed, versions {served} keep serving what was loaded before the change (a restart would "
            f"not load them): {exc}"
        )
    return f"reload failed, previous versions keep serving (versions {served}): {exc}"


def ready_versions_now(control: ControlClient, name: str) -> list[int]:
    """The versions of `name` served now; [] when none is or the server does not answer."""
    with contextlib.suppress(QuantserveError):
        return control.ready_versions(name)
    return []
