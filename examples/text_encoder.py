"""A small BERT-style text encoder trained on a synthetic token task that needs order and segments.

Inputs are three int64 tensors (`input_ids`, `attention_mask`, `token_type_ids`) with dynamic
batch and sequence axes; outputs are class `logits` and a mean-pooled, L2-normalised
`embedding`. The task: `[CLS] seg0 [SEP] seg1 [SEP]`, padded with 0. Label bit 0 says whether
marker A comes before marker B, bit 1 whether marker C sits in the second segment, so the
model has to use positions, token types and attention across the sequence, and padding must
be masked. Deterministic given a seed; trains in about 20 s on one thread (`train`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.data import TensorData

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("logits", "embedding")
PAD, CLS, SEP, MARK_A, MARK_B, MARK_C = 0, 1, 2, 3, 4, 5
FIRST_FILLER = 6
NUM_CLASSES = 4


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of the encoder; `num_heads` and `hidden_size` are what ORT's transformer fusion needs."""

    vocab_size: int = 96
    hidden_size: int = 64
    num_heads: int = 4
    num_layers: int = 2
    intermediate_size: int = 256
    max_length: int = 64
    num_classes: int = NUM_CLASSES


def make_token_data(count: int, seed: int, min_length: int = 8, max_length: int = 32) -> TensorData:
    """`count` labelled sequences of random lengths in [min_length, max_length], right-padded with 0."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, max_length), dtype=np.int64)
    types = np.zeros((count, max_length), dtype=np.int64)
    labels = np.zeros(count, dtype=np.int64)
    vocab = EncoderConfig().vocab_size
    for row in range(count):
        length = int(rng.integers(min_length, max_length + 1))
        ids[row, :length], types[row, :length], labels[row] = _sequence(rng, length, vocab)
    mask = (ids != PAD).astype(np.int64)
    return TensorData({"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, labels)


def _sequence(rng: np.random.Generator, length: int, vocab: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One sequence `[CLS] seg0 [SEP] seg1 [SEP]` with markers A, B, C placed at random, and its label."""
    tokens = rng.integers(FIRST_FILLER, vocab, size=length)
    split = int(rng.integers(2, length - 2))  # index of the middle [SEP]
    tokens[0], tokens[split], tokens[length - 1] = CLS, SEP, SEP
    types = np.zeros(length, dtype=np.int64)
    types[split + 1 :] = 1
    free = [i for i in range(1, length - 1) if i != split]
    pos_a, pos_b, pos_c = rng.choice(free, size=3, replace=False)
    tokens[pos_a], tokens[pos_b], tokens[pos_c] = MARK_A, MARK_B, MARK_C
    label = int(pos_a < pos_b) + 2 * int(pos_c > split)
    return tokens, types, label


