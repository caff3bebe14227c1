"""A small trained recurrent classifier, for INT8 on an LSTM (`optimize` tries ORT's DynamicQuantizeLSTM).

A 2-layer LSTM (64 features in, hidden 256) over 50 steps reads a noisy sine and names its frequency (10
classes); 150 Adam steps on fresh synthetic batches (about 30 s on 2 cores) reach 100 % held-out accuracy.
Writes `OUT/lstm.onnx` (exported as torch exports an LSTM: time-major inside, batch-first outside) and
`OUT/data.npz` (600 sequences and their labels, for --calib; optimize holds out what the budget needs).

    python -m examples.lstm_model --out /tmp/lstm
    quantserve optimize /tmp/lstm/lstm.onnx --precision int8 --calib /tmp/lstm/data.npz --out /tmp/lstm/int8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

STEPS, FEATURES, CLASSES, HIDDEN = 50, 64, 10, 256


def sequences(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines, one of CLASSES frequencies each, phase-shifted across the features."""
    labels = rng.integers(0, CLASSES, count)
    t = np.arange(STEPS)[None, :, None]
    f = np.arange(FEATURES)[None, None, :]
    clean = np.sin(2 * np.pi * (labels[:, None, None] + 1) * t / STEPS + f * 0.1)
    return (clean + rng.standard_normal((count, STEPS, FEATURES))).astype(np.float32), labels


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(FEATURES, HIDDEN, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(HIDDEN, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            states, _ = self.lstm(x)
            return self.fc(states[:, -1])

    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(150):
        x, y = sequences(64, rng)
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x, y = sequences(600, rng)
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    args.out.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (torch.from_numpy(x[:8]),),
        str(args.out / "lstm.onnx"),
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    np.savez(args.out / "data.npz", x=x, labels=y.astype(np.int64))
    print(f"{args.out / 'lstm.onnx'}: held-out accuracy {accuracy:.2%} on 600 sequences ({args.out / 'data.npz'})")


if __name__ == "__main__":
    main()
