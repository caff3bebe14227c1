"""Each served model's outputs over the same gRPC endpoint users hit, and what answered them.

`served_outputs` sends the held-out rows to one served model (a recurrent one as a stream) and records the version
and precision that answered (`ServedModel`); `served_config`, `served_source` and `served_speed_record` read what
its deployment recorded; `refuse_self_comparison` refuses a variant answered by the reference's own version. Split
from `loadtest.evaluator`, which scores and judges the variants on these outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.evaluator_failures import (
    DEADLINE_EXCEEDED,
    ResentCount,
    RowsSent,
    request_failure,
    restart_note,
)
from loadtest.request_data import check_request_size
from loadtest.run_identity import deployed_build
from loadtest.server_pids import listening_pid
from optimizer.state_loop import StatePair, stream_through
from quantserve.data import TensorData, check_against, fixed_request_rows, read_as_served
from quantserve.errors import QuantserveError
from quantserve.runner import LoggedRunner, RequestLog, run_batches
from serving.build_parameters import recorded_source
from serving.call_failures import takes_connections
from serving.model_version import split_addressed
from serving.nan_parameter import ServedNanAccepted


def served_outputs(
    url: str,
    model: str,
    data: TensorData,
    batch_size: int = 64,
    source: Path | str = "the data",
    served: dict[str, ServedModel] | None = None,
    request_timeout_s: float = 30.0,
    state: Mapping[str, str] | None = None,
    starts: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every output of `model` for every sample, sent in requests of `batch_size` samples; data that does not fit
    the model's inputs, or requests gRPC cannot carry, is one line naming `source`, before any request. Every
    request asks for the version served at the start (recorded in `served`, with the precision its deployment
    recorded): a deploy landing mid-run mixed two versions' answers into one figure (top-1 agreement 0.74 that
    described neither). A request that runs past
    `request_timeout_s` is one line naming the limit, the model and its rows (it said only "Deadline Exceeded").
    A recurrent model's `state` ({output: input}, `serving.state_parameter`) runs the rows in order as one stream,
    one row a request, each fed the model's own previous state output (the first row's from the data), as
    `optimize` checks it: fed the data's FP32 state row by row, INT8 drift that builds up over a stream hides; each
    of `starts`' rows (a sequence's first, `optimizer.state_loop.sequence_starts`) takes the data's state instead.
    `served` also keeps each request's rows and answer shapes (`ServedModel.requests`), which an answer whose length
    varies per request is compared by: such an output comes back padded to the longest (NaN), as `infer` saves it.
    `model` may name one version (`m@2`, `serving.model_version`): every request
    then asks for it, refused before any request unless served."""
    from serving.triton_runner import TritonRunner

    name, version = split_addressed(model)
    runner = TritonRunner(url, name, version, timeout_s=request_timeout_s, pin_version=True)
    with runner:
        # the process serving at the start, and the requests sent again: a restart during the run is said
        listening, resent = listening_pid(url), ResentCount.installed(runner.request_client)
        read_as_served(source, data, runner.input_specs(), runner.max_batch_size)  # whole samples: data[i] a request
        # NaN where the build accepted it (a tree ensemble's "missing"): its config is read only for data holding NaN
        check_against(source, data, runner.input_specs(), ServedNanAccepted(lambda: served_config(url, name)))
        if data.requests.whole:  # one sample a request
            batch_size = 1
        elif runner.max_batch_size <= 0:  # a request of an --unbatched build fixed at [1, …] holds that one row
            batch_size = min(batch_size, fixed_request_rows(runner.input_specs()) or batch_size)
        check_request_size(source, data, batch_size, runner.max_batch_size)
        log = RequestLog()
        if served is not None:
            served[model] = ServedModel(
                runner.version,
                runner.precision,
                served_source(url, name),
                log,
                runner.precision_note,
                max_batch_size=runner.max_batch_size,
                in_process=served_speed_record(url, name, runner.version),
            )
        sent = RowsSent(data.batches(batch_size), len(data), len(data) if state else -(-len(data) // batch_size))
        try:
            if state:
                pairs = [StatePair(out, into) for out, into in state.items()]
                produced = stream_through(runner, data.arrays, pairs, data.requests.whole, starts)
            else:
                # padded where an answer's length follows its values (a decoder's T), as infer saves it: the
                # evaluator cuts each request's own answer back out by `log` (`request_answers.request_answers`)
                produced = run_batches(LoggedRunner(runner, log), sent, data.requests.whole, pad=True)
        except QuantserveError as exc:
            failure = request_failure(exc, url, model, sent, request_timeout_s, runner.max_batch_size)
            if failure is None:
                raise
            raise failure from exc
    restarted = restart_note(url, listening, listening_pid(url), resent.waits)
    if served is not None and restarted:
        served[model] = replace(served[model], restart_note=restarted)
    return produced


def refuse_self_comparison(model: str, reference: str, served: Mapping[str, ServedModel]) -> None:
    """One line where `model` answered from the very version the reference answered from: its drift against itself
    is 0 whatever it is. `evaluate --models c@2 --reference c` with an INT8 canary c@2 the newest live version of
    c scored INT8 against INT8, "ok", exit 0, while against c@1 (FP32) it missed the budget (session 44)."""
    if model == reference or model not in served or reference not in served:
        return
    name, ref_name = split_addressed(model)[0], split_addressed(reference)[0]
    version = served[model].version
    if name == ref_name and version and version == served[reference].version:
        precision = f", deployed as {served[reference].precision}" if served[reference].precision else ""
        raise QuantserveError(
            f"'{model}' answers from version {version} of '{name}', the very version the reference '{reference}' "
            f"answers from{precision}: compared with itself it drifts by nothing; name the reference's FP32 version "
            f"(--reference {name}@N)"
        )


def served_source(url: str, model: str) -> str | None:
    """The source model `deploy` recorded in the model's served config, or None (none recorded, or unreadable)."""
    config = served_config(url, model)
    return recorded_source(config) if config is not None else None


def served_speed_record(url: str, model: str, version: str) -> dict[str, Any] | None:
    """The in-process speed verdict the deploy of `version` recorded in the model's served config, read as a load
    run's identity reads it (`run_identity.deployed_build`); None where none is recorded, or unreadable. evaluate
    alone passed an INT8 build refused for speed and deployed with --allow-slower (session 63)."""
    from serving.call_failures import NO_RETRY
    from serving.client import TritonGrpcClient

    try:
        with TritonGrpcClient(url, CONFIG_READ_S, None, NO_RETRY) as client:
            config, ready = client.model_config(model), client.ready_versions(model)
    except QuantserveError:
        return None
    build = deployed_build(config, version, ready)
    return build.in_process if build is not None else None


CONFIG_READ_S = 10.0  # a config read unanswered this long on a port that takes connections: the server is hung


def served_config(url: str, model: str) -> dict[str, Any] | None:
    """The model's served config as Triton's JSON, or None where it cannot be read (the run then says why); a read
    unanswered within CONFIG_READ_S while the server's port takes connections is the one line of a hung server.

    Session 46: evaluate against a SIGSTOPped tritonserver took 37-47 s to say hung: each model's config read here
    waited its 10 s and returned None, then the reference's readiness waited 20 s (gRPC's connect timeout) and its
    liveness 6 s. Now the first unanswered read says it (11 s in all). A slow model is not taken for a hung server:
    Triton answers config reads from its own gRPC threads, not from a model's instances, and none of evaluate's
    requests has been sent yet (each keeps --request-timeout); a server that refuses the connection (not started
    yet) is left to the model's readiness wait, as before."""
    from serving.call_failures import NO_RETRY, no_answer_line
    from serving.client import TritonGrpcClient

    try:
        with TritonGrpcClient(url, CONFIG_READ_S, None, NO_RETRY) as client:
            return dict(client.model_config(model))
    except QuantserveError as exc:
        if DEADLINE_EXCEEDED in str(exc) and takes_connections(url):
            raise QuantserveError(no_answer_line(url)) from None
        return None


@dataclass(frozen=True)
class ServedModel:
    """What answered a model's requests: the version pinned at the start, and the precision its deployment recorded
    in its config (None: none recorded)."""

    version: str
    precision: str | None = None
    source: str | None = None  # the source model its deployment recorded (None: none recorded)
    requests: RequestLog | None = None  # the rows and answer shapes of each request (None: not recorded)
    precision_note: str | None = None  # why `precision` is None where the config names another version's
    restart_note: str | None = None  # the server restarted during its run, requests sent again (`restart_note`)
    max_batch_size: int = 0  # the served model's, which caps the rows a request carries (0: it does not batch)
    # the in-process speed verdict its version's deploy recorded (`served_speed_record`; None: none recorded)
    in_process: dict[str, Any] | None = None
