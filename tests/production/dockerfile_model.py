"""A small reader for the project's Dockerfile: instructions per stage, continuation lines joined."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    """One `FROM … AS name` stage and its instructions as (KEYWORD, argument text)."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [text for key, text in self.instructions if key == keyword]


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(KEYWORD, argument) pairs, comments dropped and `\\` continuations joined."""
    joined, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        joined.append(pending.strip())
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def stages(path: Path = DOCKERFILE) -> dict[str, Stage]:
    """The Dockerfile's stages by name (instructions before the first FROM are global ARGs)."""
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, text in instructions(path):
        if keyword == "FROM":
            match = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", text, re.IGNORECASE)
            assert match, text
            current = Stage(match.group(2) or str(len(found)), match.group(1))
            found[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, text))
    return found


def exec_form(text: str) -> list[str]:
    """An instruction argument in exec form (JSON array) or shell form, as a list of words."""
    text = text.strip()
    return json.loads(text) if text.startswith("[") else shlex.split(text)
