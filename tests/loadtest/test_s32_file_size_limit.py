"""A file size limit (`ulimit -f`, EFBIG) that cuts a load run's records is named like a full disk.

A probe (issue 11) ran `(ulimit -f 40; quantserve loadtest … --users 4 --duration 4s)`: `locust exited with code 2:
OSError: 11984 requested and 5104 written` and 15 lines of Locust's table, exit 2, a cut latencies file left behind:
`check_disk_space` knew only ENOSPC and EDQUOT. Its probe block (64 KiB) is refused over a smaller limit; over a
larger one it fits, and the record stopped at the limit tells. Each runs in a child process under the limit, as the
Locust processes inherit it from `quantserve loadtest`.
"""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

from loadtest.locust_processes import PROBE_BYTES

ROOT = Path(__file__).parents[2]
# In the child: a record written as a Locust process writes it (cut at the limit, numpy's error caught as Locust's
# exit is), then the check the harness makes once Locust has failed; prints what it raised.
CHILD = """
import sys
from pathlib import Path

import numpy as np

from loadtest.locust_processes import check_disk_space

folder, rows = Path(sys.argv[1]), int(sys.argv[2])
try:
    np.save(folder / "latencies-1.npy", np.zeros((rows, 8)))
except OSError as exc:
    print("record:", exc)
try:
    check_disk_space(folder)
except OSError as exc:
    print(f"raised: {exc.errno} {exc.filename}: {exc.strerror}")
"""


def _check_under_limit(folder: Path, limit_bytes: int, rows: int) -> str:
    """What `check_disk_space` raised in a child whose file size limit is `limit_bytes`."""
    folder.mkdir()

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(rows)],
        preexec_fn=limited,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_limit_below_the_probe_block_is_named_as_a_file_too_large(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    printed = _check_under_limit(folder, 40 * 1024, 1498)  # the probe's run: 1498 rows, cut at 40 KiB
    assert "requested and" in printed  # numpy's own error, which Locust's exit carried
    assert f"raised: {errno.EFBIG} {folder}: File too large (the file size limit, ulimit -f, cut the records" in printed
    assert not (folder / ".space-probe").exists()


def test_a_record_stopped_at_a_larger_limit_is_named_too(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    limit = 2 * PROBE_BYTES  # the probe block fits under it
    printed = _check_under_limit(folder, limit, 4000)  # 256 KB of records
    assert (folder / "latencies-1.npy").stat().st_size == limit
    assert f"raised: {errno.EFBIG} {folder}: File too large" in printed


def test_no_limit_and_room_to_write_raise_nothing(tmp_path: Path) -> None:
    from loadtest.locust_processes import check_disk_space

    np.save(tmp_path / "latencies-1.npy", np.zeros((4000, 8)))
    check_disk_space(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latencies-1.npy"]
