"""The record a load run stopped by Ctrl-C, SIGTERM or SIGHUP keeps of its stop (`LoadRun.interrupted`): when, how
far in, in which step, and what of that step was kept. `loadtest.interruption` makes it; the results file and the
soak's carry it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Interruption:
    """A run stopped by Ctrl-C or SIGTERM: when, how far in, in which step, and what of that step was kept."""

    at: str  # UTC time of the interrupt, ISO 8601
    after_s: float  # seconds from the start of the run's first step to the interrupt
    step: str  # the step in progress (its name: u4, rate50-poisson)
    step_number: int  # 1-based, of `steps`
    steps: int
    completed_steps: int  # saved exactly as a finished run saves them
    partial_step_saved: bool  # the step in progress is the last result, marked `interrupted`; else it is omitted
    note: str  # what became of the step in progress

    def summary(self) -> str:
        """One line: `interrupted 8.2 s in, in step 2 of 5 (u2): 1 step complete; u2 saved partial, …`."""
        done = f"{self.completed_steps} step{'' if self.completed_steps == 1 else 's'} complete"
        return (
            f"interrupted {self.after_s:.1f} s in ({self.at}), in step {self.step_number} of {self.steps} "
            f"({self.step}): {done}; {self.note}"
        )
