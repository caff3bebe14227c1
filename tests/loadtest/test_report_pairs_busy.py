"""The utilization sampler records the whole machine's CPU beside the server's, and tells the load generator (this
process and its children) from other processes: with 3 CPU burners running, an MLP served 349 req/s against 1298
idle and nothing recorded said the machine was busy."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from loadtest.utilization import UtilizationSampler

BURN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"


@pytest.fixture
def burners() -> Iterator[tuple[int, int]]:
    """A CPU burner that is this process's child (load-generator side) and one that is not (a shell started it and
    exited, so it belongs to no one here): their pids, stopped at the end."""
    child = subprocess.Popen([sys.executable, "-c", BURN])
    shell = subprocess.run(
        ["sh", "-c", f"{sys.executable} -c '{BURN}' >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    )
    other = int(shell.stdout.strip())
    yield child.pid, other
    for pid in (child.pid, other):
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    child.wait()


@pytest.mark.serial
def test_others_cpu_is_told_from_the_generator_and_said_as_busy(burners: tuple[int, int]) -> None:
    child, other = burners
    assert child in {p.pid for p in psutil.Process().children(recursive=True)}
    assert other not in {p.pid for p in psutil.Process().children(recursive=True)}
    with UtilizationSampler(None, interval_s=0.25) as sampler:
        time.sleep(0.6)  # psutil's first reading of a process is 0: the window opens after it, as the harness's does
        start = time.time()
        time.sleep(3.0)
        end = time.time()
    util = sampler.result(start, end)
    assert util.machine_cpu_pct_mean is not None and util.generator_cpu_pct_mean is not None
    assert util.cpu_count == psutil.cpu_count()
    # each burner wants a core; on 2 shared cores beside a test suite they got a quarter of one at worst
    assert util.generator_cpu_pct_mean > 15, util  # the child burner
    others = util.others_share
    assert others is not None and others * 100 * util.cpu_count > 15, util  # the other burner, at least
    if others > 0.25:
        assert (util.busy_note("m @ 4 users") or "").startswith(
            f"m @ 4 users: other processes (neither tritonserver nor the load generator) took {others:.0%} of the "
            f"machine's {util.cpu_count} cores during the window"
        )
