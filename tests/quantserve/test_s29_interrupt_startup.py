"""Ctrl-C while `quantserve` starts up (its commands' modules importing, seconds on a busy machine) ends it as a
Ctrl-C anywhere else does: one line, exit 130. It printed a 30-line KeyboardInterrupt traceback and died by SIGINT.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# SIGINT delivered to the process itself as the parser is being built, as a terminal's Ctrl-C at that moment would be
INTERRUPTED_STARTUP = """
import os, signal, sys
import quantserve.cli as cli

building = cli.build_parser

def interrupted_while_importing():
    os.kill(os.getpid(), signal.SIGINT)
    return building()

cli.build_parser = interrupted_while_importing
sys.exit(cli.main(["doctor"]))
"""


def test_ctrl_c_during_start_up_is_one_line_and_exit_130() -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_STARTUP], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr) == (130, "quantserve: interrupted\n"), done.stderr
