"""Dotted paths into an architecture ('compute.mxu.rows') and applying values to them.

Lists of named components are addressed by name (``memories.hbm.channels``) or
by index (``compute[0].rows``); the search uses these paths as parameter names.
"""
from __future__ import annotations

import difflib
from typing import Any

from dse.errors import SpecError


def _split(path: str) -> list[str]:
    return [p for p in path.replace("[", ".").replace("]", "").split(".") if p]


def _child(node: Any, key: str, path: str) -> tuple[Any, Any]:
    """Return (container, key) for one step of a path."""
    if isinstance(node, list):
        if key.isdigit() and int(key) < len(node):
            return node, int(key)
        for i, item in enumerate(node):
            if isinstance(item, dict) and item.get("name") == key:
                return node, i
        raise KeyError(key)
    if isinstance(node, dict):
        return node, key
    raise KeyError(key)


def apply_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    """Set each dotted path in ``data`` (modified in place and returned)."""
    for path, value in overrides.items():
        parts = _split(path)
        node: Any = data
        try:
            for key in parts[:-1]:
                container, k = _child(node, key, path)
                node = container[k]
            container, k = _child(node, parts[-1], path)
        except KeyError:
            raise SpecError(unknown_path_message(data, path)) from None
        container[k] = value
    return data


def field_paths(data: Any, prefix: str = "") -> list[str]:
    """Every settable dotted path in a raw architecture dict (components by name)."""
    out: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (dict, list)):
                out.extend(field_paths(v, p))
            else:
                out.append(p)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            key = item.get("name", str(i)) if isinstance(item, dict) else str(i)
            out.extend(field_paths(item, f"{prefix}.{key}"))
    return out


def unknown_path_message(data: dict, path: str) -> str:
    valid = field_paths(data)
    close = difflib.get_close_matches(path, valid, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"'{path}' names no field of the architecture{hint}"
