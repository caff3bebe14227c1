"""How long each kind of piece of the INT8 search's stoppable units took: what `SearchBudget.check` weighs before it
lets the next piece begin.

A unit is stopped between its pieces (calibration chunks, held-out batches, one output's drift, the profile), so the
piece under way at the deadline still ran to its end: human-models' nanodet, --max-search-s 600, was refused after
714 s (19 % past), and CenterNet's one output's drift ran 80 s on a 70 s budget (session 68). A piece is timed from
its `check` to the next (or to its unit's end) and recorded by its part ("the held-out drift run", "measuring drift of
output 'hm'"), the longest so far; one whose part took longer than the time left is not begun. A part never timed
yet (the first candidate's first output) still begins on any time left.
"""

from __future__ import annotations


class PieceTimes:
    """The longest piece of each part so far, and the piece under way (one record for a budget and its views)."""

    def __init__(self) -> None:
        self.longest: dict[str, float] = {}
        self._under_way: tuple[str, float] | None = None  # its part and when it began

    def begin(self, part: str, now: float) -> None:
        """The piece of `part` begins at `now`, ending the one under way ("" : an unnamed piece, not timed)."""
        self.end(now)
        self._under_way = (part, now) if part else None

    def end(self, now: float) -> None:
        """The piece under way, if any, ended at `now`."""
        if self._under_way is not None:
            part, began = self._under_way
            self.longest[part] = max(self.longest.get(part, 0.0), now - began)
            self._under_way = None

    def expected(self, part: str) -> float:
        """How long a piece of `part` is expected to take: the longest so far, 0.0 where none was timed."""
        return self.longest.get(part, 0.0)
