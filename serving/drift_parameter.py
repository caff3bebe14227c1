"""The drift budget a build missed at optimize, recorded by `deploy` in the served config for the load test's verdict.

`optimize --keep-failing` ships a build that missed its drift budget (its manifest's `verification.holds` is false);
`deploy` warns of it (`serving.build_verdict`), and the served config said nothing of it. Session 56's probe: the load
test of such a build beside FP32 headlined "PASS · INT8 1.97× FP32 served", where `report --build` of the same results
read FAIL ("drift: 4 of 6 budgeted metrics within budget"). `deploy` now writes deploy's own lines for the misses as
one config parameter (JSON text), the way it records the build's speed verdict (`serving.build_parameters`), and
`loadtest` keeps them with each run (`loadtest.run_identity`).

`config.pbtxt` is one per model, not per version: its drift misses and speed verdict are the last deploy's. Session
57: with version 1 faithful and version 2 kept failing, a load test pinned to version 1 was failed for version 2's
misses (and the reverse). Each deploy therefore also records what every version already on disk recorded
(`VERSION_BUILDS_PARAMETER`, read from their deploy records), as `serving.model_version` does for precisions, and a
load run reads the record of the version it loads (`version_build`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.drift_evidence import rows_to_show, thin_evidence_line
from serving.build_parameters import recorded_speed
from serving.build_verdict import missed_checks
from serving.model_config import is_version_name
from serving.versions import DEPLOY_RECORD

DRIFT_MISSED_PARAMETER = "quantserve_drift_missed"  # ["missed its drift budget …; shipped with --keep-failing", …]
# {"1": {"drift_missed": [...], "in_process": {...}}, "2": {}}: each version on disk when the config was written and
# what its deploy recorded ({} where nothing: a build that held and was not timed, a hand-placed folder); {} where
# none was on disk (a first deploy)
VERSION_BUILDS_PARAMETER = "quantserve_version_builds"
# [{"line": "output 'probs': top-1 agreement 1 over 128 held-out rows shows only ≥ 0.979 …", "not_shown": true}, …]
THIN_EVIDENCE_PARAMETER = "quantserve_thin_evidence"


@dataclass(frozen=True)
class VersionBuild:
    """What one version's deploy recorded of its build: the drift checks it missed, its in-process speed verdict,
    the agreement rates it held on rows too few to show them (`thin_evidence_records`)."""

    drift_missed: tuple[str, ...] = ()
    in_process: dict[str, Any] | None = None
    thin_evidence: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of_config(cls, config: Mapping[str, Any]) -> VersionBuild:
        """The record a config holds as its own (the version its deploy added)."""
        thin = tuple(recorded_thin_evidence(config))
        return cls(tuple(recorded_drift_misses(config)), recorded_speed(dict(config)), thin)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"drift_missed": list(self.drift_missed)} if self.drift_missed else {}
        record |= {"thin_evidence": list(self.thin_evidence)} if self.thin_evidence else {}
        return record | ({"in_process": self.in_process} if self.in_process else {})


def drift_missed_parameter(verification: Mapping[str, Any] | None) -> dict[str, str]:
    """The config parameter for the drift checks a build missed (`missed_checks`, its speed left to the speed
    parameter); {} where it missed none."""
    drift = {key: value for key, value in (verification or {}).items() if key != "speed"}
    lines = missed_checks(drift)
    return {DRIFT_MISSED_PARAMETER: json.dumps(lines, ensure_ascii=False)} if lines else {}


def thin_evidence_parameter(verification: Mapping[str, Any] | None) -> dict[str, str]:
    """The config parameter for the rates a build held on --eval rows too few to show them; {} where none."""
    records = thin_evidence_records((verification or {}).get("thin_evidence"))
    return {THIN_EVIDENCE_PARAMETER: json.dumps(records, ensure_ascii=False)} if records else {}


def thin_evidence_records(entries: Any) -> list[dict[str, Any]]:
    """{"line": optimize's words, "not_shown": whether no agreement on so few rows could show the budget} per
    `drift_evidence.thin_evidence` entry (as `loadtest.verdict.note_evidence` judges them); one that cannot be read
    (no budget: a hand-edited manifest) is left out."""
    records = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            unshown = int(entry["rows"]) < rows_to_show(float(entry["budget"]))
            records.append({"line": thin_evidence_line(entry, "--eval"), "not_shown": unshown})
        except (KeyError, TypeError, ValueError):
            continue
    return records


def recorded_thin_evidence(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The thin-evidence records `deploy` wrote in a served config; [] where none is recorded or readable."""
    return _thin_records(_json_parameter(config, THIN_EVIDENCE_PARAMETER))


def _thin_records(records: Any) -> list[dict[str, Any]]:
    """The well-formed {"line", "not_shown"} records of a list read back; anything else reads as none."""
    items = records if isinstance(records, list) else []
    return [
        {"line": str(r["line"]), "not_shown": bool(r.get("not_shown"))}
        for r in items
        if isinstance(r, dict) and r.get("line")
    ]


def recorded_drift_misses(config: Mapping[str, Any]) -> list[str]:
    """The drift misses `deploy` recorded in a served config (Triton's JSON or `parse_config`'s dict); [] where none
    is recorded (a build that held, one deployed before they were, another tool's) or readable."""
    lines = _json_parameter(config, DRIFT_MISSED_PARAMETER)
    return [str(line) for line in lines] if isinstance(lines, list) else []


def _json_parameter(config: Mapping[str, Any], name: str) -> Any:
    """The JSON a served config's string parameter `name` holds (Triton's JSON or `parse_config`'s dict); None where
    it is absent or not JSON."""
    value = (config.get("parameters") or {}).get(name) or {}
    text = value.get("string_value", "") if isinstance(value, dict) else ""
    try:
        return json.loads(str(text)) if text else None
    except ValueError:
        return None


def version_build(config: Mapping[str, Any], version: str, served: Sequence[str]) -> VersionBuild | None:
    """What `version`'s deploy recorded of its build, read from the model's served config; None where it is not
    recorded for that version, not another version's. `served`: the versions the server has ready, which decide it
    for a config from before versions' builds were recorded (as `serving.model_version.version_precision`)."""
    table = recorded_version_builds(config)
    if table is None:  # deployed before they were recorded per version: the config's own is the one served's
        return VersionBuild.of_config(config) if list(served) == [version] else None
    if version in table:
        return table[version]
    newest = max((int(v) for v in table if is_version_name(v)), default=0)
    return VersionBuild.of_config(config) if is_version_name(version) and int(version) > newest else None


def recorded_version_builds(config: Mapping[str, Any]) -> dict[str, VersionBuild] | None:
    """{version: its build's record} from the config's `VERSION_BUILDS_PARAMETER`; None where it has none (or an
    unreadable one)."""
    value = (config.get("parameters") or {}).get(VERSION_BUILDS_PARAMETER) or {}
    text = value.get("string_value") if isinstance(value, dict) else None
    try:
        table = json.loads(text) if isinstance(text, str) and text else None
    except ValueError:
        return None
    if not isinstance(table, dict):
        return None
    return {str(version): _version_build(record) for version, record in table.items()}


def _version_build(record: Any) -> VersionBuild:
    """One table entry as written by `with_version_builds`; what is not that reads as nothing recorded."""
    record = record if isinstance(record, dict) else {}
    missed = record.get("drift_missed")
    speed = record.get("in_process")
    lines = tuple(str(line) for line in missed) if isinstance(missed, list) else ()
    thin = tuple(_thin_records(record.get("thin_evidence")))
    return VersionBuild(lines, speed if isinstance(speed, dict) and "speedup" in speed else None, thin)


def with_version_builds(config: dict[str, Any], model_dir: Path, versions: Sequence[int]) -> dict[str, Any]:
    """`config` (the dict `write_config` takes) recording what each of `versions` of `model_dir` (those on disk as a
    deploy adds its own above them; the caller holds the folder's lock) recorded of its build, from its deploy
    record's config."""
    table = {str(v): _deployed_build(Path(model_dir) / str(v)).to_dict() for v in versions}
    value = json.dumps(table, ensure_ascii=False, sort_keys=True)
    parameters = {**(config.get("parameters") or {}), VERSION_BUILDS_PARAMETER: {"string_value": value}}
    return {**config, "parameters": parameters}


def _deployed_build(version_dir: Path) -> VersionBuild:
    """What a version's deploy record's config recorded as its own (nothing where it has no readable one)."""
    try:
        config = json.loads((version_dir / DEPLOY_RECORD).read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return VersionBuild()
    return VersionBuild.of_config(config) if isinstance(config, dict) else VersionBuild()
