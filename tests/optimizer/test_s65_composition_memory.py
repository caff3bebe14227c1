"""Dynamic INT8's batch compositions come one at a time, and their judges keep the worst one's outputs only
(session 65).

PP-OCRv5's CTC recogniser answers 136 held-out rows with 40 × 18385 float32 logits each, 0.4 GB a composition: every
composition's outputs were held at once (in order, shuffled, each row alone, the served batch) before any was
measured, and `optimize` peaked at 4278 MB against the real-model suite's 4096 MB bar.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import optimizer.int8_confirm
import optimizer.int8_measure
import optimizer.verify
from optimizer.drift_budget import DriftBudget
from optimizer.int8_confirm import SearchConfirmation
from optimizer.int8_measure import HeldOutDrift
from optimizer.int8_schemes import DynamicScheme
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.search_budget import SearchBudget
from optimizer.verify import VerifyAgainstReference, verified_compositions
from quantserve.data import TensorData
from quantserve.runner import run_batches
from tests.optimizer.test_s61_served_batch_verified import EPS, KINDS, _classifier, _near_ties

BATCH = 8
# as the record names them, in order: the last, deploy's default max batch, flips the near ties
COMPOSITIONS = [
    f"batches of {BATCH} in order",
    f"batches of {BATCH} shuffled",
    "each row alone",
    "batches of 32 in order",
]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every ONNX Runtime run: (its runner's id, its rows)."""
    log: list[tuple[int, int]] = []
    infer = OnnxRuntimeRunner.infer_impl

    def counted(self: OnnxRuntimeRunner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        log.append((id(self), len(next(iter(feeds.values())))))
        return infer(self, feeds)

    monkeypatch.setattr(OnnxRuntimeRunner, "infer_impl", counted)
    return log


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many compositions' outputs are alive each time one is measured (`measure_drift`, in every caller)."""
    alive: list[int] = []
    seen: list[weakref.ref[np.ndarray]] = []

    def counting(measure: Callable[..., Any]) -> Callable[..., Any]:
        def measured(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], *args: Any) -> Any:
            seen.append(weakref.ref(candidate["logits"]))
            alive.append(sum(ref() is not None for ref in seen))
            return measure(reference, candidate, *args)

        return measured

    for module in (optimizer.verify, optimizer.int8_measure, optimizer.int8_confirm):
        monkeypatch.setattr(module, "measure_drift", counting(module.measure_drift))
    return alive


def _models(tmp_path: Path) -> tuple[Path, Path]:
    return _classifier(tmp_path / "fp32.onnx", 0.0), _classifier(tmp_path / "int8.onnx", EPS)


def _reference(path: Path, data: TensorData) -> dict[str, np.ndarray]:
    with OnnxRuntimeRunner(path) as runner:
        return run_batches(runner, data.batches(BATCH))


def test_the_compositions_run_one_at_a_time_in_one_session(tmp_path: Path, runs: list[tuple[int, int]]) -> None:
    _, candidate = _models(tmp_path)
    data = _near_ties()
    compositions: Iterator[Any] = iter(verified_compositions(candidate, data, BATCH))
    first = next(compositions)
    assert first.name == f"batches of {BATCH} in order"
    assert [rows for _, rows in runs] == [BATCH] * (len(data) // BATCH)  # the rows shuffled not run yet
    names = [first.name, *(c.name for c in compositions)]
    assert names == COMPOSITIONS
    assert len({runner for runner, _ in runs}) == 1


def test_verification_holds_two_compositions_outputs_at_most(tmp_path: Path, held: list[int]) -> None:
    reference, candidate = _models(tmp_path)
    record = VerifyAgainstReference(reference, _near_ties(), "x.npz", BATCH, output_kinds=KINDS).measure(candidate)
    names = [c["composition"] for c in record["batch_compositions"]]
    assert names == COMPOSITIONS
    assert record["judged_at"] == "batches of 32 in order" and record["largest_batch_verified"] == 32
    assert len(held) == 4 and max(held) <= 2


def test_the_search_drift_holds_two_compositions_outputs_at_most(tmp_path: Path, held: list[int]) -> None:
    reference, candidate = _models(tmp_path)
    data = _near_ties()
    run = HeldOutDrift.__new__(HeldOutDrift)
    run.stage = SimpleNamespace(held_out=data, budget=DriftBudget(), user_metric=None, on_progress=None)  # type: ignore[assignment]
    run.budget, run.verify_batch = SearchBudget(300.0), BATCH
    run.reference, run.kinds, run.labels, run.axes = _reference(reference, data), dict(KINDS), None, None  # type: ignore[assignment]
    drift = run._drift(candidate)
    assert len(held) == 4 and max(held) <= 2
    assert not drift.holds  # the worst composition judged: the served batch flips the near ties


def test_the_confirmation_on_every_row_holds_two_compositions_outputs_at_most(tmp_path: Path, held: list[int]) -> None:
    reference, candidate = _models(tmp_path)
    data = _near_ties()
    run = SearchConfirmation.__new__(SearchConfirmation)
    run.stage = SimpleNamespace(budget=DriftBudget(), user_metric=None, on_progress=None)  # type: ignore[assignment]
    run.budget, run.verify_batch, run.kinds, run.axes = SearchBudget(300.0), BATCH, dict(KINDS), None  # type: ignore[assignment]
    run.schemes = {"dynamic": DynamicScheme(cpu_flags=())}  # type: ignore[dict-item]
    run._all_reference = _reference(reference, data)
    drift = run._all_rows_drift(SimpleNamespace(scheme="dynamic", path=candidate), data)  # type: ignore[arg-type]
    assert len(held) == 4 and max(held) <= 2
    assert not drift.holds
