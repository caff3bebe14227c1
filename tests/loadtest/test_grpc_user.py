"""The Locust users' gRPC clients, checked in a child process: importing `loadtest.grpc_user` imports locust."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json
    import loadtest.grpc_user as users

    user = users._TritonClientMixin()
    user.url, user.tls = "127.0.0.1:1", None
    user._new_client().close()  # the installed tritonclient takes channel_args (nothing listens: no call is made)
    built = []
    users.grpcclient.InferenceServerClient = lambda url, **kwargs: built.append(kwargs)
    user._new_client()
    print(json.dumps(built[0]["channel_args"]))
    """
)


def test_the_client_reconnects_within_a_quarter_second_and_keeps_tritonclients_options() -> None:
    """A restarted server is reached within 0.25 s of listening again, not after gRPC's 1 s+ backoff (an outage
    measured 9.0 s for 5.7 s); tritonclient's unlimited message size and keepalive stay."""
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    args = dict(json.loads(child.stdout.splitlines()[-1]))
    assert args["grpc.initial_reconnect_backoff_ms"] == 100 and args["grpc.max_reconnect_backoff_ms"] == 250
    assert "grpc.min_reconnect_backoff_ms" not in args, "it is also the connect timeout: a hung server must not fail"
    assert args["grpc.max_receive_message_length"] == args["grpc.max_send_message_length"] == 2**31 - 1
    assert "grpc.keepalive_time_ms" in args


STRINGS_CHILD = textwrap.dedent(
    """
    import json
    import numpy as np
    from tritonclient.utils import deserialize_bytes_tensor
    import loadtest.grpc_user as users

    sent = []
    for strings in (np.array([[b"a"], [b"bb"]]), np.array(["a", "h\\u00e9llo"])):
        tensor = users._to_infer_inputs({"x": strings})[0]
        values = [v.decode() for v in deserialize_bytes_tensor(tensor._get_content())]
        sent.append([tensor.datatype(), list(tensor.shape()), values])
    print(json.dumps(sent))
    """
)


def test_bytes_and_str_inputs_are_sent_as_bytes() -> None:
    """A string model's requests: bytes (S) as they are, str (U; tritonclient has no datatype for it) as UTF-8."""
    child = subprocess.run([sys.executable, "-c", STRINGS_CHILD], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.splitlines()[-1]) == [
        ["BYTES", [2, 1], ["a", "bb"]],
        ["BYTES", [2, 1], ["a", "h\u00e9llo"]],
    ]
