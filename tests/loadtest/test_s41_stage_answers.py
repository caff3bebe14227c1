"""A staged load counts what the server answered in each stage (session 41): `--stages 2:5s,300:8s,2:5s` printed
stage 2 at 58.8 req/s against Triton's ~95 and stage 3 at 17.1 against ~75, with a false 3 s "stall", Triton counting
1637 successes over the window against the client's 1042 and nothing said. The users a ramp-down stopped dropped the
answers to their requests in flight, and held their OS threads meanwhile while the users left waited for one; the
users a rise started sent a warm-up no figure counted."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.stage_figures import StageFigures
from quantserve.cli import main
from serving.server import TritonServer

# answers that came while Triton's counters were read at the window's ends, which the client's window leaves out
SCRAPE_NOISE = 100


@pytest.fixture(scope="module")
def served_mlp(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("stage-answers"))
    return triton_server_factory(repo), data  # free ports on 127.0.0.1


def test_a_spike_counts_what_triton_answered_and_names_no_stall(
    served_mlp: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The client's count over the window is Triton's success counter's delta, but for the answers that came while
    Triton's counters were read at the window's two ends (1-2 requests in this test's runs, a slow scrape on a busy
    machine more): before, the rise's 198 unreported warm-ups and the answers the ramp-down's 200 users dropped left
    358 of Triton's answers uncounted."""
    server, data = served_mlp
    target = ["--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--out", str(tmp_path)]
    assert main(["loadtest", *target, "--stages", "2:2s,200:2s,2:2s", "--metrics-url", server.metrics_url]) == 0
    console = capsys.readouterr().out
    (result,) = LoadRun.load(tmp_path / "load-mlp-staged.json").results
    assert result.server is not None and result.failed_requests == 0
    client, answered = result.requests, result.server.requests_succeeded
    assert abs(answered - client) <= SCRAPE_NOISE, (answered, client, result.warm_up)
    assert sum(stage.requests for stage in result.stages) == client
    assert (result.warm_up or {}).get("in_window", 0) == 0  # the rise's users' first requests are measured
    assert "stalled" not in console and not any("stalled" in note for note in result.notes()), result.notes()


def _stage(number: int, users: int, latencies: np.ndarray) -> StageFigures:
    latency = LatencySummary.from_samples(latencies)
    return StageFigures(number, 3, users, 8.0, 8.0 * (number - 1), 8.0 * number, latency.count, 0, 1.0, latency)


def test_a_busy_stage_queueing_is_no_stall_but_a_stall_inside_a_stage_is() -> None:
    """README's spike, `--stages 4:8s,32:5s,4:8s`: the 32-user stage queued (p99 1183 ms) against the 4-user stages'
    2 ms, and the step's note read it as "some users stalled (a stopped Locust worker, a stuck model instance)"."""
    quiet, busy = np.full(800, 2.0), np.linspace(300.0, 1200.0, 400)
    stages = [_stage(1, 4, quiet), _stage(2, 32, busy), _stage(3, 4, quiet)]
    latency = LatencySummary.from_samples(np.concatenate([quiet, busy, quiet]))
    result = LoadResult("m", "u", "staged", 32, 24.0, 2000, 0, 83.0, 83.0, latency, stages=stages)
    assert not any("stalled" in note for note in result.notes()), result.notes()
    stages[2] = _stage(3, 4, np.append(np.full(799, 2.0), 5000.0))  # one request waited 5 s among 2 ms ones
    latency = LatencySummary.from_samples(np.concatenate([quiet, busy, quiet[:-1], [5000.0]]))
    result = LoadResult("m", "u", "staged", 32, 24.0, 2000, 0, 83.0, 83.0, latency, stages=stages)
    (note,) = (note for note in result.notes() if "stalled" in note)
    assert "5000 ms (2500× the p50 of 2.0 ms)" in note, note


RAMP_DOWN_CHILD = textwrap.dedent(
    """
    import json, types
    import gevent
    from gevent import monkey
    import loadtest.closed_loop_user as closed
    import loadtest.grpc_user as users

    real_sleep = monkey.get_original("time", "sleep")
    fired = []
    answer = types.SimpleNamespace(get_response=lambda: types.SimpleNamespace(raw_output_contents=[b"1234"]))

    class Client:
        def __init__(self, wait_s):
            self.wait_s = wait_s
        def infer(self, model, inputs, client_timeout):
            real_sleep(self.wait_s)  # the server's time on the request
            return answer
        def close(self):
            pass

    def user(name, wait_s):
        made = object.__new__(closed.TritonGrpcUser)
        made.model, made.request_batch, made.timeout_s, made.requests = "m", 1, 5.0, [[]]
        made.environment = types.SimpleNamespace(
            events=types.SimpleNamespace(request=types.SimpleNamespace(fire=lambda **kw: fired.append((name, kw))))
        )
        made._order, made._pool = iter(lambda: 0, None), users.blocking_call_pool(extra_threads=1)
        made._client, made._busy, made._call = Client(wait_s), False, None
        return made

    def run(made):  # Locust's loop: tasks until killed, then on_stop in the killed greenlet
        try:
            while True:
                made.infer()
        except gevent.GreenletExit:
            made.on_stop()

    users._batched["m"] = False
    # two stopped, one left: gevent's pool holds one slot more than its threads (its size 0 still took one call)
    stopped, left = [user("stopped", 0.5), user("stopped", 0.5)], user("left", 0.002)
    ones, other = [gevent.spawn(run, made) for made in stopped], gevent.spawn(run, left)
    gevent.sleep(0.05)  # the stopped users' requests are in their threads
    gevent.killall(ones)  # a stage's ramp-down (Locust's stop, forced)
    gevent.sleep(0.8)
    other.kill()
    print(json.dumps([(name, kw["context"]["ended_at"], kw["response_time"]) for name, kw in fired]))
    """
)


def test_a_user_stopped_by_a_ramp_down_reports_its_answer_and_frees_its_thread_then() -> None:
    """Two users stopped while their 0.5 s requests are in flight: the answers are reported when they come, and the
    user left runs on meanwhile (before, its next request waited for a stopped user's thread: nothing ended for
    0.45 s, and the answers were dropped)."""
    child = subprocess.run([sys.executable, "-c", RAMP_DOWN_CHILD], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    fired = json.loads(child.stdout.splitlines()[-1])
    stopped = [(ended, ms) for name, ended, ms in fired if name == "stopped"]
    assert len(stopped) == 2 and min(ms for _, ms in stopped) >= 490.0, stopped
    meanwhile = [ended for name, ended, _ in fired if name == "left" and ended < min(at for at, _ in stopped)]
    assert len(meanwhile) >= 5, len(meanwhile)
