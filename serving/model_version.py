"""One version of a served model, addressed by number (`m@2`, `--model-version 2`), and the precision it was
deployed with.

`deploy --live-versions 2` keeps two versions served (FP32 as version 1, INT8 as version 2: an A/B), and Triton
answers a request that names no version from the newest. To load-test or evaluate version 1 beside version 2, a
request names its version (Triton's `model_version`, perf_analyzer's `-x`/`--model-version`).

`config.pbtxt` is one per model, not per version: its precision parameter is the last deploy's, so version 1 of
that A/B was shown as "int8". Each deploy therefore also records in the config the precision of every version
already on disk (`VERSION_PRECISIONS_PARAMETER`, read from their deploy records); the config's own precision is that
of the version the deploy adds, numbered above all of them (version numbers only grow). A config written before this
was recorded names a version's precision only where that version is the one served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serving.build_parameters import recorded_precision
from serving.model_config import check_version_name, is_version_name
from serving.versions import DEPLOY_RECORD

VERSION_SEPARATOR = "@"  # `m@2`: version 2 of model m (Triton model names hold no '@')
# "1=fp32,2=int8": each version on disk when the config was written, and its precision ("" where not recorded);
# "-" where none was on disk (a first deploy)
VERSION_PRECISIONS_PARAMETER = "quantserve_version_precisions"
NOT_PER_VERSION = "precision not recorded per version"


def addressed(model: str, version: str = "") -> str:
    """`model@version`, or `model` where no version is named: how runs and variants of one version are labelled."""
    return f"{model}{VERSION_SEPARATOR}{version}" if version else model


def split_addressed(label: str, default_version: str = "") -> tuple[str, str]:
    """`m@2` → ("m", "2"); `m` → ("m", `default_version`). A version that is not a positive whole number is one
    line naming it (`check_version_name`)."""
    model, separator, version = label.partition(VERSION_SEPARATOR)
    version = version if separator else default_version
    return model, str(check_version_name(version)) if version else ""


def version_precision(config: dict[str, Any], version: str, served: Sequence[str]) -> str | None:
    """The precision `version` was deployed with, read from the model's served config (Triton's JSON or
    `parse_config`'s dict); None where it is not recorded for that version (say `NOT_PER_VERSION`), not another
    version's. `served`: the versions the server has ready, which decide it for a config without the record."""
    table = recorded_version_precisions(config)
    if table is None:  # deployed before versions' precisions were recorded: the config's is the one served's
        return recorded_precision(config) if list(served) == [version] else None
    if version in table:
        return table[version]
    newest = max((int(v) for v in table), default=0)
    return recorded_precision(config) if is_version_name(version) and int(version) > newest else None


def recorded_version_precisions(config: dict[str, Any]) -> dict[str, str | None] | None:
    """{version: precision or None} from the config's `VERSION_PRECISIONS_PARAMETER`; None where it has none."""
    value = (config.get("parameters") or {}).get(VERSION_PRECISIONS_PARAMETER) or {}
    text = value.get("string_value") if isinstance(value, dict) else None
    if not isinstance(text, str) or not text:
        return None
    pairs = (item.partition("=") for item in text.split(",") if item and item != "-")
    return {version.strip(): precision.strip().lower() or None for version, _, precision in pairs}


def with_version_precisions(config: dict[str, Any], model_dir: Path, versions: Sequence[int]) -> dict[str, Any]:
    """`config` (the dict `write_config` takes) recording the precision of each of `versions` of `model_dir` (those on
    disk as a deploy adds its own above them; the caller holds the folder's lock) from its deploy record."""
    value = ",".join(f"{v}={_deployed_precision(Path(model_dir) / str(v))}" for v in versions) or "-"
    parameters = {**(config.get("parameters") or {}), VERSION_PRECISIONS_PARAMETER: {"string_value": value}}
    return {**config, "parameters": parameters}


def _deployed_precision(version_dir: Path) -> str:
    """The precision a version's deploy record names ("" where it has no readable one: hand-placed)."""
    try:
        precision = json.loads((version_dir / DEPLOY_RECORD).read_text()).get("precision")
    except (OSError, ValueError, AttributeError):
        return ""
    return str(precision).lower() if isinstance(precision, str) else ""
