"""When the disk fills during `quantserve tune`: save the trials measured so far, say what is deployed.

The probe (session 31) filled a 1.5 MB tmpfs during trial 3's raw records: tune exited 2 with one line naming the raw
folder and wrote no tune.json, though 316 KB were free once its scratch repository was removed; trials 1-2's figures
were on the terminal only. Now, as an interrupt does (`tune_interrupted`), tune.json is written with what was
measured (the small file first, then tune.html where it fits), its `failure` naming the full disk, and the line says
what the repository holds. The scratch repository is gone by then (the trial server's exit removes it).
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import TYPE_CHECKING

from quantserve.cli.tune_failed import TuneFailed

if TYPE_CHECKING:
    from quantserve.cli.tune_interrupted import TuneProgress
    from quantserve.cli.tune_result import TuneResult

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # EFBIG: the file size limit (`ulimit -f`) cut it


def is_full(exc: OSError) -> bool:
    """The disk (or the user's quota) is full: what tune saves its trials from."""
    return exc.errno in FULL_ERRNOS


def disk_full(progress: TuneProgress, exc: OSError) -> TuneFailed:
    """Write what fits of tune.json and tune.html from what `progress` holds; the error to raise, its line naming the
    full disk, where the trials are and what the repository holds."""
    from quantserve.cli.tune_interrupted import partial_result

    result = progress.result or partial_result(progress)
    where = f"{exc.filename}: " if exc.filename else ""
    reason = (exc.strerror or str(exc)).lower()
    result.failure = f"{where}{reason} during {progress.stage}; the search stopped after {len(result.trials)} trial(s)"
    saved = save_what_fits(result, Path(progress.settings.out))
    return TuneFailed(f"tune: {result.failure}; {saved}; {repository_line(result)}", result)


def save_what_fits(result: TuneResult, out: Path) -> str:
    """tune.json first (the trials: small), then tune.html; what was saved, in words."""
    from quantserve.cli.tables import finite_json
    from quantserve.cli.tune_report import HTML_NAME, JSON_NAME, render_html
    from quantserve.files import write_atomic

    document = result.to_json()
    count = len(result.trials)
    try:
        json_path = write_atomic(out / JSON_NAME, json.dumps(finite_json(document), indent=2) + "\n")
    except OSError as exc:
        return f"tune.json could not be written either ({exc.strerror or exc}): the {count} trial(s) are lost"
    try:
        write_atomic(out / HTML_NAME, render_html(document))
    except OSError:
        return f"the {count} trial(s) measured are in {json_path} (no room left for tune.html)"
    return f"the {count} trial(s) measured are in {json_path} and tune.html"


def repository_line(result: TuneResult) -> str:
    """What the user's repository holds: the winner where its deploy had completed, else nothing new."""
    settings = result.settings
    repo, name = (settings.repo, settings.name) if settings else ("the repository", "")
    if result.deployed:
        return f"{name} v{result.deployed['version']} ({result.best.config.label()}) is deployed in {repo}"
    return f"nothing was deployed ({repo} is as it was)"
