"""Take a deploy out of the repository again (the server would not load it), touching nothing another deploy wrote.

Deploys of one model may run at once, so a withdrawal works from what is on disk now, under the
model folder's lock, not from what its deploy saw: it removes only its own version folder; it puts the
config it replaced back only while the config is still the one it wrote and no newer version uses it
(and, if the version that config came with is gone too, writes the config recorded with the newest
version left); it removes the model folder only when nothing at all is left in it.
"""

from __future__ import annotations

from serving.deploy import Deployment, config_bytes
from serving.model_config import write_config
from serving.repository_lock import model_folder_lock, remove_if_empty
from serving.versions import DEPLOY_RECORD, existing_versions, recorded_config, remove_version_folder, restore_config


def withdraw(deployment: Deployment) -> str:
    """Undo `deployment` as far as it is still its own to undo; returns what it did, in words."""
    d = deployment
    if not d.model_dir.is_dir():
        return f"version {d.version} already gone: {d.model_dir} was removed"
    with model_folder_lock(d.model_dir):
        gone = not d.version_dir.is_dir()  # pruned meanwhile by a deploy with a small --keep-versions
        if not gone:
            remove_version_folder(d.model_dir, d.version)
        remaining = tuple(existing_versions(d.model_dir))
        config = _withdraw_config(d, remaining)
        folder_removed = remove_if_empty(d.model_dir)
    if config in ("put back", "removed") and remaining == d.previous_versions:
        return f"version {d.version} removed again, {d.model_dir} is as before"
    said = [f"version {d.version} {'already gone' if gone else 'removed again'}", f"{d.config_path} {config}"]
    if folder_removed:
        said.append(f"{d.model_dir} removed (nothing else was in it)")
    return "; ".join(said)


def _withdraw_config(d: Deployment, remaining: tuple[int, ...]) -> str:
    """What becomes of the config `d` wrote, done: 'put back', 'removed', 'rewritten …' or 'kept: why';
    `remaining` the versions on disk once its own is gone."""
    newer = [v for v in remaining if v > d.version]
    if newer:
        return f"kept: version {newer[-1]}, deployed since, uses it"
    if config_bytes(d.model_dir) != d.written_config:
        return "kept: it was changed since this deploy wrote it"
    if not remaining:  # nothing left to serve
        restore_config(d.config_path, None)
        return "removed"
    if d.previous_config is not None and (not d.previous_versions or d.previous_versions[-1] in remaining):
        restore_config(d.config_path, d.previous_config)
        return "put back"
    # The config it replaced came with a version withdrawn since (its deploy failed too): not that one.
    recorded = recorded_config(d.model_dir / str(remaining[-1]))
    if recorded is None:
        return f"kept: version {remaining[-1]} has no readable {DEPLOY_RECORD} to take its config from"
    write_config(recorded, d.model_dir)
    return f"rewritten from version {remaining[-1]}'s {DEPLOY_RECORD}"
