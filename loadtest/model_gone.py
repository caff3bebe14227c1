"""A load run whose model stops being served ends there, its figures up to then kept.

Triton answers a request for a model it no longer serves at once (NOT_SERVED: "Request for unknown model: 'm'
version 3 is not at ready state", "… has no available versions"), and a run used to go on sending for the rest of its
window: 10.8 s of such answers, 754 failed requests, then its notes. Such an answer is judged by asking Triton
whether it still serves the model, or the version the run names (--model-version, NAME@N): a "no" ends the run
within a second. A version swapping in keeps the model ready throughout: Triton loads the new version before it
unloads the old (readiness read every 20 ms across a deploy and a rollback, under `serve`'s explicit and polled
model control, never read false; no request failed), so a run that names no version goes on across a swap, and one
that names a version stops only when that version goes.

A model that is not ready is not yet gone where Triton's index shows it LOADING or UNLOADING, or for SETTLE_S after
the first "no": `serve` brings a model whose instance died back by unloading and loading the same version, and a run
that asked once in between was cut short, blamed on "a deploy or rollback", though version 1 served again 2.3 s later
(session 46; an 8-user run cut at 8.2 of 15 s, exit 1). Its failed requests count as any outage's do.

The pure parts live here: the pacing of that question (`ServedCheck`, asked in each Locust process), the record the
Locust master writes (`model_gone.json` in the step's raw folder), and the step's result cut short (`ModelGoneResult`,
its one line). The Locust side is in `loadtest.grpc_user`; `loadtest.step_result` reads the record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.request_failures import readable_failure
from loadtest.results import LoadResult
from serving.call_failures import NOT_SERVED

GONE_FILE = "model_gone.json"  # in the step's raw folder, written by the Locust master (or the single process)
# a process asks Triton at most this often: every request fails once the model is gone (64 in flight, open loop), and
# a NOT_SERVED while the model stays ready (none seen across swaps, but possible) must not become a stream of questions
ASK_EVERY_S = 0.2
# a model not ready and not LOADING/UNLOADING is gone once it stays so this long: serve's reload unloads, then loads
# (a few ms apart), and a withdrawn model's run still ends within about a second
SETTLE_S = 1.0
RELOADING = "reloading"  # what `ready()` answers where Triton's index shows the model LOADING or UNLOADING


def not_served(failure: BaseException) -> bool:
    """Whether `failure` is Triton saying it does not serve the model or version asked for (`NOT_SERVED`)."""
    said = str(readable_failure(failure))
    return any(words in said for words in NOT_SERVED)


@dataclass
class ServedCheck:
    """One Locust process's verdict on whether the run's model is still served: asked of Triton after a NOT_SERVED
    answer (`judge`), at most once per ASK_EVERY_S; once gone, told to the Locust master once (`to_tell`)."""

    gone: dict[str, Any] | None = None  # the record, once Triton said it serves the model (or version) no more
    told: bool = False
    asked_at: float = -math.inf  # `now` as `judge` was last given it when it asked
    # the first "no" since the model was last ready: (its failure's end, wall time; `now` then); None while ready
    unready: tuple[float, float] | None = None

    def judge(
        self,
        failure: BaseException,
        ended_at: float,
        addressed: tuple[str, str],
        ready: Callable[[], bool | str],
        now: float,
    ) -> bool:
        """Whether the model (`addressed`: name, and the version the run names or "") is gone, asking `ready()` after
        a NOT_SERVED `failure` that ended at wall time `ended_at`: True, False, or RELOADING (not ready, Triton's
        index shows it loading or unloading). Gone once "no" has held SETTLE_S, placed at the first "no"'s failure; a
        model ready again, or reloading, is not gone. A question that gets no answer decides nothing: a server that
        stopped is the outage notes' case, not this one."""
        if self.gone is not None:
            return True
        if not not_served(failure) or now - self.asked_at < ASK_EVERY_S:
            return False
        self.asked_at = now
        try:
            served = ready()
        except Exception:  # no answer (a deadline, the connection): not a "no"
            return False
        if served is True:
            self.unready = None
            return False
        first_at, first_now = self.unready or (ended_at, now)
        self.unready = (first_at, first_now)
        if served == RELOADING or now - first_now < SETTLE_S:
            return False
        model, version = addressed
        self.gone = {"at": first_at, "model": model, "version": version, "said": str(readable_failure(failure))}
        return True

    def to_tell(self) -> dict[str, Any] | None:
        """The record, to the first caller after the verdict (it tells the Locust master); None after, or before."""
        if self.gone is None or self.told:
            return None
        self.told = True
        return self.gone


