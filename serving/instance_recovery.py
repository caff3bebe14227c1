"""A model instance whose process died or stopped, under a running serve: named, and a dead one's model reloaded.

Measured (probe pl, Triton 2.51): a load of a model whose files did not change is a no-op (HTTP 200 at once, no new
stub) once its version folder's `__pycache__` exists, i.e. on every serve but the first after a deploy and after
every restart: serve said "reloaded after its instance died" while every request failed "Stub process … is not
healthy". An unload first makes the load start new stubs (Triton reaps the dead one as it unloads), and a reload is
said only once the model's stubs are all new processes. A stub stopped by SIGSTOP for 15 s kept Triton's live and
ready endpoints answering 200 while every request to it failed, and serve said nothing: it is named while it lasts
and when it runs again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from quantserve.errors import QuantserveError
from serving.control import ControlClient, LoadStuck
from serving.model_states import InstanceStop, InstanceWatch, ModelInstance

STOP_BLAMED_S = 60.0  # a server crash this soon after a stopped model process is linked to it


class InstanceRecovery:
    """The model instances of the supervised tritonserver: learnt after each start and load, looked at every poll.

    Load threads learn too, so every use of the watch holds one lock.
    """

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self._watch = InstanceWatch()
        self._lock = threading.Lock()
        self.last_stop: tuple[float, InstanceStop] | None = None  # when (monotonic) an instance was last seen stopped

    def learn(self, server_pid: int | None) -> None:
        """Note the server's stubs now: one killed before the next poll is then still named."""
        with self._lock:
            self._watch.learn(server_pid)

    def look(self, server_pid: int | None) -> list[tuple[ModelInstance, str]]:
        """The instances whose process died since the last looks (how each ended), after naming each stopped one."""
        with self._lock:
            dead = self._watch.dead(server_pid)
            stops = self._watch.stops(time.monotonic())
        for stop in stops:
            self.last_stop = (time.monotonic(), stop)
            self.log(stop_line(stop))
        return dead

    def stopped_lately(self, within_s: float = STOP_BLAMED_S) -> str:
        """For a server crash's line: "; N s after model 'm' instance …'s process (pid P) was seen stopped (SIGSTOP)
        …" where an instance was seen stopped or resuming in the last `within_s`; else "".

        Seen twice in session 49 (Triton 2.51): a stub stopped by SIGSTOP for 5 s under load and then resumed made
        tritonserver itself abort (`terminate called after throwing an instance of 'std::length_error'` in its
        Python backend), every model going down, while serve said only "killed by SIGABRT"."""
        if self.last_stop is None or time.monotonic() - self.last_stop[0] > within_s:
            return ""
        seen, stop = self.last_stop
        instance = stop.instance
        return (
            f"; {time.monotonic() - seen:.0f} s after model '{instance.model}' instance {instance.name}'s process "
            f"(pid {instance.pid}) was seen stopped ({stop.how}): Triton 2.51's Python backend can crash when a "
            "stopped model process resumes"
        )

    def reload(self, model: str, control: ControlClient, server_pid: int | None) -> str | None:
        """Unload and load `model`, and say so once its stubs are all new processes; otherwise unload it and say so.
        Returns why the server must restart, where a process Triton started for the load died during it (Triton then
        leaves the model LOADING for good: session 46, minutes with every deploy hanging); else None.

        A load alone is a no-op for a model whose files did not change (Triton 2.51), leaving the dead stub in place.
        """
        with self._lock:
            before = self._watch.running(model)  # its other instances, still running
            _, zombies_before = self._watch.learn(server_pid)

        def stuck() -> str | None:
            """A child of the server that died since the load began (Triton reaps the stubs it stops itself)."""
            with self._lock:
                _, zombies = self._watch.learn(server_pid)
            died = sorted(zombies - zombies_before)
            return f"its new model process (pid {died[0]}) died while it loaded" if died else None

        try:
            control.unload(model)
            control.load(model, stuck)
            with self._lock:
                self._watch.learn(server_pid)  # its new instances, before anyone hears it serves again
                after = self._watch.running(model)
            if not after or after & before:
                raise QuantserveError("Triton's load started no new process for it")
            pids = ", ".join(str(pid) for pid in sorted(after))
            versions = control.ready_versions(model)
            self.log(f"model '{model}' reloaded after its instance died: versions {versions} live (pid {pids})")
        except LoadStuck as exc:
            return f"left model '{model}' loading for good ({str(exc).split(': ', 2)[-1]})"
        except QuantserveError as exc:
            with contextlib.suppress(QuantserveError, OSError):
                control.unload(model)
            self.log(
                f"model '{model}' reload failed after its instance died ({str(exc).splitlines()[0]}); unloaded: not "
                "ready until it is deployed again or serve restarts"
            )
        return None


def death_line(instance: ModelInstance, how: str, model_control: str) -> str:
    """One line naming a dead instance and what follows: a reload (explicit model control) or failing requests."""
    then = (
        "reloading the model"
        if model_control == "explicit"
        else f"its requests fail until serve restarts (model control '{model_control}' cannot reload one model)"
    )
    return (
        f"model '{instance.model}' instance {instance.name} (version {instance.version}, pid {instance.pid}) "
        f"died: {how}; {then}"
    )


def stop_line(stop: InstanceStop) -> str:
    """One line naming an instance's process stopped (its requests fail meanwhile), or running again."""
    instance = stop.instance
    who = f"model '{instance.model}' instance {instance.name} (version {instance.version}, pid {instance.pid})"
    if stop.still:
        return (
            f"{who} is stopped ({stop.how}) for {stop.seconds:.0f} s: its requests fail while it is (Triton still "
            "calls the model ready)"
        )
    return f"{who} runs again after {stop.seconds:.0f} s stopped"
