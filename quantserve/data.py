"""Model input data in one shape: `.npz` files with one array per input name (plus `labels`).

Calibration, verification, `infer` and the load test all read data through here, and every
calibrator adapts to the iterable of `dict[str, np.ndarray]` batches this yields.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quantserve.artifact import TensorSpec
from quantserve.data_words import batch_axes_words, batch_elsewhere_words, rank_0_words
from quantserve.errors import QuantserveError
from quantserve.finite_data import NanAccepted, check_finite

LABELS = "labels"


@dataclass
class RequestForm:
    """Whether an --unbatched data set's samples are whole requests (`data[i]`, `whole_samples`), decided where the
    model's inputs are first known (`check_against`) and shared by the sets taken from the data before that (the
    calibration and held-out parts of one file)."""

    whole: bool = False


@dataclass
class TensorData:
    """Arrays keyed by model input name, all with the same first (batch) dimension; optional labels.

    `labels` are integer class ids (accuracy, per-token agreement and a --metric read them); `truth` is float
    ground truth (keypoints in pixels, regression targets) that only a --metric reads, so no class metric
    scores it as ids.

    `unbatched` (optimize --unbatched: a model Triton serves with max_batch_size 0): each row of axis 0 is one
    request, and every run is one request, so `batches(n)` yields single requests whatever `n` asks: the build's
    calibration, checks, verification and timing feed the model as its server will. A request is `data[i:i+1]`, or
    `data[i]` whole where the arrays have one axis more than the model's inputs (`requests.whole`, `whole_samples`):
    a model whose axis 0 is a sample's frames (T, 144) takes data (N, T, 144).
    """

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    truth: np.ndarray | None = None
    unbatched: bool = False
    requests: RequestForm = field(default_factory=RequestForm)

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Yield `{input name: array}` slices of at most `batch_size` samples (one, where `unbatched`)."""
        if self.unbatched:
            for row in range(len(self)):
                yield self.request(row)
            return
        for start in range(0, len(self), batch_size):
            yield {k: v[start : start + batch_size] for k, v in self.arrays.items()}

    def request(self, row: int) -> dict[str, np.ndarray]:
        """Sample `row` as one request of an --unbatched build: `data[row]` whole where the arrays have one axis more
        than the model's inputs, else `data[row:row+1]`. A rank-0 input's `data[row]` is a 0-d array: numpy's scalar
        was refused by ONNX Runtime ("Unable to handle object of type <class 'numpy.float32'>", swift-f0's fmin)."""
        if self.requests.whole:
            return {k: np.asarray(v[row]) for k, v in self.arrays.items()}
        return {k: v[row : row + 1] for k, v in self.arrays.items()}

    @property
    def metric_truth(self) -> np.ndarray | None:
        """What a --metric scores against: the float truth if the file had one, else the labels."""
        return self.truth if self.truth is not None else self.labels

    def take(self, start: int, stop: int) -> TensorData:
        labels = None if self.labels is None else self.labels[start:stop]
        truth = None if self.truth is None else self.truth[start:stop]
        arrays = {k: v[start:stop] for k, v in self.arrays.items()}
        return TensorData(arrays, labels, truth, self.unbatched, self.requests)

    def take_rows(self, rows: np.ndarray) -> TensorData:
        """The samples at `rows` (indices), in that order."""
        labels = None if self.labels is None else self.labels[rows]
        truth = None if self.truth is None else self.truth[rows]
        return TensorData({k: v[rows] for k, v in self.arrays.items()}, labels, truth, self.unbatched, self.requests)

    def save(self, path: Path) -> Path:
        arrays = dict(self.arrays)
        if self.metric_truth is not None:
            arrays[LABELS] = self.metric_truth
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)  # type: ignore[arg-type]
        return Path(path)


def batch_rows(batch: Mapping[str, np.ndarray]) -> int:
    """The rows of a batch of inputs: axis 0 of its first input that has one; 0 where none has. A whole request of
    --unbatched data may hold a rank-0 input (swift-f0's fmin) first, and len() of it raised a TypeError.

    Rows to slice, not samples sent: a batch of scalars alone has no axis 0 (speed's `whole` reads 0 as "a whole
    --unbatched sample", not one to cut to `[:1]`); `quantserve.runner.request_rows` counts it one sample sent."""
    return next((len(array) for array in batch.values() if np.ndim(array)), 0)


