"""What a served model's deployment recorded of its build's drift and speed, judged where no build folder is given.

`report` without --build reads no manifest: what optimize found of a build reaches the verdict only as `deploy`
recorded it in the served config (`serving.drift_parameter`, `serving.build_parameters`) and a load run kept it
(`loadtest.run_identity`). Session 56: a build shipped past its drift budget (--keep-failing) read "PASS"; session 62:
one shipped on agreement held over --eval rows too few to show the budget (--allow-thin-evidence) read "PASS", no word
of it. Each run is judged by the version it loaded: evaluate's score of version 1 is no measure of version 2's drift
(session 57). The speed verdict a deployment recorded reaches it from a load run or from evaluate's variants
(session 63).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.in_process_speed import in_process_entry
from loadtest.load_run import LoadRun
from serving.model_config import is_version_name
from serving.model_version import VERSION_SEPARATOR

NOT_MEASURED_HERE = "its deployment's record; a load test measures no drift: evaluate it through the server"
MEASURED_HERE = "its deployment's record; the verdict judges the drift evaluate measured through the server"


@dataclass
class RecordedDrift:
    """The verdict's lines from the deployments' records: what fails it, what it notes, and the rates held on rows too
    few to show them (NOT SHOWN / thin evidence, as `loadtest.verdict.note_evidence` sorts a manifest's)."""

    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_shown: list[str] = field(default_factory=list)
    thin: list[str] = field(default_factory=list)


def recorded_drift(runs: list[LoadRun], accuracy: AccuracyReport | None) -> RecordedDrift:
    """Each loaded model's recorded drift misses (--keep-failing: a failure) and thin evidence (--allow-thin-evidence:
    NOT SHOWN or thin), once per model, where nothing here measured its drift; notes where evaluate scored it through
    the server (what it measured is judged)."""
    variants = [v for v in accuracy.variants if v.model != accuracy.reference] if accuracy else []
    recorded = RecordedDrift()
    for model, missed in _recorded(runs, "drift_missed").items():
        lines = [f"{model}: its build {line}" for line in missed]
        if any(scored_same_version(model, v, runs) for v in variants):
            recorded.notes += [f"{line} ({MEASURED_HERE})" for line in lines]
        else:
            recorded.failures += [f"{line} ({NOT_MEASURED_HERE})" for line in lines]
    for model, entries in _recorded(runs, "thin_evidence").items():
        if any(scored_same_version(model, v, runs) for v in variants):
            recorded.notes += [f"{model}: its build's {e['line']} ({MEASURED_HERE})" for e in entries]
            continue
        for entry in entries:
            line = f"{model}: its build's {entry['line']} ({NOT_MEASURED_HERE})"
            (recorded.not_shown if entry.get("not_shown") else recorded.thin).append(line)
    return recorded


def scored_same_version(model: str, variant: VariantAccuracy, runs: list[LoadRun]) -> bool:
    """Whether evaluate's `variant` scored the model version whose load runs are labelled `model`: same model, and
    the same version where both say which (`load_version`, the variant's pinned one)."""
    if model.partition(VERSION_SEPARATOR)[0] != variant.model.partition(VERSION_SEPARATOR)[0]:
        return False
    loaded = {load_version(run) for run in runs if run.model == model} - {""}
    scored = variant.version or variant.model.partition(VERSION_SEPARATOR)[2]
    return not scored or not loaded or scored in loaded


def load_version(run: LoadRun) -> str:
    """The version a load run's requests went to: the one it addressed (`m@2`), else the newest READY at its start
    (Triton answers an unversioned request with its highest version); "" where not recorded."""
    addressed = run.model.partition(VERSION_SEPARATOR)[2]
    ready = [v for v in (run.identity.versions if run.identity else []) if is_version_name(v)]
    return addressed or (max(ready, key=int) if ready else "")


def _recorded(runs: list[LoadRun], what: str) -> dict[str, list[Any]]:
    """{model: the `RunIdentity` record `what` its deployment kept (drift misses, thin evidence)}, for the models
    whose runs recorded any (the first run's)."""
    records: dict[str, list[Any]] = {}
    for run in runs:
        kept = getattr(run.identity, what) if run.identity is not None else None
        if kept:
            records.setdefault(run.model, list(kept))
    return records


def served_in_process(runs: list[LoadRun], accuracy: AccuracyReport | None = None) -> list[dict[str, Any]]:
    """The in-process speed verdict each run's deployment recorded (`RunIdentity.in_process`), once per model: a
    build refused for speed and deployed with --allow-slower (0.97× in-process) was reported "verdict: PASS" unless
    the report was given its build folder. Then those of the variants evaluate scored (`evaluated_in_process`)."""
    speeds: dict[str, dict[str, Any]] = {}
    for run in runs:
        speed = run.identity.in_process if run.identity is not None else None
        if speed:
            speeds.setdefault(run.model, in_process_entry(run.model, speed, "its deployment"))
    return [*speeds.values(), *(evaluated_in_process(accuracy, runs) if accuracy else [])]


def evaluated_in_process(accuracy: AccuracyReport, runs: list[LoadRun]) -> list[dict[str, Any]]:
    """The in-process speed verdict each variant's deployment recorded as evaluate read it (`VariantAccuracy.
    in_process`), but where a load run of that model kept the same record (said once). evaluate alone headlined PASS
    for a build refused for speed and deployed with --allow-slower; a load test into the folder made it FAIL (session
    63)."""
    loaded = [(run.model.partition(VERSION_SEPARATOR)[0], run.identity.in_process) for run in runs if run.identity]
    return [
        in_process_entry(v.model, v.in_process, "its deployment")
        for v in accuracy.variants
        if v.in_process and (v.model.partition(VERSION_SEPARATOR)[0], v.in_process) not in loaded
    ]
