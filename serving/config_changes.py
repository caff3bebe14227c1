"""How a new config changes what the served one's clients send and receive: tensors added, removed or reshaped
(`interface_changes`), and requests of more rows than the new one takes (`batch_limit_cut`), in deploy's words.
"""

from __future__ import annotations

from typing import Any

from serving.model_config import to_protobuf_text


def interface_changes(served: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How `new` (a config dict) changes what clients of `served` (a config as `parse_config` reads it) send and
    receive: tensors added, removed, or of another type or shape; [] if none. Shapes as clients see them: a batched
    config's dims behind its batch axis (-1), so max_batch_size 0 with dims [-1, 16] and 8 with [16] are alike; an
    output's -1 axes fixed are no change (`_fixes_dynamic`), an input's are (requests of other sizes would fail)."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    message = text_format.Parse(to_protobuf_text(new), model_config_pb2.ModelConfig())
    new = json_format.MessageToDict(message, preserving_proto_field_name=True)  # the form parse_config gives
    changes = []
    for kind in ("input", "output"):
        before = {t["name"]: t for t in served.get(kind, [])}
        after = {t["name"]: t for t in new.get(kind, [])}
        changes += [f"{kind} '{name}' removed" for name in before if name not in after]
        changes += [f"{kind} '{name}' added" for name in after if name not in before]
        for name in (n for n in before if n in after):
            for field_name, words in (("data_type", "type"), ("dims", "dims")):
                was, now = before[name].get(field_name), after[name].get(field_name)
                if field_name == "dims":
                    was, now = _client_shape(served, was), _client_shape(new, now)
                    if kind == "output" and _fixes_dynamic(was, now):
                        continue
                if was != now:
                    changes.append(f"{kind} '{name}' {words} {was} → {now}")
    return changes


def batch_limit_cut(served: dict[str, Any], new: dict[str, Any]) -> str | None:
    """How `new` lowers the rows a request may carry below what `served` takes ("max_batch_size 32 → 4 (requests of
    5 to 32 rows would be refused)"), None where it does not: a live deploy at --max-batch 4 over 32 passed the
    interface check in silence, and every 8-row request failed from the swap on (issue 11, session 40). From batched
    to 0 the tensors' shapes say it (`interface_changes`). From 0 to N is a cut where every input of `served` takes
    any size on axis 0 (`_no_row_limit`): a plain deploy over a tune winner's max batch 0 wrote 32, and a 100-row
    request that version 1 answered was refused ("batch-size must be <= 32", session 56)."""
    was, now = int(served.get("max_batch_size", 0) or 0), int(new.get("max_batch_size", 0) or 0)
    if was == 0 and now > 0 and _no_row_limit(served):
        return f"max_batch_size 0 → {now} (requests of more than {now} rows would be refused; was no row limit)"
    if not 0 < now < was:
        return None
    return f"max_batch_size {was} → {now} (requests of {now + 1} to {was} rows would be refused)"


def _no_row_limit(config: dict[str, Any]) -> bool:
    """Whether `config`, served with max_batch_size 0, takes requests of any number of rows: each input's axis 0 is
    dynamic (-1). A fixed axis 0 (an --unbatched build's 1) is a shape, which `interface_changes` compares."""
    try:
        return all(list(t.get("dims") or []) and int(t["dims"][0]) == -1 for t in config.get("input", []))
    except (TypeError, ValueError, AttributeError):
        return False


def _fixes_dynamic(was: list[int], now: list[int]) -> bool:
    """`now` is `was` with some -1 axes fixed. For an output no client feels it: what it sends is unchanged, and the
    answers it read as [-1, -1] it reads as their sizes. Session 46: optimize now writes the sizes fusion resolved
    (YOLO11n-pose's output, [-1, 56, 8400]), and redeploying such a build over a version deployed with [-1, -1, -1]
    was refused as an interface change."""
    return len(was) == len(now) and all(w in (-1, n) for w, n in zip(was, now, strict=True))


def _client_shape(config: dict[str, Any], dims: list[Any] | None) -> list[int]:
    """A tensor's shape as a client sends or reads it: behind the batch axis where the config batches."""
    shape = [int(d) for d in dims or []]
    return [-1, *shape] if int(config.get("max_batch_size", 0)) > 0 else shape
