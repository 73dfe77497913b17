"""What a summary says, as a few kinds of blocks, before it is rendered to a format.

Built once and rendered twice (Markdown, HTML), so both always say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    text: str
    url: str


Cell = str | Link | None


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class DataTable:
    headers: Sequence[str]
    rows: list[list[Cell]] = field(default_factory=list)
    css_class: str = ""  # HTML only: a table the stylesheet lays out in its own way


@dataclass
class Image:
    src: str  # relative path
    alt: str


Block = Heading | Para | DataTable | Image
