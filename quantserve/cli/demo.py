"""The demo: train the digits CNN, optimize FP32 and INT8, deploy both, serve, measure both through Triton,
then let `quantserve tune` (quick joint FP32 x INT8 search) choose and deploy the serving configuration.

Writes `summary.json` (the keys other tools read), the load/accuracy JSON and the HTML report into
the output folder. Every figure comes from the served gRPC endpoint and Triton's own counters.
The tune step runs after the comparison is written: a failed search is reported, never fatal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantserve.errors import QuantserveError

if TYPE_CHECKING:
    from quantserve.cli.progress import Heartbeat

VARIANTS = ("fp32", "int8")
MODEL_NAME = "digits"
SUMMARY_FILE = "summary.json"
TUNED_NAME = f"{MODEL_NAME}_tuned"
TUNE_FOLDER = "tune"
# tune's p99 SLO: this x the FP32 deployment's served p99 at `users`. A tail the FP32 model meets at this
# load, with room for a shared machine's +-30 % window noise, so the naive FP32 baseline's goodput is
# its throughput and the ratio measures served capacity rather than how far FP32 falls off an SLO cliff.
TUNE_SLO_FACTOR = 1.5


@dataclass
class DemoSettings:
    """What the demo trains and how hard it loads the server."""

    out: Path = Path("reports/demo")
    build: Path = Path("build/demo")
    repo: Path = Path("model_repo")
    seed: int = 0
    epochs: int = 5
    users: int = 16
    sweep: tuple[int, ...] = (1, 4, 16)  # concurrency steps per variant; the summary reads `users`
    duration_s: float = 12.0
    # 16 images per request (a scanned form's digits): each request carries ~0.6 G multiply-adds, well
    # above the ~1 ms of gRPC, Triton and Locust CPU a request costs here, which INT8 cannot speed up.
    request_batch: int = 16
    max_batch: int = 64
    max_accuracy_drop: float = 1.0
    tune: bool = True  # after the comparison: tune's quick joint search, winner deployed as TUNED_NAME
    tune_trials: int = 6  # trials after the naive baseline (tune's quick mode allows at most 6)
    # deploy INT8 even where it is not faster in-process, its speed recorded and reported as measured: a CPU whose
    # INT8 kernels gain nothing on the digits CNN (an AMD EPYC without VNNI, 0.94× idle, session 31) stopped the demo
    allow_slower: bool = False


def prepare_model(
    settings: DemoSettings, say: Callable[[str], None], heartbeat: Heartbeat | None = None
) -> dict[str, Path]:
    """Train the CNN and write the .pt2 program plus calibration and held-out .npz files. `heartbeat`, where given
    (started and stopped by `train_and_optimize`), names the loading and the training while they run."""
    from examples import digits

    if heartbeat is not None:
        heartbeat.set("loading the digits data set")
    splits = digits.load_splits(settings.seed)
    training = f"training the digits CNN ({settings.epochs} epochs, seed {settings.seed})"
    say(training)
    if heartbeat is not None:
        heartbeat.set(training)
    model = digits.train(splits, settings.seed, settings.epochs)
    say(f"torch FP32 held-out accuracy: {digits.accuracy(model, splits.heldout):.2f}%")
    build = settings.build
    return {
        "program": digits.export_program(model, build / "digits.pt2"),
        "calib": splits.calib.save(build / "calib.npz"),
        "heldout": splits.heldout.save(build / "heldout.npz"),
    }


def train_and_optimize(
    settings: DemoSettings, say: Callable[[str], None], heartbeat: Heartbeat | None = None
) -> tuple[dict[str, Path], list[str]]:
    """Train the model, then optimize and deploy each variant; return the files written and the Triton model names.
    One `heartbeat` (where no bar is drawn: optimize's lines) beats through all of it, naming the stage now running,
    and stops when they end or fail: `make demo` into a file said nothing for 9 minutes of training on a busy
    machine, nor for the minutes of each optimize stage after it (session 61)."""
    if heartbeat is not None:
        heartbeat.start()
    try:
        files = prepare_model(settings, say, heartbeat)
        return files, optimize_and_deploy(settings, files, say, heartbeat)
    finally:
        if heartbeat is not None:
            heartbeat.stop()


def optimize_and_deploy(
    settings: DemoSettings, files: dict[str, Path], say: Callable[[str], None], heartbeat: Heartbeat | None = None
) -> list[str]:
    """Optimize and deploy each variant; return the Triton model names. `heartbeat`, where given, names the
    variant being optimized."""
    from examples.digits import INPUT_NAME, OUTPUT_NAME
    from optimizer.pipeline import OptimizeOptions
    from optimizer.speed import SpeedSettings
    from serving.deploy import deploy

    names = []
    for precision in VARIANTS:
        name = f"{MODEL_NAME}_{precision}"
        stage = f"optimize {name}: export → fuse → {'calibrate → ' if precision == 'int8' else ''}build → verify"
        say(stage)
        if heartbeat is not None:
            heartbeat.set(stage)
        options = OptimizeOptions(
            files["program"],
            files["calib"],
            precision,
            "embedded",
            settings.build / name,
            eval_path=files["heldout"],
            name=name,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            speed=SpeedSettings(allow_slower=settings.allow_slower),
        )
        optimize_variant(options, settings.repo)
        # the demo's own names: a demo model of an earlier quantserve there is replaced, whatever its inputs were
        deployment = deploy(
            settings.build / name, settings.repo, name, max_batch=settings.max_batch, allow_interface_change=True
        )
        say(f"deployed {name} as version {deployment.version} in {settings.repo}")
        names.append(name)
    return names


def optimize_variant(options: Any, repo: Path) -> None:
    """`optimize`, its INT8 speed refusal told in the demo's terms: it offered `--allow-slower`, which `make demo`
    does not take (the quick-start probe: 0.99× on a machine whose other processes took 73 % of the cores)."""
    from optimizer.pipeline import optimize

    try:
        optimize(options)
    except QuantserveError as exc:
        if not str(exc).startswith("INT8 is ") or "--allow-slower" not in str(exc):
            raise
        raise QuantserveError(
            f"{exc}. The demo stops here, nothing of INT8 deployed ({MODEL_NAME}_fp32 is, in {repo}): run `make "
            "demo` again when the machine is idle, or `quantserve demo --allow-slower` to serve INT8 anyway, its "
            "speed reported as measured"
        ) from None


def measure(settings: DemoSettings, names: list[str], heldout: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Start tritonserver with just the demo's models; score accuracy, then load the variants step by step.

    The variants take turns at each concurrency step (FP32 then INT8, INT8 then FP32 at the next), so the
    two windows the headline compares are seconds apart, not a whole sweep: a load swing on a shared
    machine hits both alike. Each variant's run is saved as each of its steps finishes (`demo_steps.run_steps`).
    """
    from loadtest.evaluator import evaluate_accuracy
    from loadtest.load_pattern import Sweep
    from loadtest.load_settings import LoadSettings
    from quantserve.cli.demo_steps import run_steps
    from serving.server import TritonServer
    from serving.server_options import ServerOptions

    settings.out.mkdir(parents=True, exist_ok=True)
    options = ServerOptions.on_free_ports(
        settings.repo, log_path=settings.out / "tritonserver.log", model_control="explicit", load_models=tuple(names)
    )
    server = TritonServer(options)
    with server:
        say(f"tritonserver (pid {server.pid}) ready at {server.grpc_url}")
        clear_previous_run(settings.out)  # once this run can measure: a server that failed to start kept them
        accuracy = evaluate_accuracy(
            server.grpc_url, names, names[0], heldout, max_accuracy_drop=settings.max_accuracy_drop
        )
        accuracy.save(settings.out)
        steps = sorted({*settings.sweep, settings.users})
        loads = {
            name: LoadSettings(
                server.grpc_url,
                name,
                heldout,
                pattern=Sweep.of_users(steps),
                duration_s=settings.duration_s,
                request_batch=settings.request_batch,
                metrics_url=server.metrics_url,
            )
            for name in names
        }
        precisions = {v.model: v.precision for v in accuracy.variants}  # as deployed, read by evaluate
        per = f"{settings.duration_s:g} s, {settings.request_batch} per request"
        runs = run_steps(
            names,
            Sweep.of_users(steps).steps(),
            [f"{users} users × {per}" for users in steps],
            loads,
            settings.out,
            server.pid,
            precisions,
            say,
        )
    headline = {name: next(r for r in results if r.users == settings.users) for name, results in runs.items()}
    return {"accuracy": accuracy, "loads": headline}


def summarize(names: list[str], measured: dict[str, Any]) -> dict[str, Any]:
    """The summary.json document: per variant accuracy, agreement, latency, throughput, batching."""
    accuracy = {v.model: v for v in measured["accuracy"].variants}
    variants = {}
    for precision, name in zip(VARIANTS, names, strict=True):
        load = measured["loads"][name]
        variants[precision] = {
            "model": name,
            "accuracy": accuracy[name].accuracy,
            "top1_agreement": accuracy[name].top1_agreement,
            "latency_p50_ms": load.latency_p50_ms,
            "latency_p99_ms": load.latency_p99_ms,
            "throughput_rps": load.throughput_rps,
            "inferences_per_s": load.inferences_per_s,
            "avg_batch_size": load.avg_batch_size,
            "failed_requests": load.failed_requests,
        }
    fp32, int8 = variants["fp32"], variants["int8"]
    return {
        "model": MODEL_NAME,
        "target": "embedded",
        "variants": variants,
        "int8_speedup": int8["throughput_rps"] / fp32["throughput_rps"] if fp32["throughput_rps"] else 0.0,
        "int8_accuracy_drop_points": (fp32["accuracy"] - int8["accuracy"]) * 100.0,
    }


def clear_previous_run(out: Path) -> None:
    """Remove the results an earlier demo left in `out` (its load and accuracy JSON, summary and report) before this
    one measures: interrupted in its first load step, a second run's report showed three rows of the first run's
    (another server and port) and its summary.json still read 2.23×, nothing marking them stale. Called once the
    server is up: a range with a busy port failed the demo after training and deleted the earlier run's results."""
    from loadtest.accuracy_results import ACCURACY_FILE
    from loadtest.load_run import LOAD_PREFIX
    from loadtest.recorded_builds import BUILDS_FILE

    for pattern in (f"{LOAD_PREFIX}*.json", ACCURACY_FILE, BUILDS_FILE, SUMMARY_FILE, "report.md", "report.html"):
        for path in out.glob(pattern):
            path.unlink()


def run_demo(
    settings: DemoSettings, say: Callable[[str], None] = print, heartbeat: Heartbeat | None = None
) -> dict[str, Any]:
    """The whole job end to end; returns the summary (also written to `out/summary.json`). `heartbeat` beats while
    the model trains and its variants are optimized (`train_and_optimize`)."""
    from loadtest.recorded_builds import record_builds
    from loadtest.report import render
    from quantserve.cli.demo_caveats import CAVEATS_KEY, report_verdict, served_caveats
    from quantserve.cli.demo_steps import DemoInterrupted
    from quantserve.cli.tune_checks import check_optuna
    from serving.ports import check_free_ports

    if settings.tune and settings.tune_trials < 1:
        raise QuantserveError(f"--tune-trials must be at least 1, got {settings.tune_trials}")
    if settings.tune:  # its search's sampler, before the minutes of training and the demo's own server
        check_optuna(", or run the demo with --no-tune")
    # before the minutes of training and optimizing (as tune checks): one server at a time, on 3 ports at once
    check_free_ports(3)
    files, names = train_and_optimize(settings, say, heartbeat)
    try:
        measured = measure(settings, names, files["heldout"], say)
    except DemoInterrupted as stop:  # the server stopped: the report of what was saved, and one line of it
        stop.tell(settings.out)
        raise
    summary = summarize(names, measured)
    # the builds optimize wrote, so `quantserve report OUT` judges their in-process speed as this run's report does
    record_builds(settings.out, [b for b in builds(settings) if (b / "manifest.json").is_file()])
    summary[CAVEATS_KEY] = served_caveats(settings.out, names, settings.users)
    summary.update(report_verdict(settings.out, f"{MODEL_NAME}_int8"))
    write_summary(settings.out, summary)
    render(settings.out)
    over = measured["accuracy"].over_budget
    if over:
        raise QuantserveError(
            f"accuracy drop over the {settings.max_accuracy_drop:g}-point budget for: {', '.join(over)} "
            f"(see {settings.out / SUMMARY_FILE})"
        )
    if settings.tune:
        summary["tune"] = tune_served(settings, files["heldout"], summary, say)
        write_summary(settings.out, summary)
    return summary


def builds(settings: DemoSettings) -> list[Path]:
    """The demo's build folders, FP32 then INT8: recorded in its results folder for `quantserve report`."""
    return [settings.build / f"{MODEL_NAME}_{precision}" for precision in VARIANTS]


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    from quantserve.cli.tables import finite_json

    path = out / SUMMARY_FILE
    path.write_text(json.dumps(finite_json(summary), indent=2) + "\n")
    return path


def tune_slo_ms(summary: dict[str, Any]) -> float:
    """TUNE_SLO_FACTOR x the FP32 variant's served p99 (ms); 0.0 when the comparison measured none."""
    p99 = float(summary["variants"]["fp32"]["latency_p99_ms"])
    return TUNE_SLO_FACTOR * p99 if math.isfinite(p99) and p99 > 0 else 0.0


def tune_served(settings: DemoSettings, data: Path, summary: dict[str, Any], say: Callable[[str], None]) -> dict:
    """Tune's quick joint FP32 x INT8 search on the comparison's load (users, images per request);
    the summary's `tune` section: the winner, its goodput over the naive baseline's, or why it failed."""
    from quantserve.cli.tune import TuneSettings, tune

    slo = tune_slo_ms(summary)
    if not slo:
        return tune_failed("the served comparison measured no FP32 p99 to set the SLO from")
    tune_settings = TuneSettings(
        builds={precision: settings.build / f"{MODEL_NAME}_{precision}" for precision in VARIANTS},
        data=data,
        slo_p99_ms=round(slo, 1),
        repo=settings.repo,
        name=TUNED_NAME,
        out=settings.out / TUNE_FOLDER,
        max_trials=settings.tune_trials,
        quick=True,
        users=settings.users,
        request_batch=settings.request_batch,
    )
    slo_text = f"SLO p99 <= {tune_settings.slo_p99_ms:g} ms ({TUNE_SLO_FACTOR:g}x FP32's)"
    say(f"tune: quick joint FP32 x INT8 search, {settings.tune_trials + 1} trials, {slo_text}")
    try:
        result = tune(tune_settings, say=lambda line: say(f"tune: {line}"))
    except Exception as exc:  # the comparison is made and written: a failed search must not lose it
        return tune_failed(" ".join(f"{type(exc).__name__}: {exc}".split())[:300])
    return tune_section(result, tune_settings)


def tune_failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "error": reason}


