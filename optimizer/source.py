"""Load the model a user names: an `.onnx` file, a `torch.export` program (`.pt2`) or `package.module:factory`.

A factory is a function returning `(nn.Module, example_inputs)` or `(nn.Module, example_inputs, options)`.
`example_inputs` is a tuple of tensors (inputs named `input`, `input_1`, …) or a dict name → tensor;
`options` may carry `output_names` and `dynamic_axes` (`{"input_ids": {0: "batch", 1: "sequence"}}`).
Nothing here unpickles a file: `.onnx` is protobuf and `torch.export.load` reads its own format.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import sysconfig
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.ort_failure import trim
from quantserve.errors import QuantserveError

FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
OPTION_KEYS = {"input_names", "output_names", "dynamic_axes", "dynamic_shapes"}


@dataclass
class ModelSource:
    """A loaded model: an ONNX file path, or a PyTorch module/program with named example inputs."""

    kind: str  # "onnx" | "torch" | "exported_program"
    name: str
    path: Path | None = None
    module: Any = None
    example_inputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return list(self.example_inputs)

    def renamed(self, names: list[str], output_names: list[str] | None = None) -> ModelSource:
        """The same PyTorch source with inputs (and outputs) renamed in order; a `.pt2` keeps only argument names."""
        if self.kind == "onnx":
            raise QuantserveError(f"{self.path}: input names of an .onnx model are fixed; rename them in the file")
        for flag, given in (("--input-names", names), ("--output-names", output_names or [])):
            twice = sorted({name for name in given if given.count(name) > 1})
            if twice:  # `--input-names a,a` failed in the exporter: "missing … 'b'; export it yourself"
                raise QuantserveError(f"{flag} {','.join(given)}: names {twice} more than once; one name per tensor")
        if names and len(names) != len(self.example_inputs):
            raise QuantserveError(
                f"{self.name}: {len(names)} input names given for {len(self.example_inputs)} inputs {self.input_names}"
            )
        examples = dict(zip(names or self.input_names, self.example_inputs.values(), strict=True))
        options = {**self.options, "output_names": output_names} if output_names else self.options
        return ModelSource(self.kind, self.name, self.path, self.module, examples, options)


def load_source(model: str | Path) -> ModelSource:
    """Resolve MODEL into a ModelSource, or raise a QuantserveError naming what is wrong."""
    text = str(model)
    path = Path(text)
    if path.suffix == ".onnx":
        return _onnx_source(path)
    if path.suffix == ".pt2":
        return _exported_program_source(path)
    if FACTORY_PATTERN.match(text) and not path.exists():
        return _factory_source(text)
    if path.exists():
        pickled = (
            " (a .pt/.pth state dict or pickled module is not read: nothing here unpickles a file; write a "
            "package.module:factory that builds the module, loads its weights and returns it with example inputs)"
            if path.suffix in (".pt", ".pth", ".bin", ".ckpt")
            else tensorflow_hint(path)
        )
        raise QuantserveError(
            f"{path}: unsupported model file type '{path.suffix}'; expected .onnx, .pt2 or package.module:factory"
            f"{pickled}"
        )
    raise QuantserveError(
        f"{text}: not a model file or factory; give an .onnx file, a .pt2 torch.export program "
        "or package.module:factory"
    )


# TensorFlow's own forms, converted to ONNX first by tf2onnx's command line (its flag for each): tempocnn's Keras .h5
# and nsfwjs's TF.js model were converted so by hand (session 62)
TF2ONNX = {".h5": "--keras", ".keras": "--keras", ".tflite": "--tflite", ".json": "--tfjs", ".pb": "--saved-model"}


def tensorflow_hint(path: Path) -> str:
    """How a TensorFlow, Keras, TFLite or TF.js model becomes ONNX (tf2onnx), where `path` looks like one; "" else."""
    saved = path.is_dir() and (path / "saved_model.pb").is_file()
    flag = TF2ONNX[".pb"] if saved else TF2ONNX.get(path.suffix)
    if flag is None:
        return ""
    given = path.parent if path.suffix == ".pb" else path  # a SavedModel is its folder
    return (
        f" (a TensorFlow model: convert it to ONNX first, e.g. python -m tf2onnx.convert {flag} {given} "
        "--output model.onnx --opset 17, and check its outputs equal the original's)"
    )


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise QuantserveError(f"{path}: model file not found")


def _onnx_source(path: Path) -> ModelSource:
    _require_file(path)
    return ModelSource(kind="onnx", name=path.stem, path=path)


def _exported_program_source(path: Path) -> ModelSource:
    _require_file(path)
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation, not the user's
            program = torch.export.load(str(path))
    except Exception as exc:  # torch raises many types for a damaged archive
        raise QuantserveError(f"{path}: not a readable torch.export program ({type(exc).__name__}: {exc})") from exc
    names = [spec.arg.name for spec in program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]
    examples = _program_example_inputs(program, len(names))
    return ModelSource(
        kind="exported_program",
        name=path.stem,
        path=path,
        module=program,
        example_inputs=dict(zip(names, examples, strict=True)),
    )


def _program_example_inputs(program: Any, count: int) -> list[Any]:
    """The program's stored example inputs, else zeros shaped like its input placeholders."""
    import torch

    stored = getattr(program, "example_inputs", None)
    if stored and len(stored[0]) == count:
        return list(stored[0])
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder"][-count:]
    examples = []
    for node in placeholders:
        fake = node.meta["val"]
        shape = [d if isinstance(d, int) else 2 for d in fake.shape]
        examples.append(torch.zeros(shape, dtype=fake.dtype))
    return examples


