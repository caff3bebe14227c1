"""The models `quantserve bench` runs side by side, each with its weights, export and data on disk.

- `tiny`: a two-conv CNN on the 8x8 digits, fitted in a second: `bench --quick` runs the whole
  machinery on it.
- `demo`: the demo's digits CNN (`examples.digits`), trained as the demo trains it.
- `cnn`: a ResNet-18-shaped CNN at 224x224 (11.7 M parameters, about 1.8 G multiply-adds an
  image). Its weights are random, but its BatchNorm statistics are fitted on natural-image
  crops (scikit-learn's sample photos), so activations and calibration ranges are those of
  real-looking inputs.
- `encoder`: the BERT-style text encoder (`examples.text_encoder`) at a base-like width
  (hidden 256, 4 layers, FFN 1024), briefly trained, on sequences padded to 64 tokens.

`prepare(name, folder)` writes `weights.pt`, `model.pt2` (dynamic batch axis), `calib.npz`,
`heldout.npz` and `requests.npz` into the folder, or reuses them when they are already there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.data import TensorData, load_npz
from quantserve.errors import QuantserveError

IMAGE_SIDE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
ENCODER_LENGTH = 64  # tokens per request (padded); examples.text_encoder exports sequences up to 64
FILES = ("weights.pt", "model.pt2", "calib.npz", "heldout.npz", "requests.npz")


@dataclass(frozen=True)
class BenchModel:
    """One model ready to bench: the eager torch module and the files the optimizer and the load read."""

    name: str
    description: str
    module: Any  # torch.nn.Module in eval mode: the "what the user had" row
    folder: Path
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    request_batch: int = 1  # samples per request, in-process and served alike
    model_type: str | None = None  # "bert": optimize with the transformer fusions
    encoder_shape: tuple[int, int] = (0, 0)  # (num_heads, hidden_size) for the transformer fusions
    trained_here: bool = True  # False when the weights were read back from the folder

    def path(self, file: str) -> Path:
        return self.folder / file

    @property
    def program(self) -> Path:
        return self.folder / "model.pt2"

    def requests(self) -> TensorData:
        return load_npz(self.path("requests.npz"))


@dataclass(frozen=True)
class ModelRecipe:
    """How to make one bench model: build the module, fit it, make its data, export it."""

    description: str
    build: Callable[[], Any]
    fit: Callable[[Any, int], None]
    data: Callable[[int, int], TensorData]  # (count, seed) -> model inputs
    export: Callable[[Any, Path], Path]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    request_batch: int = 1
    model_type: str | None = None
    encoder_shape: tuple[int, int] = (0, 0)
    sizes: dict[str, int] = field(default_factory=lambda: {"calib": 64, "heldout": 32, "requests": 64})


# ---- tiny: the --quick model ----------------------------------------------------------------


def build_tiny() -> Any:
    """Conv(1→8) → ReLU → Conv(8→16, stride 2) → ReLU → pool → Linear(16→10): compute is negligible."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


def fit_tiny(model: Any, seed: int) -> None:
    """Two epochs of Adam on the digits: enough for INT8 to agree with FP32 on most samples."""
    import torch

    from examples.digits import INPUT_NAME, load_splits

    torch.manual_seed(seed)
    train = load_splits(seed).train
    images, labels = torch.from_numpy(train.arrays[INPUT_NAME]), torch.from_numpy(train.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(2):
        for index in torch.randperm(len(labels)).split(64):
            loss = torch.nn.functional.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def digits_images(count: int, seed: int) -> TensorData:
    """`count` digits images drawn by `seed` from the demo's held-out split (repeated if more are asked for)."""
    from examples.digits import INPUT_NAME, load_splits

    images = load_splits(0).heldout.arrays[INPUT_NAME]
    order = np.random.default_rng(seed).permutation(len(images))
    return TensorData({INPUT_NAME: np.ascontiguousarray(np.resize(images[order], (count, *images.shape[1:])))})


def export_digits_like(model: Any, path: Path) -> Path:
    """A `torch.export` program of an 8x8 single-channel image model with a dynamic batch axis."""
    return _export_images(model, path, (1, 8, 8))


# ---- demo: the digits CNN -------------------------------------------------------------------


def build_demo() -> Any:
    from examples.digits import build_model

    return build_model()


def fit_demo(model: Any, seed: int) -> None:
    """Train the digits CNN as the demo does and copy its weights into `model`."""
    from examples.digits import load_splits, train

    model.load_state_dict(train(load_splits(seed), seed).state_dict())


def export_demo(model: Any, path: Path) -> Path:
    from examples.digits import export_program

    return export_program(model, path)


# ---- cnn: ResNet-18 shape at 224x224 ----------------------------------------------------------


def build_resnet18(num_classes: int = 1000) -> Any:
    """ResNet-18's layout: 7x7/2 stem, max pool, 4 stages of 2 basic blocks (64-128-256-512), pool, FC."""
    from torch import nn

    from examples.digits import residual_block  # ResNet's basic block

    stages = []
    for index, (channels_in, channels_out) in enumerate([(64, 64), (64, 128), (128, 256), (256, 512)]):
        stride = 1 if index == 0 else 2
        stages += [residual_block(channels_in, channels_out, stride), residual_block(channels_out, channels_out, 1)]
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes),
    )  # fmt: skip


