"""Closed-loop Locust load whose user count follows stages inside one window: a step or a spike.

    locust -f loadtest/locustfile_staged.py --headless --triton-model NAME --triton-data INPUTS.npz \\
        --stages 4:20s,32:5s,4:20s

Locust's own `LoadTestShape` drives it: the stages set the users and the run time (no -u/-r/-t). The shape records
the wall time it starts each stage (`loadtest.stage_figures`), so each stage is measured apart.
"""

import time
from pathlib import Path
from typing import Any

from locust import LoadTestShape

from loadtest import recording  # noqa: F401  - registers the Triton options and recorders
from loadtest.grpc_user import TritonGrpcUser
from loadtest.load_flags import parse_stages
from loadtest.stage_figures import write_stage_start


class TritonUser(TritonGrpcUser):
    """One closed-loop user: the next request leaves when the previous answer arrives."""


class StagedShape(LoadTestShape):
    """Users per stage from `--stages USERS:DURATION,...`; each jump completes within one second."""

    started = 0  # stages started so far (recorded in --record-dir)

    def tick(self) -> Any:
        options = self.runner.environment.parsed_options if self.runner is not None else None
        stages = parse_stages(options.stages if options is not None else "")
        elapsed = self.get_run_time()
        end = 0.0
        for number, (users, seconds) in enumerate(stages, start=1):
            end += seconds
            if elapsed < end:
                self._note_start(number, len(stages), users, seconds, options)
                return users, max(users for users, _ in stages)
        return None

    def _note_start(self, number: int, stages: int, users: int, seconds: float, options: Any) -> None:
        """Record the first tick of each stage: the moment Locust is told its user count."""
        if number <= self.started:
            return
        self.started = number
        if options is not None and options.record_dir:
            write_stage_start(Path(options.record_dir), number, stages, users, seconds, time.time())
