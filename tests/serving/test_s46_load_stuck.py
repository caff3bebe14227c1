"""A load whose new model process died is named stuck at once, not waited on (session 46: a stub killed during
serve's reload left the model LOADING for minutes, serve silent, every deploy hanging; serve now restarts
tritonserver, measured: ready again 1.5 s after)."""

from __future__ import annotations

import socket

import pytest

from serving.control import ControlClient, LoadStuck


def test_a_load_that_will_never_end_is_named_stuck() -> None:
    with socket.socket() as silent:  # takes the connection and never answers, as a stuck Triton load does
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        asked: list[int] = []

        def stuck() -> str | None:
            asked.append(1)
            return "its new model process (pid 7) died while it loaded" if len(asked) >= 2 else None

        control = ControlClient(f"127.0.0.1:{port}", timeout_s=60.0, exit_cause=lambda: None)
        with pytest.raises(LoadStuck, match=r"loading 'm' will not end: its new model process \(pid 7\) died"):
            control.load("m", stuck)
        assert len(asked) == 2  # named at the look that saw it, not after the call's 60 s
