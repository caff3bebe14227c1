"""`quantserve infer --url 127.0.0.1:8001 --model NAME --data INPUTS.npz [--out OUT.npz] [--batch-size N]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from quantserve.checks import positive_seconds
from quantserve.cli.tables import add_json_flag, print_json
from quantserve.cli.tls_flags import add_tls_flags, client_tls
from quantserve.errors import QuantserveError
from quantserve.runner import SHAPES_SUFFIX

if TYPE_CHECKING:
    from quantserve.data import TensorData
    from serving.triton_runner import ServerStopped, TritonRunner, VersionGone

SHOWN_SAMPLES = 10
# Beside an output not answered one row per sample (det [K, 6] of an --unbatched NMS model, K its own per request):
# the rows each request added, so the stacked array splits back per request (np.split at np.cumsum(rows)[:-1]).
ROWS_SUFFIX = "__rows"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="send an .npz of inputs to a served model over gRPC; print a summary and save the outputs",
        description="Run INPUTS.npz (one array per input name, optional `labels`) through a model served by Triton.",
    )
    parser.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC address host:port")
    parser.add_argument("--model", required=True, help="model name in the repository (NAME@N: its version N)")
    parser.add_argument(
        "--model-version",
        default="",
        metavar="N",
        help="send every request to version N (default: the newest served at the start, asked for by number in every "
        "request: a deploy or rollback meanwhile fails the run); refused unless the server serves it",
    )
    parser.add_argument("--data", type=Path, required=True, help=".npz with one array per model input")
    parser.add_argument(
        "--out", type=Path, help="file to save the outputs in (.npz, added if missing as numpy does; not a folder)"
    )
    parser.add_argument("--batch-size", type=int, default=0, help="samples per request (default: the model's max)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request, retries included")
    add_tls_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quantserve.data import fixed_request_rows
    from quantserve.runner import LoggedRunner, RequestLog, run_batches, sample_shapes
    from serving.model_version import split_addressed
    from serving.triton_runner import ServerStopped, TritonRunner, VersionGone

    if args.batch_size < 0:
        raise QuantserveError(f"--batch-size must be ≥ 0, got {args.batch_size}")
    positive_seconds("--timeout", args.timeout)  # -1 read as "no server answers", 0 as a deadline
    out = outputs_path(args.out, args.data) if args.out else None  # before any request
    model, version = split_addressed(args.model, args.model_version)
    # pinned to the version served at the start: a rollback meanwhile saved one file of two versions' answers, exit 0
    runner = TritonRunner(args.url, model, version, timeout_s=args.timeout, tls=client_tls(args), pin_version=True)
    with runner:
        data = served_data(args, runner, model)
        batch_size = args.batch_size or runner.max_batch_size or fixed_request_rows(runner.input_specs()) or len(data)
        if 0 < runner.max_batch_size < batch_size:
            print(
                f"quantserve: note: --batch-size {batch_size} is more than model '{args.model}' takes (max_batch_size "
                f"{runner.max_batch_size}): sent as requests of at most {runner.max_batch_size} samples",
                file=sys.stderr,
            )
        log = RequestLog()
        try:
            outputs = run_batches(LoggedRunner(runner, log), data.batches(batch_size), data.requests.whole, pad=True)
        except VersionGone as gone:
            raise QuantserveError(version_gone(gone, len(data))) from gone
        except ServerStopped as stop:
            raise QuantserveError(server_stopped(stop)) from stop
    varying, padded = log.per_request(), log.lengths_vary()  # padded: a decoder's length, per request
    check_scored_labels(args.data, data.labels, outputs, [*varying, *padded], args.model)
    tags = served_tag_cuts(args, model, outputs, data.labels, [*varying, *padded])
    saved = {**outputs, **{f"{name}{ROWS_SUFFIX}": log.row_counts(name) for name in varying}}
    saved |= {f"{name}{SHAPES_SUFFIX}": sample_shapes(log.shapes[name], outputs[name].ndim) for name in padded}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, **{name: loadable(values) for name, values in saved.items()})  # type: ignore[arg-type]
    answered = {"model_version": version, "precision": runner.precision} if version else {}
    if args.json:
        record = summary_record(outputs, data.labels, varying, tags, padded)
        print_json({**record, **answered, "saved": str(out) if out else None})
        return 0
    if version:  # which of the versions served answered, and what it is as deployed
        said = runner.precision or (runner.precision_note or "precision not recorded").split(":")[0]
        print(f"model '{model}' version {version} ({said})")
        if runner.precision_note:
            print(f"quantserve: note: {runner.precision_note}", file=sys.stderr)
    print(summary(outputs, data.labels, varying, tags, padded))
    if out:
        print(f"saved {', '.join(saved)} to {out}")
    return 0


def served_data(args: argparse.Namespace, runner: TritonRunner, model: str) -> TensorData:
    """--data checked against the served model's inputs; NaN accepted only in the inputs its build accepted it in
    (`serving.nan_parameter`), the served config read only where the data holds NaN."""
    from quantserve.data import load_npz
    from serving.nan_parameter import ServedNanAccepted, served_config_at

    nan_ok = ServedNanAccepted(lambda: served_config_at(args.url, model, client_tls(args), args.timeout))
    # a regressor's float labels are its truth, which infer does not score (evaluate --metric does)
    whole = runner.max_batch_size <= 0
    return load_npz(args.data, runner.input_specs(), float_truth=True, whole=whole, nan_ok=nan_ok)


def version_gone(gone: VersionGone, total: int) -> str:
    """The one line for a run whose pinned version stopped being served (`serving.triton_runner.VersionGone`)."""
    return (
        f"{gone.url}: model '{gone.model}' version {gone.version} stopped being served after {gone.rows} of {total} "
        "rows were answered (a deploy or rollback meanwhile?): answers of two versions would be mixed, so none are "
        "printed or saved; run infer again"
    )


def server_stopped(stop: ServerStopped) -> str:
    """The one line for a run whose server stopped answering; where it answers again by now (`serve`'s watchdog
    restarted a hung one meanwhile), "start it again" is moot and not asked (as `evaluate`'s line)."""
    from loadtest.evaluator_failures import answers_now

    stopped = f"the server at {stop.url} stopped answering during the run (after {stop.answered} batches answered)"
    if answers_now(stop.url):
        return f"{stopped} and answers again now (restarted meanwhile?); nothing of the run counts: run infer again"
    return f"{stopped}; nothing of the run counts: start it again and run infer again"


def outputs_path(out: Path, data: Path) -> Path:
    """The file `np.savez` writes for `--out`: `.npz` appended unless given (it saved `out.txt` as `out.txt.npz`
    and said `out.txt`); a folder is refused (`--out DIR` wrote `DIR.npz` beside it), and so is the --data file
    (`--out d.npz --data d.npz` replaced the inputs with the outputs)."""
    path = out if out.suffix == ".npz" or out.is_dir() else out.with_name(out.name + ".npz")
    if path.is_dir():
        raise QuantserveError(f"--out {path} is a folder; give a file name, e.g. --out {path / 'outputs.npz'}")
    if _same_file(path, data):
        suggestion = path.with_name(f"{path.stem}-outputs.npz")
        raise QuantserveError(
            f"--out {path} is the --data file: saving would overwrite the inputs; give another file, e.g. --out "
            f"{suggestion}"
        )
    return path


def _same_file(a: Path, b: Path) -> bool:
    """One file by its resolved path, or by inode where both exist (a hard link, a path through a symlinked folder)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_scored_labels(
    data: Path, labels: np.ndarray | None, outputs: dict[str, np.ndarray], per_request: list[str], model: str
) -> None:
    """Labels that score a classifier's output as `evaluate` checks them (`check_class_labels`: class ids inside
    its classes, one a sample), before anything is saved: ids the model never outputs printed `accuracy: 0.0000`
    and exit 0 where evaluate refused the same file. Without one class-score output no accuracy is taken."""
    from loadtest.variant_scores import check_class_labels

    scores = _class_scores(outputs, per_request, labels)
    if labels is not None and len(scores) == 1:
        check_class_labels(data, labels, scores[0], model)


def served_tag_cuts(
    args: argparse.Namespace,
    model: str,
    outputs: dict[str, np.ndarray],
    labels: np.ndarray | None,
    per_request: list[str],
) -> dict[str, tuple[float, float] | None]:
    """`tag_cuts` of the served model, its config read only where one class-score output would print an argmax; a
    config that cannot be read now (the server gone after answering) reads as one recording nothing: the outputs'
    kinds off their values alone, as `evaluate` reads a reference deployed without the words."""
    from serving.nan_parameter import served_config_at

    if len(_class_scores(outputs, per_request, labels)) != 1:
        return {}
    try:
        config = served_config_at(args.url, model, client_tls(args), args.timeout)
    except QuantserveError:
        config = {}
    return tag_cuts(outputs, per_request, labels, config)


def tag_cuts(
    outputs: dict[str, np.ndarray], per_request: list[str], labels: np.ndarray | None, config: Mapping[str, Any]
) -> dict[str, tuple[float, float] | None]:
    """{output: (threshold, cut)} of the class-score outputs read as taggers (multilabel, multitask) as `evaluate`
    reads them with the build's words deploy recorded in the served `config` (a Sigmoid makes it; a kind it was
    told): their answer is the set of tags on at optimize's --label-threshold (0.5 where not given; logits at its
    logit), not one class. An argmax printed "10 10 10 …" for musicnn's tagger, whose rows had no tag on at 0.5.
    A value output (dense, regression, angle: `optimizer.value_errors.VALUE_KINDS`) maps to None: no answer is shown
    (face-api's 136 landmark coordinates printed "argmax: 17 17 32 …", session 63)."""
    from loadtest.served_graph import served_kinds
    from optimizer.soft_masks import mask_threshold
    from optimizer.value_errors import VALUE_KINDS
    from serving.gates_parameter import recorded_label_threshold
    from serving.graph_parameter import recorded_graph
    from serving.kinds_parameter import recorded_kinds

    scores = {name: values for name, values in outputs.items() if name not in per_request}
    kinds = served_kinds(scores, recorded_kinds(config), labels, None, recorded_graph(config))
    threshold = recorded_label_threshold(config) or 0.5
    cuts: dict[str, tuple[float, float] | None] = {}
    for name in _class_score_names(outputs, per_request, labels):
        if kinds.get(name) in ("multilabel", "multitask"):
            cuts[name] = (threshold, float(mask_threshold(scores[name], threshold)[0]))
        elif kinds.get(name) in VALUE_KINDS:  # coordinates, a regression: no class to show
            cuts[name] = None
    return cuts


def _tags_on(values: np.ndarray, cut: float) -> list[list[int]]:
    """Each row's tags at or over `cut`."""
    return [np.flatnonzero(row >= cut).tolist() for row in values]


def _tag_words(values: np.ndarray, threshold: float, cut: float) -> str:
    """E.g. "tags on at 0.5: none 3,7 none …" (at a logit: "at 0.25 (logit -1.1)")."""
    rows = _tags_on(values[:SHOWN_SAMPLES], cut)
    shown = " ".join(",".join(str(tag) for tag in row) or "none" for row in rows)
    at = f"{threshold:g}" + (f" (logit {cut:.2g})" if cut != threshold else "")
    return f"tags on at {at}: {shown}{' …' if len(values) > SHOWN_SAMPLES else ''}"


def summary_record(
    outputs: dict[str, np.ndarray],
    labels: np.ndarray | None,
    per_request: list[str] | None = None,
    tags: Mapping[str, tuple[float, float] | None] | None = None,
    padded: list[str] | None = None,
) -> dict[str, Any]:
    """`--json`: each output's dtype and shape; for a classifier, argmax per sample and accuracy if labelled; for a
    tagger (`tag_cuts`), each sample's tags on at its threshold."""
    record: dict[str, Any] = {
        "outputs": {n: {"dtype": str(v.dtype), "shape": list(v.shape)} for n, v in outputs.items()}
    }
    for name in per_request or []:
        record["outputs"][name]["rows_per_request"] = f"{name}{ROWS_SUFFIX}"
    for name in padded or []:
        record["outputs"][name]["shape_per_request"] = f"{name}{SHAPES_SUFFIX}"
    scores = _class_scores(outputs, [*(per_request or []), *(padded or [])], labels)
    tagged = [(name, cut) for name, cut in (tags or {}).items() if name in outputs]
    if len(scores) == 1 and tagged:
        name, reading = tagged[0]
        if reading is None:
            return {**record, "values": name}
        threshold, cut = reading
        return {**record, "tags_on": _tags_on(outputs[name], cut), "tag_threshold": threshold}
    if len(scores) == 1:
        predicted = scores[0].argmax(axis=1)
        record["argmax"] = predicted.tolist()
        if labels is not None and labels.shape == predicted.shape:
            record["accuracy"] = float((predicted == labels).mean())
    return record


def summary(
    outputs: dict[str, np.ndarray],
    labels: np.ndarray | None,
    per_request: list[str] | None = None,
    tags: Mapping[str, tuple[float, float] | None] | None = None,
    padded: list[str] | None = None,
) -> str:
    """Shapes of each output; for a classifier (one 2-D output), argmax per sample and accuracy if labelled; for a
    tagger (`tag_cuts`), each sample's tags on at its threshold."""
    lines = [f"{name}: {value.dtype} {list(value.shape)}" for name, value in outputs.items()]
    lines += [
        f"{name}: rows vary per request; {name}{ROWS_SUFFIX} (saved with --out) holds each request's count"
        for name in per_request or []
    ]
    lines += [
        f"{name}: length varies per request: joined padded to the longest (NaN for floats, else 0); "
        f"{name}{SHAPES_SUFFIX} (saved with --out) holds each sample's shape in the padded array"
        for name in padded or []
    ]
    scores = _class_scores(outputs, [*(per_request or []), *(padded or [])], labels)
    tagged = [(name, cut) for name, cut in (tags or {}).items() if name in outputs]
    if len(scores) == 1 and tagged:
        name, reading = tagged[0]
        if reading is None:
            lines.append(f"{name}: values (as evaluate reads them), not class scores: no argmax")
        else:
            lines.append(_tag_words(outputs[name], *reading))
    elif len(scores) == 1:
        predicted = scores[0].argmax(axis=1)
        shown = " ".join(str(p) for p in predicted[:SHOWN_SAMPLES])
        more = " …" if len(predicted) > SHOWN_SAMPLES else ""
        lines.append(f"argmax: {shown}{more}")
        if labels is not None and labels.shape == predicted.shape:
            lines.append(f"accuracy: {float((predicted == labels).mean()):.4f} on {len(labels)} samples")
    return "\n".join(lines)


def _class_scores(
    outputs: dict[str, np.ndarray], per_request: list[str] | None, labels: np.ndarray | None = None
) -> list[np.ndarray]:
    """2-D outputs one row per sample (an argmax over det [K, 6]'s box columns means nothing), but embeddings, as
    `evaluate` reads them (`reads_as_embedding`)."""
    return [outputs[name] for name in _class_score_names(outputs, per_request, labels)]


def _class_score_names(
    outputs: dict[str, np.ndarray], per_request: list[str] | None, labels: np.ndarray | None = None
) -> list[str]:
    """The names of `_class_scores`' outputs."""
    from loadtest.variant_scores import reads_as_embedding

    rows = [n for n, v in outputs.items() if v.ndim == 2 and v.shape[1] > 1 and n not in (per_request or [])]
    return [n for n in rows if not reads_as_embedding(outputs[n], labels=labels)]


def loadable(values: np.ndarray) -> np.ndarray:
    """An output of strings (Triton's BYTES: an object array of bytes) as a str array where every value is UTF-8,
    else a bytes array: `np.load` refuses an object array without allow_pickle, and quantserve's own data reader
    takes strings only as str or bytes arrays (a served label output was saved so, probe 69C). Any other array as is."""
    if values.dtype != object:
        return values
    items = [value if isinstance(value, bytes) else str(value).encode() for value in values.ravel()]
    try:
        return np.array([item.decode("utf-8") for item in items], dtype=np.str_).reshape(values.shape)
    except UnicodeDecodeError:
        return np.array(items, dtype=np.bytes_).reshape(values.shape)