def tune_section(result: Any, tune_settings: Any) -> dict[str, Any]:
    """The figures the demo prints from a TuneResult: ratio = winner goodput / naive baseline goodput."""
    from quantserve.cli.demo_caveats import tune_caveats
    from quantserve.cli.tune import slo_missed

    best, baseline = result.best, result.baseline
    if best.error or best.goodput_rps <= 0:
        why = f": {best.error}" if best.error else ""
        return tune_failed(f"no trial served a request within the {tune_settings.slo_p99_ms:g} ms SLO{why}")
    if not result.deployed:
        return tune_failed(f"{slo_missed(result)}; nothing deployed")
    config, out = best.config, Path(tune_settings.out)
    return {
        "status": "ok",
        "slo_p99_ms": tune_settings.slo_p99_ms,
        "slo_rule": f"{TUNE_SLO_FACTOR:g} x the FP32 deployment's served p99 at {tune_settings.users} users",
        "users": tune_settings.users,
        "request_batch": tune_settings.request_batch,
        "precision": config.precision,
        "max_batch": config.max_batch,
        "preferred": list(config.preferred),
        "max_queue_delay_us": config.max_queue_delay_us,
        "instances": config.instances,
        "goodput_rps": best.goodput_rps,
        "throughput_rps": best.throughput_rps,
        "p99_ms": best.p99_ms,
        "baseline_goodput_rps": baseline.goodput_rps,
        "goodput_ratio": result.gain,
        "trials": len(result.trials),
        "pruned": sum(t.pruned for t in result.trials),
        "seconds": round(result.seconds, 1),
        "deployed": {k: result.deployed[k] for k in ("repo", "name", "version", "config_path")},
        "tune_json": str(out / "tune.json"),
        "tune_html": str(out / "tune.html"),
        **tune_caveats(result),
    }
