"""What a load run measured, recorded with its figures: when it started, the versions served, the source model the
deployment recorded, the data sent and the client machine that sent it, so that a report compares runs of one model
on one data set from one machine only.

A digits CNN and an unrelated linear model load-tested into one folder were judged "INT8 0.61× FP32": nothing in
the results said they were different models, sent different data, or ran days apart. Runs merged from two machines
were judged under one "Machine:" line: machine.json is the last loadtest's, rewritten by each one into the folder.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.data_file import read_data
from quantserve.errors import QuantserveError
from serving.build_parameters import recorded_precision, recorded_source
from serving.drift_parameter import VersionBuild, version_build
from serving.model_config import default_preferred_batch_sizes, is_version_name
from serving.tls import ClientTls


@dataclass
class RunIdentity:
    """One run's start, the model as served at that start, and the data it sent."""

    started_at: str  # UTC, ISO 8601
    versions: list[str] = field(default_factory=list)  # the model's versions READY at the start
    source: str | None = None  # the source model's identity its deployment recorded (None: none recorded)
    data: str = ""  # the --data file
    data_sha256: str | None = None  # of its input arrays (names, dtypes, shapes, bytes), not of the zip's bytes
    # the machine the load generator ran on (None: a file from before it was recorded): its host name, CPU, cores
    client_host: str | None = None
    client_cpu: str | None = None
    client_cores: int | None = None
    # how the model was served at the start (`served_config`): max batch, queue delay, instances (None: not read)
    config: str | None = None
    # the model's versions READY at the run's end (None: not read, or a file from before it was)
    versions_at_end: list[str] | None = None
    # the build's in-process speed verdict its deployment recorded (`build_parameters.recorded_speed`; None: none)
    in_process: dict[str, Any] | None = None
    # how the model was served at the run's end (`served_config`; None: not read, or a file from before it was)
    config_at_end: str | None = None
    # the drift budget its build missed at optimize and was shipped past (--keep-failing), as its deployment recorded it
    # (`serving.drift_parameter`): deploy's lines; None where none is recorded (a build that held, an older file)
    drift_missed: list[str] | None = None
    # the rates its build held on --eval rows too few to show the budget (--allow-thin-evidence), as its deployment
    # recorded them (`serving.drift_parameter.thin_evidence_records`); None where none is recorded
    thin_evidence: list[dict[str, Any]] | None = None
    # the served model's max_batch_size at the start, as its config says (0: no batching; None: not read, or a file
    # from before session 66, whose `config` words still give it: `loadtest.sweep_knee` reads it)
    max_batch: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunIdentity:
        identity = cls(**data)
        if not isinstance(identity.started_at, str) or not isinstance(identity.versions, list):
            raise ValueError(f"'identity' is {data!r}, not a run's start time and versions")
        return identity

    def versions_changed(self) -> bool:
        """Whether the versions READY at the end differ from those at the start (both read)."""
        return bool(self.versions) and self.versions_at_end is not None and self.versions_at_end != self.versions

    def versions_words(self) -> str:
        """The versions served, `1`, or `1 → 2` where they changed during the run; "–" where none was read."""
        start = ", ".join(self.versions) or "–"
        return f"{start} → {', '.join(self.versions_at_end or []) or 'none'}" if self.versions_changed() else start

    def versions_note(self, model: str, precision: str | None, answered: list[int] | None = None) -> str | None:
        """One line where the model's served versions changed during the run. Measured (session 43): a loadtest
        across a `serve --model-control none` restart that served a new INT8 version recorded precision fp32 and
        versions ['1'], read at its start, though its window's end was served by version 2. `answered`: the versions
        that answered its windows (`answered_versions`; None: not recorded): one alone (a run pinned to it, or a
        change after its last answer) is what its figures are of. A run pinned to version 4 whose rollback to 3
        landed after its window said "its figures are of both" though version 4 gave all 699 answers (session 54)."""
        if not self.versions_changed():
            return None
        head = f"model '{model}' served versions changed"
        if answered is not None and len(answered) < 2:
            if not answered:
                return f"{head} by the run's end ({self.versions_words()}); no request was answered in its window"
            return (
                f"{head} by the run's end ({self.versions_words()}), but version {answered[0]} gave every answer in "
                "its window: its figures are of that version alone"
            )
        read = f"precision {precision} and " if precision else ""
        versions = f"versions {', '.join(map(str, answered))}" if answered else "both"
        return (
            f"{head} during the run ({self.versions_words()}): its {read}versions were read at the start, and its "
            f"figures are of {versions}"
        )

    def config_changed(self) -> bool:
        """Whether the served config read at the end differs from the one read at the start (both read)."""
        return bool(self.config) and self.config_at_end is not None and self.config_at_end != self.config

    def config_words(self) -> str | None:
        """How the model was served: the start's config, or `start → end` where it changed during the run."""
        return f"{self.config} → {self.config_at_end}" if self.config_changed() else self.config

    def config_note(self, model: str) -> str | None:
        """One line where the model's served config changed during the run. Measured (session 55): a config reload of
        the same version 6 s into 15 (1 → 2 instances, queue 500 → 2000 µs) went unsaid, and the result recorded the
        start's config alone."""
        if not self.config_changed():
            return None
        return (
            f"model '{model}' served config changed during the run ({self.config_words()}): it was read at the start, "
            "and its figures are of both"
        )

    def client(self) -> str | None:
        """`host (CPU, N cores)`: the client machine as recorded; None where nothing was."""
        if not self.client_host and not self.client_cpu:
            return None
        return f"{self.client_host or '?'} ({self.client_cpu or '?'}, {self.client_cores or '?'} cores)"

    def started(self) -> datetime | None:
        """The start as a UTC datetime; None where the file holds no readable time."""
        try:
            at = datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        except ValueError:
            return None
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def answered_versions(spans: Iterable[list[dict[str, float]] | None]) -> list[int] | None:
    """The versions that answered a run's windows, from each window's `version_spans`; None where one did not keep
    them (a record from before they were)."""
    answered: set[int] = set()
    for window in spans:
        if window is None:
            return None
        answered.update(int(span["version"]) for span in window)
    return sorted(answered)