def build_model(config: EncoderConfig = EncoderConfig()) -> Any:
    """A post-LN BERT encoder written like Hugging Face's, so ONNX Runtime's fusions recognise it."""
    import torch
    from torch import nn

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads, self.head_size = config.num_heads, config.hidden_size // config.num_heads
            self.query = nn.Linear(config.hidden_size, config.hidden_size)
            self.key = nn.Linear(config.hidden_size, config.hidden_size)
            self.value = nn.Linear(config.hidden_size, config.hidden_size)
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.norm = nn.LayerNorm(config.hidden_size, eps=1e-12)

        def split_heads(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(x.size(0), x.size(1), self.heads, self.head_size).permute(0, 2, 1, 3)

        def forward(self, hidden: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
            q, k, v = (self.split_heads(f(hidden)) for f in (self.query, self.key, self.value))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size) + mask_bias
            context = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
            context = context.view(context.size(0), context.size(1), config.hidden_size)
            return self.norm(self.dense(context) + hidden)

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = SelfAttention()
            self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
            self.output = nn.Linear(config.intermediate_size, config.hidden_size)
            self.norm = nn.LayerNorm(config.hidden_size, eps=1e-12)

        def forward(self, hidden: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
            attended = self.attention(hidden, mask_bias)
            ffn = self.output(nn.functional.gelu(self.intermediate(attended)))
            return self.norm(ffn + attended)

    class TextEncoder(nn.Module):
        position_ids: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
            self.position_embeddings = nn.Embedding(config.max_length, config.hidden_size)
            self.token_type_embeddings = nn.Embedding(2, config.hidden_size)
            self.embedding_norm = nn.LayerNorm(config.hidden_size, eps=1e-12)
            self.layers = nn.ModuleList(Layer() for _ in range(config.num_layers))
            self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
            self.classifier = nn.Linear(config.hidden_size, config.num_classes)
            self.register_buffer("position_ids", torch.arange(config.max_length).unsqueeze(0), persistent=False)

        def encode(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            """The last layer's hidden states, one row per token (padded positions included)."""
            positions = self.position_ids[:, : input_ids.size(1)]
            hidden = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
            hidden = self.embedding_norm(hidden + self.position_embeddings(positions))
            mask = attention_mask[:, None, None, :].to(hidden.dtype)
            mask_bias = (1.0 - mask) * -10000.0
            for layer in self.layers:
                hidden = layer(hidden, mask_bias)
            return hidden

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.encode(input_ids, attention_mask, token_type_ids)
            logits = self.classifier(torch.tanh(self.pooler(hidden[:, 0])))
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            return logits, nn.functional.normalize(pooled, dim=-1)

    return TextEncoder()


def train(
    seed: int = 0,
    steps: int = 800,
    batch_size: int = 32,
    config: EncoderConfig = EncoderConfig(),
    max_length: int = 32,
) -> Any:
    """Train the encoder deterministically with AdamW on fresh synthetic batches; return it in eval mode.

    On one torch thread, whatever the process has: this model's steps are too small to share between threads, and
    on a shared 2-core machine two threads spin-wait on each other (138 s against 38 s on one thread at load 4-5,
    and the worked example's optimize spent 20 of its 23 min training at load 8-15, session 64)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(seed, steps, batch_size, config, max_length)
    finally:
        torch.set_num_threads(threads)


def _train(seed: int, steps: int, batch_size: int, config: EncoderConfig, max_length: int) -> Any:
    import torch

    torch.manual_seed(seed)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    data = make_token_data(steps * batch_size, seed=seed + 1, max_length=max_length)
    model.train()
    for step in range(steps):
        batch = data.take(step * batch_size, (step + 1) * batch_size)
        batch = trim_padding(batch)
        logits, _ = model(*(torch.from_numpy(batch.arrays[name]) for name in INPUT_NAMES))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(batch.labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def trim_padding(data: TensorData) -> TensorData:
    """Drop trailing columns that are padding in every row (shorter batches train and run faster)."""
    length = max(int(data.arrays["attention_mask"].sum(1).max()), 1)
    return TensorData({k: v[:, :length] for k, v in data.arrays.items()}, data.labels)


def predict(model: Any, data: TensorData) -> dict[str, np.ndarray]:
    """Run a torch encoder on `data`; returns `{"logits": ..., "embedding": ...}` as numpy."""
    import torch

    with torch.no_grad():
        outputs = model(*(torch.from_numpy(data.arrays[name]) for name in INPUT_NAMES))
    return {name: out.numpy() for name, out in zip(OUTPUT_NAMES, outputs, strict=True)}


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float((logits.argmax(-1) == labels).mean() * 100.0)


def export_options() -> dict[str, Any]:
    """Output names and dynamic axes (batch and sequence) for export; inputs are named by `example_inputs`."""
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes.update({name: {0: "batch"} for name in OUTPUT_NAMES})
    return {"output_names": list(OUTPUT_NAMES), "dynamic_axes": axes}


def example_inputs(batch: int = 2, length: int = 16) -> dict[str, Any]:
    """Example torch inputs for export: a batch of valid sequences (no padding)."""
    import torch

    data = make_token_data(batch, seed=12345, min_length=length, max_length=length)
    return {name: torch.from_numpy(data.arrays[name]) for name in INPUT_NAMES}


def export_program(model: Any, path: Path) -> Path:
    """Save the trained model as a `torch.export` program (.pt2) with dynamic batch and sequence axes."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    sequence = torch.export.Dim("sequence", min=2, max=EncoderConfig().max_length)
    shapes = {name: {0: batch, 1: sequence} for name in INPUT_NAMES}
    program = torch.export.export(model, (), kwargs=example_inputs(), dynamic_shapes=shapes)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path))
    return path


TAGGER_OUTPUTS = ("tags", "last_hidden_state")
NUM_TAGS = FIRST_FILLER + 2  # [PAD] [CLS] [SEP] A B C, then a filler in segment 0 or in segment 1


def token_tags(data: TensorData) -> np.ndarray:
    """(N, T) per-token tags: the special token or marker itself, or which segment a filler sits in; padded
    positions -100 (unlabelled, as Hugging Face's token-classification labels mark them)."""
    ids, types = data.arrays["input_ids"], data.arrays["token_type_ids"]
    tags = np.where(ids >= FIRST_FILLER, FIRST_FILLER + types, ids)
    return np.where(data.arrays["attention_mask"] != 0, tags, -100)


def token_tagger(encoder: Any, steps: int = 300, seed: int = 0) -> Any:
    """A tagger on the trained `encoder`'s frozen hidden states (a linear head trained for `steps` batches,
    about 2 s): outputs per-token `tags` logits and the `last_hidden_state` itself, (N, T, ...) both, as a
    Hugging Face token-classification or feature-extraction export has them."""
    import torch
    from torch import nn

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = nn.Linear(encoder.word_embeddings.embedding_dim, NUM_TAGS)

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.encoder.encode(input_ids, attention_mask, token_type_ids)
            return self.head(hidden), hidden

    torch.manual_seed(seed)
    tagger = Tagger()
    optimizer = torch.optim.Adam(tagger.head.parameters(), lr=1e-2)
    data = make_token_data(steps * 32, seed=seed + 2)
    for step in range(steps):
        batch = data.take(step * 32, (step + 1) * 32)
        with torch.no_grad():
            hidden = encoder.encode(*(torch.from_numpy(batch.arrays[name]) for name in INPUT_NAMES))
        loss = nn.functional.cross_entropy(
            tagger.head(hidden).flatten(0, 1), torch.from_numpy(token_tags(batch)).flatten(), ignore_index=-100
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return tagger.eval()


def tagger_export_options() -> dict[str, Any]:
    """Output names and dynamic axes of the tagger: batch and sequence on every input and output."""
    names = (*INPUT_NAMES, *TAGGER_OUTPUTS)
    return {"output_names": list(TAGGER_OUTPUTS), "dynamic_axes": {n: {0: "batch", 1: "sequence"} for n in names}}


def build(seed: int = 0) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Factory for `quantserve optimize examples.text_encoder:build`: model, example inputs, export options."""
    return train(seed), example_inputs(), export_options()


# Shapes the benchmark measures: the test model, and a wider/deeper one where INT8 GEMMs dominate
# (`base` is for timing: in 500 steps it does not learn the task, so its drift says little).
BENCH_CONFIGS = {
    "small": (EncoderConfig(), 800, 32),
    "base": (
        EncoderConfig(
            vocab_size=160, hidden_size=256, num_heads=4, num_layers=4, intermediate_size=1024, max_length=128
        ),
        500,
        64,
    ),
}


def benchmark(out_dir: Path, size: str = "small", seed: int = 0, batch: int = 32, repeats: int = 7) -> dict[str, Any]:
    """Train, optimize FP32 and INT8 (--model-type bert) and time all three in-process; saves bench.json."""
    import json

    import torch

    from optimizer.export import export_onnx
    from optimizer.pipeline import OptimizeOptions, optimize
    from optimizer.source import ModelSource
    from optimizer.speed import SpeedSettings
    from optimizer.transformer import TransformerSettings

    torch.set_num_threads(2)
    config, steps, max_length = BENCH_CONFIGS[size]
    model = train(seed, steps=steps, config=config, max_length=max_length)
    source = ModelSource(
        "torch", f"text_encoder_{size}", module=model, example_inputs=example_inputs(), options=export_options()
    )
    exported = export_onnx(source, out_dir / "exported.onnx").path
    calib = make_token_data(256, seed=seed + 7, max_length=max_length).save(out_dir / "calib.npz")
    held_out = make_token_data(1000, seed=seed + 8, max_length=max_length).save(out_dir / "eval.npz")
    settings = TransformerSettings("bert", config.num_heads, config.hidden_size)
    builds = {}
    for precision in ("fp32", "int8"):
        options = OptimizeOptions(
            exported,
            calib,
            precision,
            "embedded",
            out_dir / precision,
            eval_path=held_out,
            transformer=settings,
            speed=SpeedSettings(allow_slower=True),  # this benchmark reports the speed itself
        )
        builds[precision] = optimize(options)
    timed = {"fp32_unfused": exported, "fp32_fused": builds["fp32"].path, "int8": builds["int8"].path}
    full = make_token_data(batch, seed=seed + 9, min_length=max_length, max_length=max_length).arrays
    seconds = _best_times(timed, full, repeats)
    calibrate = next(s for s in builds["int8"].manifest.stages if s["stage"] == "calibrate")
    fuse = next(s for s in builds["int8"].manifest.stages if s["stage"] == "fuse")
    result = {
        "size": size,
        "config": dataclasses.asdict(config),
        "batch": batch,
        "sequence": max_length,
        "sequences_per_s": {name: batch / s for name, s in seconds.items()},
        "int8_speedup_vs_fp32_fused": seconds["fp32_fused"] / seconds["int8"],
        "int8_speedup_vs_fp32_unfused": seconds["fp32_unfused"] / seconds["int8"],
        "fuse": {k: fuse[k] for k in ("nodes_before", "nodes_after", "fused")},
        "drift": calibrate["drift"],
        "kept_fp32": calibrate["kept_fp32"],
        "verification": builds["int8"].manifest.verification,
    }
    (out_dir / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _best_times(models: dict[str, Path], feeds: dict[str, np.ndarray], repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds per run for each model, interleaved so load changes hit all alike."""
    import time

    from optimizer.onnxruntime_runner import OnnxRuntimeRunner

    runners = {name: OnnxRuntimeRunner(path, intra_op_threads=2) for name, path in models.items()}
    best = dict.fromkeys(models, float("inf"))
    for runner in runners.values():
        runner.activate()
        runner.infer(feeds)
    for _ in range(repeats):
        for name, runner in runners.items():
            start = time.perf_counter()
            for _ in range(5):
                runner.infer(feeds)
            best[name] = min(best[name], (time.perf_counter() - start) / 5)
    return best


if __name__ == "__main__":
    import json
    import sys

    size = sys.argv[1] if len(sys.argv) > 1 else "small"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else f"reports/transformer/{size}")
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(benchmark(out, size), indent=2))
