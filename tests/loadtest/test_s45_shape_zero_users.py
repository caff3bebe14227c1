"""`loadtest --shape` whose tick() asks 0 users for the whole run is refused up front in one line, as `--stages 0:6s`
is (session 45: `Never`, `(0, 100)` for 5 s, ran 5 s and exited 1 on "no request completed", the cause unnamed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.load_flags import shape_from_flags
from quantserve.errors import QuantserveError

NEVER = (
    "from locust import LoadTestShape\n\n\nclass Never(LoadTestShape):\n    def tick(self):\n"
    "        return (0, 100) if self.get_run_time() < 5 else None\n"
)
GAP = (
    "from locust import LoadTestShape\n\n\nclass Gap(LoadTestShape):\n    def tick(self):\n"
    "        t = self.get_run_time()\n        return (0 if 2 <= t < 4 else 4, 100) if t < 6 else None\n"
)


def test_a_shape_at_0_users_throughout_is_refused_before_the_run(tmp_path: Path) -> None:
    never = tmp_path / "never.py"
    never.write_text(NEVER)
    with pytest.raises(QuantserveError) as raised:
        shape_from_flags(str(never), "", {}).check()
    assert str(raised.value) == (
        f"--shape {never}: Never.tick() asks 0 users throughout its 5 s: no request would be sent, nothing measured"
    )
    gap = tmp_path / "gap.py"  # a 0-user stage between others runs, as before
    gap.write_text(GAP)
    shape = shape_from_flags(str(gap), "", {})
    shape.check()
    assert [users for users, _ in shape.plan.stages] == [4, 0, 4]
