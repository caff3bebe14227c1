"""The calibration cache's size: least recently used entries go once it is over its cap.

Every calibration adds a quantized model and its ranges under `cache_dir()`; nothing removed them,
so the cache grew with every model and setting tried (6.3 GB in 398 files here, one entry 820 MB).
An entry is every file named by one key (`KEY.onnx`, `KEY.json`, `KEY.ranges.json`, external data);
a hit touches it, so the oldest by modification time is the least recently used. Entries touched
in the last few minutes are kept whatever the size: another optimize may be reading them.
Hand-written: no library keeps a size-capped folder of multi-file entries (`diskcache` is a
key-value store that would hold the ONNX files as blobs ORT cannot open in place).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from pathlib import Path

from quantserve.errors import QuantserveError

DEFAULT_LIMIT_GB = 4.0
LIMIT_ENV = "QUANTSERVE_CACHE_MAX_GB"
IN_USE_S = 600.0  # entries touched this recently may be in another optimize's hands


def limit_bytes() -> int:
    """`$QUANTSERVE_CACHE_MAX_GB` (0: no cache kept beyond the entries in use), else DEFAULT_LIMIT_GB."""
    text = os.environ.get(LIMIT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_LIMIT_GB
    except ValueError:
        value = -1.0
    if not value >= 0.0 or value == float("inf"):
        raise QuantserveError(f"{LIMIT_ENV}={text!r}: expected a size in GB, 0 or more (e.g. 4)")
    return int(value * (1 << 30))


def touch(key_file: Path) -> None:
    """Mark the entry of `key_file` used now (a cache hit)."""
    stem = _key(key_file.name)
    for path in key_file.parent.glob(f"{stem}*") if stem else ():
        with contextlib.suppress(OSError):  # removed meanwhile by another's pruning: recalibrated next time
            os.utime(path)


def prune(folder: Path, limit: int, now: float | None = None) -> list[str]:
    """Remove whole entries, least recently used first, until `folder` holds at most `limit` bytes of entries;
    entries used within IN_USE_S stay. Returns the keys removed."""
    now = time.time() if now is None else now
    entries: dict[str, list[Path]] = defaultdict(list)
    sizes: dict[str, int] = defaultdict(int)
    used: dict[str, float] = defaultdict(float)
    for path in folder.glob("*") if folder.is_dir() else ():
        key = _key(path.name)
        if key is None or not path.is_file() or path.is_symlink():
            continue
        stat = path.stat()
        entries[key].append(path)
        sizes[key] += stat.st_size
        used[key] = max(used[key], stat.st_mtime)
    total, removed = sum(sizes.values()), []
    for key in sorted(entries, key=lambda k: used[k]):
        if total <= limit:
            break
        if now - used[key] < IN_USE_S:
            continue
        for path in entries[key]:
            path.unlink(missing_ok=True)
        total -= sizes[key]
        removed.append(key)
    return removed


def _key(name: str) -> str | None:
    """The 64-hex-digit key a cache file is named by, or None for anything else (temporary folders, strays)."""
    key = name[:64]
    if len(key) == 64 and all(c in "0123456789abcdef" for c in key) and (len(name) == 64 or name[64] == "."):
        return key
    return None
