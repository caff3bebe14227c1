"""The Locust processes of one load step: started so they die with us and in their own process group, waited for
with a deadline (a hung one's stacks into its log), stopped gracefully on Ctrl-C, and their exits read.

`loadtest.harness` builds their command lines; `loadtest.step_result` reads what they recorded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import loadtest
from quantserve.errors import QuantserveError

STDERR_TAIL_LINES = 15
STOP_GRACE_S = 10.0  # an interrupted Locust run closes its window and writes its records within this, or is killed
# The master ends the run on time whatever its workers do (at its end it sends them "quit" and waits for none); each
# worker then writes its records and exits within this, or has stopped reporting (stopped, hung) and is killed.
WORKER_EXIT_GRACE_S = 10.0
PROBE_BYTES = 1 << 16  # written and synced where Locust recorded, after it failed: a full disk refuses it
# a full disk, a quota, and a file size limit (`ulimit -f`: EFBIG) all cut Locust's records alike
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class LocustStopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a step's Locust run, raised once its processes were stopped: `at` is when the
    interrupt came (wall time), not when they ended (a --workers run took 10 s more to stop: its window and
    load-*.json said so)."""

    def __init__(self, at: float) -> None:
        super().__init__("interrupted")
        self.at = at


def stop_gracefully(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop an interrupted Locust run the way its run time would: SIGTERM to the master (or the single process),
    which closes the measured window, writes what it recorded and tells the workers that joined it to quit; once it
    has ended, SIGTERM to every worker still running (each writes its records as it quits; one still starting, never
    told, stayed the whole grace before). Waits up to STOP_GRACE_S in all; a second Ctrl-C ends the wait at once
    (the caller kills what is left)."""
    deadline = time.monotonic() + STOP_GRACE_S
    for index, process in enumerate(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        if index == 0:  # the master first: the window ends at its stop, with every worker's users still loading
            _wait_until(process, deadline)
    for process in processes[1:]:
        _wait_until(process, deadline)


def _wait_until(process: subprocess.Popen[bytes], deadline: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=max(0.0, deadline - time.monotonic()))


def lost_workers(workers: list[subprocess.Popen[bytes]]) -> list[str]:
    """Each worker that exited non-zero or by a signal, once the master is done, as "worker1 killed by SIGKILL",
    and each still running WORKER_EXIT_GRACE_S later, killed, as "worker1 (pid 42, …) stopped reporting": the master
    carries on without it and its users' requests are lost, so the run must not pass as complete. A SIGSTOPped worker
    held the run here for 30 s, then a TimeoutExpired traceback threw away what the others had measured."""
    deadline = time.monotonic() + WORKER_EXIT_GRACE_S
    lost = []
    for index, worker in enumerate(workers):
        try:
            code = worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            lost.append(f"worker{index} {_kill_silent(worker)}")
            continue
        if code:
            lost.append(f"worker{index} {exit_cause(code)}")
    return lost


def _kill_silent(worker: subprocess.Popen[bytes]) -> str:
    """SIGKILL a worker still running after the master's end (it ends a stopped process too), and say so: its
    records, written only as it quits, are lost."""
    stopped = _is_stopped(worker.pid)
    worker.kill()
    worker.wait()
    how = "its process stopped, " if stopped else ""
    return f"(pid {worker.pid}, {how}killed {WORKER_EXIT_GRACE_S:g} s after the master ended) stopped reporting"


def _is_stopped(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_STOPPED)
    except psutil.Error:
        return False


def exit_cause(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def spawn(command: list[str], record_dir: Path, name: str) -> subprocess.Popen[bytes]:
    """A Locust process that dies with us: a SIGKILLed loadtest left its master and workers loading the server
    until their run time ran out (an hour, under --soak 1h). In its own process group, so a terminal's Ctrl-C
    reaches only us and we stop it once, in order (`stop_gracefully`)."""
    from serving.process_group import die_with_parent

    record_dir.mkdir(parents=True, exist_ok=True)
    with open(record_dir / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(),
            preexec_fn=die_with_parent(),
            process_group=0,
        )


def _env() -> dict[str, str]:
    # The locustfiles import `loadtest` and `quantserve`: make the project importable even uninstalled.
    root = str(Path(loadtest.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    pythonpath = f"{root}{os.pathsep}{path}" if path else root
    return {**os.environ, "PYTHONPATH": pythonpath, "PYTHONFAULTHANDLER": "1"}


def wait_for(process: subprocess.Popen[bytes], timeout_s: float, record_dir: Path) -> None:
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack into the log
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        raise QuantserveError(f"locust did not finish within {timeout_s:.0f} s (logs: {record_dir})") from None
    if code != 0:
        check_disk_space(record_dir)
        raise QuantserveError(_exit_line(code, record_dir))


def _exit_line(code: int, record_dir: Path) -> str:
    """`locust exited with code N:` and the last lines of its log, or that the log is empty."""
    path = record_dir / ("master.log" if (record_dir / "master.log").exists() else "locust.log")
    lines = path.read_text().splitlines()[-STDERR_TAIL_LINES:]
    if not "".join(lines).strip():
        return f"locust exited with code {code}, its log empty ({path})"
    return f"locust exited with code {code}:\n  " + "\n  ".join(lines)


def check_disk_space(folder: Path) -> None:
    """The system's own OSError naming `folder` (`FOLDER: No space left on device`, over quota, or a file too large)
    when a block of PROBE_BYTES cannot be written there, or a record there stopped at the file size limit
    (`_size_limit_reached`): asked once a Locust process failed, since on a full disk its log is empty (its traceback
    could not be written either) and numpy's error for the records it cut names no cause. Under `ulimit -f 40` the
    run ended `locust exited with code 2: OSError: 11984 requested and 5104 written` and Locust's table, a cut
    latencies file left behind."""
    _size_limit_reached(folder)
    probe = folder / ".space-probe"
    try:
        with open(probe, "wb") as handle:
            handle.write(bytes(PROBE_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise OSError(exc.errno, _reason(exc.errno, exc.strerror), str(folder)) from None
    finally:
        probe.unlink(missing_ok=True)


def _size_limit_reached(folder: Path) -> None:
    """EFBIG naming `folder` where a file there is as large as this process's file size limit (RLIMIT_FSIZE, which
    the Locust processes inherit): the system stopped writing it there, though more than PROBE_BYTES fit."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY or not folder.is_dir():
        return
    if any(path.is_file() and path.stat().st_size >= limit for path in folder.iterdir()):
        raise OSError(errno.EFBIG, _reason(errno.EFBIG), str(folder))


def _reason(code: int, strerror: str | None = None) -> str:
    """The system's reason, and for EFBIG what set the limit (a file system's own is seldom met by a record)."""
    reason = strerror or os.strerror(code)
    return f"{reason} (the file size limit, ulimit -f, cut the records written here)" if code == errno.EFBIG else reason
