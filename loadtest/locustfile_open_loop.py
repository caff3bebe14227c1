"""Open-loop Locust load against one Triton model: a fixed request rate, constant or Poisson arrivals.

    locust -f loadtest/locustfile_open_loop.py --headless -u 1 -r 1 --window-time 60 \\
        --triton-model NAME --triton-data INPUTS.npz --rate 200 --arrivals poisson

The total `--rate` is shared among the users (one per worker process is enough).
"""

import os

from loadtest import recording  # noqa: F401  - registers the Triton options and recorders
from loadtest.open_loop_user import OpenLoopTritonUser

# A Locust master opens the measured window (spawning_complete) 1 s after it sends the workers their users, whether
# they reported them spawned or not: workers still reading a 2 M-row --trace (`preload_requests`) began 0.6–1.0 s
# into the window. Wait for their reports instead, up to this long (the harness allows 45 s to start).
os.environ.setdefault("LOCUST_WAIT_FOR_WORKERS_REPORT_AFTER_RAMP_UP", "30")


class TritonOpenLoopUser(OpenLoopTritonUser):
    """Fires requests on the arrival schedule, whether or not earlier ones have returned."""
