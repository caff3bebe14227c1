"""Deterministic inputs for the pretrained models of `examples.pretrained`, made here, never downloaded.

Text lines and pages are rendered with Pillow's own built-in font (it ships inside the pillow wheel,
so every machine draws the same pixels), scenes are crops of scikit-learn's and scikit-image's sample photos, and
sentences come from templates. Everything depends only on the seed, except the file-type classifier's
bytes: those are read from this Python's standard library and installed packages (the same on every
machine with the same interpreter and requirements.lock).

Label encodings (the `labels` array of each `.npz`):
- OCR recognizer: int32 (N, MAX_TEXT) Unicode code points of the true line, right-padded with 0
  (`decode_labels` turns them back into strings);
- OCR direction classifier: int64 (N,) 0 upright, 1 rotated by 180° (the model's label order);
- OCR text detector: uint8 (N, H, W) 1 inside a rendered line's box, 0 elsewhere;
- sentence encoder: int64 (N,) the index, in the same file, of the sentence's paraphrase;
- file-type classifier: none (judged by agreement with FP32);
- CREPE pitch estimator: int64 (N,) the pitch bin (20 cents apart from 1997 cents) of each note's
  fundamental; music transcriber and MTCNN's ONet: none.
Audio is synthesised (harmonic notes with vibrato and noise); face crops are photo crops.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from quantserve.data import TensorData
from quantserve.errors import QuantserveError

MAX_TEXT = 24
FILE_BLOCK, FILE_PAD = 1024, 256  # magika standard_v3_3 (config.min.json): beg/end size 1024, padding token 256
REC_SHAPE = (48, 320)  # PP-OCR recognizer input height, width (rapidocr's rec_img_shape)
CLS_SHAPE = (48, 192)  # direction classifier input (rapidocr's cls_image_shape)
PAGE_SIDE = 320
SCENE_SIDE = 320
WORDS = (  # noqa: SIM905 (one string reads better than 50 quoted words)
    "total invoice order paid due date amount tax net cash card price item qty ref code box road "
    "street city north south east west hotel cafe bank shop open closed exit gate floor room desk "
    "model serial batch lot part size weight color blue red green black white gold silver"
).split()


def text_strings(count: int, seed: int) -> list[str]:
    """`count` short lines a receipt or a sign might hold: words, numbers, dates, codes."""
    rng = np.random.default_rng(seed)
    makers = (_words_line, _amount_line, _date_line, _code_line)
    return [makers[int(rng.integers(len(makers)))](rng) for _ in range(count)]


def _words_line(rng: np.random.Generator) -> str:
    words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(1, 3)))]
    words[0] = words[0].capitalize() if rng.random() < 0.6 else words[0].upper()
    return " ".join(words)


def _amount_line(rng: np.random.Generator) -> str:
    return f"{str(rng.choice(WORDS)).capitalize()} {rng.integers(1, 999)}.{rng.integers(0, 100):02d}"


def _date_line(rng: np.random.Generator) -> str:
    return f"{rng.integers(2001, 2030)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"


def _code_line(rng: np.random.Generator) -> str:
    letters = "".join(chr(ord("A") + int(i)) for i in rng.integers(0, 26, size=3))
    return f"{letters}-{rng.integers(100, 99999)}"


def encode_text(strings: list[str], width: int = MAX_TEXT) -> np.ndarray:
    """Unicode code points, one row per string, right-padded with 0 (the recognizer's label encoding)."""
    labels = np.zeros((len(strings), width), dtype=np.int32)
    for row, text in enumerate(strings):
        codes = [ord(c) for c in text[:width]]
        labels[row, : len(codes)] = codes
    return labels


def decode_labels(labels: np.ndarray) -> list[str]:
    """The strings `encode_text` encoded."""
    return ["".join(chr(int(c)) for c in row if c > 0) for row in np.asarray(labels)]


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Aileron, embedded in pillow: the same on every machine


def render_line(text: str, rng: np.random.Generator) -> Any:
    """One dark line of text on a light, slightly varied background, tightly framed (a cropped text box)."""
    from PIL import Image, ImageDraw

    font = _font(int(rng.integers(26, 36)))
    left, top, right, bottom = font.getbbox(text)
    pad_x, pad_y = int(rng.integers(4, 12)), int(rng.integers(3, 8))
    size = (right - left + 2 * pad_x, bottom - top + 2 * pad_y)
    background = tuple(int(v) for v in rng.integers(200, 256, size=3))
    image = Image.new("RGB", size, background)
    ink = tuple(int(v) for v in rng.integers(0, 70, size=3))
    ImageDraw.Draw(image).text((pad_x - left, pad_y - top), text, font=font, fill=ink)
    return image


def line_tensor(image: Any, height: int, width: int) -> np.ndarray:
    """rapidocr's resize_norm_img: keep the aspect ratio at `height`, scale to [-1, 1], pad right with 0 (BGR)."""
    from PIL import Image

    resized_w = min(width, math.ceil(height * image.width / image.height))
    pixels = np.asarray(image.resize((resized_w, height), Image.Resampling.BILINEAR), dtype=np.float32)
    chw = pixels[:, :, ::-1].transpose(2, 0, 1) / 255.0  # rapidocr reads images with OpenCV: BGR
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :resized_w] = (chw - 0.5) / 0.5
    return out


