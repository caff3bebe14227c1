"""A live reload Triton refuses names Triton's reason, not only "failed to poll from model repository".

Measured (probe pl): config.pbtxt hand-edited to max_batch_size 4 with a preferred batch size of 8 left in → serve said
`reload failed … failed to load 'slow', failed to poll from model repository`; the reason was in Triton's log alone,
and its repository index names none (the served version stays READY with no reason).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_supervisor import Serve, serve_command

from serving.poll_loads import with_poll_reason

REFUSED = "http://127.0.0.1:1: loading 'dense' failed: failed to load 'dense', failed to poll from model repository"


@pytest.mark.e2e
def test_a_refused_reload_names_tritons_reason(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    server = Serve(serve_command(dense_build, tmp_path, ports, "--log-file", str(tmp_path / "triton.log")))
    try:
        server.wait_for("press Ctrl-C")
        config = tmp_path / "repo" / "dense" / "config.pbtxt"
        assert "preferred_batch_size: 8" in config.read_text()
        # a preferred size above max_batch_size: a lower max_batch_size is refused before Triton (test_s55_hand_edits)
        config.write_text(config.read_text().replace("preferred_batch_size: 8", "preferred_batch_size: 16"))
        line = server.wait_for("model 'dense'", timeout_s=120)
        assert "reload failed, previous versions keep serving (versions [1])" in line, line
        assert line.rstrip().endswith(
            "failed to poll from model repository: dynamic batching preferred size must be <= max batch size for dense"
        ), line
    finally:
        server.stop()


def test_a_reason_is_read_only_from_the_model_s_own_lines_past_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "triton.log"
    old = "E1201 model_repository_manager.cc:1460] \"Poll failed for model directory 'dense': old reason\"\n"
    other = "E1201 model_repository_manager.cc:1460] \"Poll failed for model directory 'other': not ours\"\n"
    log.write_text(old)
    assert with_poll_reason(REFUSED, log, len(old), "dense") == REFUSED  # nothing new: said as Triton said it
    log.write_text(old + other + old.replace("old reason", "new reason"))
    assert with_poll_reason(REFUSED, log, len(old), "dense") == f"{REFUSED}: new reason"
    assert with_poll_reason("loading 'dense' failed: other", log, 0, "dense") == "loading 'dense' failed: other"
