"""tune's trace windows take one pass in whole seconds as loadtest does: a pass of 300 arrivals 0.01 s apart sums to
3.0000000000000004 s, which `math.ceil` made a 4 s window (1.33 passes)."""

from __future__ import annotations

from pathlib import Path

from quantserve.cli.tune_trials import TuneSettings


def test_a_float_whole_pass_is_one_window_of_its_seconds(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp\n" + "".join(f"{i * 0.01!r}\n" for i in range(300)))
    settings = TuneSettings(
        {"": tmp_path / "b"}, tmp_path / "d.npz", 50.0, tmp_path / "repo", "m", tmp_path / "out", trace=trace
    )
    assert settings.load_step().trace.period_s > 3.0  # the float sum this is about
    assert settings.window_s == 3.0
