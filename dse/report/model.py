"""What a report holds, independent of how it is rendered (HTML or Markdown).

Text here is plain: the renderers escape it (Jinja2 autoescape for HTML,
``md_escape`` for Markdown), so names from user YAML never become markup.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Figure:
    """One PNG with its title, alternative text and a caption; ``slug`` names its file in Markdown."""

    slug: str
    title: str
    png: bytes
    alt: str
    caption: str = ""
    #: what the plot shows, for programs (the HTML carries it as JSON in data-plot): the chosen
    #: design's label and the designs drawn, each with ``chosen`` true where it is marked
    data: dict | None = None


@dataclass
class Table:
    """A table of already formatted cells."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    title: str
    intro: str = ""
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def plot_data(chosen: str | None, designs) -> dict:
    """A figure's ``data``: the chosen design and every design drawn, the chosen one flagged."""
    names = list(dict.fromkeys(str(d) for d in designs))
    return {"chosen": chosen, "points": [{"design": d, "chosen": d == chosen} for d in names]}


def fmt(value) -> str:
    """A table cell: numbers to 4 significant digits, missing values as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4g}"
    if hasattr(value, "item"):  # numpy scalars
        return fmt(value.item())
    return str(value)