def _factory_source(spec: str) -> ModelSource:
    module_name, func_name = spec.split(":")
    if os.getcwd() not in sys.path:  # like `python -m`: a factory module in the working folder imports
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise QuantserveError(f"{spec}: cannot import module '{module_name}' ({exc})") from exc
    except Exception as exc:  # the user's module failing at import: a traceback was all a user got
        raise QuantserveError(f"factory '{spec}': importing '{module_name}' {_raised(exc)}") from exc
    factory = getattr(module, func_name, None)
    if not callable(factory):
        raise QuantserveError(f"{spec}: module '{module_name}' has no function '{func_name}'")
    try:
        result = factory()
    except Exception as exc:  # KeyboardInterrupt and SystemExit pass: they are not the factory's failure
        raise QuantserveError(f"factory '{spec}' {_raised(exc)}") from exc
    # the manifest's default name: the module's (`examples.digits:build` → `digits`), not the function's
    return _from_factory_result(spec, module_name.rsplit(".", 1)[-1], result)


def _raised(exc: Exception) -> str:
    """`raised RuntimeError: its message (pkg/mod.py:12)`, one line, at the innermost frame of the user's code."""
    message = " ".join(str(exc).split())
    said = f"raised {type(exc).__name__}: {trim(message)}" if message else f"raised {type(exc).__name__}"
    where = _user_frame(exc)
    return f"{said} ({where})" if where else said


