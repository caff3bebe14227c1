"""What a load step checks before its Locust run: that the server answers, the model (or the version --model-version
names) is ready and takes the data's requests as the users will build them (`check_model_ready`), and that
--server-pid is the server's (`check_server_pid`). Each refusal is one line: every request would have failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from loadtest.data_file import served_data
from loadtest.load_pattern import LoadStep
from loadtest.load_settings import LoadSettings
from loadtest.queue_delay import max_queue_delay_s
from loadtest.request_data import check_sent_shapes, cut_inputs, padding_note, sample_note
from loadtest.request_shapes import ServedInputs
from quantserve.data import check_against
from quantserve.errors import QuantserveError

if TYPE_CHECKING:
    from serving.client import TritonGrpcClient


def request_sizes(settings: LoadSettings, step: LoadStep) -> tuple[tuple[int, ...], str]:
    """The samples the requests of this step carry (each size sent), and which flag says so."""
    sizes = getattr(getattr(step, "trace", None), "sizes", None)  # a replayed trace with a request-size column
    if sizes is not None:
        return tuple(int(n) for n in np.unique(sizes)), f"--trace {getattr(step, 'path', '')}"
    return (settings.request_batch,), "--request-batch"


def _ready_models(client: TritonGrpcClient, model: str) -> list[str]:
    """The models the server has ready; where its repository folder cannot be read (its index fails), the one line
    saying so: `model` is not ready, and the models it loaded keep serving (session 55)."""
    from serving.call_failures import repository_unreadable, unreadable_folder

    try:
        return sorted(client.ready_models())
    except QuantserveError as exc:
        folder = unreadable_folder(exc)
        if folder is None:
            raise
        raise QuantserveError(
            f"model '{model}' is not ready on {client.url}, and {repository_unreadable(folder)}"
        ) from None


def check_model_ready(settings: LoadSettings, requests: tuple[tuple[int, ...], str] = ((1,), "")) -> list[str]:
    """Fail in one line when the server is not there, the model (or the version --model-version names) is not
    loaded, the data does not fit it, a request would carry more samples than the model's max_batch_size, or the
    requests as the users build them (shaped and trimmed by `loadtest.request_data`) do not fit the model's config:
    every such request would fail. Returns the notes on what the requests will be (`sample_note`, `padding_note`)."""
    from serving.call_failures import no_answer_line
    from serving.client import TritonGrpcClient
    from serving.nan_parameter import served_nan_accepted

    url, model, data_path = settings.url, settings.model, settings.data
    with TritonGrpcClient(url, timeout_s=5.0, tls=settings.tls) as client:
        if not client.is_model_ready(model):
            if not client.is_server_live():
                raise QuantserveError(no_answer_line(url))
            ready = _ready_models(client, model)
            if model not in ready:  # else its readiness went unanswered within 5 s, a server paused (SIGSTOP)
                # then back: "'m' is not ready (ready: m)" contradicted itself (session 41); it is ready now
                why, coming = client.not_served_because(model)  # Triton's reason, or serve's (session 58)
                if why or not coming:
                    raise QuantserveError(
                        why or f"model '{model}' is not ready on {url} (ready: {', '.join(ready) or 'none'})"
                    )
                # loading, or deployed and its serve will load it: waited for as evaluate and infer wait
                client.wait_model_ready(model, timeout_s=30.0)
        if settings.model_version:
            client.check_version_served(model, settings.model_version)
        inputs, _ = client.model_metadata(model, settings.model_version)
        config = client.model_config(model)
    served = ServedInputs.from_config(model, config).told(settings.length_input)  # the requests' length input
    settings.queue_delay_s = max_queue_delay_s(config)  # the deadline notes' cause where --request-timeout is within
    data, max_batch = served_data(data_path, inputs, served.max_batch_size), served.max_batch_size
    check_against(data_path, data, inputs, served_nan_accepted(config))  # NaN where the build accepted it
    sizes, flag = requests
    samples = max(sizes)
    if max_batch > 0 and samples > max_batch:
        raise QuantserveError(
            f"{flag}: requests of {samples} samples, more than model '{model}' takes (max_batch_size {max_batch}); "
            "Triton would reject every one: send smaller requests or deploy with a larger --max-batch"
        )
    check_sent_shapes(data, sizes, served, flag)
    settings.cut_by, settings.padding_note = cut_inputs(data, served), padding_note(data, served)  # each step records
    return [note for note in (sample_note(data_path, len(data), sizes), settings.padding_note) if note]


def check_server_pid(server_pid: int, listening: int | None, url: str) -> None:
    """A QuantserveError unless `server_pid` is a live process that is the server listening at `url` or its parent
    (`quantserve serve`): `--server-pid 1` reported init's family as the server's CPU and memory, and a
    negative pid failed in the sampling thread. Where the listening process cannot be seen, alive is enough."""
    import psutil

    try:
        if server_pid <= 0:
            raise psutil.NoSuchProcess(server_pid)
        name = psutil.Process(server_pid).name()
        server = {listening, psutil.Process(listening).ppid()} if listening is not None else {server_pid}
    except psutil.Error:
        raise QuantserveError(f"--server-pid {server_pid}: no such process") from None
    if server_pid not in server:
        raise QuantserveError(
            f"--server-pid {server_pid}: process {server_pid} ({name}) is not the server listening at {url} "
            f"(pid {listening}) nor its parent; give that pid, or leave --server-pid out (it is found by the port)"
        )
