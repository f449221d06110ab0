"""A Report as one self-contained HTML page: Jinja2 with autoescape, figures as data URIs."""
from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path

import jinja2

from dse.report.model import Report

TEMPLATE = "report.html.j2"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _environment() -> jinja2.Environment:
    text = resources.files("dse.report").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.DictLoader({TEMPLATE: text}), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["data_uri"] = _data_uri
    return env


def render_html(report: Report) -> str:
    """The page as a string; every name and value in it is HTML-escaped."""
    return _environment().get_template(TEMPLATE).render(report=report)


def write_html(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
