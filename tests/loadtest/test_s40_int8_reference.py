"""An evaluated reference served as INT8 beside a run served as FP32 is INT8's side of the served ratio: with
`--reference cls_int8` both runs were taken as FP32 and the verdict read "served INT8 vs FP32 not measured (load-test
both variants into this folder)" although both were (session 40)."""

from __future__ import annotations

from loadtest.load_run import LoadRun
from loadtest.served_precisions import ServedPrecisions
from loadtest.served_speed import served_speedups
from tests.quantserve.test_s30_demo_truth import IDENTITY, _step

PRECISIONS = {"cls_fp32": "fp32", "cls_int8": "int8"}


def _runs() -> list[LoadRun]:
    return [
        LoadRun(name, [_step(name, 16, rps)], precision=PRECISIONS[name], identity=IDENTITY)
        for name, rps in (("cls_fp32", 8.2), ("cls_int8", 9.43))
    ]


def test_an_int8_reference_beside_an_fp32_run_is_compared_as_int8() -> None:
    pairs, _ = served_speedups(_runs(), "cls_int8", PRECISIONS.get)
    assert [(p.fp32_model, p.int8_model) for p in pairs] == [("cls_fp32", "cls_int8")]
    assert abs(pairs[0].speedup - 9.43 / 8.2) < 1e-9


def test_an_fp32_reference_and_an_int8_one_alone_are_as_before() -> None:
    pairs, _ = served_speedups(_runs(), "cls_fp32", PRECISIONS.get)
    assert [(p.fp32_model, p.int8_model) for p in pairs] == [("cls_fp32", "cls_int8")]
    alone = [run for run in _runs() if run.model == "cls_int8"]
    assert served_speedups(alone, "cls_int8", PRECISIONS.get)[0] == []  # nothing served as FP32 to compare with


def test_the_note_says_how_an_int8_reference_is_compared() -> None:
    precisions = ServedPrecisions(recorded=dict(PRECISIONS))
    notes = precisions.notes(["cls_fp32", "cls_int8"], ["cls_fp32", "cls_int8"], "cls_int8")
    assert any("is served as INT8: the served verdict compares it as INT8" in line for line in notes), notes
