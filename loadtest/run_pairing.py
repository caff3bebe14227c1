"""Which two load runs the verdict may compare as INT8 and FP32: variants of one source model, sent the same data,
from one client machine to one server, in requests of one size from as many Locust processes.

Each run records the source model its deployment recorded, a hash of the data it sent and the client machine
(`loadtest.run_identity`); each step the server's address, --request-batch and --workers. A digits CNN and an
unrelated linear model load-tested into one folder were judged "INT8 0.61× FP32"; runs merged into one folder with
`cp -r` were judged "PASS · INT8 1.10× FP32" from FP32 at 1 sample a request against INT8 at 8 (inferences/s
8.8×), and runs from two machines under one "Machine:" line. Now a pair that differs in any of these gets no speed
verdict, and a line names both files and the difference. Runs of older files, or of models deployed before the
source was recorded, are paired by their precisions and names as before, with a note saying so.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.accuracy_results import AccuracyReport
from loadtest.load_run import LoadRun

VERDICT = "no INT8-vs-FP32 verdict"  # what a pair that does not compare loses (the A/B table passes its own)
FAR_APART_S = 3600.0  # runs further apart than this are noted: the machine, its load or the deployment may differ


def _short(digest: str) -> str:
    """`sha256:b32f88e3…`: enough to tell two apart in a line."""
    kind, _, value = digest.partition(":")
    return f"{kind}:{value[:12]}…" if value else digest[:12]


def pairing_problem(fp32: LoadRun, int8: LoadRun, outcome: str = VERDICT) -> str | None:
    """Why `int8` and `fp32` are no INT8-vs-FP32 pair: their recorded source models, data or client machines differ,
    or their steps' server, request batch or Locust workers; None: they are one, as far as both recorded. `outcome`
    ends the line: what the runs do not get (`loadtest.ab_table` compares two runs of one precision the same way)."""
    return _identity_problem(fp32, int8, outcome) or _settings_problem(fp32, int8, outcome)


def _files(fp32: LoadRun, int8: LoadRun) -> str:
    return f"{int8.file or int8.model} vs {fp32.file or fp32.model}"


def _identity_problem(fp32: LoadRun, int8: LoadRun, outcome: str) -> str | None:
    a, b = fp32.identity, int8.identity
    if a is None or b is None:
        return None
    if a.source and b.source and a.source != b.source:
        return (
            f"{int8.model} and {fp32.model} are different models (source {_short(b.source)} vs {_short(a.source)}, "
            f"{_files(fp32, int8)}): {outcome}"
        )
    if a.data_sha256 and b.data_sha256 and a.data_sha256 != b.data_sha256:
        return (
            f"{int8.model} and {fp32.model} were load-tested on different data ({Path(b.data).name} "
            f"{_short(b.data_sha256)} vs {Path(a.data).name} {_short(a.data_sha256)}, {_files(fp32, int8)}): "
            f"{outcome}"
        )
    if a.client() and b.client() and a.client() != b.client():
        return (
            f"{int8.model} and {fp32.model} were load-tested from different client machines ({b.client()} vs "
            f"{a.client()}, {_files(fp32, int8)}): their req/s measure two machines, {outcome}; "
            "load-test both from one machine"
        )
    return None


def _settings_problem(fp32: LoadRun, int8: LoadRun, outcome: str) -> str | None:
    """The first of server, request batch and Locust workers in which the runs' steps differ, said in one line."""
    if not fp32.results or not int8.results:
        return None
    a, b = fp32.results[0], int8.results[0]  # one invocation's steps share its settings
    differences = (
        (_server(a.url) != _server(b.url), "against different servers", f"{b.url} vs {a.url}", "on one server"),
        (a.request_batch != b.request_batch, "with different request sizes",
         _sizes(b.request_batch, a.request_batch), "with one --request-batch"),
        (a.workers != b.workers, "from different numbers of Locust worker processes",
         f"--workers {b.workers} vs {a.workers}", "with one --workers"),
    )  # fmt: skip
    first = next(((what, detail, fix) for differ, what, detail, fix in differences if differ), None)
    if first is None:
        return None
    what, detail, fix = first
    return (
        f"{int8.model} and {fp32.model} were load-tested {what} ({detail}, {_files(fp32, int8)}): their req/s "
        f"do not compare, {outcome}; load-test both {fix}"
    )


