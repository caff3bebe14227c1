"""`quantserve deploy BUILD_DIR --repo model_repo --name NAME [--max-batch 32 --max-queue-delay-us 500 ...]`."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from quantserve.artifact import Artifact
from quantserve.cli.kept_serving_settings import keep_serving_settings
from quantserve.errors import QuantserveError
from serving.deploy import Deployment
from serving.deploy_config import RAGGED_BATCHING

# How long the server at --url has to answer its liveness check before anything is written: a live Triton answers in
# milliseconds; a typo'd URL whose host accepts the connection and never answers wrote the version first, a watching
# `serve` loaded it, and the deploy withdrew it as "failed (timed out)" 2 minutes later.
LIVE_CHECK_S = 5.0
# How long a refused --url is waited for where a live `quantserve serve` supervises it: its restart backoff (0.5 s,
# doubling) and tritonserver's start (3.4 s for the demo's models after a SIGKILL, session 55)
RESTART_WAIT_S = 60.0
RESTART_POLL_S = 0.5


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="write a build into a Triton model repository as its next version (atomically)",
        description="Write BUILD_DIR (the output of 'quantserve optimize') as REPO/NAME/config.pbtxt + REPO/NAME/<v>/.",
    )
    parser.add_argument("build_dir", metavar="BUILD_DIR", type=Path, help="folder written by 'quantserve optimize'")
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument("--name", required=True, help="model name in the repository")
    # the four serving settings left out are the model's config's where it has one (`keep_serving_settings`), else
    # the defaults named
    parser.add_argument(
        "--max-batch",
        type=int,
        default=None,
        help="max_batch_size (0: no batching; default: the model's config's, 0 included, else 32, or 0 for a build "
        "made with optimize --unbatched)",
    )
    parser.add_argument(  # None: left out, told from an explicit value, which max_batch_size 0 refuses
        "--max-queue-delay-us",
        type=int,
        default=None,
        help="dynamic batcher max queue delay (µs; default: the model's config's, else 500)",
    )
    parser.add_argument(
        "--preferred-batch",
        type=_batch_sizes,
        help="preferred batch sizes, e.g. 8,16,32 (default: the model's config's, else powers of two)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=None,
        help="model instances (instance_group count; default: the model's config's, else 1)",
    )
    parser.add_argument(
        "--ragged-batching",
        choices=RAGGED_BATCHING,
        default=None,
        help="embedded target, inputs of varying length: run each shape apart (exact; default, unless the model's "
        "config pads: then pad, checked again) or zero-pad into one batch "
        "(exact only where the model masks or ignores padded positions, as an encoder with an attention mask does; "
        "checked on synthesized rows before anything is written, and refused where an output changes, e.g. a mean "
        "over the sequence)",
    )
    service = parser.add_argument_group("in service")
    service.add_argument(
        "--max-queue-size",
        type=int,
        default=None,
        help="requests waiting at most; more are refused (default: the model's config's, else 0: unbounded; Triton "
        "2.51 stalls with any queue policy: server#8870)",
    )
    service.add_argument(
        "--queue-timeout-us",
        type=int,
        default=None,
        help="a request waiting longer than this (µs) is refused (default: the model's config's, else 0: never; "
        "Triton 2.51 stalls with any queue policy)",
    )
    service.add_argument(
        "--live-versions",
        type=int,
        default=None,
        help="newest versions served at once (default: the model's config's, else 1)",
    )
    service.add_argument("--keep-versions", type=int, default=5, help="version folders kept for rollback (0: all)")
    service.add_argument(
        "--allow-interface-change",
        action="store_true",
        help="deploy a version whose inputs or outputs differ from the served config's (its clients' requests fail)",
    )
    add_live_url(service)
    parser.set_defaults(func=run)


def add_live_url(parser: Any) -> None:
    """`--url`: the running server's HTTP address, to load the change now and wait until it serves it."""
    parser.add_argument(
        "--url",
        default="",
        help="HTTP address (host:8000) of a server to load the change on now and wait for; "
        "without it 'quantserve serve' picks the change up within a second",
    )


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers") from exc
    if not sizes:  # an empty list deployed the default sizes in silence
        raise argparse.ArgumentTypeError(f"'{text}' names no batch size")
    return sizes


