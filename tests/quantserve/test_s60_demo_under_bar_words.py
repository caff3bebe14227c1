"""The demo's verdict line says a build served with --allow-slower at 1.09× FP32 is under --min-speedup, not
"slower here" (session 60's probe: deploy said the same of 1.09× in its own words); 0.93× is still slower."""

from __future__ import annotations

import pytest

from quantserve.cli.demo_caveats import in_process_words


@pytest.mark.parametrize(
    ("speedup", "said"),
    [(1.09, "1.09× in-process (under --min-speedup here"), (0.93, "0.93× in-process (slower here")],
)
def test_a_build_under_the_bar_is_said_under_it_and_one_under_1_slower(speedup: float, said: str) -> None:
    speed = {"speedup": speedup, "holds": False, "verdict": "slower"}
    assert in_process_words({"int8_in_process": speed}) == f"{said}: served anyway, --allow-slower), "
