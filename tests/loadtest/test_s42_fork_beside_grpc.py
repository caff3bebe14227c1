"""A process that has asked something over gRPC starts its children (Locust's processes) without gRPC aborting them.

gRPC's fork handlers restarted its poller thread in each child forked to exec a program; the child closed its
inherited descriptors before exec, the poller's epoll among them, and gRPC aborted it: CI, session 41, a loadtest
failed with "locust exited with code -6: … epoll_wait error: Bad file descriptor" while another client asked the same
server. Session 42, on the code before: 21 of 300 children aborted beside a client asking; this test saw 15 and 22.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# the loadtest command's order: quantserve imported first, then grpc; a client asking all along, children started
# the way the loadtest starts Locust's (`loadtest.locust_processes.spawn`: a preexec_fn, so a real fork)
STARTS = """
import sys, threading
from pathlib import Path
from loadtest.locust_processes import spawn
import tritonclient.grpc as grpcclient

client = grpcclient.InferenceServerClient(sys.argv[1])

def ask() -> None:
    while True:
        try:
            client.is_server_live(client_timeout=0.05)
        except Exception:
            pass

threading.Thread(target=ask, daemon=True).start()
codes = [spawn(["/bin/true"], Path(sys.argv[2]), f"child-{n}").wait() for n in range(int(sys.argv[3]))]
print(sum(code != 0 for code in codes), sorted(set(codes)))
"""
CHILDREN = 300


def test_children_started_beside_a_grpc_client_are_not_aborted(
    tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}  # as a user's shell has it
    env["PYTHONPATH"] = str(root)
    argv = [sys.executable, "-c", STARTS, f"127.0.0.1:{free_port_factory()}", str(tmp_path), str(CHILDREN)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    aborted = [log.read_text() for log in sorted(tmp_path.glob("child-*.log")) if log.read_text().strip()]
    assert done.stdout.split()[0] == "0", f"{done.stdout.strip()} of {CHILDREN} children failed: {aborted[:2]}"
    assert aborted == []
