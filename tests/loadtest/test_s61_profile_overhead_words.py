"""profile's kernel-time line claims ORT's overhead only where the figures allow one: run time and kernel time are
separate medians, and on a busy machine (session 61's probe) INT8 printed 3.772 ms per run and then 4.287 ms of
kernel time per run "(the rest of a run is ORT's own overhead)", a negative rest."""

from __future__ import annotations

from loadtest.profile_report import summary_lines
from optimizer.profile import ModelProfile, NodeTime
from optimizer.profile_compare import BuildProfile

OVERHEAD = "(the rest of a run is ORT's own overhead)"


def _profile(reference_run_ms: float, model_run_ms: float) -> BuildProfile:
    """FP32 with 2.5 ms of kernels, INT8 with 4.287 ms (the probe's), each at the run time given."""
    reference = ModelProfile("fp32.onnx", 1, 3, reference_run_ms, [NodeTime("c", "Conv", "c", "Conv", 2.5)])
    model = ModelProfile("model.onnx", 1, 3, model_run_ms, [NodeTime("c", "ConvInteger", "c", "Conv", 4.287)])
    return BuildProfile("build/digits_int8", "int8", "Some CPU", "random", 8, 1, 3, reference, model, [], [], None)


def _kernel_line(result: BuildProfile) -> str:
    [line] = [line for line in summary_lines(result) if line.startswith("kernel time per run:")]
    return line


def test_kernel_time_above_the_run_time_claims_no_overhead() -> None:
    line = _kernel_line(_profile(3.0, 3.772))
    assert OVERHEAD not in line
    assert line == (
        "kernel time per run: FP32 2.500 ms, INT8 4.287 ms (INT8's kernel time is not below its run time, 3.772 ms: "
        "the two are separate medians, apart on a busy machine, so ORT's own overhead cannot be read from them)"
    )


def test_both_above_are_named_together() -> None:
    line = _kernel_line(_profile(2.0, 4.0))
    assert OVERHEAD not in line
    assert "(FP32's and INT8's kernel times are not below their run times, 2.000 and 4.000 ms: the two" in line


def test_kernel_time_below_the_run_time_keeps_today_s_words() -> None:
    line = _kernel_line(_profile(3.0, 5.0))
    assert line == f"kernel time per run: FP32 2.500 ms, INT8 4.287 ms {OVERHEAD}"
