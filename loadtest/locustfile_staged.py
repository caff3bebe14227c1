"""Closed-loop Locust load whose user count follows stages inside one window: a step or a spike.

    locust -f loadtest/locustfile_staged.py --headless --triton-model NAME --triton-data INPUTS.npz \\
        --stages 4:20s,32:5s,4:20s

Locust's own `LoadTestShape` drives it: the stages set the users and the run time (no -u/-r/-t). The shape records
the wall time it starts each stage (`loadtest.stage_figures`), so each stage is measured apart, and where its stages
end, the window's planned end (`recording.plan_window_end`): their lengths added up from its own clock's start,
which runs from the first stage's spawn, before the window opens. Locust stops 0.1-0.5 s later, at the tick after
it: a window to that stop read a 2-stage run's req/s 1.5 % low.
"""

import time
from pathlib import Path
from typing import Any

from locust import LoadTestShape

from loadtest import recording  # registers the Triton options and recorders
from loadtest.closed_loop_user import TritonGrpcUser
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
        if not self.started:  # the shape's clock started at its first tick, its stages end on it
            recording.plan_window_end(time.time() - elapsed + sum(seconds for _, seconds in stages))
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
