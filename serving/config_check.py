"""A model folder's config.pbtxt checked against the ONNX model of each version it would serve, before serve loads it.

Seen against tritonserver 2.51: an input's `dims: 32` edited by hand to `dims: 33` in a served model's config was
reloaded ("versions [2] live") and every request then failed — ONNX Runtime refused the 33-wide ones ("Got: 33
Expected: 32"), Triton's shape check the 32-wide. The Python backend of the embedded target compares nothing at
load, so the mismatch is found here, from the graph's inputs and outputs alone (external weights are never read).
A hand edit that changes the interface served now (a lower max_batch_size) is judged here too, in deploy's words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantserve.artifact import MODEL_FILE
from quantserve.errors import QuantserveError
from serving.config_changes import batch_limit_cut, interface_changes
from serving.config_fit import model_mismatch
from serving.model_config import CONFIG_NAME, parse_config, to_protobuf_text
from serving.repository_lock import model_folder_lock
from serving.versions import existing_versions, recorded_config, served_versions

FIX = f"fix {CONFIG_NAME} or redeploy with 'quantserve deploy'"
# The file each backend loads from a version folder when the config names none (Triton's model repository docs).
# The Python backend's stub, started on a version with no model.py, logs "Failed to preinitialize Python stub:
# Python model file not found" at info level and Triton 2.51 then waits on that model forever (seen in session 48).
BACKEND_FILES = {
    "python": "model.py",
    "onnxruntime": MODEL_FILE,
    "onnxruntime_onnx": MODEL_FILE,
    "tensorrt": "model.plan",
    "tensorrt_plan": "model.plan",
    "pytorch": "model.pt",
    "pytorch_libtorch": "model.pt",
    "openvino": "model.xml",
}


def config_mismatch(model_dir: Path) -> str | None:
    """Why (a phrase to follow the folder's path) the config's inputs/outputs (names, data types, dims behind the
    batch axis) disagree with the ONNX model of a version its version policy serves, with what to do; None if none.

    Not judged here (Triton names them when it loads the model): a config that does not parse, and a version with
    no ONNX model (a TensorRT plan, a Python model) or one that does not parse. An empty (0-byte) model file is
    named as such: ONNX reads it as a model with no inputs, which said every config input was not the model's.
    """
    model_dir = Path(model_dir)
    read = _config_and_versions(model_dir)
    if read is None:
        return None
    config, versions = read
    file_name = str(config.get("default_model_filename") or MODEL_FILE)
    for version in versions:
        model_path = model_dir / str(version) / file_name
        if _empty(model_path):  # ONNX parses 0 bytes as a model with no inputs: "its inputs: none", not the config
            return f"has an empty version {version} {file_name} ({model_path}: 0 bytes)"
        problem = model_mismatch(config, model_path)
        if problem:
            return f"has a {CONFIG_NAME} that does not match version {version}'s {file_name}: {problem}; {FIX}"
    return None


def interface_change(served: dict[str, Any], new: dict[str, Any], batch_limit: bool = True) -> str | None:
    """How `new` (a config dict) changes what the clients of `served` (a config as `parse_config` reads it) may send
    or get back, in deploy's words ("changes the model's interface: …; requests made for the version there now would
    fail"), None where it does not. `batch_limit`: a lower max_batch_size counts, and a row limit over max_batch_size 0
    (0 → N: no row limit before, `batch_limit_cut`)."""
    cut = batch_limit_cut(served, new) if batch_limit else None
    changes = interface_changes(served, new) + ([cut] if cut else [])
    if not changes:
        return None
    more = f" (and {len(changes) - 2} more)" if len(changes) > 2 else ""
    return (
        f"changes the model's interface: {'; '.join(changes[:2])}{more}; requests made for the version there now "
        "would fail"
    )


def edited_interface_change(model_dir: Path, served: dict[str, Any] | None) -> str | None:
    """Why (a phrase to follow the folder's path) its config, edited by hand, is not loaded over `served` (the config
    the model serves now, None: none): it changes the interface as `deploy` refuses to (`interface_change`). Session
    55: max_batch_size edited 64 → 8 under a running serve was reloaded ("versions [1] live") and every request of
    9 to 64 rows failed from then on. A config a deploy or rollback wrote (one a version's deploy record holds) is
    loaded: that command checked it, or was told to allow it (`--allow-interface-change`, tune's winner). A deploy
    writes its config, then renames its version in, both under the folder's lock: a change is judged again under it."""
    if served is None:
        return None
    model_dir = Path(model_dir)
    try:
        change = _hand_change(model_dir, served)
        if change is not None:
            with model_folder_lock(model_dir):
                change = _hand_change(model_dir, served)
    except (QuantserveError, OSError):  # Triton names a config that does not parse, or a folder gone, at its load
        return None
    if change is None:
        return None
    return (
        f"has a {CONFIG_NAME} edited by hand that {change}; put back the config it served, or deploy the build with "
        "--allow-interface-change to serve it so"
    )


def _hand_change(model_dir: Path, served: dict[str, Any]) -> str | None:
    config = parse_config(model_dir / CONFIG_NAME)
    change = interface_change(served, config)
    return None if change is None or written_by_deploy(model_dir, config) else change


def readable_config(model_dir: Path) -> dict[str, Any] | None:
    """The folder's config as `parse_config` reads it; None where there is none or it does not parse."""
    try:
        return parse_config(Path(model_dir) / CONFIG_NAME)
    except QuantserveError:
        return None


def written_by_deploy(model_dir: Path, config: dict[str, Any]) -> bool:
    """Whether `config` is one a deploy of a version on disk wrote, or a rollback to it (which writes that version's
    recorded config with another version_policy)."""
    text = _without_version_policy(config)
    for version in existing_versions(model_dir) if text is not None else []:
        recorded = recorded_config(model_dir / str(version))
        if recorded is not None and _without_version_policy(recorded) == text:
            return True
    return False


def _without_version_policy(config: dict[str, Any]) -> str | None:
    try:
        return to_protobuf_text({key: value for key, value in config.items() if key != "version_policy"})
    except QuantserveError:
        return None


def missing_model_file(model_dir: Path) -> str | None:
    """Why (a phrase to follow the folder's path) a version the config serves lacks the file its backend loads, or
    None (also for a config that does not parse, or a backend or platform not known here: Triton names those)."""
    model_dir = Path(model_dir)
    read = _config_and_versions(model_dir)
    if read is None:
        return None
    config, versions = read
    backend = str(config.get("backend") or config.get("platform") or "")
    file_name = BACKEND_FILES.get(backend)
    if file_name is None:
        return None
    named = str(config.get("default_model_filename") or "")
    if named and (backend != "python" or named.endswith(".py")):  # config_mismatch reads it as the ONNX model's
        file_name = named
    missing = [v for v in versions if not (model_dir / str(v) / file_name).exists()]
    if not missing:
        return None
    which = f"version {missing[0]}" if len(missing) == 1 else "versions " + ", ".join(map(str, missing))
    return f"has no {file_name} in {which} ({model_dir / str(missing[0])}), the file its {backend} backend loads"


def _config_and_versions(model_dir: Path) -> tuple[dict[str, Any], list[int]] | None:
    """The folder's config and the versions its policy serves; None where the config does not parse (Triton names
    that when it loads the model)."""
    try:
        return parse_config(model_dir / CONFIG_NAME), served_versions(model_dir)
    except (QuantserveError, ValueError, OSError):
        return None


def _empty(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size == 0
    except OSError:
        return False
