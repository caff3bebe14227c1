"""Closed-loop Locust load whose user count the user's own `LoadTestShape` sets (`loadtest.user_shape`).

    locust -f loadtest/locustfile_user_shape.py --headless --triton-model NAME --triton-data INPUTS.npz \\
        --user-shape /path/steps.py:StepShape --user-shape-cap 3600

`UserShapeDriver` asks the user's shape once a second, as Locust would, and records each change of the user count as
a stage's start (`loadtest.stage_figures`). It ends the run when the shape's `tick()` returns None, raises (Locust
alone logged it as an unhandled greenlet exception and exited 2: nothing kept), or has run `--user-shape-cap`
seconds; the two last are noted (`shape_end.json`). Where it ended the run is the window's planned end
(`recording.plan_window_end`), not Locust's stop 0.1-0.5 s after it. The user's own User classes are not run (a
shape's third item, its user classes, is ignored): the users are Triton's.
"""

import time
from pathlib import Path
from typing import Any

from locust import LoadTestShape, events

from loadtest import recording  # registers the Triton options and recorders
from loadtest.closed_loop_user import TritonGrpcUser
from loadtest.stage_figures import write_shape_end, write_stage_reached, write_stage_start
from loadtest.user_shape import checked_tick, load_shape, new_shape, split_shape
from quantserve.errors import QuantserveError


class TritonUser(TritonGrpcUser):
    """One closed-loop user: the next request leaves when the previous answer arrives."""


@events.init_command_line_parser.add_listener
def add_shape_options(parser: Any) -> None:
    group = parser.add_argument_group("quantserve / user shape")
    group.add_argument("--user-shape", default="", env_var="QUANTSERVE_USER_SHAPE", help="FILE.py:Class")
    group.add_argument("--user-shape-cap", type=float, default=3600.0, env_var="QUANTSERVE_USER_SHAPE_CAP")


class UserShapeDriver(LoadTestShape):
    """The user's shape, asked once a second; each change of its user count starts a stage."""

    shape: Any = None
    users: int | None = None  # the user count of the stage under way
    started = 0  # stages started so far
    reached = -1  # the most users Locust's runner had running in the stage under way, as the ticks read it

    def reset_time(self) -> None:
        super().reset_time()
        if self.shape is not None:
            self.shape.reset_time()

    def tick(self) -> Any:
        options = self.runner.environment.parsed_options if self.runner is not None else None
        self._note_running(options)
        if self.get_run_time() >= self._cap(options):
            cap = f"{self._cap(options):g} s (--duration; 1 h without it)"
            return self._end(
                options, f"the shape's tick() had not returned None by its cap, {cap}: the run stopped there"
            )
        try:
            asked = self._ask(options)
        except QuantserveError as exc:
            return self._end(options, f"{exc}; the run ended there, with the figures so far")
        if asked is None:
            return self._end(options, "")
        if asked[0] != self.users:
            self._note_start(asked[0], options)
        return asked

    def _ask(self, options: Any) -> tuple[int, float] | None:
        if self.shape is None:
            path, class_name = split_shape(options.user_shape if options is not None else "")
            self.shape = new_shape(load_shape(path, class_name))
            self.shape.runner, self.shape.start_time = self.runner, self.start_time
        return checked_tick(self.shape, round(self.get_run_time(), 1))

    def _cap(self, options: Any) -> float:
        return float(options.user_shape_cap) if options is not None else 3600.0

    def _note_start(self, users: int, options: Any) -> None:
        """Record the tick that changed the user count: the moment Locust is told it (count and length not known);
        the users still running from the stage before are the new stage's first reading."""
        self.users, self.started, self.reached = users, self.started + 1, -1  # the first reading is written
        if options is not None and options.record_dir:
            write_stage_start(Path(options.record_dir), self.started, 0, users, 0.0, time.time())
        self._note_running(options)

    def _note_running(self, options: Any) -> None:
        """Record a new most of users running in the stage under way (Locust's runner's count, read once a tick,
        the tick ending a stage included): the stages' asked users are not what ran where a stage was cut mid-rise
        (`loadtest.step_label.users_ran`)."""
        running = int(getattr(self.runner, "user_count", 0) or 0)
        if not self.started or running <= self.reached:
            return
        self.reached = running
        if options is not None and options.record_dir:
            write_stage_reached(Path(options.record_dir), self.started, running)

    def _end(self, options: Any, note: str) -> None:
        ended = time.time()
        recording.plan_window_end(ended)
        if options is not None and options.record_dir:
            write_shape_end(Path(options.record_dir), ended, note)
