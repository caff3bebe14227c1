"""`demo --duration` is read as loadtest's is, and checked before any work: "2.5" was refused after 140 s of
training, optimizing, deploying and starting Triton, and "30s" (loadtest's form) was an argparse error (session 40)."""

from __future__ import annotations

from pathlib import Path

import pytest

import quantserve.cli.demo
from quantserve.cli import main


def _argv(tmp_path: Path, duration: str) -> list[str]:
    paths = ["--out", str(tmp_path / "out"), "--build", str(tmp_path / "build"), "--repo", str(tmp_path / "repo")]
    return ["demo", *paths, "--duration", duration]


def test_a_fraction_of_a_second_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_argv(tmp_path, "2.5")) == 2
    assert capsys.readouterr().err == "quantserve: error: --duration 2.5: Locust runs whole seconds; use 3s\n"
    assert not any(tmp_path.iterdir()), "nothing trained, built or deployed"


def test_loadtests_form_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def stop_here(settings, *args, **kwargs):  # the settings the demo would run with; nothing run
        seen.append(settings.duration_s)
        raise KeyboardInterrupt

    monkeypatch.setattr(quantserve.cli.demo, "run_demo", stop_here)
    for duration in ("30s", "1m", "12"):
        main(_argv(tmp_path, duration))  # stopped as by Ctrl-C, once the settings were read
    assert seen == [30.0, 60.0, 12.0]
