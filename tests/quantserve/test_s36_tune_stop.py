"""`quantserve tune` stopped after its confirmation's runs had all ended whole (session 36, issue 11 leftover).

A stop after the pick's confirmation run reached its planned end cut nothing, yet tune.json kept the search's figures
as the claim and said "the confirmation run as far as it got (partial: not the claim)". Now the pair is settled as any
finished confirmation (`tune_confirm.settle_confirmation`), nothing is deployed (the user stopped tune), and the line
names the confirmed winner and the `quantserve deploy` command that deploys it. A stop that cut a run, or came after
the baseline's run with the pick's still to come, keeps the confirmation partial as before.

A trial raised whole at a stop skipped the liveness check a finished trial gets after it: one whose server died in it
was ranked on figures a finished trial would have measured again. Now it gets the check (one, no restart) and is kept
partial where the server is out of service. No server: the session-31 stand-in server, its windows given.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from quantserve.cli.tune_interrupted import TrialInterrupted
from quantserve.cli.tune_server import TrialServer, WindowInterrupted
from quantserve.cli.tune_trials import Samples
from tests.quantserve.test_s31_tune_window_cut import _server, _window
from tests.quantserve.test_s32_tune_confirmation_cut import PICK_RUNS, ConfirmationCut, _tune_cut

PICK = "mb16 pref 2,4,8,16 q500us x1"  # the search's pick, the deploy defaults (`tune.starting_points`)


def _stop_after(monkeypatch: pytest.MonkeyPatch, baseline_requests: int = 3000) -> None:
    """Every window measured whole; the one at `cut_at` is followed by a stop (Locust shutting down after it)."""

    def window(self: ConfirmationCut, index: int, window_s: float | None = None) -> Samples:
        samples = _window(4000 if self.count in PICK_RUNS else baseline_requests, 3.06)
        if (self.count, index) == self.cut_at:
            raise WindowInterrupted(samples, whole=True)
        return samples

    monkeypatch.setattr(ConfirmationCut, "window", window)


def test_a_stop_after_the_confirmation_s_last_run_ended_settles_it_and_deploys_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stop_after(monkeypatch)
    document, line = _tune_cut(tmp_path, monkeypatch, (4, 2))
    confirmation = document["confirmation"]
    assert document["search"]["confirmed"]  # before: False, the search's figures the claim
    assert not confirmation.get("interrupted") and confirmation["kept"] == "pick"  # before: interrupted, kept ""
    assert document["best"] == confirmation["pick"] and document["baseline"] == confirmation["baseline"]
    assert document["best"]["requests"] == 8000 and document["baseline"]["requests"] == 6000
    assert document["interrupted"] and not document["deployed"]
    assert not (tmp_path / "repo").exists()  # the stop still stops: nothing deployed
    assert "partial" not in line and "as far as it got" not in line
    assert line.startswith("interrupted after the confirmation run's last run had ended, before the deploy: nothing")
    assert f"confirmed back to back: best {PICK} (" in line and "1.33x the baseline's goodput" in line
    assert "it meets the 50 ms SLO" in line


def test_the_deploy_command_said_deploys_the_confirmed_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantserve.cli import build_parser

    _stop_after(monkeypatch)
    _, line = _tune_cut(tmp_path, monkeypatch, (4, 2))
    command = line.split("to deploy it: ", 1)[1].split("; the ", 1)[0]
    words = shlex.split(command)
    assert words[:2] == ["quantserve", "deploy"]
    args = build_parser().parse_args(words[1:])
    assert Path(args.build_dir) == tmp_path / "b" and Path(args.repo) == tmp_path / "repo" and args.name == "m"
    assert (args.max_batch, args.max_queue_delay_us, args.instances) == (16, 500, 1)
    assert list(args.preferred_batch) == [2, 4, 8, 16]


def test_a_pick_that_loses_the_whole_confirmation_leaves_the_baseline_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stop_after(monkeypatch)

    def window(self: ConfirmationCut, index: int, window_s: float | None = None) -> Samples:
        # the pick wins the search (4000 a window) but serves 2000 in its confirmation, the baseline 3000
        samples = _window({2: 4000, 4: 2000}.get(self.count, 3000), 3.06)
        if (self.count, index) == self.cut_at:
            raise WindowInterrupted(samples, whole=True)
        return samples

    monkeypatch.setattr(ConfirmationCut, "window", window)
    document, line = _tune_cut(tmp_path, monkeypatch, (4, 2))
    assert document["confirmation"]["kept"] == "baseline" and document["best"] == document["baseline"]
    assert "confirmed back to back: best no batching x1 (" in line and "--max-batch 0" in line


def test_a_stop_after_the_baseline_s_run_with_the_pick_s_to_come_keeps_the_confirmation_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stop_after(monkeypatch)
    document, line = _tune_cut(tmp_path, monkeypatch, (3, 2))  # guard: passed before the change too
    confirmation = document["confirmation"]
    assert confirmation["interrupted"] and "pick" not in confirmation
    assert not confirmation["baseline"]["interrupted"] and confirmation["baseline"]["requests"] == 6000
    assert not document["search"]["confirmed"] and document["best"] == document["search_best"]
    assert "the confirmation's run of no batching x1 had ended before the stop: kept whole" in line
    assert "to deploy it" not in line


def _whole_stop_server(tmp_path: Path, causes: list[str | None]) -> TrialServer:
    """The stand-in trial server (no tritonserver): window 2 ends whole and the stop comes; `down()` answers
    `causes` in turn (None: the server answers)."""
    server = _server(tmp_path, WindowInterrupted(_window(3000, 3.06), whole=True))
    answers = iter(causes)
    server.down = lambda: next(answers)  # type: ignore[method-assign]
    server.restart = lambda cause, config: pytest.fail("restarted at a stop")  # type: ignore[method-assign]
    return server


def test_a_whole_trial_whose_server_died_in_it_is_kept_partial_at_a_stop(tmp_path: Path) -> None:
    server = _whole_stop_server(tmp_path, [None, "exited (signal 9)"])
    with pytest.raises(TrialInterrupted) as stop:
        server.run(server.settings.baseline())
    trial = stop.value.trial
    assert trial is not None and trial.interrupted and not stop.value.whole  # before: whole, ranked
    assert trial.server_restarts == [
        "tritonserver exited (signal 9) during this trial: not measured again (the stop came), kept partial"
    ]


def test_a_whole_trial_whose_server_answers_is_kept_whole_with_its_restart_said(tmp_path: Path) -> None:
    server = _whole_stop_server(tmp_path, ["exited (signal 9)", None])
    server.restart = lambda cause, config: None  # type: ignore[method-assign]  # before the trial: restarted
    with pytest.raises(TrialInterrupted) as stop:
        server.run(server.settings.baseline())
    trial = stop.value.trial
    assert stop.value.whole and trial is not None and not trial.interrupted and trial.requests == 6000
    assert trial.server_restarts == [
        "tritonserver exited (signal 9) before this trial: restarted, then the trial measured"
    ]  # before: the note was lost
