"""What an export target produces: the files and what ``export`` prints about them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exported:
    """What a target produced: the files and what ``export`` prints about them."""
    files: dict[str, bytes]
    report: list[str]
