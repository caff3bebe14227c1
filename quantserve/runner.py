"""One interface for "run this model on these inputs": in-process PyTorch, ONNX Runtime, a Triton endpoint.

The evaluator compares any two runners the same way. Subclasses implement `activate_impl`,
`infer_impl` and `deactivate_impl`; the checks live here (Polygraphy's runner shape).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from quantserve.artifact import TensorSpec
from quantserve.data import batch_rows
from quantserve.errors import QuantserveError


class Runner(abc.ABC):
    """Runs a model on `{input name: array}` feeds and returns `{output name: array}`."""

    name: str = "runner"

    def __init__(self) -> None:
        self.is_active = False

    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.deactivate()

    def activate(self) -> None:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; inputs are checked against `input_specs()` before the backend sees them."""
        if not self.is_active:
            raise QuantserveError(f"{self.name}: infer() called before activate()")
        self._check_feeds(feeds)
        return self.infer_impl(feeds)

    def _check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        specs = self.input_specs()
        missing = {s.name for s in specs} - set(feeds)
        if missing:
            raise QuantserveError(f"{self.name}: missing inputs {sorted(missing)}")
        for spec in specs:
            if feeds[spec.name].ndim != len(spec.shape):
                raise QuantserveError(
                    f"{self.name}: input '{spec.name}' has shape {feeds[spec.name].shape}, expected {list(spec.shape)}"
                )

    @abc.abstractmethod
    def input_specs(self) -> Sequence[TensorSpec]:
        """The model inputs this runner expects."""

    @abc.abstractmethod
    def activate_impl(self) -> None: ...

    @abc.abstractmethod
    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def deactivate_impl(self) -> None:  # noqa: B027 - optional hook
        """Release resources; the default holds none."""


def one_row(answer: np.ndarray) -> np.ndarray:
    """A whole sample's answer as one row: as it is where its axis 0 is already 1 (key_cnn's (1, 24)), else with an
    axis added ((24) scores, a (T − 10, 88) frame sequence)."""
    answer = np.asarray(answer)
    return answer if answer.ndim and answer.shape[0] == 1 else answer[None]


def concat_outputs(parts: Sequence[dict[str, np.ndarray]], pad: bool = False) -> dict[str, np.ndarray]:
    """Per-batch `{output: array}` results joined along the batch axis, output by output; `pad`: an output whose
    axes past 0 differ from batch to batch (a decoder's length, one request at a time) padded to the longest
    (`pad_to_longest`) rather than refused."""
    if not parts:
        raise QuantserveError("no batches were run: the data set holds zero samples")
    return {name: _concat_output(name, [part[name] for part in parts], pad) for name in parts[0]}


def _concat_output(name: str, arrays: list[np.ndarray], pad: bool = False) -> np.ndarray:
    """One output's batches joined along axis 0; a QuantserveError naming it when its other axes differ (unless
    `pad`). A rank-0 answer (one scalar a request of an --unbatched build) is stacked into [requests]: concatenate
    refused it."""
    if all(np.ndim(a) == 0 for a in arrays):
        return np.stack(arrays)
    if pad and len({np.ndim(a) for a in arrays}) == 1 and len({np.shape(a)[1:] for a in arrays}) > 1:
        return np.concatenate(pad_to_longest(arrays))
    try:
        return np.concatenate(arrays)
    except ValueError as exc:  # shapes that differ beyond axis 0 (or a batch of rank 0)
        shapes = list(dict.fromkeys(tuple(np.shape(a)) for a in arrays))[:2]  # the first two that differ
        raise QuantserveError(
            f"output '{name}' cannot be joined along the batch axis: its batches have shapes "
            f"{', '.join(str(list(s)) for s in shapes)}; every axis but 0 must stay the same from batch to batch"
        ) from exc