def run(args: argparse.Namespace) -> int:
    from serving.url_loads import loading_over_url

    if not args.url:
        return _run(args)
    with loading_over_url(Path(args.repo) / args.name):  # serve's watcher leaves this load to it (session 63)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from optimizer.verified_sizes import recorded_sizes_note
    from serving.build_verdict import missed_checks
    from serving.deploy import deploy, load_artifact, max_batch_for, prune_after_deploy
    from serving.deploy_config import ServingPolicy
    from serving.deploy_numbers import DEFAULT_QUEUE_DELAY_US, check_delay_batched, check_numbers
    from serving.endpoints import check_serves_repository, not_loaded_until_restart
    from serving.model_config import QueuePolicy, check_model_name
    from serving.queue_policy_stall import warn_queue_policy
    from serving.url_loads import superseded_line
    from serving.watching_serve import watching_serve_note

    check_model_name(args.name)  # before its folder is read: 300 characters said "file name too long" (session 56)
    artifact = load_artifact(Path(args.build_dir))
    manifest = artifact.manifest
    kept = keep_serving_settings(args, Path(args.repo) / args.name, manifest.unbatched)
    args.instances = 1 if args.instances is None else args.instances
    args.ragged_batching = args.ragged_batching or "group"
    args.live_versions = 1 if args.live_versions is None else args.live_versions
    args.max_queue_size = args.max_queue_size or 0
    args.queue_timeout_us = args.queue_timeout_us or 0
    queue = (args.max_queue_size, args.queue_timeout_us)
    delay = DEFAULT_QUEUE_DELAY_US if args.max_queue_delay_us is None else args.max_queue_delay_us
    check_numbers(args.max_batch or 0, delay, args.preferred_batch, args.instances, queue, args.live_versions)
    check_delay_batched(max_batch_for(manifest, args.max_batch), args.max_queue_delay_us, manifest.unbatched)
    if args.url:  # a server of another repository would reload its own copy of the model
        check_serves_repository(args.url, args.repo)
        check_server_answers(args.url)
    result = deploy(
        args.build_dir,
        args.repo,
        args.name,
        max_batch=args.max_batch,
        max_queue_delay_us=delay,
        preferred=args.preferred_batch,
        instances=args.instances,
        ragged_batching=args.ragged_batching,
        policy=ServingPolicy(
            QueuePolicy(args.max_queue_size, args.queue_timeout_us), args.live_versions, args.keep_versions
        ),
        prune=not args.url,  # with --url, old folders stay until the server has loaded the new version
        allow_interface_change=args.allow_interface_change,
    )
    kept_flags = {setting.split()[0] for setting in kept}  # a queue flag kept is named so, not as given
    warn_queue_policy(QueuePolicy(args.max_queue_size, args.queue_timeout_us), kept_flags)  # Triton 2.51 stalls on any
    warn_missing_backend(artifact, str(args.build_dir))
    for line in missed_checks(manifest.verification):  # shipped past them
        print(f"warning: {args.build_dir} {line}: evaluate it through the server first", file=sys.stderr)
    pruned = list(result.pruned)
    superseded = ""
    if args.url:
        served = make_live_or_withdraw(args.url, args.repo, args.name, result)
        superseded = superseded_line(result.version, served)
        pruned, unpruned = prune_after_deploy(result.model_dir, args.keep_versions)
        result = replace(result, unpruned=unpruned)
    unserved = None if args.url else not_loaded_until_restart(args.repo)  # serve --model-control none
    said = f"deployed {args.build_dir} as '{args.name}' version {result.version}: {result.version_dir}"
    print(f"{said}; {unserved}" if unserved else said)
    watcher = None if args.url or unserved else watching_serve_note(Path(args.repo), result.version)
    if watcher:  # stopped or gone: exit 0 all the same, the version is written (session 56)
        print(watcher)
    if superseded:
        print(f"warning: {superseded}", file=sys.stderr)
    print(f"config: {result.config_path}")
    if pruned:  # said: a version another deploy had just reported was gone without a word (session 45)
        word = "version" if len(pruned) == 1 else "versions"
        listed = ", ".join(str(v) for v in pruned)
        print(
            f"removed {word} {listed} of '{args.name}' (--keep-versions {args.keep_versions}: the newest folders kept)"
        )
    if result.unpruned:
        print(f"warning: {result.unpruned}", file=sys.stderr)
    if result.memory_warning:  # a request of --max-batch rows would get the model's process killed (session 54)
        print(f"warning: {result.memory_warning}", file=sys.stderr)
    if result.isa_warning:  # verified where 8-bit INT8 weights do not saturate, served where they do (session 60)
        print(f"warning: {args.build_dir}: {result.isa_warning}", file=sys.stderr)
    if result.batch_warning:  # answers that move with their batch, served larger than verified (session 61)
        print(f"warning: {args.build_dir}: {result.batch_warning}", file=sys.stderr)
    if sized := recorded_sizes_note(manifest.verification):  # verified at one size, served at any (session 66)
        print(f"note: {args.build_dir}: {sized}", file=sys.stderr)
    if kept:
        print(
            f"note: kept the serving settings of '{args.name}' from its config: {', '.join(kept)} (a flag changes one)"
        )
    return 0


