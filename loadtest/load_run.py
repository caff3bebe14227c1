"""One `quantserve loadtest` run of a model, every step of it, and the file it is saved as (`load-<model>.json`).

Its steps are `loadtest.results.LoadResult`s; reports are rendered from these files only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from loadtest.interruption_record import Interruption
from loadtest.result_files import numbers_checked, precision_of, read_json, safe_name, write_json
from loadtest.results import LoadResult
from loadtest.run_identity import RunIdentity
from quantserve.errors import QuantserveError

LOAD_PREFIX = "load-"


def load_file_name(model: str, modes: Iterable[str] = ()) -> str:
    """The file a run of `model`, its steps of these modes, is saved as: `load-<model>.json`, `-open` or `-staged`
    added for a run of that kind (`run_kind`), so a model's runs of each kind sit side by side."""
    kind = run_kind(modes)
    return f"{LOAD_PREFIX}{safe_name(model)}{f'-{kind}' if kind else ''}.json"


def run_kind(modes: Iterable[str]) -> str:
    """The step kind that names a run of steps of these modes: "open" or "staged"; "" for closed-loop runs."""
    return next((mode for mode in modes if mode in ("open", "staged")), "")


@dataclass
class LoadRun:
    """Every step of one `quantserve loadtest` invocation for one model (one step, or a sweep)."""

    model: str
    results: list[LoadResult]
    interrupted: Interruption | None = None  # stopped by Ctrl-C or SIGTERM: `results` hold what it measured
    # the precision the model's deployment recorded in its served config (int8, fp32…); None: none recorded (an
    # older deployment, another tool's, or a file from before it was read), so the verdict goes by the name
    precision: str | None = None
    identity: RunIdentity | None = None  # its start, served versions, source model and data (None: older files)
    file: str = ""  # the file name it was saved as or loaded from ("" until then), for lines that name the run

    @property
    def name(self) -> str:
        """The model, marked when the run is open loop or staged (runs of a model sit side by side)."""
        kind = run_kind(r.mode for r in self.results)
        return f"{self.model} ({'open loop' if kind == 'open' else kind})" if kind else self.model

    def save(self, out_dir: Path) -> Path:
        self.file = load_file_name(self.model, (r.mode for r in self.results))
        return write_json(Path(out_dir) / self.file, self)

    @classmethod
    def load(cls, path: Path) -> LoadRun:
        """The run saved at `path`; a file of another shape (hand-edited, another tool's) is one line naming what
        is wrong, not a traceback from the report that reads it."""
        data = read_json(path)
        try:
            stop = Interruption(**data["interrupted"]) if data.get("interrupted") else None
            if not isinstance(data["results"], list) or not (data["results"] or stop):
                raise ValueError(f"'results' is {data['results']!r}, not a list of measured steps")
            results = [LoadResult.from_dict(r) for r in data["results"]]
            run = cls(data["model"], results, interrupted=stop, precision=precision_of(data.get("precision")))
            run.identity = RunIdentity.from_dict(data["identity"]) if data.get("identity") else None
            run.file = Path(path).name
            for result in run.results:
                for record in (result, result.latency, *result.stages, *(s.latency for s in result.stages)):
                    numbers_checked(record)
                # NaN written as null (strict JSON) read back as NaN: a second with no answer has no p50
                nested = (result.server, result.utilization, *result.timeline, *result.outages)
                for record in (*nested, *(result.lengths.ranges if result.lengths else ())):
                    if record is not None:
                        numbers_checked(record)
        except KeyError as exc:
            raise QuantserveError(f"{path}: not a quantserve load results file (no {exc} field)") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise QuantserveError(f"{path}: not a quantserve load results file ({exc})") from exc
        return run
