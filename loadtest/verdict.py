"""The report's verdict, gathered from results already measured: is INT8 worth shipping here?

INT8 vs FP32 speed served through Triton (the load runs' throughput at the same concurrency) and
in-process (the `speed` section `quantserve optimize` records in a build's manifest.json; its caveat, a busy machine,
is `loadtest.in_process_speed`'s to say), drift
per output against its budget (accuracy.json, or the INT8 build's manifest), pass or fail, and
the machine (machine.json: the client's, as the last loadtest or evaluate into the folder recorded it; a load run
recorded from another client machine is named beside it; a machine.json of another shape is one line, as the other
results files are). Which model is INT8 and which FP32 is the precision each one's deployment recorded in its served
config (read into the results by loadtest and evaluate), the name only where none is recorded, and the report says
so. Nothing is measured here; ratios are taken of figures the results already hold. A load step with
failed requests (an outage among them), arrivals never sent, a lost Locust worker or no request completed fails it,
and so does a comparison in which a variant served nothing (its ratio is no speedup: NaN passed `< 1.0`). Which runs
and steps the served ratio may be taken from, and the caveats it carries, is `loadtest.served_speed`'s to say.
Every INT8-vs-FP32 pair it finds is judged: the verdict fails if any INT8 variant is slower than its FP32 (or is not
comparable), and the headline gives that pair (else the lowest ratio), with a note per pair where there are several.
An agreement rate held on rows too few to show it is no plain PASS (`note_evidence`), yet no failure: none missed.
Without a build folder, what each served model's deployment recorded of its build (drift misses, thin evidence, its
in-process speed) is `loadtest.recorded_drift`'s to judge.
The drift table's rows are `loadtest.budget_rows`', each model's precision `loadtest.served_precisions`'.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtest.accuracy_results import AccuracyReport
from loadtest.budget_rows import DriftRow, drift_rows, metric_row, per_request_rows, saved_thin_evidence
from loadtest.empty_window import nothing_measured
from loadtest.in_process_speed import in_process_entry
from loadtest.load_run import LoadRun
from loadtest.machine_notes import other_clients, recorded_machine, timed_elsewhere
from loadtest.recorded_drift import load_version, recorded_drift, served_in_process
from loadtest.run_pairing import accuracy_source_notes, spread_note
from loadtest.served_precisions import ServedPrecisions
from loadtest.served_speed import ServedSpeedup, lowest, served_speedups
from optimizer.drift_evidence import null_budget, rows_to_show, thin_evidence_line
from optimizer.speed_verdict import UNCERTAIN
from quantserve.errors import QuantserveError
from quantserve.metrics import beside_bar
from serving.machine import MACHINE_FILE, cpu_facts
from serving.model_version import VERSION_SEPARATOR

NOT_LOADED = "load-test both variants into this folder"
NOT_SHOWN = "NOT SHOWN"  # too few held-out rows to show the budget had every row agreed: optimize refuses them
THIN = "PASS on thin evidence"  # the rate seen holds, its 95 % lower bound does not: optimize ships it with a note
THIN_CELL = "ok, thin evidence"


@dataclass
class Verdict:
    """Everything the report opens with."""

    served: ServedSpeedup | None = None  # the headline's pair: the lowest ratio of `served_pairs`
    served_pairs: list[ServedSpeedup] = field(default_factory=list)  # every INT8-vs-FP32 pair, each judged
    in_process: list[dict[str, Any]] = field(default_factory=list)  # speed records, named, with caveats
    drift: list[DriftRow] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line per reason it does not pass
    notes: list[str] = field(default_factory=list)  # what the reader should know: how precisions were known
    served_missing: str = NOT_LOADED  # why no served INT8 vs FP32, where none
    machine: str = ""
    not_shown: list[str] = field(default_factory=list)  # rates held on rows too few to show them had all agreed
    thin: list[str] = field(default_factory=list)  # rates held on rows whose 95 % lower bound misses the budget

    @property
    def judged(self) -> bool:
        return bool(self.drift or self.in_process or self.served or self.failures)

    @property
    def passed(self) -> bool:
        """Nothing missed its budget (the exit status of `quantserve report`, as evaluate's): thin evidence too."""
        return self.judged and not self.failures

    @property
    def word(self) -> str:
        """The headline's first word: FAIL, else NOT_SHOWN or THIN where the rows cannot show the budget, else PASS."""
        if self.failures:
            return "FAIL"
        return NOT_SHOWN if self.not_shown else THIN if self.thin else "PASS"


def load_failures(runs: list[LoadRun]) -> list[str]:
    """One line per load step that failed (requests failed, arrivals never sent, a Locust worker lost) or measured
    nothing: its figures cannot stand for the variant, so the verdict fails, whichever steps it compares."""
    lines = []
    for r in (r for run in runs for r in run.results):
        if r.measured_nothing:
            lines.append(f"{r.label}: {nothing_measured(r)}")
            continue
        if not r.has_failures:
            continue
        worst = max(r.outages, key=lambda o: o.duration_s) if r.outages else None
        parts = [r.failed_share_line()] if r.failed_requests else []
        parts += (
            [f"no success for {worst.duration_s:.1f} s (t = {worst.start_s:.2f}–{worst.end_s:.2f} s)"] if worst else []
        )
        parts += [f"{r.unsent} arrivals never sent"] if r.unsent else []
        parts += [f"Locust {', '.join(r.lost_workers)}"] if r.lost_workers else []
        lines.append("; ".join(parts) if r.failed_requests else f"{r.label}: {'; '.join(parts)}")
    return lines


def note_evidence(verdict: Verdict, variant: str, entries: list[dict[str, Any]], flag: str) -> None:
    """A line per rate of `variant` held on rows too few to show it (`entries`: `drift_evidence.thin_evidence`'s;
    `flag`: the option giving the rows), its drift row marked: NOT_SHOWN where no agreement on so few rows could show
    it (optimize refuses them without --allow-thin-evidence), else THIN (optimize ships it with a note)."""
    marks = {}
    for entry in entries:
        unshown = entry["rows"] < rows_to_show(float(entry["budget"]))
        (verdict.not_shown if unshown else verdict.thin).append(f"{variant}: {thin_evidence_line(entry, flag)}")
        marks[variant, entry["output"], entry["metric"]] = NOT_SHOWN if unshown else THIN_CELL
    verdict.drift = [replace(r, evidence=marks.get((r.variant, r.output, r.metric), r.evidence)) for r in verdict.drift]


BUILD_FOLDER = "build_folder"  # where `load_manifest` read a build: named where builds share a name (`build_labels`)


def load_manifest(path: Path) -> dict[str, Any]:
    """A build's manifest.json (the folder or the file); one that is not a JSON object is one line naming it (a
    truncated one was a JSONDecodeError traceback and exit 1, report's FAIL code, session 40)."""
    path = path / "manifest.json" if path.is_dir() else path
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        raise QuantserveError(f"{path}: not a readable build manifest ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, dict):
        raise QuantserveError(f"{path}: not a build manifest (a JSON {type(manifest).__name__}, not an object)")
    if missing := null_budget(manifest.get("verification") or {}):  # was float(None), a TypeError
        raise QuantserveError(f"{path}: {missing}; rebuild or fix it")
    return {**manifest, BUILD_FOLDER: str(path.resolve().parent)}


def build_labels(manifests: list[dict[str, Any]], default: str) -> list[str]:
    """What each build's in-process speed and drift rows are named: its model's name, and where two builds given
    share one, its folder too. The name of a factory's build is its module's ("aisfx_factory"): two builds of one
    module (an embedder and its tagger) could not be told apart (session 55)."""
    names = [str(manifest.get("name", default)) for manifest in manifests]
    return [
        f"{name} ({Path(manifest[BUILD_FOLDER]).name})"
        if names.count(name) > 1 and manifest.get(BUILD_FOLDER)
        else name
        for name, manifest in zip(names, manifests, strict=True)
    ]


def machine_line(results_dir: Path, manifests: list[dict[str, Any]], runs: list[LoadRun]) -> str:
    """The machine the figures came from: machine.json beside the results (the client's, as the last loadtest or
    evaluate into the folder recorded it), else the build's CPU, else this one; and the client machines of the load
    runs that recorded another ("Machine: AMD EPYC, 2 cores" stood beside a run load-tested from a 112-core Xeon),
    and the builds whose in-process ratio was timed on another CPU (`loadtest.machine_notes`)."""
    recorded = results_dir / MACHINE_FILE
    if recorded.is_file():
        model, cores, isa = recorded_machine(recorded)
        line = f"{model}, {cores} cores ({' '.join(isa) or 'no AVX2/VNNI/AMX'})"
        others = other_clients(runs, model, cores)
        which = f", the client's as the last loadtest or evaluate recorded it in {MACHINE_FILE}"
        line = f"{line}{which}{others}" if others else line
        return line + timed_elsewhere(manifests, model, "the served runs" if runs else "this folder's runs")
    timed = [m for m in manifests if (m.get("verification") or {}).get("speed")]
    if timed:
        speed = timed[0]["verification"]["speed"]
        line = f"{speed['cpu']}, timed on {speed['threads']} threads (from the build's manifest)"
        first = f"{timed[0].get('name', '?')}'s"
        return line + other_clients(runs, str(speed["cpu"]), None) + timed_elsewhere(timed[1:], speed["cpu"], first)
    cpu = cpu_facts()
    line = f"{cpu.model}, {cpu.usable_cores} cores (the machine this report was rendered on)"
    return line + other_clients(runs, cpu.model, cpu.usable_cores)


def served_failures(pairs: list[ServedSpeedup]) -> list[str]:
    """A line per pair in which INT8 is slower than its FP32 or a variant served nothing: any fails the verdict."""
    lines = []
    for served in pairs:
        if not served.comparable:  # NaN < 1.0 is False: a dead FP32 passed as "nan×"
            lines.append(f"served INT8 vs FP32 not comparable: {served.idle_side()}")
        elif served.speedup < 1.0:
            lines.append(
                f"served INT8 {served.int8_model} is slower than FP32 {served.fp32_model} ({served.speedup:.2f}× at "
                f"{served.users} users)"
            )
    return list(dict.fromkeys(lines))


def _pair_notes(pairs: list[ServedSpeedup]) -> list[str]:
    """A line per INT8-vs-FP32 pair where there are several: the headline gives one, the lowest."""
    headline = lowest(pairs)
    if headline is None or len(pairs) < 2:
        return []
    return [
        f"{len(pairs)} INT8-vs-FP32 pairs were compared, each judged; the headline gives the lowest "
        f"({headline.int8_model} vs {headline.fp32_model})",
        *(f"served: {served.summary()}" for served in pairs),
    ]


def note_precisions(
    verdict: Verdict, precisions: ServedPrecisions, runs: list[LoadRun], accuracy: AccuracyReport | None
) -> None:
    """How the models' precisions were known, as notes, and why nothing was compared where one is unknown."""
    reference = accuracy.reference if accuracy else None
    variants = [v.model for v in accuracy.variants] if accuracy else []
    loaded = [run.model for run in runs if run.model != reference]  # the reference is FP32 (evaluate --reference)
    verdict.notes = precisions.notes([*variants, *loaded], loaded, reference)
    unknown = precisions.unknown(loaded)
    if unknown:
        verdict.served_missing = f"precision unknown for {', '.join(unknown)}: see the notes"


def unscored_notes(pairs: list[ServedSpeedup], accuracy: AccuracyReport) -> list[str]:
    """A line where accuracy.json scores none of a paired INT8 variant (evaluate of another model): its served
    speed is judged, its accuracy is not."""
    scored = {v.model.partition(VERSION_SEPARATOR)[0] for v in accuracy.variants}
    unscored = [s for s in pairs if s.int8_model.partition(VERSION_SEPARATOR)[0] not in scored]
    if not unscored:
        return []
    named = list(dict.fromkeys(s.int8_model for s in unscored))
    models = ", ".join(named)
    evaluated = ", ".join(v.model for v in accuracy.variants if v.model != accuracy.reference) or accuracy.reference
    return [
        f"accuracy.json scores {evaluated} against the reference {accuracy.reference}, not {models}: the served "
        f"speed of {models} is judged without its accuracy (evaluate "
        f"{'them' if len(named) > 1 else 'it'} against {unscored[0].fp32_model} into this folder)"
    ]


def version_notes(runs: list[LoadRun], accuracy: AccuracyReport) -> list[str]:
    """A line per load run of a model whose accuracy was scored on another version of it: the verdict would judge
    one version's speed with another's accuracy (a deploy between `loadtest` and `evaluate`)."""
    scored = {v.model.partition(VERSION_SEPARATOR)[0]: v for v in accuracy.variants if v.version}
    lines = []
    for run in runs:
        variant = scored.get(run.model.partition(VERSION_SEPARATOR)[0])
        measured = load_version(run)
        if variant is not None and measured and measured != variant.version:
            lines.append(
                f"{run.model}'s load test measured version {measured}, its accuracy ({variant.model}) was scored on "
                f"version {variant.version}: the verdict judges one version's speed with another's accuracy"
            )
    return lines


def gather(
    results_dir: Path, runs: list[LoadRun], accuracy: AccuracyReport | None, manifests: list[dict[str, Any]]
) -> Verdict:
    """The verdict from a results folder's runs and accuracy, and any build manifests given."""
    precisions = ServedPrecisions.of(runs, accuracy)
    pairs, pairing = served_speedups(runs, accuracy.reference if accuracy else None, precisions.precision)
    verdict = Verdict(served=lowest(pairs), served_pairs=pairs)
    note_precisions(verdict, precisions, runs, accuracy)
    verdict.notes += [
        *pairing,
        *filter(None, [spread_note(runs)]),
        *(accuracy_source_notes(accuracy) if accuracy else []),
        *(version_notes(runs, accuracy) if accuracy else []),
        *(unscored_notes(pairs, accuracy) if accuracy else []),
    ]
    verdict.notes += _pair_notes(pairs)
    if not pairs and pairing:  # candidates there were, none a pair: the first reason heads the report
        verdict.served_missing = pairing[0]
    for manifest, label in zip(manifests, build_labels(manifests, "int8"), strict=True):
        verification = manifest.get("verification") or {}
        if verification.get("speed"):
            verdict.in_process.append(in_process_entry(label, verification["speed"]))
        if not accuracy and manifest.get("precision") == "int8":
            outputs = verification.get("outputs") or {}
            verdict.drift += drift_rows(label, outputs, verification.get("budget"))
            verdict.drift += metric_row(label, verification.get("metric"))
            note_evidence(verdict, label, verification.get("thin_evidence") or [], "--eval")
    if not manifests:  # no build given: the speed each served model's deployment recorded, and its drift record
        verdict.in_process += served_in_process(runs, accuracy)
        recorded = recorded_drift(runs, accuracy)
        verdict.failures += recorded.failures
        verdict.notes += recorded.notes
        verdict.not_shown += recorded.not_shown
        verdict.thin += recorded.thin
    if accuracy is not None:
        for v in accuracy.variants:
            if v.model != accuracy.reference and v.drift:
                verdict.drift += drift_rows(v.model, v.drift, accuracy.drift_budget)
                verdict.drift += per_request_rows(v.model, v.drift, accuracy.drift_budget)
                note_evidence(
                    verdict, v.model, saved_thin_evidence(v.drift, accuracy.drift_budget, v.samples), "--data"
                )
            if v.model != accuracy.reference:
                verdict.drift += metric_row(v.model, v.user_metric)
        over = [v for v in accuracy.variants if v.model in accuracy.over_budget]
        verdict.failures += [
            f"{v.model}: {v.violations[0] if v.violations else 'accuracy drop over budget'}" for v in over
        ]
    else:
        verdict.failures += [
            f"{r.variant} {r.output}: {r.metric} {r.value:.4g} vs budget {r.budget:g}"
            for r in verdict.drift
            if not r.holds
        ]
    verdict.failures += load_failures(runs)
    verdict.failures += served_failures(pairs)
    verdict.failures += [
        speed_failure(s) for s in verdict.in_process if not s.get("holds", True) or not timed_speedup(s)
    ]
    verdict.machine = machine_line(results_dir, manifests, runs)
    return verdict


def timed_speedup(speed: Mapping[str, Any]) -> bool:
    """The in-process speed record's speedup is a finite number: null (a NaN written as strict JSON) never passes."""
    value = speed.get("speedup")
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def speed_failure(speed: Mapping[str, Any]) -> str:
    """The failure line of an in-process speed that does not hold: below the bar, or above it on timing rounds too
    spread to show INT8 faster (`optimizer.speed_verdict`: its lower bound under 1.0), which read "1.15× FP32
    in-process, below its speed budget" against a bar of 1.1."""
    bar = float(speed.get("min_speedup") or 1.0)  # null as absent: the bar only picks the digits; `holds` judges
    if not timed_speedup(speed):  # a NaN the manifest or served config holds as null (strict JSON)
        return f"{speed['model']}: INT8 in-process speedup n/a: not measured, not shown faster than FP32"
    shown = f"{speed['model']}: INT8 {beside_bar(speed['speedup'], bar)}× FP32 in-process"
    low = speed.get("speedup_low")
    if speed.get("verdict") == UNCERTAIN and isinstance(low, int | float):
        return f"{shown}, not shown faster: its timing rounds' lower bound is {low:.2f}× (rounds too spread)"
    return f"{shown}, below its speed budget"