def check_server_answers(url: str, timeout_s: float = LIVE_CHECK_S, nothing: str = "nothing deployed") -> None:
    """Refuse, before anything is written, a --url where no Triton answers `/v2/health/live` within `timeout_s`: a
    refused connection, a host that never answers, or a port that does not speak HTTP. `nothing` ends the line
    (what was not done: "nothing deployed", "nothing rolled back"). A port that takes connections and answers nothing
    is a hung server, named so; a refused one that a live `quantserve serve` supervises is waited for while it
    restarts tritonserver (`RESTART_WAIT_S`)."""
    from serving.control import ControlClient

    live = f"{ControlClient(url).url}/v2/health/live"
    try:
        status = _live_status(live, timeout_s)
    except (http.client.HTTPException, ValueError) as exc:  # the gRPC port given for --url
        raise QuantserveError(
            f"{url}: not a Triton HTTP endpoint ({type(exc).__name__}); --url takes the HTTP port (8000 by default), "
            f"not the gRPC one: {nothing}"
        ) from exc
    except OSError as exc:  # refused, unreachable, or no answer within the timeout
        status = _down_or_restarting(url, live, f"{_why(exc, timeout_s)}", nothing)
    if status != 200:
        raise QuantserveError(f"no Triton server answers at {url} (GET {live}: HTTP {status}): {nothing}")


def _live_status(live: str, timeout_s: float) -> int:
    """The HTTP status of the liveness endpoint `live`; an OSError where nothing answers."""
    try:
        with urllib.request.urlopen(live, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _down_or_restarting(url: str, live: str, why: str, nothing: str) -> int:
    """The liveness status once a `quantserve serve` restarting the server at `url` has it back; else the one line
    for a server that does not answer: hung (its port takes connections: a SIGSTOPped tritonserver was "no Triton
    server answers … (no answer within 5 s)" where infer named it hung), or gone (0.3 s after a SIGKILL: "Connection
    refused", while serve had it ready again 3.4 s later, session 55)."""
    from serving.call_failures import no_answer_line, takes_connections
    from serving.endpoints import find_endpoints_by_http

    address = urllib.parse.urlsplit(live).netloc
    supervisor = find_endpoints_by_http(url)
    serve = f"quantserve serve (pid {supervisor.pid})" if supervisor is not None else ""
    if takes_connections(address):
        again = ": run this again then" if serve else ""
        raise QuantserveError(f"{no_answer_line(address, serve)}{again}: {nothing}")
    if supervisor is None:
        raise QuantserveError(f"no Triton server answers at {url} ({why}): {nothing}")
    print(f"note: no Triton server answers at {url} ({why}); {serve} restarts it: waiting up to {RESTART_WAIT_S:g} s")
    started = time.monotonic()
    while time.monotonic() - started < RESTART_WAIT_S:
        time.sleep(RESTART_POLL_S)
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            status = _live_status(live, RESTART_POLL_S)
            print(f"note: the server at {url} answers again, {time.monotonic() - started:.1f} s later")
            return status
    raise QuantserveError(
        f"no Triton server answers at {url} ({why}), and {serve}, which restarts it, has not brought it back within "
        f"{RESTART_WAIT_S:g} s (its output says why): {nothing}"
    )


def _why(exc: OSError, timeout_s: float) -> str:
    """An OSError from urllib as a few words: `no answer within 5 s`, `Connection refused`."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return str(getattr(reason, "strerror", None) or reason)


def make_live_or_withdraw(url: str, repo: Path, name: str, result: Deployment) -> list[int]:
    """`make_live`; if the server will not load the new version, take it out of the repository again, so that
    no restart ever loads a version that fails (the server keeps serving the previous one meanwhile). The line
    says what the withdrawal did: a deploy that ran meanwhile keeps its version and its config."""
    from serving.withdraw import withdraw

    try:
        return make_live(url, repo, name)
    except QuantserveError as exc:
        raise QuantserveError(f"{exc}; {withdraw(result)}") from exc


def make_live(url: str, repo: Path, name: str) -> list[int]:
    """Load `name` on the server at `url` and wait until it serves exactly the versions its config names: those."""
    from serving.control import ControlClient
    from serving.url_loads import about_to_load
    from serving.versions import served_versions

    control = ControlClient(url, timeout_s=120.0)
    about_to_load(repo / name)
    control.load(name)
    expected = served_versions(repo / name)
    control.wait_versions(name, expected)
    print(f"live on {control.url}: '{name}' versions {', '.join(map(str, expected))}")
    return list(expected)


def warn_missing_backend(artifact: Artifact, build: str) -> None:
    """A build the tritonserver found here cannot load is deployed all the same (the repository may be served from
    NVIDIA's image), with a warning: session 45, an `--target onnxruntime` build deployed in silence and `serve`
    then failed to load it."""
    from optimizer.targets import get_target
    from serving.triton_install import missing_backend

    line = missing_backend(get_target(artifact.manifest.target).triton_layout(artifact).runtime, build)
    if line is not None:
        print(f"warning: {line}", file=sys.stderr)