def _sizes(b: int | None, a: int | None) -> str:
    """Two steps' request sizes as said: `--request-batch 8 vs 1`, or a replayed trace's own sizes (None) named."""
    if a is not None and b is not None:
        return f"--request-batch {b} vs {a}"
    said = ["the trace's request sizes" if size is None else f"--request-batch {size}" for size in (b, a)]
    return " vs ".join(said)


def _server(url: str) -> str:
    """A server address as compared: without a scheme, lower case, `localhost` as 127.0.0.1."""
    address = url.split("://", 1)[-1].lower()
    host, _, port = address.rpartition(":")
    return f"{'127.0.0.1' if host == 'localhost' else host}:{port}"


def pairing_notes(fp32: LoadRun, int8: LoadRun, compared: str = "as INT8 and FP32") -> list[str]:
    """A line where the pair's records could not confirm one source model and one data set: the runs that recorded
    no source model (a deployment from before quantserve recorded it, or another tool's) or no data hash (results
    from before it was recorded). `compared`: how the pair is compared (`in the A/B table as two runs`)."""
    unsourced = [run.model for run in (int8, fp32) if run.identity is None or not run.identity.source]
    undated = [run.model for run in (int8, fp32) if run.identity is None or not run.identity.data_sha256]
    if not unsourced and not undated:
        return []
    missing = [f"no source model for {' and '.join(unsourced)}"] if unsourced else []
    missing += [f"no data hash for {' and '.join(undated)}"] if undated else []
    return [
        f"{int8.model} and {fp32.model} are compared {compared} of one model on one data set by their "
        f"precisions and names only: the results record {', '.join(missing)} (deployed before quantserve recorded "
        "its source model, not by quantserve, or load-tested before it recorded them)"
    ]


def spread_note(runs: list[LoadRun]) -> str | None:
    """One line when the folder's runs started over an hour apart: their figures may not compare."""
    started = sorted(
        (t, run.model, run.identity.started_at) for run in runs if run.identity and (t := run.identity.started())
    )
    if len(started) < 2 or (started[-1][0] - started[0][0]).total_seconds() <= FAR_APART_S:
        return None
    (first, a, a_at), (last, b, b_at) = started[0], started[-1]
    return (
        f"the load runs in this folder started {(last - first).total_seconds() / 3600:.1f} h apart ({a} at {a_at}, "
        f"{b} at {b_at}): the machine, its load or the deployment may have changed between them"
    )


LOWER_PRECISIONS = ("int8", "fp16")


def accuracy_source_notes(accuracy: AccuracyReport) -> list[str]:
    """A line per evaluated variant whose recorded source model is not the reference's: its drift compares two
    models, not a variant with its FP32 original; and one where the reference was deployed at a lower precision than
    an FP32 variant evaluated beside it (the sides swapped)."""
    ref = next((v for v in accuracy.variants if v.model == accuracy.reference), None)
    if ref is None:
        return []
    lower = []  # session 41: `--reference conv_int8` beside conv_fp32 passed with no word
    if ref.precision in LOWER_PRECISIONS and any(v.precision == "fp32" for v in accuracy.variants):
        lower.append(
            f"the reference {ref.model} was deployed as {ref.precision}: the drift and accuracy drop are measured "
            "against it, so a loss of its own reads as none (or as the others' gain); an FP32 deployment is the "
            "reference INT8 is judged by"
        )
    if not ref.source:
        return lower
    return lower + [
        f"{v.model} and the reference {ref.model} are different models (source {_short(v.source)} vs "
        f"{_short(ref.source)}): its drift and accuracy drop compare two models, not an INT8 variant with its original"
        for v in accuracy.variants
        if v.source and v.source != ref.source
    ]
