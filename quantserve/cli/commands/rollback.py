"""`quantserve rollback --repo model_repo --name NAME [--to VERSION] [--url 127.0.0.1:8000]`.

Serves the previous version (or --to VERSION) by rewriting the config's version policy; version
folders stay as they are, and the next deploy serves its new version again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from quantserve.cli.commands.deploy import add_live_url, check_server_answers
from quantserve.errors import QuantserveError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="serve the previous version of a deployed model again, without a restart",
        description="Point REPO/NAME's version policy at the previous version (or --to); 'quantserve serve' "
        "reloads it.",
    )
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument("--name", required=True, help="model name in the repository")
    parser.add_argument(
        "--to",
        help="the version to serve (default: the newest below the one served now that no rollback moved away from)",
    )
    add_live_url(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from serving.control import ControlClient
    from serving.endpoints import check_serves_repository
    from serving.model_config import CONFIG_NAME
    from serving.versions import (
        model_dir_of,
        put_back,
        restore_rolled_back,
        rollback,
        rollback_live,
        rolled_back_from,
        skipped_note,
    )
    from serving.watching_serve import stopped_watcher

    model_dir = model_dir_of(args.repo, args.name)
    before = rolled_back_from(model_dir)
    if args.url:  # from the version the server serves, and claimed only once it has loaded the old one
        check_serves_repository(args.url, args.repo)
        check_server_answers(args.url, nothing="nothing rolled back")
        control = ControlClient(args.url, timeout_s=120.0)
        version = rollback_live(args.repo, args.name, control, args.to)
        warn_missed_checks(args.repo, args.name, version)
        skipped = skipped_note(before, rolled_back_from(model_dir), version) if args.to is None else ""
        print(f"live on {control.url}: '{args.name}' version {version}")
        print(f"'{args.name}' now serves version {version} ({args.repo / args.name / str(version)}){skipped}")
        return 0
    stopped = stopped_watcher(args.repo)
    if stopped:  # its watcher loads nothing: a wait of 60 s, then the config put back (session 56)
        raise QuantserveError(f"{stopped}: nothing rolled back; let it run again first, or roll back with --url")
    config_path = model_dir / CONFIG_NAME
    previous = config_path.read_bytes() if config_path.is_file() else None
    version = rollback(args.repo, args.name, args.to)
    written = config_path.read_bytes()
    warn_missed_checks(args.repo, args.name, version)
    line, served = rolled_back_line(args.name, args.repo, version)
    line += skipped_note(before, rolled_back_from(model_dir), version) if args.to is None else ""
    if not served:  # a version the server does not load stays out of the config: its next start would serve nothing
        line += f"; {put_back(config_path, previous, written)}"
        restore_rolled_back(model_dir, before)
    print(line)
    return 0 if served else 1


def warn_missed_checks(repo: Path, name: str, version: int) -> None:
    """A warning per check the version's build missed at optimize and was shipped past, as deploy gives: a rollback
    to the newest version below the served one returned to an INT8 build that had missed its drift budget (rolled
    back once already), in silence (session 44)."""
    from quantserve.artifact import Manifest
    from serving.build_verdict import missed_checks

    folder = repo / name / str(version)
    try:
        verification = Manifest.load(folder).verification
    except (OSError, ValueError, KeyError, QuantserveError):  # a version placed by hand: nothing recorded to say
        return
    for line in missed_checks(verification):
        print(f"warning: version {version} ({folder}) {line}: evaluate it through the server first", file=sys.stderr)


SERVED_WAIT_S = 60.0  # Triton polls a repository every 15 s by default (--repository-poll-secs), then loads


def rolled_back_line(name: str, repo: Path, version: int, wait_s: float = SERVED_WAIT_S) -> tuple[str, bool]:
    """What a rollback without --url changed, and whether it is served: "now serves" only once the `quantserve
    serve` of the repository answers that version alone READY (explicit model control: serve's watcher loads it;
    poll: Triton at its next poll); else what it changed on disk, and when that is served. It said "'m' now serves
    version 1" while a serve --model-control none served version 2 (session 43), and under poll while Triton served
    version 2 for up to its 15 s poll (session 44). False where a serve runs and did not confirm it in `wait_s`."""
    from serving.endpoints import find_serving_repository, not_loaded_until_restart
    from serving.tls import connect_host

    folder = repo / name / str(version)
    endpoints = find_serving_repository(repo)
    if endpoints is None:
        return (
            f"'{name}''s config now names version {version} ({folder}); no quantserve serve of {repo} runs: a server "
            "serves it once it loads the model again (--url loads it on one now)"
        ), True
    unserved = not_loaded_until_restart(repo)
    if unserved:
        return f"'{name}''s config now names version {version} ({folder}), {unserved}", True
    return _confirmed_line(name, version, folder, f"{connect_host(endpoints.host)}:{endpoints.http_port}", wait_s)


def _confirmed_line(name: str, version: int, folder: Path, http_url: str, wait_s: float) -> tuple[str, bool]:
    from serving.control import ControlClient

    control = ControlClient(http_url, timeout_s=10.0)
    try:
        control.wait_versions(name, [version], timeout_s=wait_s)
    except QuantserveError as exc:
        return (
            f"'{name}''s config now names version {version} ({folder}); not served after {wait_s:.0f} s: {exc}",
            False,
        )
    return f"'{name}' now serves version {version} ({folder}; READY alone on {control.url})", True
