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
    """A line per served version of `model_dir` whose model file's sha256 is not its manifest's (versions
    deployed before the hash was recorded, or without a manifest, are not checked)."""
    lines = []
    try:
        versions = served_versions(model_dir)
    except Exception:  # an unreadable config: serve names it elsewhere
        return []
    for version in versions:
        folder = Path(model_dir) / str(version)
        try:
            manifest = json.loads((folder / MANIFEST_NAME).read_text())
            recorded = manifest.get("extra", {}).get(MODEL_SHA256)
            model = folder / str(manifest.get("files", {}).get("model", ""))
            if not isinstance(recorded, str) or not model.is_file() or file_sha256(model) == recorded:
                continue
        except (OSError, ValueError, AttributeError):
            continue
        lines.append(
            f"warning: model '{Path(model_dir).name}' version {version}: {model.name} is not the file deployed (its "
            f"sha256 differs from {version}/{MANIFEST_NAME}'s); it serves what is on disk now: deploy the build "
            "again to serve what was verified"
        )
    return lines
