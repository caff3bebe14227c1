"""Whether the `quantserve serve` recorded as watching a repository can load a change written into it now.

A deploy without `--url` writes the version and leaves the loading to the serve watching the repository. Measured
(session 56): with that serve stopped (`kill -STOP`), deploy said "deployed … version 2", exit 0, while version 1
was still served 20 s later and 2 was loaded only after SIGCONT. A serve killed without its clean-up leaves its
endpoint record (serving.endpoints) behind, and its tritonserver died with it (PR_SET_PDEATHSIG): nothing it
started loads the version either.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from serving.endpoints import ServedEndpoints, served_records
from serving.repository_lock import STOPPED

# A record is written once tritonserver is ready, seconds after serve started; a process that started after its
# record was written is another one that was given the pid of a serve gone meanwhile.
PID_REUSED_AFTER_S = 1.0


def serve_state(endpoints: ServedEndpoints, written_at: float) -> str:
    """The recorded serve's state: "running", "stopped" (T), "traced" (t), or "gone" (no such process, a zombie, or
    its pid reused by a process started after the record was written at `written_at`, epoch seconds)."""
    try:
        process = psutil.Process(endpoints.pid)
        status, started = process.status(), process.create_time()
    except psutil.NoSuchProcess:
        return "gone"
    except psutil.Error:  # another user's process: not ours to judge
        return "running"
    if status == psutil.STATUS_ZOMBIE or started > written_at + PID_REUSED_AFTER_S:
        return "gone"
    if status in STOPPED:
        return "stopped" if status == psutil.STATUS_STOPPED else "traced"
    return "running"


def watching_serve_note(repo: Path, version: int) -> str | None:
    """One line where the serve recorded as watching `repo` will not load `version` just written there: stopped, or
    gone (its stale record is removed, as serving.endpoints does). None where a serve of it runs, where none is
    recorded, and where a stopped serve does not do the loading (`--model-control poll`: Triton loads it; `none`:
    serving.endpoints.not_loaded_until_restart says so)."""
    states = recorded_states(repo)
    if not states or any(state == "running" for state, _ in states):
        return None
    for state, endpoints in states:
        if state != "gone" and endpoints.model_control == "explicit":
            return _stopped_line(endpoints, repo, version, state)
    if all(state == "gone" for state, _ in states):
        return _gone_line([endpoints.pid for _, endpoints in states], repo, version)
    return None


def stopped_watcher(repo: Path) -> str | None:
    """Where the only serves recorded as watching `repo` under explicit model control are stopped (or traced):
    "quantserve serve (pid N) watching R is stopped (SIGSTOP?)", for a command that waits on the watcher to refuse
    up front (a rollback without --url waited its 60 s for a load that could not come, then put the config back);
    None otherwise."""
    states = recorded_states(repo)
    if any(state == "running" for state, _ in states):
        return None
    for state, endpoints in states:
        if state in ("stopped", "traced") and endpoints.model_control == "explicit":
            how = "stopped by a debugger (state t)" if state == "traced" else "stopped (SIGSTOP?)"
            return f"quantserve serve (pid {endpoints.pid}) watching {repo} is {how}"
    return None


def recorded_states(repo: Path) -> list[tuple[str, ServedEndpoints]]:
    """Each serve recorded as serving `repo`, with its `serve_state`; the records of those gone are removed."""
    states = []
    for path, endpoints in served_records():
        if Path(endpoints.repo).resolve() != repo.resolve():
            continue
        try:
            written_at = path.stat().st_mtime
        except OSError:  # removed meanwhile: its serve has exited
            continue
        state = serve_state(endpoints, written_at)
        if state == "gone":
            path.unlink(missing_ok=True)
        states.append((state, endpoints))
    return states


def _gone_line(pids: list[int], repo: Path, version: int) -> str:
    listed = ", ".join(map(str, pids))
    if len(pids) == 1:
        who = f"(pid {listed}), recorded as watching {repo}, is gone (its record was stale"
    else:
        who = f"(pids {listed}), recorded as watching {repo}, are gone (their records were stale"
    return (
        f"note: quantserve serve {who}, now removed): version {version} is written, and no quantserve serve loads "
        f"it until one starts on {repo}"
    )


def _stopped_line(endpoints: ServedEndpoints, repo: Path, version: int, state: str) -> str:
    pid = endpoints.pid
    if state == "traced":
        how, resume = "stopped by a debugger (state t)", "until its debugger lets it run"
    else:
        how, resume = "stopped (SIGSTOP?)", f"until it runs again (kill -CONT {pid})"
    written = f"version {version} is written but not live {resume}"
    return f"note: quantserve serve (pid {pid}) watching {repo} is {how}: {written}"
