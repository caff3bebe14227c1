"""A disk that fills during a load run: one line naming the folder and the system's reason, no cut records left.

Locust's log sat on the same full disk, so it was empty, and the run ended `locust exited with code 1:` and a blank
line, leaving a latencies file cut at 64 KB that looked like a result.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import loadtest_models as models
import pytest

from quantserve.cli import main
from serving.server import TritonServer


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 100 KB tmpfs, unmounted after the test: a disk that fills within seconds of load."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (the full disk) needs root")
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_disk_that_fills_during_the_run_is_named_and_its_cut_records_removed(
    tiny_disk: Path,
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QUANTSERVE_LOG_DIR", str(tmp_path / "log"))
    repo, data = models.own_mlp_repo(tmp_path / "models")
    server = triton_server_factory(repo)
    out = tiny_disk / "run"
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--users", "4"]
    assert main([*argv, "--duration", "6s", "--out", str(out)]) == 2
    raw = out / "raw" / "mlp-u4"
    assert capsys.readouterr().err == (
        f"quantserve: error: {raw}: no space left on device: the step's load ran, its records cut short were removed\n"
    )
    assert list(raw.iterdir()) == [] and list((out / "locust").iterdir()) == []
    assert not list(out.glob("load-*.json"))


def test_a_full_disk_in_a_sweep_names_the_finished_steps_figures_and_those_never_run(tmp_path: Path) -> None:
    """A sweep whose second step filled the disk: its first step's table and JSON were lost without a word (nothing
    can be saved there), and the third was never run, unsaid (session 39's probe). The line now carries both."""
    import errno

    from test_load_results import make_result

    from loadtest.harness import LoadCutShort, full_disk_error
    from loadtest.load_pattern import ClosedLoop

    first = make_result("mlp", 2, seed=1)
    full = LoadCutShort(errno.ENOSPC, "no space left on device", str(tmp_path / "raw" / "mlp-u4"))
    said = full_disk_error(full, [first], [ClosedLoop(8)])
    assert said.filename == full.filename and said.errno == errno.ENOSPC
    assert said.strerror == (
        "no space left on device: the step's load ran, its records cut short were removed; mlp @ 2 users measured "
        f"500 requests, 200.0 req/s, p50 {first.latency.p50_ms:.1f} ms, p99 {first.latency.p99_ms:.1f} ms (not saved: "
        "no room); not run: u8"
    )
    before = OSError(errno.ENOSPC, "no space left on device", str(tmp_path / "raw" / "mlp-u4"))  # no load sent yet
    assert full_disk_error(before, [], [ClosedLoop(8)]).strerror == (
        "no space left on device: the step did not start; not run: u8"
    )
    refused = PermissionError(errno.EACCES, "permission denied", str(tmp_path))
    assert full_disk_error(refused, [first], []) is refused  # no load ran: left as it is


def test_results_that_cannot_be_saved_say_where_their_records_are(tiny_disk: Path) -> None:
    """Every step ran and its records fit, then load-<model>.json did not: the probe found `report` rebuilt the run
    from raw/ only by trying; the line says so."""
    from test_load_results import make_result

    from loadtest.harness import save_run
    from loadtest.load_run import LoadRun

    out = tiny_disk / "run"
    (out / "raw").mkdir(parents=True)
    with contextlib.suppress(OSError):
        (tiny_disk / "filler").write_bytes(bytes(200_000))  # the disk full
    with pytest.raises(OSError) as full:
        save_run(LoadRun("mlp", [make_result("mlp", 2, seed=1)]), out)
    assert full.value.strerror.endswith(
        f"; the records of its 1 step(s) are kept in {out / 'raw'}: with space freed, `quantserve report {out}` "
        "reads them"
    )
    assert not list(out.glob("load-*.json"))
