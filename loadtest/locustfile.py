"""Closed-loop Locust load against one Triton model over gRPC.

    locust -f loadtest/locustfile.py --triton-url 127.0.0.1:8001 --triton-model NAME --triton-data INPUTS.npz

Headless: add `--headless -u 16 -r 16 -t 60s`. Options also come from the environment
(`QUANTSERVE_URL`, `QUANTSERVE_MODEL`, `QUANTSERVE_DATA`, …) and appear in the web UI.
"""

from loadtest import recording  # noqa: F401  - registers the Triton options and recorders
from loadtest.grpc_user import TritonGrpcUser


class TritonUser(TritonGrpcUser):
    """One closed-loop user: the next request leaves when the previous answer arrives."""
