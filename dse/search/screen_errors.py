"""The error of a study the screen cannot estimate: one line naming the study file, the line
of its ``screen:`` key and why."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dse.errors import DseError, SpecError

if TYPE_CHECKING:
    from dse.search.resolve import Study


def screen_where(st: "Study") -> str | None:
    """'file:line' of the study's ``screen:`` key (the file alone where its line is unknown)."""
    if st.source is None:
        return None
    try:
        from dse.spec.yaml_io import read_yaml

        return read_yaml(st.source).where(("screen",))
    except (DseError, OSError):
        return st.source


def unscreenable(st: "Study", why: str) -> SpecError:
    """The one-line error of a study the screen cannot estimate: its file, line and field."""
    return SpecError(f"{why}; remove screen: to simulate every trial", where=screen_where(st), field="screen")
