"""Each served model's precision, as the verdict knows it: the one its deployment recorded in the served config, else
the one its name says (`digits_int8`), for results of older deployments or another tool's; with the report's lines
for a name that says another precision than the deployment recorded, and for precisions taken from names or unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.accuracy_results import AccuracyReport
from loadtest.load_run import LoadRun

NAMED_PRECISIONS = ("int8", "fp16", "fp32")  # what a name can say; the first it holds counts


def named_precision(name: str) -> str | None:
    """The precision a model's name says (`digits_int8`: int8), or None: the rule only where none is recorded."""
    lowered = name.lower()
    return next((p for p in NAMED_PRECISIONS if p in lowered), None)


@dataclass(frozen=True)
class ServedPrecisions:
    """Each served model's precision: as its deployment recorded it in the served config (`recorded`), else as its
    name says, for results of older deployments or another tool's."""

    recorded: dict[str, str]

    @classmethod
    def of(cls, runs: list[LoadRun], accuracy: AccuracyReport | None) -> ServedPrecisions:
        variants = accuracy.variants if accuracy is not None else []
        found = [(v.model, v.precision) for v in variants] + [(run.model, run.precision) for run in runs]
        return cls({model: precision for model, precision in found if precision})

    def precision(self, model: str) -> str | None:
        return self.recorded.get(model) or named_precision(model)

    def unknown(self, models: list[str]) -> list[str]:
        """The models neither a deployment's record nor a name gives a precision."""
        return [m for m in dict.fromkeys(models) if not self.precision(m)]

    def notes(self, models: list[str], loaded: list[str], reference: str | None) -> list[str]:
        """A line per name that says another precision than the deployment recorded (of `models`), one if the
        evaluated reference is not FP32, and one for the `loaded` models whose precision came from their name, or
        from nowhere."""
        lines = [self._contradiction(m) for m in dict.fromkeys(models)]
        served_fp32 = any(self.recorded.get(m) == "fp32" for m in loaded)
        if reference and self.recorded.get(reference) == "int8" and served_fp32:  # `served_speedups` takes it as INT8
            lines.append(
                f"the reference {reference} (evaluate --reference) is served as INT8: the served verdict compares it "
                "as INT8 with the runs served as FP32, and the accuracy drops are against it"
            )
        elif reference and self.recorded.get(reference, "fp32") != "fp32":
            lines.append(
                f"the reference {reference} (evaluate --reference) is served as {self.recorded[reference].upper()}, "
                "and the verdict compares against it as FP32"
            )
        return [line for line in lines if line] + self._unrecorded(loaded)

    def _unrecorded(self, loaded: list[str]) -> list[str]:
        """A line for the models whose precision came from their name, and one for those it came from nowhere."""
        guessed = [m for m in dict.fromkeys(loaded) if m not in self.recorded and named_precision(m)]
        unknown = self.unknown(loaded)
        why = "their served config records none (deployed before quantserve recorded it, or not by quantserve)"
        lines = [f"precision of {', '.join(guessed)} taken from the model names: {why}"] if guessed else []
        if unknown:
            lines.append(
                f"precision of {', '.join(unknown)} unknown: {why} and the names say none, so they are not "
                "compared as INT8 or FP32; redeploy them with quantserve deploy"
            )
        return lines

    def _contradiction(self, model: str) -> str:
        recorded, named = self.recorded.get(model), named_precision(model)
        if not recorded or not named or named == recorded:
            return ""
        return (
            f"{model} is served as {recorded.upper()} (its deployment's precision), though its name says "
            f"{named.upper()}: the verdict goes by what is deployed"
        )
