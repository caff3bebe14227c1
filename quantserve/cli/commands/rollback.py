"""`quantserve rollback --repo model_repo --name NAME [--to VERSION] [--url 127.0.0.1:8000]`.

Serves the previous version (or --to VERSION) by rewriting the config's version policy; version
folders stay as they are, and the next deploy serves its new version again.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from quantserve.cli.commands.deploy import add_live_url, check_server_answers


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="serve the previous version of a deployed model again, without a restart",
        description="Point REPO/NAME's version policy at the previous version (or --to); 'quantserve serve' "
        "reloads it.",
    )
    parser.add_argument("--repo", type=Path, default=Path("model_repo"), help="Triton model repository")
    parser.add_argument("--name", required=True, help="model name in the repository")
    parser.add_argument("--to", help="the version to serve (default: the newest below the one served now)")
    add_live_url(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from serving.control import ControlClient
    from serving.endpoints import check_serves_repository
    from serving.versions import rollback, rollback_live

    if args.url:  # from the version the server serves, and claimed only once it has loaded the old one
        check_serves_repository(args.url, args.repo)
        check_server_answers(args.url, nothing="nothing rolled back")
        control = ControlClient(args.url, timeout_s=120.0)
        version = rollback_live(args.repo, args.name, control, args.to)
        print(f"live on {control.url}: '{args.name}' version {version}")
        print(f"'{args.name}' now serves version {version} ({args.repo / args.name / str(version)})")
        return 0
    version = rollback(args.repo, args.name, args.to)
    print(rolled_back_line(args.name, args.repo, version))
    return 0


def rolled_back_line(name: str, repo: Path, version: int) -> str:
    """What a rollback without --url changed: "now serves" only where a `quantserve serve` of the repository loads
    changes (explicit or poll model control); else what it changed on disk, and when that is served. It said
    "'m' now serves version 1" while a serve --model-control none served version 2 (session 43)."""
    from serving.endpoints import find_serving_repository, not_loaded_until_restart

    folder = repo / name / str(version)
    if find_serving_repository(repo) is None:
        return (
            f"'{name}''s config now names version {version} ({folder}); no quantserve serve of {repo} runs: a server "
            "serves it once it loads the model again (--url loads it on one now)"
        )
    unserved = not_loaded_until_restart(repo)
    if unserved:
        return f"'{name}''s config now names version {version} ({folder}), {unserved}"
    return f"'{name}' now serves version {version} ({folder})"
