"""tune_trace is imported lazily; it copied tune_trials.MIN_REQUESTS by value at its first import, so a test that
patched the constant then (test_demo's quick tune sets 1) left the copy behind for every later test in the process:
test_s31_tune_faults' trace trial asked window 2 for 21 s, not 30 s, when run after test_demo (session 66)."""

from __future__ import annotations

import importlib
import sys

import pytest

from quantserve.cli import tune_trials


def test_tune_trace_reads_the_constant_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tune_trials, "MIN_REQUESTS", 1)
    monkeypatch.delitem(sys.modules, "quantserve.cli.tune_trace", raising=False)
    first = importlib.import_module("quantserve.cli.tune_trace")  # imported while patched, as in test_demo
    monkeypatch.undo()
    assert tune_trials.MIN_REQUESTS > 1
    assert getattr(first, "MIN_REQUESTS", tune_trials.MIN_REQUESTS) == tune_trials.MIN_REQUESTS