@dataclass(frozen=True)
class ModelGone:
    """The model (or the version the run named) stopped being served `after_s` into the step's window, `answered`
    requests answered before; `steps_left`: the run's later steps, not run."""

    model: str
    version: str
    after_s: float
    answered: int
    said: str  # Triton's answer, as the failure table files it
    steps_left: int = 0
    before_window: bool = False  # it went during the warm-up: the measured window never opened

    def line(self) -> str:
        """`model 'm' version 3 stopped being served 4.2 s into the window (after 1530 requests answered; …): the
        run was cut short; figures up to then kept`, in the wording `infer` and `evaluate` use for a version gone."""
        which = f"model '{self.model}'" + (f" version {self.version}" if self.version else "")
        left = f" ({self.steps_left} later step{'s' if self.steps_left > 1 else ''} not run)" if self.steps_left else ""
        if self.before_window:
            return (
                f"{which} stopped being served during the warm-up, before the measured window opened (a deploy or "
                f"rollback meanwhile?): the run was cut short{left}; nothing was measured"
            )
        return (
            f"{which} stopped being served {self.after_s:.1f} s into the window (after {self.answered} requests "
            f"answered; a deploy or rollback meanwhile?): the run was cut short{left}; figures up to then kept"
        )

    def record(self) -> dict[str, Any]:
        """What a saved result keeps of it (`LoadResult.model_gone`): its fields and its line."""
        return {**dataclasses.asdict(self), "line": self.line()}


class ModelGoneResult(LoadResult):
    """A step's result whose window ended when its model stopped being served. Saved as any LoadResult, its
    `model_gone` the record (`ModelGone.record`) and `planned_window_s` the window asked for."""

    @property
    def gone(self) -> ModelGone:
        return gone_of(self)


def gone_of(result: LoadResult) -> ModelGone:
    """The `ModelGone` a cut step's saved record (`LoadResult.model_gone`) describes."""
    record = dict(result.model_gone or {})
    names = {field.name for field in dataclasses.fields(ModelGone)}
    return ModelGone(**{name: value for name, value in record.items() if name in names})


def write_gone(record_dir: Path, record: dict[str, Any]) -> None:
    """Write the record (`ServedCheck.gone`) to `record_dir/model_gone.json` whole (a scratch file replaced)."""
    record_dir.mkdir(parents=True, exist_ok=True)
    scratch = record_dir / f".{GONE_FILE}.{os.getpid()}"
    scratch.write_text(json.dumps(record))
    os.replace(scratch, record_dir / GONE_FILE)


def read_gone(record_dir: Path, start: float, end: float, samples: np.ndarray) -> ModelGone | None:
    """The model's going away as the Locust master recorded it, placed in the window [start, end] whose requests
    are `samples` (rows of end wall time, latency ms, 1 ok / 0 failed, ...); None without a record, or one past
    the window's end (it went once the window had ended as planned)."""
    path = record_dir / GONE_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    at = float(record["at"])
    if at > end:
        return None
    answered = int(((samples[:, 0] < at) & (samples[:, 2] > 0.5)).sum()) if len(samples) else 0
    model, version, said = str(record["model"]), str(record["version"]), str(record["said"])
    return ModelGone(model, version, max(0.0, at - start), answered, said, before_window=at <= start)


def gone_at(record_dir: Path) -> float | None:
    """When the Locust master recorded the model's going away (wall time); None without a record."""
    path = record_dir / GONE_FILE
    return float(json.loads(path.read_text())["at"]) if path.is_file() else None


def cut_short(result: LoadResult, gone: ModelGone, planned_s: float) -> ModelGoneResult:
    """`result` as the step its model's going away cut short: the window it asked for kept beside the one measured."""
    fields = {field.name: getattr(result, field.name) for field in dataclasses.fields(result)}
    return ModelGoneResult(**{**fields, "planned_window_s": planned_s, "model_gone": gone.record()})


def with_steps_left(result: LoadResult, steps_left: int) -> None:
    """Note on a cut step the run's later steps, which are not run (each would be refused: the model not ready)."""
    result.model_gone = dataclasses.replace(gone_of(result), steps_left=steps_left).record()
