"""Closed-loop Locust load against one Triton model over gRPC.

Web UI (options also in the UI's form):
    locust -f loadtest/locustfile.py --triton-url 127.0.0.1:8001 --triton-model NAME --triton-data INPUTS.npz
Headless: add `--headless -u 16 -r 16 --window-time 60 --csv reports/X/locust` (60 s once all 16 users run;
Locust's `-t 60s` would count the ramp in them). Triton's server-side counters over the measured window:
`--metrics-url 127.0.0.1:8002 --record-dir reports/X/raw`.
Many machines (Locust's own distribution; the data file must exist on every worker):
    locust -f loadtest/locustfile.py --master --triton-url TRITON:8001 --triton-model NAME --triton-data INPUTS.npz
    locust -f loadtest/locustfile.py --worker --master-host MASTER --triton-data INPUTS.npz    # on each machine
Options also come from the environment: QUANTSERVE_URL, QUANTSERVE_MODEL, QUANTSERVE_DATA, …
`quantserve loadtest … --workers K` runs the master and K local workers for you.
"""

from loadtest import recording  # noqa: F401  - registers the Triton options and recorders
from loadtest.closed_loop_user import TritonGrpcUser


class TritonUser(TritonGrpcUser):
    """One closed-loop user: the next request leaves when the previous answer arrives."""
