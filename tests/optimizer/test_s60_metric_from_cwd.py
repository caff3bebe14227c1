"""`--metric mhcmetric:pearson`, run from the folder holding mhcmetric.py, imports it: the `quantserve` console script
does not put the current folder on the import path as `python -m` does, and it read "cannot import mhcmetric"
(session 60's probe). A module found nowhere is still one line, naming the folder looked in and PYTHONPATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from optimizer.user_metric import UserMetric
from quantserve.errors import QuantserveError


@pytest.fixture
def bare_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The console script's import path: neither the current folder (tmp_path) nor '' on it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", os.getcwd())])
    return tmp_path


def test_a_metric_module_in_the_current_folder_imports(bare_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (bare_path / "s60cwdmetric.py").write_text("def pearson(outputs, labels):\n    return 0.75\n")
    monkeypatch.delitem(sys.modules, "s60cwdmetric", raising=False)
    path_before = list(sys.path)
    metric = UserMetric.load("s60cwdmetric:pearson")
    assert metric.score({"y": np.zeros(2)}, None) == (0.75, True)
    assert sys.path == path_before  # the folder was on the path for that import only
    monkeypatch.delitem(sys.modules, "s60cwdmetric", raising=False)


def test_a_metric_module_found_nowhere_names_the_folder_and_pythonpath(bare_path: Path) -> None:
    with pytest.raises(QuantserveError) as raised:
        UserMetric.load("s60nowhere_metric:f")
    line = str(raised.value)
    assert line.startswith("--metric 's60nowhere_metric:f': cannot import s60nowhere_metric (No module named"), line
    assert f"in the current folder {bare_path}" in line and "PYTHONPATH" in line, line


def test_a_module_in_the_folder_missing_its_own_import_says_that_one(bare_path: Path) -> None:
    (bare_path / "s60brokenmetric.py").write_text("import s60_not_installed_dep\n\ndef f(o, l):\n    return 1.0\n")
    with pytest.raises(QuantserveError) as raised:
        UserMetric.load("s60brokenmetric:f")
    line = str(raised.value)
    assert "No module named 's60_not_installed_dep'" in line and "PYTHONPATH" not in line, line
    sys.modules.pop("s60brokenmetric", None)