def now_utc() -> str:
    """This moment, UTC, ISO 8601 to the second: `2026-11-30T15:41:07Z`."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def arrays_sha256(path: Path) -> str:
    """The sha256 of a data file's input arrays in name order (a file saved again holds other zip bytes, the same
    arrays). Each array's bytes are read in place, not copied: `tobytes()` doubled the peak of a 512 MB file."""
    digest = hashlib.sha256()
    for name, array in sorted(read_data(path).arrays.items()):
        array = np.ascontiguousarray(array)
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.reshape(-1).view(np.uint8).data)
    return f"sha256:{digest.hexdigest()}"


def served_identity(
    url: str, model: str, data: Path, tls: ClientTls | None = None, version: str = ""
) -> tuple[RunIdentity, str | None]:
    """The run's identity at its start, and the precision the deployment recorded; what the server does not say
    (an older deployment, another tool's, a config that cannot be read) stays None. `version`: the one the run's
    requests name ("": Triton's choice, the newest READY), whose own drift misses and speed verdict are recorded."""
    from serving.call_failures import NO_RETRY
    from serving.client import TritonGrpcClient
    from serving.machine import cpu_facts  # here: it imports optimizer.speed, and onnx with it

    cpu = cpu_facts()
    identity = RunIdentity(now_utc(), data=str(data), data_sha256=arrays_sha256(data))
    identity.client_host, identity.client_cpu, identity.client_cores = socket.gethostname(), cpu.model, cpu.usable_cores
    try:
        with TritonGrpcClient(url, 10.0, tls, NO_RETRY) as client:
            config = client.model_config(model)
            identity.versions = client.ready_versions(model)
    except QuantserveError:
        return identity, None
    identity.source, identity.config = recorded_source(config), served_config(config)
    identity.max_batch = int(config.get("max_batch_size") or 0)
    build = deployed_build(config, version, identity.versions)
    identity.in_process = build.in_process if build else None
    identity.drift_missed = list(build.drift_missed) if build and build.drift_missed else None
    identity.thin_evidence = list(build.thin_evidence) if build and build.thin_evidence else None
    return identity, recorded_precision(config)