def make_rec_data(count: int, seed: int) -> TensorData:
    """Text lines for the CTC recognizer (input `x`: N×3×48×320) with their code-point labels."""
    rng = np.random.default_rng(seed)
    strings = text_strings(count, seed)
    x = np.stack([line_tensor(render_line(s, rng), *REC_SHAPE) for s in strings])
    return TensorData({"x": x}, encode_text(strings))


def make_cls_data(count: int, seed: int) -> TensorData:
    """Text lines for the direction classifier (N×3×48×192), every other one rotated by 180° (label 1)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 2).astype(np.int64)
    rows = []
    for text, flip in zip(text_strings(count, seed), labels, strict=True):
        image = render_line(text, rng)
        rows.append(line_tensor(image.rotate(180) if flip else image, *CLS_SHAPE))
    return TensorData({"x": np.stack(rows)}, labels)


def make_page_data(count: int, seed: int, side: int = PAGE_SIDE) -> TensorData:
    """Page-like images (N×3×side×side, mean/std 0.5) holding 3–7 text lines, with their box masks as labels."""
    rng = np.random.default_rng(seed)
    pages, masks = zip(*(_page(rng, side) for _ in range(count)), strict=True)
    return TensorData({"x": np.stack(pages)}, np.stack(masks))


def _page(rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(215, 256, size=3)))
    draw, mask = ImageDraw.Draw(image), np.zeros((side, side), dtype=np.uint8)
    y: float = int(rng.integers(4, 24))
    for text in text_strings(int(rng.integers(3, 8)), int(rng.integers(1 << 30))):
        font = _font(int(rng.integers(16, 30)))
        x = int(rng.integers(4, side // 3))
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        if bottom >= side - 2:
            break
        draw.text((x, y), text, font=font, fill=tuple(int(v) for v in rng.integers(0, 80, size=3)))
        mask[top:bottom, left : min(right, side)] = 1
        y = bottom + int(rng.integers(8, 30))
    chw = np.asarray(image, dtype=np.float32)[:, :, ::-1].transpose(2, 0, 1) / 255.0
    return ((chw - 0.5) / 0.5).astype(np.float32), mask


def make_scene_data(count: int, seed: int, side: int = SCENE_SIDE) -> TensorData:
    """Natural images (N×3×side×side RGB in [0, 1]): random crops, flips and scales of `scene_photos`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = scene_photos()
    rows = []
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        crop = int(rng.integers(side // 2, min(photo.shape[:2]) + 1))
        top, left = (int(rng.integers(0, photo.shape[i] - crop + 1)) for i in (0, 1))
        patch = Image.fromarray(photo[top : top + crop, left : left + crop]).resize((side, side))
        pixels = np.asarray(patch, dtype=np.float32) / 255.0
        rows.append((pixels[:, ::-1] if rng.random() < 0.5 else pixels).transpose(2, 0, 1))
    return TensorData({"images": np.ascontiguousarray(np.stack(rows), dtype=np.float32)})


YOLOX_SIDE = 416


def make_yolox_data(count: int, seed: int) -> TensorData:
    """Photos for a YOLOX-style detector (ddddocr's): N×3×416×416, pixel values 0–255 as YOLOX takes them."""
    scenes = make_scene_data(count, seed, side=YOLOX_SIDE)
    return TensorData({"images": (scenes.arrays["images"] * 255.0).astype(np.float32)})


def make_gray_lines(count: int, seed: int, height: int = 64, width: int = 256) -> TensorData:
    """Text lines as ddddocr's recogniser reads them: N×1×64×width grey, scaled to [-1, 1], padded white."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for text in text_strings(count, seed):
        line = render_line(text, rng).convert("L")
        resized_w = min(width, math.ceil(height * line.width / line.height))
        pixels = np.full((height, width), 255.0, np.float32)
        pixels[:, :resized_w] = np.asarray(line.resize((resized_w, height), Image.Resampling.BILINEAR), np.float32)
        rows.append(((pixels / 255.0 - 0.5) / 0.5)[None])
    return TensorData({"input1": np.stack(rows).astype(np.float32)}, encode_text(text_strings(count, seed)))


SKIMAGE_PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png")  # people, a cup, a cat


def scene_photos() -> list[np.ndarray]:
    """scikit-learn's two sample photos and four of scikit-image's (read as files: skimage is not imported)."""
    import importlib.util

    from PIL import Image
    from sklearn.datasets import load_sample_images

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise QuantserveError(
            "scikit-image is not installed (its sample photos are read): "
            "pip install --no-deps -r requirements-realmodels.lock, or `make benchmark`, which installs it"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    extra = [np.asarray(Image.open(folder / name).convert("RGB")) for name in SKIMAGE_PHOTOS]
    return [*load_sample_images().images, *extra]


SUBJECTS = ("the old man", "a young girl", "our team", "the small dog", "my neighbour", "the new manager")
VERBS = ("repaired the bike", "cooked dinner", "painted the fence", "lost the keys", "read the report")
MORE_VERBS = ("booked a flight", "planted tomatoes", "fixed the roof", "sold the car", "wrote a letter")
TIMES = ("yesterday", "on monday", "last night", "this morning", "after lunch", "in the spring")
PLACES = ("at home", "in the garden", "at the office", "near the river", "in the city", "at school")


def make_sentences(pairs: int, seed: int) -> tuple[list[str], np.ndarray]:
    """`2 * pairs` sentences: each event said twice in different words; labels[i] is i's paraphrase index."""
    rng = np.random.default_rng(seed)
    sentences: list[str] = []
    for _ in range(pairs):
        who, did, when, where = (str(rng.choice(pool)) for pool in (SUBJECTS, VERBS + MORE_VERBS, TIMES, PLACES))
        sentences.append(f"{who.capitalize()} {did} {where} {when}.")
        sentences.append(f"{when.capitalize()}, {where}, {who} {did}.")
    labels = np.arange(2 * pairs, dtype=np.int64) ^ 1  # 0 <-> 1, 2 <-> 3, ...
    return sentences, labels


def make_encoder_data(count: int, seed: int, tokenizer_json: Path, length: int = 32) -> TensorData:
    """Tokenized paraphrase pairs (input_ids, attention_mask, token_type_ids: N×length int64) for the encoder."""
    from tokenizers import Tokenizer

    sentences, labels = make_sentences(count // 2, seed)
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.enable_truncation(length)
    tokenizer.enable_padding(length=length)
    encodings = tokenizer.encode_batch(sentences)
    arrays = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    return TensorData(arrays, labels)


def make_file_bytes(count: int, seed: int) -> TensorData:
    """magika's input for real files (N×2048 int32): each file's first and last 1024 bytes, whitespace-stripped
    (its `beg`/`end` features), padded with token 256. Files come from this Python's standard library and the
    installed packages (source, bytecode, shared objects, images, archives, JSON, text), one extension after
    another so that common types do not crowd out the rest; which files, by seed."""
    import sysconfig

    roots = sorted({Path(sysconfig.get_paths()[key]) for key in ("stdlib", "purelib")})
    by_suffix: dict[str, list[Path]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size >= 16:
                by_suffix.setdefault(path.suffix.lower(), []).append(path)
    rng = np.random.default_rng(seed)
    suffixes = sorted(by_suffix)
    rows: list[np.ndarray] = []
    while len(rows) < count:
        files = by_suffix[suffixes[int(rng.integers(len(suffixes)))]]
        rows.append(_file_features(files[int(rng.integers(len(files)))].read_bytes()))
    return TensorData({"bytes": np.stack(rows)})


def _file_features(content: bytes) -> np.ndarray:
    features = np.full(2 * FILE_BLOCK, FILE_PAD, dtype=np.int32)
    begin = content[: 4 * FILE_BLOCK].lstrip()[:FILE_BLOCK]
    end = content[-4 * FILE_BLOCK :].rstrip()[-FILE_BLOCK:]
    features[: len(begin)] = np.frombuffer(begin, np.uint8)
    features[2 * FILE_BLOCK - len(end) :] = np.frombuffer(end, np.uint8)
    return features


CREPE_RATE, CREPE_FRAME = 16000, 1024
CREPE_CENTS_AT_BIN_0, CREPE_CENTS_PER_BIN = 1997.3794084376191, 20.0  # torchcrepe.convert.bins_to_cents
MUSIC_RATE, MUSIC_SAMPLES = 22050, 43844  # basic-pitch: 2 s windows of 22.05 kHz audio (its AUDIO_N_SAMPLES)


def _harmonic_tone(samples: int, rate: int, f0: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced note: 1–8 harmonics of f0 with a slight vibrato and a little noise, peak 0.05–0.8."""
    t = np.arange(samples) / rate
    vibrato = 1.0 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / rate
    tone = sum(rng.uniform(0.1, 1.0) / k * np.sin(k * phase) for k in range(1, int(rng.integers(2, 9))))
    tone = tone + rng.uniform(0.0, 0.05) * rng.standard_normal(samples)
    return tone * rng.uniform(0.05, 0.8) / max(float(np.abs(tone).max()), 1e-9)


def make_pitch_frames(count: int, seed: int) -> TensorData:
    """CREPE frames (N×1024, zero mean, unit variance as torchcrepe.preprocess makes them) of notes at
    55–1760 Hz; labels: int64 (N,) the pitch bin nearest each note's fundamental."""
    rng = np.random.default_rng(seed)
    f0 = 55.0 * 2.0 ** rng.uniform(0.0, 5.0, size=count)
    frames = np.stack([_harmonic_tone(CREPE_FRAME, CREPE_RATE, f, rng) for f in f0])
    frames = (frames - frames.mean(axis=1, keepdims=True)) / np.maximum(frames.std(axis=1, keepdims=True), 1e-10)
    cents = 1200.0 * np.log2(f0 / 10.0)
    bins = np.clip(np.rint((cents - CREPE_CENTS_AT_BIN_0) / CREPE_CENTS_PER_BIN), 0, 359).astype(np.int64)
    return TensorData({"input": frames.astype(np.float32)}, bins)


def make_music_audio(count: int, seed: int) -> TensorData:
    """basic-pitch's input (N×43844×1): 2 s of 22.05 kHz audio holding 1–5 notes at random times and pitches."""
    rng = np.random.default_rng(seed)
    clips = np.zeros((count, MUSIC_SAMPLES), np.float64)
    for clip in clips:
        for _ in range(int(rng.integers(1, 6))):
            start = int(rng.integers(0, MUSIC_SAMPLES - 2000))
            length = min(int(rng.integers(2000, 20000)), MUSIC_SAMPLES - start)
            clip[start : start + length] += _harmonic_tone(length, MUSIC_RATE, 55.0 * 2.0 ** rng.uniform(0, 5), rng)
    return TensorData({"serving_default_input_2:0": clips[:, :, None].astype(np.float32)})


def make_face_crops(count: int, seed: int) -> TensorData:
    """MTCNN ONet's input (N×3×48×48): photo crops (people among them) scaled as MTCNN does, (x − 127.5) / 128."""
    crops = make_scene_data(count, seed, side=48).arrays["images"]
    return TensorData({"input": ((crops * 255.0 - 127.5) * 0.0078125).astype(np.float32)})