def load_npz(
    path: Path | str,
    inputs: Sequence[TensorSpec] | None = None,
    *,
    float_truth: bool = False,
    whole: bool = False,
    nan_ok: NanAccepted | None = None,
) -> TensorData:
    """Read an `.npz` (never unpickling objects) and check it against the model's inputs if given.

    `float_truth` (a --metric is given): float `labels` are kept as `truth`, for the metric alone. `whole` (a model
    served with max_batch_size 0): arrays with one axis more than `inputs` are whole samples, each data[i] one request
    (`whole_samples`); arrays of the inputs' rank are read as without it. `nan_ok`: the inputs that may carry NaN
    (`check_against`).
    """
    path = Path(path)
    try:
        data = _load_checked(path, inputs, float_truth, whole, nan_ok or NanAccepted())
        data.unbatched = data.requests.whole
        return data
    except MemoryError:  # numpy's _ArrayMemoryError traceback, from reading the arrays or from a check
        raise QuantserveError(too_big_line(path)) from None


def _load_checked(
    path: Path, inputs: Sequence[TensorSpec] | None, float_truth: bool, whole: bool, nan_ok: NanAccepted
) -> TensorData:
    """`load_npz`'s reading and checks; a MemoryError in any of them is said by `load_npz` (`too_big_line`)."""
    arrays = _read_arrays(path, inputs)
    labels = arrays.pop(LABELS, None)
    if labels is not None and labels.dtype == np.bool_:  # a binary task's True/False: class ids 1/0
        labels = labels.astype(np.int64)
    if not arrays:
        raise QuantserveError(f"{path}: holds no input arrays")
    if float_truth and labels is not None and np.issubdtype(labels.dtype, np.floating):
        data = TensorData(arrays, None, labels, whole)
        _check_batch_dims(path, data)
        _check_truth_rows(path, labels, len(data))
        if labels.size and not np.isfinite(labels).any():  # NaN marking missing truth is the metric's to read; all NaN:
            raise QuantserveError(  # both models scored 0 against nothing, "relative drop 0", PASS (session 30)
                f"{path}: array '{LABELS}' holds no finite value (all {labels.size} NaN or infinite): there is no "
                "truth for the --metric to score against"
            )
        if inputs is not None:
            check_against(path, data, inputs, nan_ok)
        return data
    data = TensorData(arrays, labels, None, whole)
    _check_batch_dims(path, data)
    if inputs is not None:
        check_against(path, data, inputs, nan_ok)
    return data


