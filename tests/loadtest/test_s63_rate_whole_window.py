"""`--rate R` with constant arrivals offers exactly R × the window's seconds (session 63, probe F).

The schedule starts SCHEDULE_LEAD_S (1 ms) after the window opens and runs to its planned end (`schedule_span`, the
window less that lead), with arrivals at k/R from the schedule's start: R × 1 ms of them were lost, 14997 of 15000 at
3000 req/s over 5 s, 3999 of 4000 at 1000 req/s with two worker processes. Now the k-th arrival is at
max(lead, k/R) from the window's start. In a child process: importing the locustfile's user imports Locust, which
patches this process's threads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

OFFERED = textwrap.dedent(
    """
    import itertools, json, random, sys
    from types import SimpleNamespace

    from loadtest.open_loop_user import OpenLoopTritonUser
    from loadtest.recording import SCHEDULE_LEAD_S, schedule_span

    rate, window, shares, arrivals = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    span = schedule_span(SimpleNamespace(window_time=window))
    offered = []
    for share in range(shares):  # one user a worker process, as `_set_up` deals them
        user = SimpleNamespace(
            _trace=None, _share=(share, shares), rate=rate / shares, arrivals=arrivals, _rng=random.Random(share)
        )
        schedule = OpenLoopTritonUser._schedule(user)  # type: ignore[arg-type]
        offered += [offset for offset, _ in itertools.takewhile(lambda a: a[0] < span, schedule)]
    # as seconds from the window's start
    print(json.dumps({"span": span + SCHEDULE_LEAD_S, "at": sorted(o + SCHEDULE_LEAD_S for o in offered)}))
    """
)


def _offered(rate: float, window: float, shares: int, arrivals: str = "constant") -> tuple[float, np.ndarray]:
    args = [str(rate), str(window), str(shares), arrivals]
    child = subprocess.run([sys.executable, "-c", OFFERED, *args], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    return out["span"], np.array(out["at"])


@pytest.mark.parametrize(("rate", "window", "shares"), [(3000.0, 5.0, 1), (1000.0, 4.0, 2), (10.0, 3.0, 1)])
def test_a_constant_rate_offers_rate_times_the_window(rate: float, window: float, shares: int) -> None:
    end, at = _offered(rate, window, shares)
    assert end == pytest.approx(window)
    assert len(at) == round(rate * window)  # before: 14997 of 15000, 3999 of 4000
    assert at.min() >= 0.001 - 1e-12 and at.max() < window  # none before the window's start or past its end
    late = at[at > 0.001 + 1e-9]  # past the lead the processes' shares still interleave evenly
    np.testing.assert_allclose(np.diff(late), 1.0 / rate, rtol=1e-6)


def test_a_poisson_schedule_starts_within_the_window_at_its_mean_rate() -> None:
    end, at = _offered(500.0, 20.0, 2, "poisson")
    assert at.min() >= 0.001 - 1e-12 and at.max() < end
    assert 0.95 * 10000 <= len(at) <= 1.05 * 10000
