"""Open-loop Locust load against one Triton model: a fixed request rate, constant or Poisson arrivals.

    locust -f loadtest/locustfile_open_loop.py --headless -u 1 -r 1 --window-time 60 \\
        --triton-model NAME --triton-data INPUTS.npz --rate 200 --arrivals poisson

The total `--rate` is shared among the users (one per worker process is enough).
"""

from loadtest import recording  # noqa: F401  - registers the Triton options and recorders
from loadtest.grpc_user import OpenLoopTritonUser


class TritonOpenLoopUser(OpenLoopTritonUser):
    """Fires requests on the arrival schedule, whether or not earlier ones have returned."""
