"""compose.yaml: parses, runs Triton from the image with its 3 ports, and a Locust master + workers aimed at it."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_model import REPO, exec_form, stages

COMPOSE = REPO / "compose.yaml"
IMAGE_SRC = "/opt/quantserve/src/"  # the Dockerfile's WORKDIR for the project sources


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def locust_options(command: list[str], env: dict[str, str]) -> Any:
    """Parse a Locust command line the way Locust does, with the project's own options registered.

    In a child interpreter: importing locust monkey-patches threading with gevent for the whole
    process, which would serialize every later test's threads (and so Triton's batching).
    """
    code = (
        "import json, sys\n"
        "import locust, locust.argument_parser\n"
        "import loadtest.recording\n"
        "parser = locust.argument_parser.get_parser(default_config_files=[])\n"
        "locust.events.init_command_line_parser.fire(parser=parser)\n"
        "command, env = json.loads(sys.argv[1])\n"
        "options = parser.parse_args(command, env_vars=env)\n"
        "print(json.dumps({k: v for k, v in vars(options).items() if isinstance(v, (str, int, float, bool))}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps([command, env])], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return types.SimpleNamespace(**json.loads(result.stdout.strip().splitlines()[-1]))


def resolved_env(service: dict[str, Any]) -> dict[str, str]:
    """Compose's `${VAR:-default}` / `${VAR:?msg}` values with their defaults (MODEL set to 'demo')."""
    env = {}
    for key, value in service.get("environment", {}).items():
        text = str(value)
        if text.startswith("${MODEL:?"):
            text = "demo"
        elif text.startswith("${") and ":-" in text:
            text = text.split(":-", 1)[1].split("}", 1)[0] + text.split("}", 1)[1]
        env[key] = text
    return env


def test_triton_service_uses_the_image_with_its_ports_and_volume(services: dict[str, Any]) -> None:
    triton = services["triton"]
    assert triton["build"]["target"] in stages()
    assert sorted(triton["ports"]) == ["127.0.0.1:8000:8000", "127.0.0.1:8001:8001", "127.0.0.1:8002:8002"]
    assert any(v.endswith(":/models") for v in triton["volumes"])
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    assert triton["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


@pytest.mark.parametrize("name", ["locust-master", "locust-worker"])
def test_locust_services_run_the_projects_locustfile(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert service["entrypoint"] == ["locust"]
    command = service["command"]
    locustfile = command[command.index("-f") + 1]
    assert locustfile.startswith(IMAGE_SRC) and (REPO / locustfile.removeprefix(IMAGE_SRC)).is_file()
    assert any(exec_form(text)[0] == "loadtest" for text in stages()["serve"].all("COPY"))


def test_master_options_parse_with_locust_and_target_triton(services: dict[str, Any]) -> None:
    master = services["locust-master"]
    command = [word.replace("${LOCUST_WORKERS:-1}", "1") for word in master["command"]]
    options = locust_options(command, resolved_env(master))
    assert options.master and options.expect_workers == 1
    assert options.triton_url == "triton:8001" and options.triton_model == "demo"
    assert options.num_users == 64 and options.run_time == 60
    assert master["depends_on"]["triton"]["condition"] == "service_healthy"


def test_workers_parse_with_locust_and_find_the_master(services: dict[str, Any]) -> None:
    worker = services["locust-worker"]
    options = locust_options(worker["command"], resolved_env(worker))
    assert options.worker and options.master_host == "locust-master"
    assert options.triton_url.split(":") == ["triton", "8001"]
    assert "locust-master" in worker["depends_on"]


def test_compose_file_matches_the_compose_specification_schema() -> None:
    import json

    import jsonschema

    schema = json.loads((Path(__file__).parent / "assets" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    document = yaml.safe_load(COMPOSE.read_text())
    assert [error.message for error in validator.iter_errors(document)] == []
    document["services"]["triton"]["portz"] = ["8000:8000"]  # negative control: the schema does reject
    assert any("portz" in error.message for error in validator.iter_errors(document))


def test_every_published_port_is_on_the_host_loopback_only() -> None:
    """Docker publishes a bare "8001:8001" on every host interface; the image binds 0.0.0.0 inside the container."""
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    published = [str(p) for service in services.values() for p in service.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published), published
