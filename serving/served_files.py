"""Served versions whose model file is not the one deployed: a file copied over a version folder's model.onnx
(the INT8 model over the FP32 version, session 41) was reloaded ("versions [1] live") with no word, and `evaluate`
then scored "fp32" against INT8 at drift 0, PASS. `deploy` checks a build's file against its manifest's sha256
(`serving.build_checks.check_model_hash`); `serve` says so, at each start and load, of every version it serves.
It serves what is on disk all the same: the operator put it there, and refusing would stop a live model."""

from __future__ import annotations

import json
from pathlib import Path

from quantserve.artifact import MANIFEST_NAME, MODEL_SHA256, file_sha256
from serving.model_version import split_addressed
from serving.versions import served_versions


def replaced_model_files(model_dir: Path) -> list[str]:
    """A line per served version of `model_dir` whose model file's sha256 is not its manifest's, or whose manifest
    cannot be read (truncated, not JSON: the check was skipped in silence, session 55). Versions deployed before the
    hash was recorded, or without a manifest, are not checked."""
    try:
        versions = served_versions(model_dir)
    except Exception:  # an unreadable config: serve names it elsewhere
        return []
    said = f"warning: model '{Path(model_dir).name}' "
    lines = (version_file_warning(Path(model_dir), version) for version in versions)
    return [said + line for line in lines if line]


def served_file_notes(grpc_url: str, model: str, version: str) -> list[str]:
    """What `serve` warns of the model file `version` of `model` answers from (`version_file_warning`), for commands
    that reach only the server: `evaluate` of a version whose model.onnx differs from its manifest's sha256 said
    PASS and nothing else, while serve's log warned (session 55). The repository is read from serve's record of the
    server at `grpc_url`: [] where none is recorded (a tritonserver serve did not start) or `version` is no number."""
    from serving.endpoints import find_endpoints

    endpoints = find_endpoints(grpc_url)
    if endpoints is None or not version.isdigit():
        return []
    line = version_file_warning(Path(endpoints.repo) / split_addressed(model)[0], int(version))
    return [line] if line else []


def version_file_warning(model_dir: Path, version: int) -> str | None:
    """Why one version's model file may not be the file deployed ("version 2: model.onnx is not the file deployed
    …"), or None where it is, or nothing can tell (no manifest, no hash recorded)."""
    folder, said = Path(model_dir) / str(version), f"version {version}"
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        recorded = manifest.get("extra", {}).get(MODEL_SHA256)
        model = folder / str(manifest.get("files", {}).get("model", ""))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as exc:
        return (
            f"{said}: {version}/{MANIFEST_NAME} is unreadable ({_why(exc)}), so its model file is unchecked against "
            "the sha256 deployed; it serves what is on disk now: deploy the build again to serve what was verified"
        )
    try:
        if not isinstance(recorded, str) or not model.is_file() or file_sha256(model) == recorded:
            return None
    except OSError:
        return None
    return (
        f"{said}: {model.name} is not the file deployed (its sha256 differs from {version}/{MANIFEST_NAME}'s); it "
        "serves what is on disk now: deploy the build again to serve what was verified"
    )


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, AttributeError):
        return "not a JSON object"
    return str(exc)
