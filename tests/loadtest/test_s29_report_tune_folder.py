"""`report` on a tune's --out folder names it as one and gives its re-measure's folder.

A probe (session 29) ran `quantserve report DIR` on a tune --out: "no load-*.json or accuracy.json; run loadtest or
evaluate first", though DIR/remeasure/load-enc.json held the re-measured winner's load run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.report import render
from quantserve.errors import QuantserveError


def test_a_tune_folder_is_named_with_its_remeasure(tmp_path: Path) -> None:
    (tmp_path / "tune.json").write_text("{}")
    (tmp_path / "remeasure").mkdir()
    with pytest.raises(QuantserveError) as raised:
        render(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path}: no load-*.json or accuracy.json: it holds a tune search (tune.json, reported in tune.html); "
        f"its winner's re-measure: quantserve report {tmp_path / 'remeasure'}"
    )


def test_an_empty_folder_still_asks_for_a_run(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match=r"no load-\*\.json or accuracy\.json; run loadtest or evaluate first$"):
        render(tmp_path)
