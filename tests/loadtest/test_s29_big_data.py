"""A large --data file is a bounded sample of requests: a 2 M-row file (64 MB) was built and checked row by row as
requests of their own (165 s, 4 M shape checks, 1.4 GB), and the Locust users missed their 80 s start building every
row as a gRPC input. Now at most `MAX_REQUESTS` requests, taken evenly across the file, which the users cycle over."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import loadtest.request_data as request_data
from loadtest.request_data import MAX_REQUESTS, check_sent_shapes, request_batches, sample_note
from loadtest.request_shapes import ServedInputs
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

ROWS = 100_000


def _sorted_rows(rows: int = ROWS) -> TensorData:
    """A file sorted by its first column (each row's own index): its head alone is one kind of row."""
    x = np.zeros((rows, 8), np.float32)
    x[:, 0] = np.arange(rows)
    return TensorData({"x": x})


def _served(max_batch: int, dims: list[int]) -> ServedInputs:
    return ServedInputs.from_config("m", {"max_batch_size": max_batch, "input": [{"name": "x", "dims": dims}]})


@pytest.mark.parametrize("request_batch", [1, 8])
def test_the_requests_of_a_large_file_are_capped_and_taken_across_it(request_batch: int) -> None:
    data = _sorted_rows()
    batches = request_batches(data, request_batch, _served(8, [8]))
    assert len(batches) == MAX_REQUESTS
    firsts = np.array([batch["x"][0, 0] for batch in batches])
    assert firsts[0] == 0 and firsts[-1] >= ROWS - 2 * ROWS / MAX_REQUESTS, "the whole file, not its head"
    steps = np.diff(firsts)
    assert steps.min() >= request_batch and steps.max() - steps.min() <= request_batch, "evenly spread"
    assert all(batch["x"].shape == (request_batch, 8) for batch in batches), "whole requests, each of its own rows"
    assert all(np.array_equal(b["x"][:, 0], np.arange(b["x"][0, 0], b["x"][0, 0] + request_batch)) for b in batches)
    assert all(np.shares_memory(batch["x"], data.arrays["x"]) for batch in batches), "views: no row copied"


def test_a_small_file_is_every_request_as_before() -> None:
    data = _sorted_rows(1003)
    batches = request_batches(data, 4, None)
    assert [int(b["x"][0, 0]) for b in batches] == list(range(0, 1000, 4)), "a last partial one dropped"
    assert [b["x"].shape for b in request_batches(_sorted_rows(3), 8, None)] == [(8, 8)], "repeated to one request"


def test_padding_is_still_trimmed_per_request_in_a_large_file() -> None:
    lengths = 1 + np.arange(ROWS) % 16
    mask = (np.arange(16)[None, :] < lengths[:, None]).astype(np.int64)
    tokens = TensorData({"input_ids": mask * 7, "attention_mask": mask})
    dims = {"max_batch_size": 8, "input": [{"name": n, "dims": [-1]} for n in tokens.arrays]}
    batches = request_batches(tokens, 1, ServedInputs.from_config("m", dims))
    assert len(batches) == MAX_REQUESTS
    assert all(b["input_ids"].shape[1] == b["attention_mask"].sum() for b in batches)
    assert len({b["input_ids"].shape[1] for b in batches}) == 16, "the mixed lengths stay"


def test_each_distinct_request_shape_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    checked = request_data.shape_problem

    def counted(request: dict[str, np.ndarray], served: ServedInputs) -> tuple[str, tuple[int, ...]] | None:
        calls.append(request["x"].shape)
        return checked(request, served)

    monkeypatch.setattr(request_data, "shape_problem", counted)
    check_sent_shapes(_sorted_rows(), (1, 4), _served(8, [8]), "--request-batch")
    assert calls == [(1, 8), (4, 8)]


def test_a_refusal_of_a_large_file_still_names_the_request_size() -> None:
    with pytest.raises(QuantserveError) as refused:
        check_sent_shapes(_sorted_rows(), (1, 4), _served(0, [1, 8]), "--trace t.csv")
    assert str(refused.value) == (
        "--trace t.csv: requests of 4 samples would send input 'x' as [4, 8], but model 'm' takes [1, 8] "
        "(max_batch_size 0); Triton would refuse every one: send 1 sample per request"
    )


def test_the_sample_is_said_in_one_line_only_where_the_file_is_capped() -> None:
    assert sample_note("d.npz", MAX_REQUESTS * 8, [8]) is None
    assert sample_note("d.npz", 2_000_000, [1]) == (
        f"--data d.npz: {MAX_REQUESTS} of its 2000000 rows are sent: {MAX_REQUESTS} requests of 1 sample taken "
        f"evenly across the file, which the users cycle over (a run builds at most {MAX_REQUESTS} distinct requests)"
    )
    half = MAX_REQUESTS // 2
    assert sample_note("d.npz", ROWS, [1, 32]) == (
        f"--data d.npz: up to {half * 32} of its {ROWS} rows are sent: at most {half} requests of each size taken "
        f"evenly across the file, which the users cycle over (a run builds at most {MAX_REQUESTS} distinct requests)"
    )


USERS_CHILD = textwrap.dedent(
    """
    import json, sys
    import loadtest.grpc_user as users

    path = sys.argv[1]
    built = {"default": len(users.request_inputs(path, 1))}
    users._feeds_cache.clear()
    users._build_before_start(path, [1, 2, 4, 8], 3, "")
    built["trace"] = {str(n): len(users._feeds_cache[path, n, ""]) for n in (1, 2, 4, 8, 3)}
    built["again"] = len(users.request_inputs(path, 2))  # the open-loop user's own call takes the preloaded ones
    print(json.dumps(built))
    """
)


def test_the_locust_users_build_the_same_bounded_requests(tmp_path: Path) -> None:
    """Each Locust process builds at most `MAX_REQUESTS` gRPC inputs, a trace's sizes sharing them as the check did."""
    path = tmp_path / "big.npz"
    np.savez(path, x=_sorted_rows().arrays["x"])
    child = subprocess.run(
        [sys.executable, "-c", USERS_CHILD, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert child.returncode == 0, child.stderr
    quarter = MAX_REQUESTS // 4
    assert json.loads(child.stdout.splitlines()[-1]) == {
        "default": MAX_REQUESTS,
        "trace": {"1": quarter, "2": quarter, "4": quarter, "8": quarter, "3": quarter},
        "again": quarter,
    }
