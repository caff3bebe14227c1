"""Which of the models a starting tritonserver was asked to load it did not load, and why, from its repository index.

Triton lists a model that failed to load as UNAVAILABLE with a reason, but a model whose config.pbtxt
it cannot parse only by name, with no state and no reason (the parse error is in its log alone):
that one is named with the same parse, by Triton's own message type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from serving.model_config import CONFIG_NAME, parse_config


def models_not_loaded(
    index: list[dict[str, Any]], repo: Path, asked: tuple[str, ...] | None, log_path: Path | None
) -> dict[str, str]:
    """Each model asked for (`asked`: names, "*" for all; None: every model) that is not READY → Triton's reason
    (its first line; a Python traceback follows in the log) or, for one listed with no state, why its config
    cannot be read."""
    ready = {m["name"] for m in index if m.get("state") == "READY"}
    failed: dict[str, str] = {}
    for m in index:
        name, state = m.get("name", ""), m.get("state")
        if (asked is not None and "*" not in asked and name not in asked) or state not in ("UNAVAILABLE", None):
            continue
        if state == "UNAVAILABLE":
            failed[name] = (str(m.get("reason", "")).strip().splitlines() or ["unavailable"])[0]
        elif name not in ready:
            failed.setdefault(name, config_problem(repo / name, log_path))
    return failed


def config_problem(model_dir: Path, log_path: Path | None) -> str:
    try:
        parse_config(model_dir / CONFIG_NAME)
    except QuantserveError as exc:
        return str(exc)
    return f"not loaded, no reason given (log: {log_path})"


def not_loaded_line(failed: dict[str, str], log_path: Path | None) -> str:
    """One line naming every model that failed to load, with its reason."""
    if len(failed) == 1:
        name, reason = next(iter(failed.items()))
        return f"model '{name}' failed to load: {reason} (log: {log_path})"
    listed = "; ".join(f"'{name}': {reason}" for name, reason in failed.items())
    return f"{len(failed)} models failed to load: {listed} (log: {log_path})"