def deployed_build(config: Mapping[str, Any], version: str, ready: list[str]) -> VersionBuild | None:
    """What the deploy of `version` ("": the one an unversioned request goes to) recorded of its build in the served
    `config` (its in-process speed verdict, drift misses, thin evidence); None where none is recorded for it. `ready`:
    the versions READY. A load run's identity and evaluate's variants read it alike (session 63: evaluate alone
    passed a build deployed past its speed budget)."""
    return version_build(config, version or loaded_version(ready), ready)


def loaded_version(ready: list[str]) -> str:
    """The version an unversioned request goes to: the newest READY (Triton's answer); "" where none was read."""
    numbered = [v for v in ready if is_version_name(v)]
    return max(numbered, key=int) if numbered else ""


def versions_now(url: str, model: str, tls: ClientTls | None = None) -> list[str] | None:
    """The model's versions READY now (a run's end, `RunIdentity.versions_at_end`); None where the server does not
    answer."""
    from serving.call_failures import NO_RETRY
    from serving.client import TritonGrpcClient

    try:
        with TritonGrpcClient(url, 10.0, tls, NO_RETRY) as client:
            return client.ready_versions(model)
    except QuantserveError:
        return None


def config_now(url: str, model: str, tls: ClientTls | None = None) -> str | None:
    """How the model is served now (`served_config`; a run's end, `RunIdentity.config_at_end`); None where the
    server does not answer."""
    from serving.call_failures import NO_RETRY
    from serving.client import TritonGrpcClient

    try:
        with TritonGrpcClient(url, 10.0, tls, NO_RETRY) as client:
            return served_config(client.model_config(model))
    except QuantserveError:
        return None


def served_config(config: dict[str, Any]) -> str:
    """A served model's batching and instances as its config says: `max batch 32, queue 500 µs, 2 instances`, or
    `no batching, 1 instance` (max_batch_size 0). Two runs of one precision side by side (the report's A/B table)
    were told apart by model name alone: the results held no deploy config. Preferred sizes other than deploy's
    default, ragged batching and a queue policy are named too: two runs of group and pad read as one configuration
    (session 43)."""
    batch = int(config.get("max_batch_size") or 0)
    dynamic = config.get("dynamic_batching")
    if not batch:
        words = "no batching"
    elif dynamic is None:
        words = f"max batch {batch}, no dynamic batching"
    else:
        words = f"max batch {batch}, queue {int(dynamic.get('max_queue_delay_microseconds') or 0)} µs"
        words += "".join(f", {part}" for part in _batcher_words(batch, dynamic))
    ragged = (config.get("parameters") or {}).get("ragged_batching") or {}
    if batch and isinstance(ragged, dict) and ragged.get("string_value"):
        words += f", ragged {ragged['string_value']}"
    count = sum(int(group.get("count") or 1) for group in config.get("instance_group") or [{}])
    return f"{words}, {count} instance{'s' if count != 1 else ''}"


def _batcher_words(batch: int, dynamic: dict[str, Any]) -> list[str]:
    """The dynamic batcher's preferred sizes where not deploy's default for `batch`, and its queue bounds."""
    words = []
    preferred = tuple(sorted(int(size) for size in dynamic.get("preferred_batch_size") or []))
    if preferred and preferred != default_preferred_batch_sizes(batch):
        words.append(f"preferred {','.join(map(str, preferred))}")
    queue = dynamic.get("default_queue_policy") or {}
    if int(queue.get("max_queue_size") or 0):
        words.append(f"at most {int(queue['max_queue_size'])} waiting")
    if int(queue.get("default_timeout_microseconds") or 0):
        words.append(f"queue timeout {int(queue['default_timeout_microseconds'])} µs")
    return words
