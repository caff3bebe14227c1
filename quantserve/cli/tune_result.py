"""What `quantserve tune` found, as data: the trials, the best and the baseline (confirmed or the search's own),
the confirmation run's pair, what was deployed and re-measured; `to_json` is what tune.json holds and what
tune.html and the command's summary are rendered from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from quantserve.cli.tune_trials import Trial, TuneSettings


@dataclass
class TuneResult:
    """The search's trials, its winner and the naive baseline; `to_json` is what tune.json holds.

    `best` and `baseline` are the confirmation run (both measured again, back to back, after the
    search) where `confirmed`, else the search's own figures (it stopped early, or the confirmation failed);
    `search_best` and `search_baseline` are the same configurations as the search saw them, and `confirmed_pick`
    the search's pick in the confirmation run: where it lost to the baseline, `best` is the baseline and that run
    is the pick's only record (a run printed as "best 1757 req/s" with the baseline's figures twice, the pick's
    own confirmation in neither the output nor tune.json).
    """

    trials: list[Trial]
    best: Trial
    baseline: Trial
    seconds: float
    settings: TuneSettings | None = None
    remeasured: dict[str, Any] = field(default_factory=dict)
    search_best: Trial | None = None
    search_baseline: Trial | None = None
    deployed: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    stopped: str = ""  # why the search stopped before its trials were spent (`tune_reach`); "" where it did not
    confirmed: bool = False  # best and baseline are the confirmation run's (False: the search's own figures)
    failure: str = ""  # no trial served a request (`tune_failed.failure_line`): the one line said; "" where one did
    load_bound: str = ""  # why a closed loop's users alone miss the SLO (`tune_reach.load_bound`); "" where not
    confirmed_pick: Trial | None = None  # the search's pick in the confirmation run (None: not confirmed)
    interrupted: str = ""  # the stage Ctrl-C or SIGTERM stopped (`tune_interrupted`); "" where it ran to its end
    # the confirmation run as far as Ctrl-C or SIGTERM let it get: the baseline's run, then the pick's, the one cut
    # partial (`interrupted`); never `best` or `baseline`, which stay the search's own figures
    cut_confirmation: list[Trial] = field(default_factory=list)

    @property
    def gain(self) -> float:
        """Best goodput over the baseline's (NaN when the baseline served nothing within the SLO)."""
        return self.best.goodput_rps / self.baseline.goodput_rps if self.baseline.goodput_rps > 0 else math.nan

    @property
    def slo_met(self) -> bool:
        """Whether the winner meets the SLO by `tune_trials.meets_slo` (every request served, p99 within it): the
        most goodput can still miss it (a burst too big, requests that fail)."""
        from quantserve.cli.tune_trials import meets_slo

        return self.settings is None or meets_slo(self.best, self.settings.slo_p99_ms)

    @property
    def winner_precision(self) -> str:
        """The best's precision label where it won, meeting the SLO or deployed anyway (--allow-slo-miss); "" where no
        configuration won (the closest to the SLO is no winner: an SLO of 0.05 ms was said won by int8), where the
        search was interrupted before anything was deployed (its best so far won nothing), or with one build."""
        if self.interrupted and not self.deployed:
            return ""
        return self.best.config.precision if self.slo_met or self.deployed else ""

    def to_json(self) -> dict:
        return {
            "trials": [t.to_json() for t in self.trials],
            "best": self.best.to_json(),
            "baseline": self.baseline.to_json(),
            "gain": self.gain,
            "slo_met": self.slo_met,
            "search_best": (self.search_best or self.best).to_json(),
            "search_baseline": (self.search_baseline or self.baseline).to_json(),
            "winner_precision": self.winner_precision,
            "search": {
                "trials": len(self.trials),
                "pruned": sum(t.pruned for t in self.trials),
                "failed": sum(bool(t.error) for t in self.trials),
                "seconds": round(self.seconds, 1),
                "stopped": self.stopped,
                "confirmed": self.confirmed,
                "load_bound": self.load_bound,
            },
            "settings": self.settings_json(),
            "deployed": self.deployed,
            "remeasured": self.remeasured,
            "machine": self.machine,
            "failure": self.failure,
            "confirmation": self.confirmation(),
            **self.verdict(),
            "interrupted": bool(self.interrupted),
            "interrupted_during": self.interrupted,
        }

    def settings_json(self) -> dict[str, Any]:
        """What was asked, and, where a trace's pass is longer than a window, what each window sees of it
        (`tune_trace.pass_note`, "" where not)."""
        from quantserve.cli.tune_trace import pass_note

        if self.settings is None:
            return {}
        return {**self.settings.to_json(), "trace_pass_note": pass_note(self.settings)}

    def verdict(self) -> dict[str, Any]:
        """The SLO's outcome in words (`tune_verdict`): the trials that met it in the search (where the confirmation
        missed, "none met it" would be false), the most of the cores other processes took, and the line said; where
        the SLO bound no run, that (`tune_verdict.slo_unbound_line`)."""
        from quantserve.cli.tune_trials import met_slo
        from quantserve.cli.tune_verdict import (
            machine_line,
            measured,
            others_share,
            outside_line,
            slo_missed,
            slo_unbound_line,
        )

        slo = self.settings.slo_p99_ms if self.settings else math.nan
        share = others_share(measured(self))
        return {
            "slo_met_in_search": [{"config": t.config.label(), "p99_ms": t.p99_ms} for t in met_slo(self.trials, slo)],
            "slo_missed": "" if self.slo_met or self.failure else slo_missed(self, advice=True),
            "others_share_max": share,
            "shared_machine": machine_line(self),
            # the baseline's or the best's latency mostly the client's (`tune_verdict.outside_line`); "" where not
            "outside_server": outside_line(self),
            # every run within the SLO with room: goodput is throughput, the SLO chose nothing (`slo_unbound_line`)
            "slo_unbound": "" if self.failure else slo_unbound_line(self),
        }

    def confirmation(self) -> dict[str, Any]:
        """Both runs of the confirmation and which one was deployed, why; where it was cut, its runs as far as they got
        and that nothing was kept of them; {} where nothing was confirmed."""
        if self.cut_confirmation:
            runs = dict(zip(("baseline", "pick"), (t.to_json() for t in self.cut_confirmation), strict=False))
            why = "interrupted: Ctrl-C or SIGTERM cut the confirmation run; the search's own figures stand"
            return {**runs, "kept": "", "why": why, "interrupted": True}
        if not self.confirmed or self.confirmed_pick is None:
            return {}
        pick, kept = self.confirmed_pick, "pick" if self.best is self.confirmed_pick else "baseline"
        why = {
            "pick": "the search's pick beat the baseline when both were measured again, back to back",
            "baseline": "the search's pick did not beat the baseline when both were measured again, back to back",
        }[kept]
        if pick.config == self.baseline.config:
            why = "the search's pick is the baseline"
        return {"baseline": self.baseline.to_json(), "pick": pick.to_json(), "kept": kept, "why": why}