def _user_frame(exc: Exception) -> str:
    """`file:line` of the innermost frame outside the standard library, installed packages and this file (the
    user's code, not torch.load's inside), else the innermost frame of all; the file relative to its sys.path entry."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if not frames:
        return ""
    library = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    own = [f for f in frames if not f.filename.startswith("<") and not _under(f.filename, library)]
    frame = (own or frames)[-1]
    return f"{_shown_path(frame.filename)}:{frame.lineno}"


def _under(filename: str, folders: set[str]) -> bool:
    return any(folder and Path(filename).is_relative_to(folder) for folder in folders)


def _shown_path(filename: str) -> str:
    """The file as its import sees it (`pmfac/boom.py` under the PYTHONPATH entry `/tmp/pm/pkg`), else as given."""
    roots = [Path(entry or os.getcwd()) for entry in sys.path]
    holding = [root for root in roots if root.is_dir() and Path(filename).is_relative_to(root)]
    if not holding:
        return filename
    return Path(filename).relative_to(max(holding, key=lambda root: len(root.parts))).as_posix()


def _from_factory_result(spec: str, name: str, result: Any) -> ModelSource:
    import torch

    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise QuantserveError(f"{spec}: the factory must return (nn.Module, example_inputs[, options])")
    module, examples = result[0], result[1]
    if len(result) == 3 and result[2] and not isinstance(result[2], dict):  # dict() of a list was a traceback
        raise QuantserveError(
            f"{spec}: the factory's third item (options) is a {type(result[2]).__name__}; expected a dict such as "
            '{"output_names": [...], "dynamic_axes": {...}}'
        )
    options = dict(result[2]) if len(result) == 3 and result[2] else {}
    if not isinstance(module, torch.nn.Module):
        raise QuantserveError(f"{spec}: the factory returned {type(module).__name__}, not a torch.nn.Module")
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise QuantserveError(f"{spec}: unknown factory options {sorted(unknown)}; known: {sorted(OPTION_KEYS)}")
    named = _name_examples(spec, examples)
    if isinstance(examples, dict):
        named = in_forward_order(spec, module, named)
    # input_names as torch.onnx.export takes them, by position (as --input-names): refused as unknown, it was a trap
    # for a factory written after an export call (session 43), while output_names was taken
    input_names = options.pop("input_names", None)
    source = ModelSource(kind="torch", name=name, module=module.eval(), example_inputs=named, options=options)
    if input_names is None:
        return source
    if not isinstance(input_names, list | tuple) or not all(isinstance(n, str) and n for n in input_names):
        raise QuantserveError(f"{spec}: the factory's input_names must be a list of names, not {input_names!r}")
    return source.renamed(list(input_names))


def forward_parameters(module: Any) -> list[str] | None:
    """The names of `module.forward`'s parameters a call can fill by position, in order; None where it takes
    `*args` (any number by position: their names say nothing) or has no signature to read."""
    import inspect

    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in positional]


def in_forward_order(spec: str, module: Any, named: dict[str, Any]) -> dict[str, Any]:
    """A dict of example inputs whose keys are `forward`'s parameters, put in their order: the exporter passes them
    by position, so a factory returning {"b": …, "a": …} for forward(a, b) fed `a` to `b` and shipped a model at
    chance accuracy (0.253 for 0.94, exit 0: session 41). Keys that are not all parameters name the inputs in the
    dict's order (`{"pixels": x}` for forward(input)), unless one is a parameter that position would give another's
    value. Refused where position cannot bind each key to its parameter: a parameter without a default left out,
    or one left out before a key given (an attention mask skipped before token type ids would take their values)."""
    import inspect

    order = forward_parameters(module)
    if order is None:
        return named
    shown = f"forward({', '.join(order)})"
    if not set(named) <= set(order):
        for position, key in enumerate(named):
            if key in order and order.index(key) != position:
                taken = order[position] if position < len(order) else "no parameter"
                raise QuantserveError(
                    f"{spec}: example input {key!r} is passed by position to {shown}'s {taken!r}; name every "
                    "example input after its parameter, or give them in forward's order"
                )
        return named
    last = max(order.index(key) for key in named)
    skipped = [name for name in order[:last] if name not in named]
    if skipped:
        raise QuantserveError(
            f"{spec}: the example inputs leave out {shown}'s {skipped} before {order[last]!r}; passed by position, "
            "the inputs after would take their places: give them too"
        )
    defaults = inspect.signature(module.forward).parameters
    missing = [name for name in order[last + 1 :] if defaults[name].default is inspect.Parameter.empty]
    if missing:
        raise QuantserveError(f"{spec}: no example input for {shown}'s {missing}")
    return {name: named[name] for name in order if name in named}


def _name_examples(spec: str, examples: Any) -> dict[str, Any]:
    import torch

    if isinstance(examples, torch.Tensor):
        examples = (examples,)
    if isinstance(examples, dict):
        named = dict(examples)
    elif isinstance(examples, tuple | list):
        named = {("input" if i == 0 else f"input_{i}"): t for i, t in enumerate(examples)}
    else:
        raise QuantserveError(f"{spec}: example inputs must be a tuple of tensors or a dict name -> tensor")
    bad = [k for k, v in named.items() if not isinstance(v, torch.Tensor)]
    if bad or not named:
        raise QuantserveError(f"{spec}: example inputs {bad or '(none)'} are not tensors")
    return named
