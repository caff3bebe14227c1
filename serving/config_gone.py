"""A served model whose config.pbtxt alone went (a stray `rm`, a checkout), its version folders still there: it keeps
serving, said once, rather than unloaded as a model folder removed is. Unloaded, a live model went down with the
words "removed from the repository" while its folder was there (session 55). Kept apart from the supervisor
(`serving.supervisor`), which asks at each look at the repository."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from serving.control import ControlClient
from serving.model_config import CONFIG_NAME
from serving.model_states import ready_versions_now
from serving.versions import existing_versions


class ConfigsGone:
    """The served models whose config.pbtxt is gone while their versions stay, each said once until it returns."""

    def __init__(self) -> None:
        self._said: set[str] = set()

    def clear(self) -> None:
        """Forget every model said: a start serves the repository as it is now."""
        self._said = set()

    def back(self, models: Iterable[str]) -> None:
        """`models` are among the repository's models again: said again should their config go again."""
        self._said -= set(models)

    def keeps_serving(self, repo: Path, name: str, control: ControlClient, log: Callable[[str], None]) -> bool:
        """Whether the folder of `name`, no longer among the models, still holds version folders (its config.pbtxt
        alone went); said once to `log`, with the versions that serve."""
        model_dir = repo / name
        try:
            on_disk = existing_versions(model_dir)
        except OSError:  # the folder is gone
            on_disk = []
        if not on_disk:
            self._said.discard(name)
            return False
        if name not in self._said:
            self._said.add(name)
            served = ready_versions_now(control, name)
            kept = f"versions {served} keep serving" if served else "no version of it serves"
            log(
                f"model '{name}' has no {CONFIG_NAME} now: {kept}; put it back, or remove {model_dir} to take the "
                "model out of service"
            )
        return True