def fit_batchnorm(model: Any, seed: int) -> None:
    """Set every BatchNorm's statistics to those of natural-image crops (a cumulative average)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None
    images = torch.from_numpy(photo_crops(48, seed + 100).arrays["images"])
    model.train()
    with torch.no_grad():
        for batch in images.split(16):
            model(batch)


def photo_crops(count: int, seed: int, side: int = IMAGE_SIDE) -> TensorData:
    """Random crops, scales and flips of natural photos (`examples.pretrained_data`), ImageNet-normalised NCHW."""
    from examples.pretrained_data import make_scene_data

    images = make_scene_data(count, seed, side).arrays["images"]
    return TensorData({"images": np.ascontiguousarray((images - IMAGENET_MEAN) / IMAGENET_STD, dtype=np.float32)})


def export_resnet(model: Any, path: Path) -> Path:
    return _export_images(model, path, (3, IMAGE_SIDE, IMAGE_SIDE))


def _export_images(model: Any, path: Path, sample_shape: tuple[int, ...]) -> Path:
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.zeros(2, *sample_shape),), dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path))
    return path


# ---- encoder: BERT-style ----------------------------------------------------------------------


def encoder_config() -> Any:
    from examples.text_encoder import EncoderConfig

    return EncoderConfig(hidden_size=256, num_heads=4, num_layers=4, intermediate_size=1024, max_length=64)


def build_encoder() -> Any:
    from examples.text_encoder import build_model

    return build_model(encoder_config())


def fit_encoder(model: Any, seed: int) -> None:
    """A short training run, about a minute here (the bench measures speed; the drift is recorded with the build)."""
    from examples.text_encoder import train

    trained = train(seed, steps=30, batch_size=16, config=encoder_config(), max_length=32)
    model.load_state_dict(trained.state_dict())


def token_requests(count: int, seed: int) -> TensorData:
    """Sequences of 8-64 tokens, padded to 64 columns as a BERT server receives them."""
    from examples.text_encoder import make_token_data

    data = make_token_data(count, seed, max_length=ENCODER_LENGTH)
    return TensorData(dict(data.arrays))


def export_encoder(model: Any, path: Path) -> Path:
    from examples.text_encoder import export_program

    return export_program(model, path)


def _encoder_recipe() -> ModelRecipe:
    from examples.text_encoder import INPUT_NAMES, OUTPUT_NAMES

    config = encoder_config()
    return ModelRecipe(
        f"BERT-style encoder: {config.num_layers} layers, hidden {config.hidden_size}, "
        f"FFN {config.intermediate_size}, {ENCODER_LENGTH} tokens per sequence",
        build_encoder, fit_encoder, token_requests, export_encoder, tuple(INPUT_NAMES), tuple(OUTPUT_NAMES),
        model_type="bert", encoder_shape=(config.num_heads, config.hidden_size),
        sizes={"calib": 128, "heldout": 64, "requests": 128},
    )  # fmt: skip


def _cnn_recipe() -> ModelRecipe:
    description = "ResNet-18-shaped CNN, 224x224 RGB, BatchNorm fitted on photo crops"
    names = (("images",), ("logits",))
    sizes = {"calib": 32, "heldout": 16, "requests": 32}  # 1.8 G multiply-adds an image: calibration is slow
    return ModelRecipe(description, build_resnet18, fit_batchnorm, photo_crops, export_resnet, *names, sizes=sizes)


def _digits_recipe(description: str, build: Callable[[], Any], fit: Callable[[Any, int], None]) -> ModelRecipe:
    from examples.digits import INPUT_NAME, OUTPUT_NAME

    sizes = {"calib": 256, "heldout": 256, "requests": 512}
    return ModelRecipe(
        description, build, fit, digits_images, export_digits_like, (INPUT_NAME,), (OUTPUT_NAME,), 4, sizes=sizes
    )


def recipes() -> dict[str, Callable[[], ModelRecipe]]:
    """Model name → its recipe (made on call: the recipes import torch and the examples lazily)."""
    return {
        "tiny": lambda: _digits_recipe("tiny 2-conv CNN on 8x8 digits (the --quick model)", build_tiny, fit_tiny),
        "demo": lambda: _digits_recipe("the demo's digits CNN (examples.digits), 8x8 inputs", build_demo, fit_demo),
        "cnn": _cnn_recipe,
        "encoder": _encoder_recipe,
    }


MODEL_NAMES = ("tiny", "demo", "cnn", "encoder")


def prepare(name: str, folder: Path, seed: int = 0) -> BenchModel:
    """The model `name` with its files in `folder`: reused when complete and loadable, else made afresh."""
    if name not in MODEL_NAMES:
        raise QuantserveError(f"unknown bench model '{name}'; choose from: {', '.join(MODEL_NAMES)}")
    recipe = recipes()[name]()
    module = recipe.build()
    reused = all((folder / f).is_file() for f in FILES) and _load_weights(module, folder / "weights.pt")
    if not reused:
        recipe.fit(module, seed)
        _write_files(recipe, module, folder, seed)
    module.eval()
    return BenchModel(
        name, recipe.description, module, folder, recipe.input_names, recipe.output_names,
        recipe.request_batch, recipe.model_type, recipe.encoder_shape, trained_here=not reused,
    )  # fmt: skip


def _load_weights(module: Any, path: Path) -> bool:
    """True when the saved weights fit this module (a changed architecture means fit again)."""
    import torch

    try:
        module.load_state_dict(torch.load(path, weights_only=True))
    except (RuntimeError, OSError, ValueError):
        return False
    return True


def _write_files(recipe: ModelRecipe, module: Any, folder: Path, seed: int) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    module.eval()
    for offset, part in enumerate(("calib", "heldout", "requests")):
        recipe.data(recipe.sizes[part], seed + 10 + offset).save(folder / f"{part}.npz")
    recipe.export(module, folder / "model.pt2")
    torch.save(module.state_dict(), folder / "weights.pt")  # last: its presence marks a complete folder
