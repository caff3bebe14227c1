"""The sweep reads the served max batch from a typed field of the run's identity, and where throughput levelled off
says whether Triton's batches were full there, as it does where it still rose (session 66).

`sweep_knee` parsed the max batch back out of the identity's config words ("max batch 64, queue 500 µs, …") by a
regex, the words written for people; `RunIdentity.max_batch` now records Triton's max_batch_size where the identity
is made (`served_identity`), and a results file from before it falls back to the words. A sweep that levelled off
said "more clients added latency, not throughput" and nothing of its counters' full batches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_triton_client import FakeTritonClient
from test_s65_sweep_reading import PROBE, SERVED, _step

from loadtest.load_run import LoadRun
from loadtest.run_identity import RunIdentity, served_config, served_identity
from loadtest.sweep_knee import sweep_note

STARTED = "2026-12-07T16:00:00Z"
FULL_AT_16 = (
    "Triton's batches were full at 16 users (62.7 samples on average of max batch 64, 85.3 ms queued a request): "
    "the server was at capacity there"
)
# levelled off from 4 users: 16 and 32 within 10 % of the most, batches full from 16 on
LEVELLED = ((1, 77.4, 41.7, 16.0, 70.0), (4, 128.0, 94.0, 33.29, 9033.0), (16, 132.1, 242.4, 62.73, 85310.0),
            (32, 131.0, 480.0, 63.5, 200000.0))  # fmt: skip


class Served(FakeTritonClient):
    config: dict[str, Any] = SERVED

    def ready_versions(self, model: str) -> list[str]:
        return ["1"]


def _run(steps: tuple[tuple[int, float, float, float, float], ...], identity: RunIdentity | None) -> LoadRun:
    return LoadRun("digits_int8", [_step(*step) for step in steps], identity=identity)


def test_the_identity_records_the_served_max_batch_as_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.client

    data = tmp_path / "inputs.npz"
    np.savez(data, x=np.zeros((2, 16), np.float32))
    monkeypatch.setattr(serving.client, "TritonGrpcClient", Served)
    identity, _ = served_identity("127.0.0.1:1", "digits_int8", data)
    assert (identity.max_batch, identity.config) == (64, "max batch 64, queue 500 µs, 1 instance")
    monkeypatch.setattr(Served, "config", {"max_batch_size": 0, "instance_group": [{}]})
    assert served_identity("127.0.0.1:1", "digits_int8", data)[0].max_batch == 0  # no batching: 0, not unknown


def test_the_sweep_reads_the_typed_max_batch_not_the_config_words() -> None:
    typed = RunIdentity(STARTED, ["1"], max_batch=64)  # no words to parse: the field alone
    note = sweep_note(_run(PROBE, typed)) or ""
    assert f"but {FULL_AT_16}; more clients would wait in its queue" in note, note
    unbatched = RunIdentity(STARTED, ["1"], max_batch=0, config="max batch 64, queue 500 µs, 1 instance")
    assert (sweep_note(_run(PROBE, unbatched)) or "").endswith("sweep higher to find it")  # the field decides


def test_a_results_file_from_before_the_field_loads_and_reads_the_words(tmp_path: Path) -> None:
    path = _run(PROBE, RunIdentity(STARTED, ["1"], config=served_config(SERVED))).save(tmp_path)
    document = json.loads(path.read_text())
    document["identity"].pop("max_batch", None)  # a file written before session 66
    path.write_text(json.dumps(document))
    run = LoadRun.load(path)
    assert run.identity is not None and run.identity.max_batch is None
    assert FULL_AT_16 in (sweep_note(run) or "")  # the words still give it
    run.identity.config = None  # nor words nor field: unknown, the full-batch reading left out
    assert (sweep_note(run) or "").endswith("sweep higher to find it")


def test_a_sweep_that_levelled_off_says_its_batches_were_full() -> None:
    note = sweep_note(_run(LEVELLED, RunIdentity(STARTED, ["1"], max_batch=64))) or ""
    assert note.startswith("digits_int8 sweep: throughput levelled off from 4 users (128.0 req/s, p99 94.0 ms)"), note
    assert note.endswith(f"more clients added latency, not throughput: {FULL_AT_16}"), note
    half = tuple((*step[:3], 40.0, step[4]) for step in LEVELLED)  # 40 of 64: not full anywhere
    plain = sweep_note(_run(half, RunIdentity(STARTED, ["1"], max_batch=64))) or ""
    assert plain.endswith("more clients added latency, not throughput") and "full" not in plain
    assert (sweep_note(_run(LEVELLED, None)) or "").endswith("more clients added latency, not throughput")
