"""loadtest cuts padded requests by the length input the build was told (session 61): a sleep stager's `features`
(N, T, 6), -1 past each night's epochs, counted by `n_epochs` (N,) — no length-like name — built with
`optimize --length-input n_epochs`, was load-tested at the padded width, every request T epochs wide, while evaluate
read real epochs by the recorded input (`serving.length_parameter`). The served config's record reaches the requests
(`ServedInputs.length_input`); where nothing records it, the name alone decides, as before. loadtest's own
--length-input (evaluate's flag, which loadtest lacked) takes the record's place, in the harness's check and in the
Locust processes that build the requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.harness import locust_command
from loadtest.load_pattern import ClosedLoop
from loadtest.load_settings import LoadSettings
from loadtest.request_data import cut_inputs, padding_note, request_batches, sent_lengths
from loadtest.request_shapes import ServedInputs
from quantserve.data import TensorData
from serving.length_parameter import length_parameter

N, T, FEATURES, BATCH = 64, 40, 6, 4
RNG = np.random.default_rng(6162)
EPOCHS = RNG.integers(3, T // 2, N)


def _data() -> TensorData:
    features = RNG.normal(0, 1, (N, T, FEATURES)).astype(np.float32)
    features[np.arange(T)[None, :] >= EPOCHS[:, None]] = -1.0  # padded epochs, one value past each night
    return TensorData({"features": features, "n_epochs": EPOCHS.astype(np.int64)})


def _served(length_input: str | None) -> ServedInputs:
    """The stager as deploy serves it (Triton's JSON), its build's --length-input recorded where given."""
    config: dict[str, Any] = {
        "max_batch_size": 8,
        "input": [{"name": "features", "dims": ["-1", str(FEATURES)]}, {"name": "n_epochs", "dims": ["1"]}],
        "parameters": {k: {"string_value": v} for k, v in length_parameter(length_input).items()},
    }
    return ServedInputs.from_config("stager", config)


def test_requests_are_cut_by_the_recorded_length_input_of_no_length_like_name() -> None:
    data, served = _data(), _served("n_epochs")
    assert served.length_input == "n_epochs"
    batches = request_batches(data, BATCH, served)
    widths = [batch["features"].shape[1] for batch in batches]
    expected = [int(EPOCHS[start : start + BATCH].max()) for start in range(0, N, BATCH)]
    assert widths == expected and max(widths) < T, "each request at its own nights' length"
    assert cut_inputs(data, served) == {"n_epochs": ["features"]}
    assert sent_lengths(data, batches, served) == expected
    note = padding_note(data, served) or ""
    assert note.startswith("requests cut to their real length by input 'n_epochs' (a length per row;"), note
    assert note.endswith("as model 'stager' was built (optimize --length-input n_epochs)"), note


def test_uncut_where_nothing_records_it() -> None:
    data, served = _data(), _served(None)
    assert served.length_input is None
    assert {batch["features"].shape[1] for batch in request_batches(data, BATCH, served)} == {T}
    assert cut_inputs(data, served) == {} and padding_note(data, served) is None


def test_loadtests_own_length_input_takes_the_records_place() -> None:
    data = _data()
    told = _served(None).told("n_epochs")
    assert max(batch["features"].shape[1] for batch in request_batches(data, BATCH, told)) < T
    assert (padding_note(data, told) or "").endswith(", as --length-input n_epochs says")
    off = _served("n_epochs").told("none")  # no input is one: sent at the padded width
    assert {batch["features"].shape[1] for batch in request_batches(data, BATCH, off)} == {T}
    assert _served("n_epochs").told(None).length_input == "n_epochs"  # not given: the build's record


def test_the_flag_reaches_the_locust_processes(tmp_path: Path) -> None:
    settings = LoadSettings("h:1", "stager", tmp_path / "d.npz", duration_s=5, length_input="n_epochs")
    command = locust_command(settings, ClosedLoop(1), tmp_path, None)
    assert command[command.index("--triton-length-input") + 1] == "n_epochs"
    assert "--triton-length-input" not in locust_command(
        LoadSettings("h:1", "m", tmp_path), ClosedLoop(1), tmp_path, None
    )
    assert _parsed_by_locust(command[3:])["triton_length_input"] == "n_epochs"


def _parsed_by_locust(args: list[str]) -> dict[str, Any]:
    """`args` parsed as a Locust process parses them, quantserve's options registered: in a child interpreter, as
    importing locust patches threading for the whole process."""
    code = (
        "import json, sys\n"
        "import locust, locust.argument_parser\n"
        "import loadtest.locust_options\n"
        "parser = locust.argument_parser.get_parser(default_config_files=[])\n"
        "options = parser.parse_args(json.loads(sys.argv[1]))\n"
        "print(json.dumps({k: v for k, v in vars(options).items() if isinstance(v, str)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed
