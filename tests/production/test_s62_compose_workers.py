"""A headless compose run waits for as many Locust workers as compose starts, and never forever.

Before: the master expected `${LOCUST_WORKERS:-2}` workers while compose starts one `locust-worker` unless scaled,
and Locust's --expect-workers-max-wait defaults to 0 (wait forever): docs/production.md's headless line
(`MODEL=digits LOCUST_HEADLESS=true … docker compose up`) never started its test (session 62)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from dockerfile_model import REPO
from test_compose import locust_options, resolved_env

COMPOSE = REPO / "compose.yaml"


def with_defaults(words: list[str]) -> list[str]:
    """`${VAR:-default}` in a command as compose runs it with VAR unset."""
    return [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", word) for word in words]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_master_expects_the_workers_compose_starts_and_gives_up_waiting(services: dict[str, Any]) -> None:
    master = services["locust-master"]
    options = locust_options(with_defaults(master["command"]), resolved_env(master))
    started = services["locust-worker"].get("deploy", {}).get("replicas", 1)  # 1 unless --scale says otherwise
    assert options.expect_workers == started
    assert options.expect_workers_max_wait > 0  # 0 is Locust's "wait forever"
    assert any("${LOCUST_WORKERS:-" in word for word in master["command"])  # --scale N pairs with LOCUST_WORKERS=N


def test_every_headless_line_scaled_past_one_worker_says_how_many_to_expect() -> None:
    texts = [COMPOSE.read_text(), (REPO / "docs" / "production.md").read_text()]
    lines = [line for text in texts for line in text.replace("\\\n", " ").splitlines()]  # a command split by \
    headless = [line for line in lines if "LOCUST_HEADLESS=true" in line and "docker compose up" in line]
    assert headless
    for line in headless:
        scale = re.search(r"--scale locust-worker=(\d+)", line)
        expected = re.search(r"LOCUST_WORKERS=(\d+)", line)
        assert (scale.group(1) if scale else "1") == (expected.group(1) if expected else "1"), line
