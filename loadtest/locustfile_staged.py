"""Closed-loop Locust load whose user count follows stages inside one window: a step or a spike.

    locust -f loadtest/locustfile_staged.py --headless --triton-model NAME --triton-data INPUTS.npz \\
        --stages 4:20s,32:5s,4:20s

Locust's own `LoadTestShape` drives it: the stages set the users and the run time (no -u/-r/-t).
"""

from typing import Any

from locust import LoadTestShape

from loadtest import recording  # noqa: F401  - registers the Triton options and recorders
from loadtest.grpc_user import TritonGrpcUser
from loadtest.load_flags import parse_stages


class TritonUser(TritonGrpcUser):
    """One closed-loop user: the next request leaves when the previous answer arrives."""


class StagedShape(LoadTestShape):
    """Users per stage from `--stages USERS:DURATION,...`; each jump completes within one second."""

    def tick(self) -> Any:
        options = self.runner.environment.parsed_options if self.runner is not None else None
        stages = parse_stages(options.stages if options is not None else "")
        elapsed = self.get_run_time()
        end = 0.0
        for users, seconds in stages:
            end += seconds
            if elapsed < end:
                return users, max(users for users, _ in stages)
        return None
