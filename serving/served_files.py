"""Served versions whose model file is not the one deployed: a file copied over a version folder's model.onnx
(the INT8 model over the FP32 version, session 41) was reloaded ("versions [1] live") with no word, and `evaluate`
then scored "fp32" against INT8 at drift 0, PASS. `deploy` checks a build's file against its manifest's sha256
(`serving.build_checks.check_model_hash`); `serve` says so, at each start and load, of every version it serves.
It serves what is on disk all the same: the operator put it there, and refusing would stop a live model."""

from __future__ import annotations

import json
from pathlib import Path

from quantserve.artifact import MANIFEST_NAME, MODEL_SHA256, file_sha256
from serving.versions import served_versions


def replaced_model_files(model_dir: Path) -> list[str]:
    """A line per served version of `model_dir` whose model file's sha256 is not its manifest's, or whose manifest
    cannot be read (truncated, not JSON: the check was skipped in silence, session 55). Versions deployed before the
    hash was recorded, or without a manifest, are not checked."""
    try:
        versions = served_versions(model_dir)
    except Exception:  # an unreadable config: serve names it elsewhere
        return []
    lines = (_version_line(Path(model_dir), version) for version in versions)
    return [line for line in lines if line]


def _version_line(model_dir: Path, version: int) -> str | None:
    """The warning for one version's model file, or None where it is the file deployed or nothing can tell."""
    folder, said = model_dir / str(version), f"warning: model '{model_dir.name}' version {version}"
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
