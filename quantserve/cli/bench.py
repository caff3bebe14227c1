"""`quantserve bench`: one model, one machine, one run, five ways of running it side by side.

1. PyTorch eager FP32 in-process (what the user had); 2. ONNX Runtime FP32 in-process; 3. ONNX
Runtime INT8 in-process (this project's build); 4. Triton FP32, no dynamic batching, one instance
(a naive deployment); 5. Triton INT8 as `quantserve tune` leaves it. Every row is measured
`repeats` times, the rows taking turns within each repeat so that a shared machine's load hits
all alike; a figure is the median of the repeats, with the min-max spread beside it.

Order per model: prepare the model and its data (examples.bench_models; a user's own:
quantserve.cli.bench_user), build FP32 and INT8 (optimizer.pipeline, quantserve.cli.bench_build), time
in-process INT8 once at the clients' concurrency to set the SLO that `tune` searches under, deploy the
naive FP32 model and tune INT8 into one repository, then the repeats. `session` is kept here for the
tools that import it from this module.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quantserve.cli.bench_build import PreparedModel, build, builtin_options, reuse_line
from quantserve.cli.bench_inprocess import session
from quantserve.cli.bench_results import BENCH_FILE, ROWS, ModelBench, RowResult, int8_budget_note, save
from quantserve.cli.bench_served import FALLBACK
from quantserve.cli.bench_user import NO_EAGER, REUSED_WHY, UserModelSpec, prepare_user
from quantserve.errors import QuantserveError

__all__ = ["BenchSettings", "run_bench", "session"]

Say = Callable[[str], None]
SLO_FACTOR = 2.0  # tune's p99 SLO: this × in-process INT8 p99 at the same concurrency
FULL_MODELS = ("demo", "cnn", "encoder")
QUICK_MODEL = "tiny"


@dataclass(frozen=True)
class BenchSettings:
    """What to bench and how long to measure each figure."""

    models: tuple[str, ...] = FULL_MODELS
    quick: bool = False  # the tiny model, short windows, one repeat, no tune search
    users: int = 16  # clients: Locust users served, Python threads in-process
    repeats: int = 3
    out: Path = Path("reports/bench")
    build: Path = Path("build/bench")
    rebuild: bool = False  # fit and optimize afresh even where the build folder is complete
    inprocess_s: float = 4.0  # per in-process figure
    served_s: float = 10.0  # measured window per served step
    tune_trials: int = 6  # tune's quick search: trials after the baseline; 0: a fixed config, no search
    slo_p99_ms: float = 0.0  # 0: SLO_FACTOR × in-process INT8 p99
    threads: int = 0  # intra-op threads in-process; 0: this process's usable cores (as the server uses)
    user: UserModelSpec | None = None  # bench --model: the user's model, benched alone (models: its name)

    @classmethod
    def quick_run(cls, **changes: Any) -> BenchSettings:
        defaults: dict[str, Any] = {"models": (QUICK_MODEL,), "quick": True, "repeats": 1}
        # tune's search alone takes most of a minute: --quick deploys row 5 with a fixed config (labelled so)
        defaults.update(inprocess_s=0.5, served_s=4.0, tune_trials=0, users=8)
        return cls(**{**defaults, **changes})

    def check(self) -> None:
        from examples.bench_models import MODEL_NAMES

        unknown = [m for m in self.models if m not in MODEL_NAMES]
        if self.user is not None:
            self.user.check()
        elif unknown or not self.models:
            raise QuantserveError(
                f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(FULL_MODELS)}"
            )
        if min(self.users, self.repeats) < 1 or self.tune_trials < 0:
            raise QuantserveError("--users and --repeats must be at least 1, --tune-trials at least 0")
        if min(self.inprocess_s, self.served_s) <= 0 or not (math.isfinite(self.slo_p99_ms) and self.slo_p99_ms >= 0):
            raise QuantserveError("measurement windows must be positive and --slo-p99-ms a finite number, not negative")
        from serving.ports import check_free_ports

        # its servers (the naive, tune's, the re-measure's) take 3 ports each: a narrower --port-range was refused
        # only after both builds were made and deployed, leaving OUT/NAME/repo without a bench.json (session 40)
        check_free_ports(3)

    @property
    def cores(self) -> int:
        return self.threads or len(os.sched_getaffinity(0))


def run_bench(settings: BenchSettings, say: Say = print) -> dict[str, Any]:
    """Bench every model; returns the document also written to `out/bench.json`. Ctrl-C or SIGTERM saves the rows
    measured so far, marked, and raises `BenchInterrupted` naming what is missing (`bench_interrupted`)."""
    from quantserve.cli.bench_interrupted import BenchProgress, interrupted

    settings.check()
    progress = BenchProgress(time.monotonic())
    document: dict[str, Any] = {"machine": machine_record(), "settings": settings_record(settings), "models": {}}
    try:
        return _run_bench(settings, say, document, progress)
    except KeyboardInterrupt:
        raise interrupted(document, progress, settings.models, settings.repeats, settings.out) from None


def _run_bench(settings: BenchSettings, say: Say, document: dict[str, Any], progress: Any) -> dict[str, Any]:
    from quantserve.cli.bench_peak import PeakTracker

    started = progress.started
    say(f"machine: {document['machine']['cpu_line']}; load average {document['machine']['load_average_start']}")
    if (settings.out / BENCH_FILE).is_file():  # written over after the first model: said, not silently
        say(f"{settings.out / BENCH_FILE} holds an earlier run's results: this run replaces them")
    peaks = PeakTracker(settings.cores, 0.3 if settings.quick else 1.5)
    peaks.measure()
    say(f"INT8 GEMM peak {giga(peaks.best('int8'))} G/s, FP32 {giga(peaks.best('fp32'))} G/s (best so far)")
    results = []
    for name in settings.models:
        results.append(bench_model(name, settings, peaks, say, progress))
        document["models"][name] = results[-1].to_dict()
        document["machine"]["load_average_end"] = load_average()
        save(document, settings.out)  # after each model: a long run leaves what it measured
    for result in results:  # against the best peak of the whole run
        result.compute = compute_for(result, peaks.best("int8"))
        document["models"][result.model] = result.to_dict()
    document["peak"] = peaks.to_dict()
    document["seconds"] = round(time.monotonic() - started, 1)
    save(document, settings.out)
    return document


def giga(record: Any) -> str:
    return f"{record.macs_per_s / 1e9:.1f}"


def machine_record() -> dict[str, Any]:
    from serving.machine import cpu_facts, int8_expectation

    cpu = cpu_facts()
    return {
        **cpu.to_dict(),
        "cpu_line": cpu.line(),
        "int8_expectation": int8_expectation(cpu),
        "load_average_start": load_average(),
        "load_average_end": load_average(),
        "shared": "measured on a machine shared with other jobs: compare the ratios, which are side by side",
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def settings_record(settings: BenchSettings) -> dict[str, Any]:
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}
    record["threads"] = settings.cores
    record["user"] = settings.user.to_dict() if settings.user else None
    flags = f"--models {','.join(settings.models)} --users {settings.users} --repeats {settings.repeats}"
    record["command"] = "quantserve bench --quick" if settings.quick else f"quantserve bench {flags}"
    if settings.user is not None:
        record["command"] = user_command(settings.user, settings)
    return record


def user_command(user: UserModelSpec, settings: BenchSettings) -> str:
    """The `bench --model` command line that re-measures this run."""
    given = {"--calib": user.calib, "--heldout": user.heldout}
    flags = [f"--model {user.model} --data {user.data}", *(f"{k} {v}" for k, v in given.items() if v is not None)]
    flags.append(f"--name {user.bench_name} --request-batch {user.request_batch}")
    flags.append("--quick" if settings.quick else f"--users {settings.users} --repeats {settings.repeats}")
    return "quantserve bench " + " ".join(flags)


def bench_model(name: str, settings: BenchSettings, peaks: Any, say: Say, progress: Any = None) -> ModelBench:
    """Prepare, build, set the SLO, deploy and tune, then the repeats; the five rows and their ratios. `progress`
    (`bench_interrupted.BenchProgress`) holds the model as its rows fill, for an interrupt to save."""
    from quantserve.cli.bench_interrupted import BenchProgress

    progress = progress or BenchProgress(time.monotonic())
    started = time.monotonic()
    progress.stage = f"{name}: its model, data and builds"
    prepared = prepare(name, settings, say)
    model = prepared.model
    folder = settings.out / name
    requests_path = model.path("requests.npz")
    int8 = "int8" in prepared.builds  # else optimize refused to build one (`bench_user.int8_or_refusal`)
    tunes = settings.tune_trials and int8
    progress.stage = f"{name}: the SLO and the deploy of rows 4 and 5"
    slo = settings.slo_p99_ms or (slo_from_inprocess(prepared, settings, say) if tunes else 0.0)
    setup = deploy_rows(prepared, settings, folder, slo, say)
    batch = max(setup.tuned_config.get("max_batch", FALLBACK["max_batch"]), model.request_batch)
    rows = empty_rows(settings, setup, batch, model.request_batch)
    if model.module is None:
        rows[1].not_measured, rows[1].how = NO_EAGER, f"not measured: {NO_EAGER}"
    if not int8:  # the refusal's own line is the reason, as row 1's is for an ONNX file
        refusal = prepared.records["int8"]["refused"]
        for row in (3, 5):
            rows[row].not_measured, rows[row].how = refusal, f"not measured: {refusal}"
    runners = inprocess_runners(prepared, settings)
    from quantserve.cli.bench_served import BenchServer

    bench = ModelBench(name, model.description, model.request_batch, batch, rows, prepared.records, setup.tune)
    bench.source, progress.current = prepared.source, bench  # its rows fill in place: an interrupt saves them
    served = tuple(n for n in (setup.naive, setup.tuned) if n)
    with BenchServer(setup.repo, served, folder / "tritonserver.log") as server:
        say(f"{name}: tritonserver (pid {server.server.pid}) serving {' and '.join(served)}")
        for repeat in range(1, settings.repeats + 1):
            progress.stage = f"{name} repeat {repeat}"
            measure_repeat(rows, runners, prepared, settings, batch, server, setup, requests_path, folder, repeat, say)
            peaks.measure()
            bench.load_by_repeat.append(load_average())
    bench.macs = count_model_macs(prepared)
    bench.seconds = round(time.monotonic() - started, 1)
    return bench


def prepare(name: str, settings: BenchSettings, say: Say) -> PreparedModel:
    """The model and its data (fitted, or read back; or the user's), then its FP32 and INT8 builds (optimized, or
    reused: said, with why that is safe, as optimize's lines are then absent); a drift budget the INT8 build
    misses, or cannot show on its held-out rows, is said, not hidden."""
    import shutil

    root = settings.build / name if settings.user is None else settings.build / "user" / name
    if settings.rebuild:
        shutil.rmtree(root, ignore_errors=True)
    if settings.user is not None:
        prepared, why = prepare_user(settings.user, root, say), REUSED_WHY
    else:
        prepared, why = prepare_builtin(name, root, say), f"made from the model read back from {root / 'model'}"
    int8 = prepared.records["int8"]
    note = int8.get("evidence_note")  # the budget shown only loosely: optimize ships such a build with this note
    for text in (reuse_line(prepared.records, why), int8_budget_note(int8), note and f"note: {note}"):
        if text:
            say(f"{name}: {text}")
    return prepared


def prepare_builtin(name: str, root: Path, say: Say) -> PreparedModel:
    """A built-in model (fitted, or read back from `root/model`) and its builds, reused where it was read back."""
    from examples.bench_models import prepare as prepare_model

    say(f"{name}: preparing the model and its data in {root / 'model'}")
    model = prepare_model(name, root / "model")
    prepared = PreparedModel(model, {}, {})
    for precision in ("fp32", "int8"):
        options = builtin_options(model, precision, root / precision)
        prepared.builds[precision], prepared.records[precision] = build(name, options, model.trained_here, say)
    return prepared


def model_file(build_dir: Path) -> Path:
    from quantserve.artifact import Manifest

    return build_dir / Manifest.load(build_dir).files["model"]


def inprocess_runners(prepared: PreparedModel, settings: BenchSettings) -> dict[int, Any]:
    from quantserve.cli.bench_inprocess import onnxruntime_infer, torch_eager_infer

    model = prepared.model
    runners = {2: onnxruntime_infer(model_file(prepared.builds["fp32"]), settings.cores)}
    if "int8" in prepared.builds:  # else row 3 is recorded as not measured (bench_model)
        runners[3] = onnxruntime_infer(model_file(prepared.builds["int8"]), settings.cores)
    if model.module is None:  # an ONNX source: row 1 is recorded as not measured (empty_rows)
        return runners
    return {1: torch_eager_infer(model.module, model.input_names, settings.cores), **runners}


def slo_from_inprocess(prepared: PreparedModel, settings: BenchSettings, say: Say) -> float:
    """SLO_FACTOR × in-process INT8 p99 with `users` threads: what tune's goodput counts against."""
    from loadtest.percentiles import LatencySummary
    from quantserve.cli.bench_inprocess import batches_of, concurrent_requests, onnxruntime_infer

    model = prepared.model
    infer = onnxruntime_infer(model_file(prepared.builds["int8"]), settings.cores)
    requests = batches_of(model.requests(), model.request_batch)
    _, latencies = concurrent_requests(infer, requests, settings.users, settings.inprocess_s)
    p99 = LatencySummary.from_samples(latencies).p99_ms
    slo = round(max(SLO_FACTOR * p99, 1.0), 1)
    say(f"{model.name}: in-process INT8 p99 at {settings.users} threads {p99:.1f} ms → tune's SLO p99 ≤ {slo:g} ms")
    return slo


def deploy_rows(prepared: PreparedModel, settings: BenchSettings, folder: Path, slo: float, say: Say) -> Any:
    """Rows 4 and 5 deployed into `folder/repo`: the naive FP32 model, and INT8 as tune leaves it."""
    import shutil

    from quantserve.cli.bench_served import ServedSetup, TuneRequest, deploy_fallback, deploy_naive, deploy_tuned

    model = prepared.model
    repo = folder / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    naive, tuned = f"{model.name}_fp32_naive", f"{model.name}_int8_tuned"
    naive_config = deploy_naive(prepared.builds["fp32"], repo, naive)
    if "int8" not in prepared.builds:  # optimize refused INT8: row 5 has nothing to serve
        nothing = {"source": "nothing deployed: no INT8 build"}
        return ServedSetup(repo, naive, "", naive_config, {}, nothing)
    if not settings.tune_trials:
        say(f"{model.name}: INT8 deployed with a fixed dynamic-batching config (no tune search asked for)")
        tuned_config, fixed = deploy_fallback(prepared.builds["int8"], repo, tuned, model.request_batch)
        fixed["source"] = "fixed dynamic batching (tune's search skipped: --tune-trials 0, as --quick does)"
        return ServedSetup(repo, naive, tuned, naive_config, tuned_config, fixed)
    say(f"{model.name}: tune INT8 (quick, {settings.tune_trials} trial(s) after the baseline, SLO {slo:g} ms)")
    request = TuneRequest(
        prepared.builds["int8"], model.path("requests.npz"), slo, settings.users, model.request_batch,
        folder / "tune", settings.tune_trials,
    )  # fmt: skip
    tuned_config, tune = deploy_tuned(request, repo, tuned, lambda line: say(f"{model.name}: tune: {line}"))
    return ServedSetup(repo, naive, tuned, naive_config, tuned_config, tune)


def empty_rows(settings: BenchSettings, setup: Any, batch: int, request_batch: int) -> dict[int, RowResult]:
    from quantserve.cli.bench_served import describe_config

    clients = f"{settings.users} threads share one {{}} ({settings.cores} intra-op threads), "
    clients += f"{request_batch} sample(s) a request; saturation: one caller, batches of {batch} back to back"
    served = f"tritonserver, {{}}; Locust closed loop, {settings.users} users, {request_batch} sample(s) a request"
    tuned = describe_config(setup.tuned_config) if setup.tuned else "nothing deployed"
    return {
        1: RowResult(1, "in-process", clients.format("eager nn.Module")),
        2: RowResult(2, "in-process", clients.format("ONNX Runtime session")),
        3: RowResult(3, "in-process", clients.format("ONNX Runtime session")),
        4: RowResult(4, "served", served.format(describe_config(setup.naive_config)), setup.naive_config),
        5: RowResult(5, "served", served.format(tuned), setup.tuned_config),
    }


def measure_repeat(
    rows: dict[int, RowResult], runners: dict[int, Any], prepared: PreparedModel, settings: BenchSettings,
    batch: int, server: Any, setup: Any, requests_path: Path, folder: Path, repeat: int, say: Say,
) -> None:  # fmt: skip
    """One turn of all five rows: the in-process saturation rounds in rotation, then each runner's concurrency."""
    from quantserve.cli.bench_inprocess import (
        QUICK_SATURATION_ROUNDS,
        SATURATION_ROUNDS,
        WARMUP_FRACTION,
        batches_of,
        concurrency,
        saturation_rounds,
        window_for,
    )

    model = prepared.model
    data = model.requests()
    # a median even in --quick: one round is one or two calls there, and a busy moment made a row read 128x slow
    rounds = QUICK_SATURATION_ROUNDS if settings.quick else SATURATION_ROUNDS
    saturation = saturation_rounds(runners, batches_of(data, batch), settings.inprocess_s, rounds)
    for row, infer in runners.items():
        window = window_for(saturation[row], model.request_batch, settings.users, settings.inprocess_s)
        throughput, latency = concurrency(infer, data, model.request_batch, settings.users, window)
        figures = {"saturation_samples_per_s": saturation[row], "concurrent_samples_per_s": throughput}
        measured = {"requests": latency.count, "window_s": (1.0 - WARMUP_FRACTION) * window, "clients": settings.users}
        rows[row].add({**figures, "p50_ms": latency.p50_ms, "p99_ms": latency.p99_ms, **measured})
        say(f"{model.name} repeat {repeat}: {ROWS[row][1]}: {line(rows[row])}")
    fp32_rate = rows[2].figures["concurrent_samples_per_s"].runs[-1]  # the naive server's rate, roughly
    seconds = round(window_for(fp32_rate, model.request_batch, settings.users, settings.served_s))
    for row, name in ((4, setup.naive), (5, setup.tuned)):
        if rows[row].not_measured:
            continue
        out = folder / "load" / f"repeat{repeat}"
        rows[row].add(server.measure(name, requests_path, settings.users, seconds, model.request_batch, out))
        say(f"{model.name} repeat {repeat}: {ROWS[row][1]}: {line(rows[row])}")


def line(row: RowResult) -> str:
    f = {name: figure.runs[-1] for name, figure in row.figures.items()}
    return (
        f"{f['saturation_samples_per_s']:.1f} samples/s at saturation, {f['concurrent_samples_per_s']:.1f} "
        f"at {row.where} concurrency, p50 {f['p50_ms']:.3g} ms, p99 {f['p99_ms']:.3g} ms"  # in-process: 0.013 ms
        + (f" (concurrency {doubt})" if (doubt := row.concurrent_doubt) else "")
    )


def count_model_macs(prepared: PreparedModel) -> dict[str, int] | None:
    """Conv/Gemm/MatMul multiply-adds a sample (not for transformers: their fused ops hide the GEMMs)."""
    from quantserve.cli.bench_peak import count_macs

    model = prepared.model
    if model.model_type is not None:
        return None
    sample = {k: v[:1] for k, v in model.requests().arrays.items()}
    return count_macs(prepared.builds["fp32"] / "fp32.onnx", sample)


def compute_for(bench: ModelBench, peak: Any) -> dict[str, Any] | None:
    """Achieved multiply-adds/s of in-process and served INT8 over the INT8 peak, with the arithmetic."""
    from quantserve.cli.bench_peak import compute_record

    if bench.macs is None:
        return None
    labels = {3: "in-process INT8 at saturation (row 3)", 5: "served INT8 tuned (row 5)"}
    rates = {
        label: bench.rows[row].figures["saturation_samples_per_s"].median
        for row, label in labels.items()
        if not bench.rows[row].not_measured
    }
    share = (bench.builds.get("int8") or {}).get("int8_mac_share")
    return compute_record(bench.macs, rates, peak, None if share is None else float(share)) if rates else None
