"""`quantserve bench --model`: the user's own model through the bench's five rows.

MODEL is what `quantserve optimize` takes (.onnx, a torch.export `.pt2`, `package.module:factory`,
read by `optimizer.source`); the data are the user's `.npz` files. Everything the user gave is
checked against the model's inputs before any work (the bench measures the machine's GEMM peaks
first, seconds lost to a misnamed array). Row 1 (PyTorch eager) needs a PyTorch form: a `.pt2`'s
program as a module, a factory's module; an ONNX file has none, and the row is recorded as not
measured with that reason. The FP32 and INT8 builds are reused while the model and data files are
the same bytes (their sha256, kept in `source.json` beside the builds); a changed file is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantserve.artifact import TensorSpec, file_sha256
from quantserve.cli.bench_build import PreparedModel, Say, build, with_evidence
from quantserve.data import TensorData, check_against, load_npz
from quantserve.errors import QuantserveError
from quantserve.finite_data import NanAccepted
from serving.model_config import check_model_name

LONGEST_SUFFIX = "_fp32_naive"  # of the deployments bench names after --name (serving.model_config: 128 at most)
NO_EAGER = "an ONNX model has no PyTorch form"
SOURCE_FILE = "source.json"  # beside the builds: the sha256 of what they were built from
HELDOUT_NOTE = "no --heldout: INT8 drift was measured on the requests themselves (--data)"
REUSED_WHY = f"made from the same model and data files: their sha256 match {SOURCE_FILE}"  # `builds_current`


@dataclass(frozen=True)
class UserModelSpec:
    """What `bench --model` was given: the model, its requests, optionally calibration and held-out data."""

    model: str  # .onnx, .pt2 or package.module:factory
    data: Path  # the requests sent in every row
    calib: Path | None = None  # default: the requests
    heldout: Path | None = None  # default: the requests (a note says so)
    name: str = ""  # default: from the model's file (or factory module) name
    request_batch: int = 1  # samples a request

    @property
    def bench_name(self) -> str:
        return self.name or default_name(self.model)

    @property
    def calib_path(self) -> Path:
        return self.calib or self.data

    @property
    def heldout_path(self) -> Path:
        return self.heldout or self.data

    def data_files(self) -> list[Path]:
        return list(dict.fromkeys((self.data, self.calib_path, self.heldout_path)))

    def check(self) -> None:
        """The name, the request batch, the model and every data file against its inputs (one line each)."""
        if self.name:  # serving's one rule for a model name, on the longest name bench deploys
            try:
                check_model_name(f"{self.name}{LONGEST_SUFFIX}")
            except QuantserveError:
                raise QuantserveError(
                    f"--name {self.name!r}: use up to {128 - len(LONGEST_SUFFIX)} letters, digits, '_', '.', '-', "
                    f"starting with a letter or digit (bench deploys it as NAME{LONGEST_SUFFIX}, a Triton model)"
                ) from None
        if self.request_batch < 1:
            raise QuantserveError(f"--request-batch must be at least 1, got {self.request_batch}")
        from optimizer.source import load_source

        inputs = expected_inputs(load_source(self.model))
        nan_left_to_optimize = NanAccepted(frozenset(spec.name for spec in inputs))  # `check_requests` after it
        for path in self.data_files():
            check_against(path, load_npz(path), inputs, nan_left_to_optimize)

    def to_dict(self) -> dict[str, Any]:
        given = {"calib": self.calib, "heldout": self.heldout}
        return {
            "model": self.model,
            "data": str(self.data),
            **{key: None if path is None else str(path) for key, path in given.items()},
            "name": self.bench_name,
            "request_batch": self.request_batch,
        }


def default_name(model: str) -> str:
    """The model file's stem (a factory's module name), made a safe model name: `my model.v2.onnx` → `my_model_v2`."""
    stem = model.split(":")[0].rsplit(".", 1)[-1] if ":" in model and not Path(model).exists() else Path(model).stem
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-") or "model"


def expected_inputs(source: Any) -> list[TensorSpec]:
    """The inputs the data must fit: an ONNX file's graph inputs (its batch axis free), else each example input's
    name, dtype and rank, with a `.pt2`'s static sizes (its dynamic ones, and a factory's, checked once exported)."""
    if source.kind == "onnx":
        return onnx_inputs(source.path)
    static = program_sizes(source.module, len(source.example_inputs)) if source.kind == "exported_program" else None
    specs = []
    for index, (name, tensor) in enumerate(source.example_inputs.items()):
        sizes = static[index] if static else [None] * (tensor.dim() - 1)
        shape = ("batch", *(size if size is not None else f"dim{axis + 1}" for axis, size in enumerate(sizes)))
        specs.append(TensorSpec(name, str(tensor.dtype).removeprefix("torch."), shape))
    return specs


def onnx_inputs(path: Path) -> list[TensorSpec]:
    import onnx

    from optimizer.export import manifest_from_onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends for a damaged file
        raise QuantserveError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
    return manifest_from_onnx(model, path.stem).inputs


def program_sizes(program: Any, count: int) -> list[list[int | None]]:
    """Per user input of a torch.export program, the sizes past axis 0: an int where static, None where dynamic."""
    placeholders = [node for node in program.graph.nodes if node.op == "placeholder"][-count:]
    shapes = [node.meta["val"].shape for node in placeholders]
    return [[size if isinstance(size, int) else None for size in shape[1:]] for shape in shapes]


@dataclass(frozen=True)
class UserBenchModel:
    """The user's model as the bench reads a built-in one (examples.bench_models.BenchModel): its eager module
    (None for an ONNX file), input names in the order the module takes them, and the data files by role."""

    name: str
    description: str
    module: Any  # torch.nn.Module (a .pt2's program as a module, a factory's in eval mode) or None (ONNX)
    source: str  # MODEL as given: what optimize builds from
    input_names: tuple[str, ...]
    files: dict[str, Path] = field(default_factory=dict)  # "requests.npz", "calib.npz", "heldout.npz" -> path
    request_batch: int = 1
    model_type: str | None = None  # no transformer fusions asked for
    trained_here: bool = False

    def path(self, file: str) -> Path:
        return self.files[file]

    def requests(self) -> TensorData:
        return load_npz(self.files["requests.npz"])


def load_user_model(spec: UserModelSpec) -> UserBenchModel:
    """The model with its eager module where it has a PyTorch form."""
    from optimizer.source import load_source

    source = load_source(spec.model)
    kinds = {"onnx": "ONNX file", "exported_program": "torch.export program", "torch": "PyTorch factory"}
    module = None
    if source.kind == "exported_program":
        module = source.module.module()  # already in the mode it was exported in: its eval() is not supported
    elif source.kind == "torch":
        module = source.module.eval()
    files = {"requests.npz": spec.data, "calib.npz": spec.calib_path, "heldout.npz": spec.heldout_path}
    description = f"your model {spec.model} ({kinds[source.kind]})"
    return UserBenchModel(
        spec.bench_name, description, module, spec.model, tuple(source.input_names), files, spec.request_batch
    )


def fingerprint(spec: UserModelSpec, model: UserBenchModel) -> dict[str, Any]:
    """What the builds depend on: the model's and the data files' sha256 (a factory: its module's weights)."""
    from optimizer.onnx_files import model_sha256

    path = Path(spec.model)
    if path.suffix == ".onnx":
        digest = model_sha256(path)  # with its external weights
    elif path.suffix == ".pt2":
        digest = file_sha256(path)
    else:
        digest = module_sha256(model.module)
    data = {"calib": file_sha256(spec.calib_path), "heldout": file_sha256(spec.heldout_path)}
    return {"model_sha256": digest, "data_sha256": data}


def module_sha256(module: Any) -> str:
    """A PyTorch module's architecture (its printed form) and every weight's name, shape, dtype and bytes."""
    import torch

    digest = hashlib.sha256(str(module).encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def builds_current(root: Path, stamp: dict[str, Any]) -> bool:
    """True when the builds under `root` were made from the files `stamp` (`fingerprint`) describes; else the old
    record is removed first, so that a rebuild cut short is never taken for a complete one."""
    record = root / SOURCE_FILE
    current = record.is_file() and json.loads(record.read_text()) == stamp
    if not current:
        record.unlink(missing_ok=True)
    return current


def mark_built(root: Path, stamp: dict[str, Any]) -> None:
    """Record what the (now complete) builds under `root` were made from."""
    from quantserve.files import write_atomic

    write_atomic(root / SOURCE_FILE, json.dumps(stamp, indent=2) + "\n")


def user_options(model: UserBenchModel, precision: str, out: Path) -> Any:
    """optimize's options for the user's model: names as the model has them, a drift miss kept and recorded."""
    from optimizer.pipeline import OptimizeOptions
    from optimizer.speed import SpeedSettings

    return OptimizeOptions(
        model.source, model.path("calib.npz"), precision, "embedded", out, eval_path=model.path("heldout.npz"),
        name=f"{model.name}_{precision}",
        keep_failing=True,  # timed even over its budget: the bench says so (int8_budget_note), it does not hide it
        speed=SpeedSettings(enabled=False),  # the bench times INT8 against FP32 itself
    )  # fmt: skip


def source_record(spec: UserModelSpec, model: UserBenchModel) -> dict[str, Any]:
    """bench.json's record of what the user gave, and the notes on what was assumed."""
    notes = [] if spec.heldout else [HELDOUT_NOTE]  # row 1's absence is its own record (RowResult.not_measured)
    kind = "onnx" if model.module is None else "torch"
    return {**spec.to_dict(), "kind": kind, "notes": notes}


def prepare_user(user: UserModelSpec, root: Path, say: Say) -> PreparedModel:
    """The user's model and data as given, its FP32 and INT8 builds under `root`: reused only where made from the
    same files, else optimized afresh; the notes on what was assumed said as well as recorded."""
    model = load_user_model(user)
    prepared = PreparedModel(model, {}, {}, source_record(user, model))
    for note in prepared.source["notes"]:
        say(f"{model.name}: {note}")
    stamp = fingerprint(user, model)
    fresh = not builds_current(root, stamp)
    options = user_options(model, "fp32", root / "fp32")
    prepared.builds["fp32"], prepared.records["fp32"] = batched_build(model.name, options, fresh, say)
    if user.data not in (user.calib_path, user.heldout_path):  # files optimize did not see: their NaN judged now
        check_requests(user.data, prepared.builds["fp32"])
    int8_or_refusal(prepared, user_options(model, "int8", root / "int8"), fresh, say)
    mark_built(root, stamp)
    return prepared


def check_requests(data: Path, fp32: Path) -> None:
    """The requests against the FP32 build's inputs, NaN accepted only where it accepted it: `check` left NaN to
    optimize (`optimizer.nan_inputs`), which saw the calibration and held-out files, not requests given beside
    both."""
    from optimizer.nan_inputs import NAN_INPUTS, build_nan_accepted
    from quantserve.artifact import Manifest

    manifest = Manifest.load(fp32)
    check_against(data, load_npz(data), manifest.inputs, build_nan_accepted(manifest.extra.get(NAN_INPUTS), fp32))


def batched_build(name: str, options: Any, fresh: bool, say: Say) -> tuple[Path, dict[str, Any]]:
    """`build`, where optimize refuses a model that takes no batch (a fixed batch of 1 the graph depends on, rows
    that are not independent, an output not split per row) with one line of what the bench is and what measures the
    model instead. optimize's own advice ended "build it with --unbatched", a flag the bench has not: its rows 4
    and 5 serve the model through Triton's dynamic batcher, which a model of one request at a time has not."""
    from optimizer.batch_advice import UNBATCHED_ROUTE
    from quantserve.errors import QuantserveError

    try:
        return build(name, options, fresh, say)
    except QuantserveError as exc:
        reason = str(exc)
        if not reason.endswith(UNBATCHED_ROUTE):
            raise
        raise QuantserveError(
            f"{name}: bench cannot measure a model that takes no batch (its rows 4 and 5 compare Triton's dynamic "
            f"batching; optimize: {reason.removesuffix(UNBATCHED_ROUTE)}); to measure it one request at a time, "
            "build it with 'quantserve optimize --unbatched', then 'quantserve deploy' and 'quantserve loadtest' it"
        ) from exc


def int8_or_refusal(prepared: PreparedModel, options: Any, fresh: bool, say: Say) -> None:
    """The INT8 build, or where optimize refuses to make one (an int64 token model: every compute node kept FP32)
    its line recorded as `refused`, no INT8 build kept, and the bench's INT8 rows (3, 5) recorded as not measured
    with that line (`quantserve.cli.bench`): the FP32 rows are still worth measuring. Before, the bench stopped
    on the refusal with no bench.json and no row measured."""
    import shutil

    from optimizer.drift_budget import BudgetExceeded

    name = prepared.model.name
    try:
        prepared.builds["int8"], record = build(name, options, fresh, say)
        # held-out rows too few to show the budget: optimize refuses such a build, the bench says so (`--heldout`)
        prepared.records["int8"] = with_evidence(record, "--heldout")
    except BudgetExceeded as refusal:
        shutil.rmtree(options.out_dir, ignore_errors=True)  # no older INT8 build may be taken for this model's
        prepared.records["int8"] = {"path": str(options.out_dir), "refused": str(refusal), "reused": False}
        say(f"{name}: no INT8 build: {refusal}; rows 3 and 5 (INT8) are recorded as not measured")
