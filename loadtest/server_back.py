"""Between two steps of a load run (or two models' runs or soaks): a server that stopped answering is waited for
(`quantserve serve` restarts it) and its restart noted, or the finished steps are saved with the report and one line
says so (`ServerGoneBetweenSteps`, exit 1); and `save_run`, a run saved as its file (a full disk said in its terms).
A probe's kill of tritonserver between two sweep steps had exited 2 with "no Triton server answers", the finished
step lost (session 58). `ToldServerPid`: --server-pid through such a restart (session 59). `restart_kept_on_error`:
the restart's note saved when the step after it fails with an error (session 60)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from loadtest.interruption import MeasuredSteps
from loadtest.load_pattern import LoadStep
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings
from loadtest.locust_processes import FULL_ERRNOS
from loadtest.server_pids import listening_pid
from quantserve.errors import QuantserveError

# a server that stopped answering between two steps is waited for this long before the next: `quantserve serve`
# restarts a dead tritonserver (its backoff doubles from 0.5 s, to 30 s), which then loads its models (3.9-4.4 s
# for the probe's); without a live serve record, another supervisor (systemd, a container's restart policy) may
RESTART_WAIT_S = 60.0
UNSUPERVISED_WAIT_S = 10.0
BACK_POLL_S = 0.25
BETWEEN_STEPS = "restarted_between_steps"  # the step's `warm_up` key for the line saying so (`results.WARM_UP_NOTES`)


class ServerGoneBetweenSteps(QuantserveError):
    """The server stopped answering between two steps (or two models' runs) and did not come back in time: the
    finished steps saved and reported as a run's are, the line says so; exit 1 (the run did not measure what was
    planned), not 2."""

    exit_code = 1


class _NotBack(Exception):
    """The server did not answer again within the wait (`wait_back`): `waited_s`, and the serve record found."""

    def __init__(self, waited_s: float, supervisor: object | None) -> None:
        super().__init__(f"not back after {waited_s:.1f} s")
        self.waited_s, self.supervisor = waited_s, supervisor


def server_back(
    measured: MeasuredSteps, settings: LoadSettings, steps: Sequence[LoadStep], number: int, out_dir: Path
) -> str | None:
    """Before a later step: None where the server answers; where it does not (tritonserver died after the step
    before), wait for it (`wait_back`) and return the step's note saying so. Where it does not come back, save the
    finished steps and the report and raise `ServerGoneBetweenSteps` (it raised "no Triton server answers", exit 2,
    and the finished steps were lost)."""
    try:
        return wait_back(settings, measured.server_pid, "steps", steps[number - 1].name, "step")
    except _NotBack as gone:
        raise _gone_between_steps(measured, settings, steps, number, out_dir, gone) from None


def wait_back(settings: LoadSettings, before_pid: int | None, between: str, after: str, this: str) -> str | None:
    """None where the server answers now; where it does not, wait for it to answer again with the model ready
    (`quantserve serve` restarts it in seconds: its record, `serving.endpoints`, says one runs; RESTART_WAIT_S, else
    UNSUPERVISED_WAIT_S) and return the note saying so: it restarted between `between` (pid `before_pid` → the one
    listening now), stopping after `after`, before `this` started. Raises `_NotBack` where it does not come back."""
    from serving.endpoints import find_endpoints

    if _answers(settings, live_only=True):
        return None
    started, supervisor = time.monotonic(), find_endpoints(settings.url)
    bound = RESTART_WAIT_S if supervisor is not None else UNSUPERVISED_WAIT_S
    while time.monotonic() - started < bound:
        time.sleep(BACK_POLL_S)
        if _answers(settings):
            waited, now = time.monotonic() - started, listening_pid(settings.url)
            pids = f" (pid {before_pid} → pid {now})" if before_pid and now and before_pid != now else ""
            return (
                f"the server restarted between {between}{pids}: it stopped answering after {after} and answered "
                f"again {waited:.1f} s later, before this {this} started; this {this} measured the new one"
            )
        if supervisor is not None and find_endpoints(settings.url) is None:
            break  # serve itself ended: nothing restarts it
    raise _NotBack(time.monotonic() - started, supervisor)


def _answers(settings: LoadSettings, live_only: bool = False) -> bool:
    """Whether the server says it is live (and, unless `live_only`, serves the run's model or version), asked
    once without retries."""
    from serving.call_failures import NO_RETRY
    from serving.client import TritonGrpcClient

    try:
        with TritonGrpcClient(settings.url, 2.0, settings.tls, NO_RETRY) as client:
            if not client.is_server_live():
                return False
            return live_only or client.is_model_ready(settings.model, settings.model_version)
    except QuantserveError:
        return False


def _not_back_line(settings: LoadSettings, before: str, gone: _NotBack) -> str:
    """The server at the run's address stopped answering `before` (a step, a model's run) and did not come back:
    how long it was waited for and why nothing brought it back."""
    from serving.endpoints import find_endpoints

    serve = getattr(gone.supervisor, "pid", None)
    if serve is None:
        why = "no `quantserve serve` restarts it here"
    elif find_endpoints(settings.url) is None:
        why = f"quantserve serve (pid {serve}), which restarts it, ended too"
    else:
        why = f"quantserve serve (pid {serve}) had not brought it back"
    return (
        f"the server at {settings.url} stopped answering {before} and did not answer again with model "
        f"'{settings.label}' ready in the {gone.waited_s:.0f} s waited ({why})"
    )


def _gone_between_steps(
    measured: MeasuredSteps,
    settings: LoadSettings,
    steps: Sequence[LoadStep],
    number: int,
    out_dir: Path,
    gone: _NotBack,
) -> ServerGoneBetweenSteps:
    """The finished steps saved (marked: the run stopped before step `number`) with the report, and the one line."""
    from loadtest.report import render

    step = steps[number]
    said = _not_back_line(settings, f"before step {number + 1} of {len(steps)} ({step.name})", gone)
    run = save_run(measured.stopped_before(step.name, f"{step.name} not run: {said}"), out_dir)
    path = out_dir / run.file
    _, html = render(out_dir)
    done = len(measured.results)
    which = "step 1's figures are" if done == 1 else f"steps 1-{done}' figures are"
    return ServerGoneBetweenSteps(f"{said}; {which} saved in {path} (report: {html})")


class ToldServerPid:
    """`--server-pid` through a restart between steps or models' runs: where the pid told was tritonserver itself (it
    listened at the run's address before the restart) and is gone, the server listening now is measured in its place,
    said once in the restart's note; a supervisor's pid (`quantserve serve`, the server's parent) outlives the restart
    and stays. A pid never the server is refused by each step's check (`step_checks.check_server_pid`) as before, which
    had refused the restarted server too: "--server-pid P: no such process", exit 2 (session 59)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def follow(self, before: int | None, url: str) -> str | None:
        """After a restart (`before`: the pid listening before it): where the pid told was that one and is gone,
        take the one listening now and return the note saying so; else None, the pid as it was."""
        if self.pid is None or self.pid != before or _runs(self.pid):
            return None
        now = listening_pid(url)
        if now is None:
            return None
        gone, self.pid = self.pid, now
        return f"--server-pid {gone} gone; measuring the server now listening (pid {now})"


def _runs(pid: int) -> bool:
    """Whether `pid` runs (a killed server its parent has not reaped yet, a zombie, is gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def restart_kept_on_error(
    measured: MeasuredSteps, step: str, error: Exception, back: str | None, restarted: str | None, out_dir: Path
) -> None:
    """A step that failed with an error (not an interrupt) after a restart: the run's finished steps saved as
    stopped in `step`, with the restart's note: `back`, the one before this step, said in why it stopped;
    `restarted`, the one before the run, on its first step where one finished. Saved as an interrupt saves them
    (`MeasuredSteps`); an error had lost the note with the run (session 60). Nothing where no restart came before."""
    if not back and not (restarted and measured.results):
        return
    run = measured.stopped_before(step, f"{step} not measured: it failed ({error})")
    if back and run.interrupted:
        run.interrupted.note = f"{run.interrupted.note}; before it, {back}"
    with contextlib.suppress(OSError):  # a full disk: the step's error is the one to say
        save_run(run, out_dir)


def joined(*notes: str | None) -> str | None:
    """The notes given, in one line (None where none is)."""
    return "; ".join(note for note in notes if note) or None


class ModelsInTurn:
    """Several models' runs (or soaks) one after another (`loadtest --model a,b`, `--soak`). Before each after the
    first, a server that stopped answering (tritonserver died after the last model's) is waited for as between two
    steps (`wait_back`), and the restart noted on the next one; where it does not come back, the finished ones (each
    saved as it finished; runs rendered into the report) are named in one line: `ServerGoneBetweenSteps`, exit 1. It
    raised "no Triton server answers" from the next model's start, exit 2, no report."""

    def __init__(self, models: int, out_dir: Path, kind: str = "run", server_pid: int | None = None) -> None:
        """`kind`: "run" (load runs, which the report renders) or "soak" (`soak-<model>.json`, which it does not);
        `server_pid`: --server-pid, followed through a restart (`told`, which each run measures)."""
        self.models, self.out_dir, self.kind = models, Path(out_dir), kind
        self.told = ToldServerPid(server_pid)
        self.done: list[tuple[str, str]] = []  # (model, the file it was saved as) of each finished run
        self.server_pid: int | None = None  # listening after the last run (or before it, where none listened after)

    def before(self, settings: LoadSettings) -> str | None:
        """Before `settings`' run: None where the server answers (or none ran before), else the restart's note."""
        if not self.done:
            self.server_pid = listening_pid(settings.url)
            return None
        last = f"model '{self.done[-1][0]}''s {self.kind}"
        try:
            back = wait_back(settings, self.server_pid, f"models' {self.kind}s", last, self.kind)
        except _NotBack as gone:
            raise self._gone(settings, gone) from None
        return joined(back, self.told.follow(self.server_pid, settings.url))

    def finished(self, run: LoadRun, settings: LoadSettings, back: str | None) -> LoadRun:
        """`run` kept, the restart before it (`back`) noted on it (`noted`)."""
        self.kept(run.model, self.noted(run, back).file, settings)
        return run

    def noted(self, run: LoadRun, back: str | None) -> LoadRun:
        """`run`, whole or interrupted, with the restart before it (`back`) noted and saved again: on its first step
        (the run measured the new server from its start), or, where it kept no step (interrupted before any window),
        in what its interruption says. It was noted only on a run that finished: an interrupted one lost it."""
        said = (run.results[0].warm_up or {}).get(BETWEEN_STEPS, "") if run.results else ""
        if not back or back in str(said):
            return run  # none, or the first step carries it already (`harness.measure_step`)
        if run.results:
            first = run.results[0]
            first.warm_up = {**(first.warm_up or {}), BETWEEN_STEPS: back}
        elif run.interrupted:
            run.interrupted.note = f"{run.interrupted.note}; before it, {back}"
        else:
            return run
        return save_run(run, self.out_dir)

    def kept(self, model: str, file: str, settings: LoadSettings) -> None:
        """`model`'s run finished, saved as `file` (its restart, if any, noted there by its caller)."""
        self.done.append((model, file))
        self.server_pid = listening_pid(settings.url) or self.server_pid

    def _gone(self, settings: LoadSettings, gone: _NotBack) -> ServerGoneBetweenSteps:
        from loadtest.report import render

        number = len(self.done) + 1
        before = f"before model '{settings.label}''s {self.kind} ({number} of {self.models})"
        said = _not_back_line(settings, before, gone)
        where = ", ".join(str(self.out_dir / file) for _, file in self.done)
        if self.kind == "run":
            where += f" (report: {render(self.out_dir)[1]})"
        one = "figures are" if self.kind == "run" else "soak is"
        which = f"model '{self.done[0][0]}''s {one}" if len(self.done) == 1 else "the finished models' are"
        return ServerGoneBetweenSteps(f"{said}; {which} saved in {where}")


def save_run(run: LoadRun, out_dir: Path) -> LoadRun:
    """`run` saved as `load-<model>.json`; where that cannot be written (a full disk), the line says every step's
    records are kept under raw/, which `quantserve report` reads once there is room (the probe found out alone)."""
    try:
        run.save(out_dir)
    except OSError as exc:
        if exc.errno not in FULL_ERRNOS:
            raise
        raise OSError(
            exc.errno,
            f"{exc.strerror}; the records of its {len(run.results)} step(s) are kept in {out_dir / 'raw'}: with "
            f"space freed, `quantserve report {out_dir}` reads them",
            exc.filename,
        ) from None
    return run
