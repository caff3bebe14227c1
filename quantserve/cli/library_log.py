"""Libraries' own chatter goes to a log file, not the terminal; the tool says what happened in its words.

ONNX Runtime's quantization tools log advice on Python's root logger ("Please consider to run
pre-processing before quantization …") and onnxslim, onnx and Locust have their own loggers and
`warnings`. While a command runs, every log record and warning lands in
`$QUANTSERVE_LOG_DIR/quantserve.log` (default `~/.cache/quantserve/log/quantserve.log`, appended,
one header line per command, each line marked with its process id: several users' runs may share the file,
session 61); at the end the command prints one line of its own for each known message and where the rest is.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_ENV = "QUANTSERVE_LOG_DIR"
LOG_FILE = "quantserve.log"
# a library message (substring) -> what quantserve says about it, in its own words
PRE_PROCESSING_NOTE = (
    "ONNX Runtime's shape pre-processing did not run on this graph (its symbolic shape inference gave up, or the "
    "model holds 1 GiB of weights or more, which it would hold as one protobuf); INT8 was quantized without it"
)
# ONNX Runtime's "Axis 1 is out-of-range for weight 'w' with rank 1": a 1-D weight (a BatchNormalization's scale
# or bias no convolution absorbed: a Keras model with BN before its convolutions, tempocnn) quantized per tensor
PER_TENSOR_NOTE = (
    "ONNX Runtime quantized some 1-D weights (a BatchNormalization's scale or bias that no convolution absorbed, "
    "or the like) with one scale per tensor: they have no per-channel axis; the drift table judges the result"
)
KNOWN_MESSAGES = {
    "consider to run pre-processing": PRE_PROCESSING_NOTE,
    "consider pre-processing": PRE_PROCESSING_NOTE,
    "is out-of-range for weight": PER_TENSOR_NOTE,
}


def log_path() -> Path:
    """Where library messages go (see the module docstring)."""
    folder = os.environ.get(LOG_ENV)
    return (Path(folder) if folder else Path.home() / ".cache" / "quantserve" / "log") / LOG_FILE


@dataclass
class CapturedLog:
    """What a command's libraries said while it ran: a count, the file, and the known messages seen."""

    path: Path
    records: int = 0
    notes: list[str] = field(default_factory=list)
    unwritable: str = ""  # why the file could not be written, where it could not

    def lines(self) -> list[str]:
        """The tool's own words: one line per known message, then where the rest is (empty when quiet). Where the
        file could not be written, that: "kept in /tmp/afile/quantserve.log" was said of a path through a file,
        the messages lost (session 41)."""
        lines = [f"note: {note}" for note in self.notes]
        if self.records and self.unwritable:
            lines.append(f"{self.records} library log messages not kept: {self.path}: {self.unwritable} (${LOG_ENV})")
        elif self.records:
            lines.append(
                f"{self.records} library log messages kept in {self.path} (its lines marked pid {os.getpid()})"
            )
        return lines


class _Counter(logging.Handler):
    def __init__(self, captured: CapturedLog) -> None:
        super().__init__(logging.WARNING)
        self.captured = captured

    def emit(self, record: logging.LogRecord) -> None:
        self.captured.records += 1
        message = record.getMessage()
        for needle, note in KNOWN_MESSAGES.items():
            if needle in message and note not in self.captured.notes:
                self.captured.notes.append(note)


class _LogFile(logging.Handler):
    """Appends to the log file, opened (and headed with the command line) only at the first message."""

    def __init__(self, path: Path, command: str, captured: CapturedLog | None = None) -> None:
        super().__init__(logging.INFO)
        self.path, self.command, self.captured = path, command, captured
        self.stream: Any = None
        self.setFormatter(logging.Formatter("%(asctime)s pid %(process)d %(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.stream is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.stream = self.path.open("a", encoding="utf-8")
                self.stream.write(_header(self.command) + "\n")
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except OSError as exc:  # an unwritable home: the chatter stays out of the terminal all the same
            if self.captured is not None and not self.captured.unwritable:
                self.captured.unwritable = exc.strerror or str(exc)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        super().close()


@contextmanager
def library_log(command: str) -> Iterator[CapturedLog]:
    """Route Python logging and warnings to the log file while the block runs; restore after."""
    captured = CapturedLog(log_path())
    file_handler = _LogFile(captured.path, command, captured)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    root.handlers[:] = [file_handler, _Counter(captured)]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    # warnings arrive through "py.warnings"; a library's dictConfig (Locust's) may have disabled it
    py_warnings = logging.getLogger("py.warnings")
    was_disabled, py_warnings.disabled = py_warnings.disabled, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield captured
    finally:
        logging.captureWarnings(False)
        py_warnings.disabled = was_disabled
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        file_handler.close()


def _header(command: str) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"== quantserve {command} (pid {os.getpid()}, {when}): {' '.join(sys.argv)}"
