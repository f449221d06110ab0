"""A Report as Markdown, with its figures written as PNG files in a folder beside it."""
from __future__ import annotations

import re
from pathlib import Path

from dse.report.model import Report, Table

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_escape(text: str) -> str:
    """Plain text safe in Markdown: HTML and Markdown markup are neutralised."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    return text.replace("\n", " ")


def _table(t: Table) -> list[str]:
    lines = []
    if t.caption:
        lines += [f"*{md_escape(t.caption)}*", ""]
    lines.append("| " + " | ".join(md_escape(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    for row in t.rows:
        lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
    return lines + [""]


def render_markdown(report: Report, image_dir: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text and the images it links to (file name -> PNG bytes) under ``image_dir``."""
    lines = [f"# {md_escape(report.title)}", ""]
    images: dict[str, bytes] = {}
    if report.subtitle:
        lines += [md_escape(report.subtitle), ""]
    for key, value in report.facts:
        lines.append(f"- **{md_escape(key)}**: {md_escape(value)}")
    lines.append("")
    for note in report.notes:
        lines += [f"> **Note:** {md_escape(note)}", ""]
    for i, section in enumerate(report.sections, 1):
        lines += [f"## {i}. {md_escape(section.title)}", ""]
        if section.intro:
            lines += [md_escape(section.intro), ""]
        for note in section.notes:
            lines += [f"> **Note:** {md_escape(note)}", ""]
        for t in section.tables:
            lines += _table(t)
        for fig in section.figures:
            name = f"{i:02d}-{fig.slug}.png"
            images[name] = fig.png
            if fig.title:
                lines += [f"### {md_escape(fig.title)}", ""]
            lines += [f"![{md_escape(fig.alt)}]({image_dir}/{name})", ""]
            if fig.caption:
                lines += [f"*{md_escape(fig.caption)}*", ""]
    lines.append("*Written by `dse report` from the result tables; no simulation was rerun.*")
    return "\n".join(lines) + "\n", images


def write_markdown(report: Report, path: Path) -> Path:
    """``path`` and its images in ``<stem>_files/`` beside it."""
    image_dir = f"{path.stem}_files"
    text, images = render_markdown(report, image_dir)
    folder = path.parent / image_dir
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        if old.name not in images:
            old.unlink()
    for name, png in images.items():
        (folder / name).write_bytes(png)
    path.write_text(text, encoding="utf-8")
    return path