def pad_to_longest(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Arrays of one rank padded at the end of each axis past 0 to the longest there: floats with NaN (never read as
    an answer), other types with 0; what each really was is the caller's to keep (`RequestLog.shapes`)."""
    longest = np.max([np.shape(a)[1:] for a in arrays], axis=0)
    padded = []
    for array in map(np.asarray, arrays):
        widths = [(0, 0), *((0, int(n) - size) for n, size in zip(longest, array.shape[1:], strict=True))]
        fill = np.nan if array.dtype.kind in "fc" else 0
        padded.append(np.pad(array, widths, constant_values=fill))
    return padded


SHAPES_SUFFIX = "__shapes"  # beside an output joined padded to the longest: each sample's own shape there


def sample_shapes(shapes: Sequence[tuple[int, ...]], rank: int) -> np.ndarray:
    """NAME__shapes of an output joined padded to the longest (`pad_to_longest`), as `infer` saves it and a --metric
    gets it: one row a row of the padded array (of `rank` axes), its own answer's shape there, of padded[i]'s rank,
    so `padded[i][tuple(slice(0, s) for s in shapes[i])]` is sample i's answer. From each request's answer shape
    (`RequestLog.shapes`): a request of n rows gives n rows; one of rank `rank` − 1 was made one row (`one_row`, a
    whole sample) and gives its shape. Each request's own shape, [1, 24, 50] beside rows (429, 50), raised
    "IndexError: too many indices" in that slice (probe 66I)."""
    rows: list[tuple[int, ...]] = []
    for shape in shapes:
        rows += [tuple(shape)] if len(shape) == rank - 1 else [tuple(shape[1:])] * (shape[0] if shape else 1)
    return np.array(rows, np.int64).reshape(len(rows), max(rank - 1, 0))


@dataclass
class RequestLog:
    """The rows sent in each request and the shape of each output's answer to it: what a stacked output cannot say
    where its length varies per request (an NMS-style det [K, 6] of an --unbatched build: rows of requests with
    different K were compared with each other, and `infer` saved [2002, 6] with no record of whose rows were whose)."""

    rows: list[int] = field(default_factory=list)
    shapes: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)

    def record(self, batch: dict[str, np.ndarray], answer: dict[str, np.ndarray]) -> None:
        self.rows.append(request_rows(batch))
        for name, value in answer.items():
            self.shapes.setdefault(name, []).append(tuple(np.shape(value)))

    def per_request(self) -> list[str]:
        """Outputs not answered one row per sample sent (axis 0 is not the rows of the request): their stacked
        rows split back into requests only by `row_counts`."""
        return [name for name, shapes in self.shapes.items() if not all(map(_one_row_per_sample, shapes, self.rows))]

    def lengths_vary(self) -> list[str]:
        """Outputs whose axes past 0 differ from request to request (a decoder's length): joined only padded."""
        return [name for name, shapes in self.shapes.items() if len({shape[1:] for shape in shapes}) > 1]

    def row_counts(self, name: str) -> np.ndarray:
        """The rows each request's answer added to output `name` when stacked (1 for a rank-0 answer)."""
        return np.array([shape[0] if shape else 1 for shape in self.shapes[name]], dtype=np.int64)


def request_rows(feeds: dict[str, np.ndarray]) -> int:
    """A request's rows: axis 0 of its first input that has one; 1 where every input is a scalar, 0 for none. A model
    that does not batch takes rank-0 inputs (swift-f0's `fmin`, session 59): one sent first raised TypeError here.

    Samples sent, not rows to slice (`quantserve.data.batch_rows`, 0 for scalars alone): a request of scalars alone is
    one sample, answered by one rank-0 value (`_one_row_per_sample`), and counted so in the runner's rows."""
    if any(np.ndim(value) for value in feeds.values()):
        return batch_rows(feeds)
    return int(bool(feeds))


def _one_row_per_sample(shape: tuple[int, ...], rows: int) -> bool:
    return shape[:1] == (rows,) or (shape == () and rows == 1)


class LoggedRunner(Runner):
    """An active runner whose every request's rows and answer shapes go into `log` (`run_batches(LoggedRunner(r,
    log), …)`): what `infer` and `evaluate` need beside the stacked outputs."""

    def __init__(self, runner: Runner, log: RequestLog) -> None:
        super().__init__()
        self.runner, self.log, self.name = runner, log, getattr(runner, "name", Runner.name)
        self.is_active = True  # the wrapped runner checks its own

    def input_specs(self) -> Sequence[TensorSpec]:
        return self.runner.input_specs()

    def activate_impl(self) -> None:
        self.runner.activate()

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        answer = self.runner.infer(feeds)
        self.log.record(feeds, answer)
        return answer


def run_batches(
    runner: Runner, batches: Iterable[dict[str, np.ndarray]], whole: bool = False, pad: bool = False
) -> dict[str, np.ndarray]:
    """Every output of an active `runner` over `batches` (e.g. `TensorData.batches(n)`), concatenated; `whole`
    (`TensorData.requests.whole`: each batch one whole sample, no sample axis) makes each answer one row
    (`one_row`), so a clip's (24) key scores are (N, 24), not 24·N values.

    The one "run a runner over a data set" loop: build-time verification, the transformer search,
    served evaluation, `quantserve infer` and the gRPC runner's over-max-batch split all use it. `pad`
    (`concat_outputs`): `infer`'s, which saves each request's shape beside answers whose length varies.
    """
    if whole:
        return concat_outputs([{k: one_row(v) for k, v in runner.infer(b).items()} for b in batches], pad)
    return concat_outputs([runner.infer(batch) for batch in batches], pad)
