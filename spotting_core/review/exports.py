"""Exports of the review store: Labels-v2.json (training data), results_spotting.json and CSV.

`ReviewStore` inherits these methods; they read only `self.events(match_id)`, the current state.
Who decided an event (`decided_by`, when the editor was known) goes into the CSV as a column and into
Labels-v2.json as `reviewedBy` on each annotation (official readers ignore keys they do not know).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import atomic_write_text, results_to_dict
from spotting_core.io.tables import labels_to_dict

STATUSES = ("pending", "accepted", "rejected")


class ReviewExports:
    """The export methods of `ReviewStore` (a mixin: needs `events(match_id) -> DataFrame`)."""

    def select(self, match_id: str, statuses: Iterable[str]):
        """The match's events whose status is one of `statuses`."""
        statuses = tuple(statuses)
        unknown = set(statuses) - set(STATUSES)
        if unknown:
            raise SpottingError(f"unknown status {', '.join(sorted(unknown))}; choose from {', '.join(STATUSES)}")
        df = self.events(match_id)
        return df[df["status"].isin(statuses)]

    def labels_dict(self, match_id: str, *, statuses: Iterable[str] = ("accepted",), url_local: str = "") -> dict:
        """The reviewed events as a Labels-v2.json object (training data): accepted ones by default."""
        df = self.select(match_id, statuses).assign(team="not applicable", visibility="visible")
        df = df.sort_values(["half", "position_ms"], kind="stable")  # the order labels_to_dict writes
        data = labels_to_dict(df, url_local=url_local)
        for ann, who in zip(data["annotations"], df["decided_by"]):
            if who:
                ann["reviewedBy"] = who
        return data

    def results_dict(self, match_id: str, *, statuses: Iterable[str] = ("pending", "accepted"),
                     url_local: str = "") -> dict:
        """The reviewed events as a results_spotting.json object: everything not rejected by default."""
        return results_to_dict(self.select(match_id, statuses), url_local=url_local)

    def csv_text(self, match_id: str) -> str:
        """Every event with its status, original time and label, and who decided it, as CSV."""
        df = self.events(match_id)
        return df.drop(columns=["frame"]).to_csv(index=False)

    def export_labels(self, match_id: str, path: str | os.PathLike, **kwargs) -> Path:
        return atomic_write_text(path, json.dumps(self.labels_dict(match_id, **kwargs), indent=2))

    def export_results(self, match_id: str, path: str | os.PathLike, **kwargs) -> Path:
        return atomic_write_text(path, json.dumps(self.results_dict(match_id, **kwargs), indent=2))

    def export_csv(self, match_id: str, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, self.csv_text(match_id))
