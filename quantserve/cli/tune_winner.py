"""The end of `quantserve tune`: the winning configuration deployed into the user's repository, and re-measured by
one plain load on a fresh server (the claim in tune.json checked by what a user would run next)."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quantserve.cli.tune_trials import TRACE_MAX_IN_FLIGHT, ServingConfig, Trial, TuneSettings


def deploy_winner(settings: TuneSettings, config: ServingConfig) -> dict[str, Any]:
    """Deploy the winning build with the winning settings into the user's repository. A winner that takes fewer rows
    a request than the model there now is deployed (a lower max batch is what the search found best) and said:
    `batch_cut`, the words `tune` prints (deploy alone refuses it, `serving.config_changes.batch_limit_cut`)."""
    from serving.config_changes import batch_limit_cut
    from serving.deploy import deploy
    from serving.model_config import CONFIG_NAME, parse_config

    build = settings.build_for(config.precision)
    served = Path(settings.repo) / settings.name / CONFIG_NAME
    cut = batch_limit_cut(parse_config(served), {"max_batch_size": config.max_batch}) if served.is_file() else None
    deployment = deploy(
        build,
        settings.repo,
        settings.name,
        config.max_batch,
        config.max_queue_delay_us,
        config.preferred or None,
        config.instances,
        allow_batch_cut=True,
    )
    return {
        "batch_cut": cut,
        "repo": str(settings.repo),
        "name": settings.name,
        "version": deployment.version,
        "build": str(build),
        "config": {**asdict(config), "preferred": list(config.preferred)},
        "config_path": str(deployment.config_path),
    }


def served_versions(repo: Path, name: str) -> list[int]:
    """The version folders of model `name` in `repo` now ([] where it has none yet)."""
    from serving.versions import existing_versions

    folder = Path(repo) / name
    return existing_versions(folder) if folder.is_dir() else []


def changed_meanwhile(repo: Path, name: str, before: list[int]) -> str | None:
    """The words for a model whose version folders changed in the user's repository while tune searched (a deploy
    or a rollback beside it), said before tune deploys its winner over them; None where they did not. A deploy of
    version 4 (2 instances) 30 s into a search was followed by tune's version 5 (1 instance), with no word of it
    (session 56)."""
    now = served_versions(repo, name)
    if now == before:
        return None
    return (
        f"'{name}' changed in {repo} while tune searched (versions {before or 'none'} -> {now or 'none'}: a deploy or "
        "a rollback beside it?); the winner, measured on tune's own builds, is deployed over it"
    )


def remeasure_seconds(settings: TuneSettings) -> float:
    """A trial's span, all measured: its warm-up and two windows; on a trace, the warm-up and window 2, the part of
    the trace both windows replay from its start (`tune_trace`): two 10 s windows from the start had re-measured 0-21 s
    of a trace whose trials' window 2 ran 30 s, and compared its 9.9 req/s and p99 with other seconds' (1.41x)."""
    if settings.trace is not None:
        from quantserve.cli.tune_trace import trace_second_window_s

        return settings.warmup_s + trace_second_window_s(settings)
    return settings.warmup_s + 2 * settings.window_s


def remeasure(settings: TuneSettings, best: Trial, out: Path) -> dict[str, Any]:
    """One plain load (no warm-up discarded) of the deployed winner on a fresh server: the trials' own load."""
    from loadtest.harness import run_pattern
    from loadtest.load_settings import LoadSettings
    from serving.server import TritonServer
    from serving.server_options import ServerOptions

    options = ServerOptions.on_free_ports(
        settings.repo, model_control="explicit", load_models=(settings.name,), log_path=out / "tritonserver-check.log"
    )
    duration = remeasure_seconds(settings)
    with TritonServer(options) as server:
        load = LoadSettings(
            server.grpc_url,
            settings.name,
            Path(settings.data),
            settings.load_step(),
            duration,
            settings.request_batch,
            max_in_flight=TRACE_MAX_IN_FLIGHT,
        )
        result = run_pattern(load, out / "remeasure", server_pid=server.pid).results[0]
    throughput, p99 = result.throughput_rps, result.latency.p99_ms
    return {
        "throughput_rps": throughput,
        "p50_ms": result.latency.p50_ms,
        "p99_ms": p99,
        "failed_requests": result.failed_requests,
        "requests": result.requests,
        "window_s": result.window_s,  # as measured, its whole run (nothing dropped)
        "planned_window_s": duration,
        "throughput_ratio": throughput / best.throughput_rps if best.throughput_rps > 0 else math.nan,
        # a trace's req/s is its arrivals' over the span replayed, not the server's: the claim pooled windows of other
        # spans (a trace front-loaded read "0.66x the claim" with every arrival answered, session 40); what the
        # re-measure is checked by is how many of the arrivals its span offered were answered
        "offered_requests": settings.load_step().trace.arrivals_within(duration) if settings.trace else None,
        "p99_ratio": p99 / best.p99_ms if best.p99_ms > 0 else math.nan,
        "cut_short": result.model_gone["line"] if result.model_gone else "",  # the saved record (`loadtest.model_gone`)
        "how": f"a fresh server on the deployed repository, one plain {settings.load_step().mode}-loop load, "
        "nothing discarded",
    }
