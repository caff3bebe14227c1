"""Tune's prune fraction follows the spread of this run's own windows (session 45): a busy machine's window 1 ranged
0.44-1.0x its trial's figure within one search, and a trial as good as the best was prunable at the fixed 0.6x."""

from __future__ import annotations

from quantserve.cli.tune import ServingConfig, Trial
from quantserve.cli.tune_prune import PRUNE_FRACTION, clearly_worse, prune_fraction

CONFIG = ServingConfig(0, (), 0, 1)


def trial(goodput: float, first: float | None = None) -> Trial:
    """Every request within the SLO (goodput is the measure); `first`: window 1's goodput, recorded."""
    measured = Trial(CONFIG, goodput, 1.0, 2.0, 0, goodput)
    if first is not None:
        measured.first_window = {"throughput_rps": first, "goodput_rps": first}
    return measured


def test_windows_that_agree_keep_the_fixed_fraction() -> None:
    steady = [trial(100.0, 95.0), trial(80.0, 84.0)]
    assert prune_fraction(steady, "goodput_rps") == PRUNE_FRACTION
    assert prune_fraction([trial(100.0, 40.0)], "goodput_rps") == PRUNE_FRACTION  # one trial measures no spread


def test_a_wide_spread_lowers_the_fraction_to_what_equal_trials_could_differ_by() -> None:
    busy = [trial(100.0, 100.0), trial(100.0, 44.0)]  # window 1 at 1.0x and 0.44x of the trial's own figure
    assert abs(prune_fraction(busy, "goodput_rps") - 0.44) < 1e-9
    candidate = trial(50.0)  # 0.5x the best's window 1: under the fixed 0.6x, within this run's spread
    assert not clearly_worse(candidate, busy)
    assert clearly_worse(trial(40.0), busy)
    assert clearly_worse(candidate, [trial(100.0, 100.0), trial(100.0, 95.0)])  # the same gap where windows agree
