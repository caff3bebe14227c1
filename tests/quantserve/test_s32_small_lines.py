"""Two small lines: the INT8 share of a GRU encoder's multiply-adds, and tune's full-disk rule on a file size limit."""

from __future__ import annotations

import errno

from quantserve.cli.optimize_tables import mac_share
from quantserve.cli.tune_disk import is_full


def test_an_int8_sliver_keeps_its_digits() -> None:
    # a GRU encoder's 0.55 % of MACs in INT8 read "1%" beside "15 nodes FP32"
    assert mac_share(0.0055) == "0.55%"
    assert mac_share(0.73) == "73%"
    assert mac_share(0.0) == "0%"


def test_a_file_size_limit_is_a_full_disk_to_tune() -> None:
    # `ulimit -f` cuts a write with EFBIG, as loadtest's records already treat it: tune lost tune.json to it
    assert is_full(OSError(errno.EFBIG, "File too large"))
