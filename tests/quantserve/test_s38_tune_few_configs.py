"""A search that runs fewer trials than it announced says why (probe37b: "trial 1/7" said, 4 trials ran, no word):
TPE's suggestions repeat configurations already measured when the space is small, as a closed loop of one user
makes it (no max batch above 0 is worth a trial)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantserve.cli.tune import search
from quantserve.cli.tune_trials import ServingConfig, Trial, TuneSettings


class ServingBench:
    """Every configuration serves: goodput by instance count, the same each time it is measured."""

    def __init__(self) -> None:
        self.runs: list[ServingConfig] = []

    def run(self, config: ServingConfig, rivals: Any = ()) -> Trial:
        self.runs.append(config)
        rate = 100.0 * config.instances
        return Trial(config, rate, 1.0, 2.0, 0, rate, requests=int(rate * 3), window_s=3.0)


def test_a_small_space_is_said_when_fewer_trials_ran_than_announced(tmp_path: Path) -> None:
    settings = TuneSettings(
        {"": tmp_path}, tmp_path / "d.npz", 50.0, tmp_path / "r", "m", tmp_path / "o", 6, True, users=1
    )
    said: list[str] = []
    bench = ServingBench()
    trials, stopped = search(settings, bench, said.append, None)  # type: ignore[arg-type]
    assert stopped == "" and len(trials) < settings.search_trials + 1
    assert len(set(bench.runs)) == len(bench.runs) == len(trials)  # none measured twice
    assert said[-1].startswith(f"the search ran {len(trials)} of the 7 trials planned: its 28 suggestions held ")
    assert said[-1].endswith(
        "distinct configurations, each measured once; the space is that small (1 user never queues more than 1 "
        "request: no dynamic batching is worth a trial)"
    ), said[-1]


def test_a_search_that_ran_every_trial_says_nothing_of_it(tmp_path: Path) -> None:
    settings = TuneSettings({"": tmp_path}, tmp_path / "d.npz", 50.0, tmp_path / "r", "m", tmp_path / "o", 3, True)
    said: list[str] = []
    trials, _ = search(settings, ServingBench(), said.append, None)  # type: ignore[arg-type]
    assert len(trials) == 4 and not any("trials planned" in line for line in said)