def _read_arrays(path: Path, inputs: Sequence[TensorSpec] | None) -> dict[str, np.ndarray]:
    """The named arrays of an `.npz`; a `.npy` (one array, no names) is refused in one line: it ended in numpy's
    "'numpy.ndarray' object does not support the context manager protocol" traceback."""
    if path.is_dir():  # it exists: "not found" sent the user looking for a file that was there
        raise QuantserveError(f"{path}: a folder, not a data file; give the .npz file itself")
    if not path.is_file():
        raise QuantserveError(f"{path}: data file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            names = [spec.name for spec in inputs] if inputs else ["<input name>"]
            example = f"{names[0]}=array" if len(names) == 1 else ", ".join(f"{n}={n}_array" for n in names)
            raise QuantserveError(
                f"{path} holds one array, not named inputs: save an .npz named by the input, e.g. "
                f"np.savez('{path.with_suffix('.npz')}', {example})"
            )
        with loaded as npz:
            return {name: _read_member(path, npz, name) for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise QuantserveError(f"{path}: not a readable .npz file ({exc})") from exc


def _read_member(path: Path, npz: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    """One array of the file; an object array is named with its way out: images of sizes 8, 12 and 16 px saved
    together read "not a readable .npz file (Object arrays cannot be loaded when allow_pickle=False)"."""
    try:
        return npz[name]
    except ValueError:
        shape, dtype = _member_shapes(path).get(name, ((), np.dtype(np.float32)))
        if dtype.kind != "O":
            raise
        raise QuantserveError(
            f"{path}: array '{name}' is an object array of shape {tuple(shape)}, which is never unpickled; rows of "
            "an input must share one shape (rows of several sizes: resize or pad them to one, or save one .npz per "
            "size), and strings go as a str or bytes array"
        ) from None


def too_big_line(path: Path) -> str:
    """What to do about a data file this process cannot hold in memory: its size on disk and in memory, its rows.

    Measured: 4M rows of 32 float32 (512 MB) under `ulimit -v 1400000` ended in numpy's `_ArrayMemoryError`
    traceback; the shapes are read from the members' .npy headers, which need no memory."""
    shapes = _member_shapes(path)
    in_memory = sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in shapes.values())
    rows = max((shape[0] for shape, _ in shapes.values() if shape), default=0)
    held = ", ".join(f"'{name}' {dtype}{list(shape)}" for name, (shape, dtype) in shapes.items())
    on_disk = path.stat().st_size if path.is_file() else 0
    return (
        f"{path}: too big for this process's memory ({_size(on_disk)} on disk, {_size(in_memory)} in memory: "
        f"{rows} rows; {held}); save fewer rows in another .npz (every array cut alike, e.g. a[:{max(1, rows // 10)}]) "
        "or run where more memory is free"
    )


def _member_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype from the .npz's .npy headers, without reading the arrays; {} if unreadable."""
    shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                with archive.open(member) as npy:
                    one = np.lib.format.read_magic(npy) == (1, 0)
                    header = np.lib.format.read_array_header_1_0 if one else np.lib.format.read_array_header_2_0
                    shape, _, dtype = header(npy)
                shapes[member.removesuffix(".npy")] = (tuple(shape), np.dtype(dtype))
    except (OSError, ValueError, zipfile.BadZipFile):
        return shapes
    return shapes


def _size(n_bytes: int) -> str:
    for unit, power in (("GiB", 30), ("MiB", 20)):
        if n_bytes >= 2**power:
            return f"{n_bytes / 2**power:.1f} {unit}"
    return f"{n_bytes / 2**10:.0f} KiB"


def _check_batch_dims(path: Path, data: TensorData) -> None:
    sizes = {name: a.shape[0] if a.ndim else 0 for name, a in data.arrays.items()}
    if len(set(sizes.values())) != 1:
        raise QuantserveError(
            f"{path}: arrays disagree on the number of samples, read as axis 0 of each: "
            f"{batch_axes_words(data.arrays)} "
            f"(samples are rows of axis 0 of every input, as Triton's dynamic batching stacks them; the file holds "
            f"the model's inputs and '{LABELS}' alone){rank_0_words(data)}{batch_elsewhere_words(data.arrays)}"
        )
    if next(iter(sizes.values())) == 0:
        if all(not array.ndim for array in data.arrays.values()):  # no rows at all, not rows of none
            raise QuantserveError(
                f"{path}: holds no samples: every array is rank 0 (a single value of shape ()), and samples are rows "
                "of axis 0 of every input; save one sample as x[None] (shape (1, …)), or leave a per-model constant "
                "out of the data"
            )
        raise QuantserveError(f"{path}: holds zero samples")
    if data.labels is not None:
        check_labels(path, data.labels, len(data))


def check_labels(path: Path | str, labels: np.ndarray, samples: int) -> None:
    """Labels are integer class ids, one row per sample: (N,) ids ≥ 0, or more axes (per-token (N, T) ids, where
    negative ones, Hugging Face's -100, are unlabelled; masks or code points for a `--metric`). String or float
    labels were scored as accuracy 0 for every model, a drop of 0 points that passed any budget (load_npz reads
    booleans as ids 0 and 1)."""
    where = f"{path}: array '{LABELS}'"
    if not np.issubdtype(labels.dtype, np.integer):
        raise QuantserveError(
            f"{where} has dtype {labels.dtype}; labels must be integer class ids (e.g. int64), one row per sample "
            "(per-token ids, or any integer truth for a --metric; float truth such as keypoints in pixels is read "
            "only with a --metric, which scores it)"
        )
    _check_truth_rows(path, labels, samples)
    if labels.ndim == 1 and labels.min() < 0:
        rows = np.flatnonzero(labels < 0)
        raise QuantserveError(
            f"{where} has {len(rows)} negative class id(s) (first: {int(labels[rows[0]])} in row {int(rows[0])}); "
            "class ids are 0 or more"
        )


def _check_truth_rows(path: Path | str, labels: np.ndarray, samples: int) -> None:
    if labels.ndim == 0 or labels.shape[0] != samples:
        count = labels.shape[0] if labels.ndim else "no"
        raise QuantserveError(f"{path}: {count} labels for {samples} samples (array '{LABELS}', shape {labels.shape})")


def fixed_request_rows(specs: Sequence[TensorSpec]) -> int:
    """The rows a served model that does not batch (max_batch_size 0) takes per request where all its inputs fix
    axis 0 at one size (an `optimize --unbatched` build of a model fixed at batch 1): `infer` sent the whole file
    as one request, refused with "Expected [1,16,96], got [300,16,96]". 0 where axis 0 is free."""
    firsts = {spec.shape[0] if spec.shape else -1 for spec in specs}
    first = firsts.pop() if len(firsts) == 1 else -1
    return first if isinstance(first, int) and first > 0 else 0


def check_against(
    path: Path | str, data: TensorData, inputs: Sequence[TensorSpec], nan_ok: NanAccepted | None = None
) -> None:
    """Raise a QuantserveError naming the first input whose name, dtype or shape does not match, or that holds a
    value that is not finite: an infinity anywhere, a NaN outside `nan_ok`'s inputs."""
    nan_ok = nan_ok or NanAccepted()
    expected = {t.name for t in inputs}
    if set(data.arrays) != expected:
        raise QuantserveError(
            f"{path}: arrays {sorted(data.arrays)} do not match the model inputs {sorted(expected)}"
            + _names_apart(set(data.arrays), expected)
        )
    whole = data.unbatched and whole_samples(path, data.arrays, inputs)
    data.requests.whole = whole
    for spec in inputs:
        array = data.arrays[spec.name]
        if array.ndim != len(spec.shape) + whole:
            raise QuantserveError(
                f"{path}: input '{spec.name}' has shape {array.shape}, the model expects {list(spec.shape)}"
            )
        for got, want in zip(array.shape[1:], spec.shape[int(not whole) :], strict=True):
            if isinstance(want, int) and want > 0 and got != want:
                raise QuantserveError(
                    f"{path}: input '{spec.name}' has shape {array.shape}, the model expects {list(spec.shape)}"
                )
        _check_dtype(path, spec, array)
        check_finite(path, spec.name, array, nan_ok)


def _names_apart(names: set[str], expected: set[str]) -> str:
    """Where some arrays are inputs: those that are not and the inputs missing (`label` beside `x` was said only as
    "arrays ['label', 'x'] do not match the model inputs ['x']", session 63); "" where none is."""
    if not names & expected:
        return ""
    extra = [
        f"'{n}' is not one of them"
        + (f" (class ids go in an array named '{LABELS}')" if n.lower().startswith("label") else "")
        for n in sorted(names - expected)
    ]
    return ": " + "; ".join(extra + [f"'{n}' is missing" for n in sorted(expected - names)])


def read_as_served(
    source: Path | str, data: TensorData, inputs: Sequence[TensorSpec], max_batch_size: int
) -> TensorData:
    """`data` marked as whole requests (`unbatched`, `requests.whole`) where a model served with `max_batch_size` 0
    takes it so: every array one axis more than its input (`whole_samples`: an --unbatched build of swift-f0 given
    audio (N, 1, samples)), each data[i] one request; else as it is. One rule for evaluate and loadtest, which
    refused the file evaluate took ("input 'audio' has shape (256, 1, 32000), the model expects [1, 'dim1']")."""
    if max_batch_size <= 0 and whole_samples(source, data.arrays, inputs):
        data.unbatched = data.requests.whole = True
    return data


def whole_samples(path: Path | str, arrays: dict[str, np.ndarray], inputs: Sequence[TensorSpec]) -> bool:
    """The rank rule of --unbatched data: True where every array has one axis more than its input (data (N, T, 144)
    for a model taking (T, 144)): each `data[i]` is one whole request; False where every array has its input's rank
    (each row one request of 1 row). Arrays of both kinds are a QuantserveError naming `path`."""
    specs = {spec.name: spec for spec in inputs}
    extra = {name: array.ndim == len(specs[name].shape) + 1 for name, array in arrays.items() if name in specs}
    if len(set(extra.values())) > 1:
        more = next(name for name, whole in extra.items() if whole)
        same = next(name for name, whole in extra.items() if not whole)
        raise QuantserveError(
            f"{path}: array '{more}' has one axis more than its input (each data[i] one request) but '{same}' has its "
            "input's rank (each row one request): give every array the same form"
        )
    return bool(extra) and all(extra.values())


# A string input: Triton's BYTES ("bytes" in its metadata), ONNX's STRING ("object" in a manifest).
STRING_KINDS = "SO"
# What a string input takes: numpy bytes (S), str (U, sent as UTF-8) or object arrays of either (in memory only:
# an .npz never holds objects, as nothing is unpickled).
STRING_ARRAY_KINDS = "SUO"


def _check_dtype(path: Path | str, spec: TensorSpec, array: np.ndarray) -> None:
    if np.dtype(spec.dtype).kind in STRING_KINDS:
        if array.dtype.kind not in STRING_ARRAY_KINDS:
            raise QuantserveError(
                f"{path}: input '{spec.name}' has dtype {array.dtype}, the model expects strings (Triton BYTES): "
                "a numpy bytes (S) or str (U, sent as UTF-8) array"
            )
    elif np.dtype(array.dtype) != np.dtype(spec.dtype):
        raise QuantserveError(f"{path}: input '{spec.name}' has dtype {array.dtype}, the model expects {spec.dtype}")


def as_sent(array: np.ndarray) -> np.ndarray:
    """`array` as a gRPC client sends it: str (U) arrays as UTF-8 bytes (S), which Triton's BYTES carries and
    tritonclient serializes (it refuses U arrays); any other array as it is."""
    return np.char.encode(array, "utf-8") if array.dtype.kind == "U" else array
