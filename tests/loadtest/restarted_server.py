"""A real tritonserver of the test MLP that a load test's server is killed and restarted under: between two steps,
two models' runs or two soaks, with or without a made-up `quantserve serve` to restart it. Shared by the restart tests
of sessions 28, 58 and 59; imported as a plain module (pytest puts this folder on the path, as `loadtest_models`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import loadtest_models as models

from serving.endpoints import ServedEndpoints, write_record
from serving.server import TritonServer

ServerOf = Callable[[tuple[str, ...]], tuple[TritonServer, Path]]  # the conftest's `serve_mlp`: names → (server, data)


def mlp_server(root: Path, factory: Callable[..., TritonServer], names: tuple[str, ...]) -> tuple[TritonServer, Path]:
    """A server of the test MLP under each of `names`, started alone by `factory` (the `triton_server_factory`
    fixture) and stopped within 3 s when a test stops it, and the load data: (server, data)."""
    repo, data = models.own_mlp_repo(root / "models", names, 8)
    return factory(repo, stop_timeout_s=3.0), data


def supervised_mlp_server(
    root: Path, factory: Callable[..., TritonServer], monkeypatch: Any, names: tuple[str, ...]
) -> tuple[TritonServer, Path]:
    """`mlp_server`, which this process restarts as `quantserve serve` would: its serve record says a supervisor
    (this process) runs. The record is kept in a runtime folder of the test's own: its made-up HTTP and metrics
    ports, left in the session's, would be another test's serve record (a later --metrics-url refused)."""
    server, data = mlp_server(root, factory, names)
    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(root / "run"))
    port = int(server.grpc_url.rsplit(":", 1)[1])
    write_record(ServedEndpoints(os.getpid(), str(server.options.repo), "127.0.0.1", port, 1, 2))
    return server, data


def load_argv(
    server: TritonServer, data: Path, out: Path, model: str, *more: str, window: tuple[str, str] = ("--duration", "1s")
) -> list[str]:
    """`quantserve loadtest` of `model` on `server` with `data`, saved into `out`: one user (unless `more` holds a
    --sweep), measured for `window` (a --duration or a --soak), and `more`."""
    argv = ["loadtest", "--url", server.grpc_url, "--model", model, "--data", str(data)]
    argv += [] if "--sweep" in more else ["--users", "1"]
    return [*argv, *window, "--metrics-url", server.metrics_url, "--out", str(out), *more]


def kill_after_first_call(
    monkeypatch: Any, module: Any, name: str, server: Any, restart_after_s: float | None
) -> list[threading.Thread]:
    """`module.name` wrapped so tritonserver (`server`) is killed as its first call returns, and restarted on its
    ports `restart_after_s` later (None: not restarted): a server gone between two steps, models' runs or soaks.
    Returns the restarting threads, for the test to join."""
    original, calls, threads = getattr(module, name), [], []

    def killing(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            server.stop(kill=True)
            if restart_after_s is not None:
                thread = threading.Thread(target=lambda: (time.sleep(restart_after_s), server.start()))
                thread.start()
                threads.append(thread)
        return answer

    monkeypatch.setattr(module, name, killing)
    return threads


def restarted_run(monkeypatch: Any, module: Any, name: str, server: Any, argv: list[str]) -> int:
    """`quantserve argv`'s exit status, tritonserver killed as `module.name`'s first call returns and restarted on its
    ports 2 s later (`kill_after_first_call`); returned once the restart is done."""
    from quantserve.cli import main

    threads = kill_after_first_call(monkeypatch, module, name, server, restart_after_s=2.0)
    try:
        return main(argv)
    finally:
        for thread in threads:
            thread.join()
