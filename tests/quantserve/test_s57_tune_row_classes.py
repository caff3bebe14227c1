"""tune.html's trials table: only the winner's row is "best" (session 57: the naive baseline, kept where the search's
pick did not beat it, had the winner's class and colour, while the headline said it was kept), the baseline's row has
its own class, and a legend under the table says what the colours mean."""

from __future__ import annotations

import re
from pathlib import Path

from quantserve.cli.tune import TuneResult, make_config
from tests.quantserve.test_tune_limits import settings, trial

BASE = make_config("fp32", 0, "powers", 0, 1)
PICK = make_config("int8", 16, "powers", 500, 1)


def row_classes(html: str) -> list[str]:
    return re.findall(r"<tr class='([^']*)'><td>", html)


def result(tmp_path: Path, kept_baseline: bool) -> TuneResult:
    search = [
        trial(BASE, 400.0, 60.0, 390.0),
        trial(PICK, 900.0, 40.0, 880.0),
        trial(make_config("fp32", 0, "powers", 0, 2), 5.0, 9.0, 5.0),
    ]
    baseline, pick = trial(BASE, 410.0, 61.0, 400.0), trial(PICK, 380.0, 70.0, 360.0)
    done = TuneResult(search, pick, baseline, 60.0, search_best=search[1], search_baseline=search[0])
    done.settings = settings(tmp_path, slo_p99_ms=100.0, users=16)
    done.confirmed, done.confirmed_pick = True, pick
    if kept_baseline:  # `settle_confirmation`: the pick did not beat the baseline measured back to back
        done.best = baseline
    return done


def test_a_kept_baseline_is_not_coloured_as_the_winner(tmp_path: Path) -> None:
    from quantserve.cli.tune_report import render_html

    html = render_html(result(tmp_path, kept_baseline=True).to_json())
    assert row_classes(html) == ["baseline kept", "", ""]  # before: "best", "", ""
    assert "Grey row, bold: the naive baseline, kept: no trial beat it (no row is green).</p>" in html


def test_the_winner_alone_is_best_and_the_baseline_has_its_own_class(tmp_path: Path) -> None:
    from quantserve.cli.tune_report import render_html

    html = render_html(result(tmp_path, kept_baseline=False).to_json())
    assert row_classes(html) == ["baseline", "best", ""]
    assert "Green row: the winner; grey row: the naive baseline.</p>" in html
