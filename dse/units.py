"""The one place where unit strings such as "819 GB/s" become SI floats.

Inside dse every quantity is a plain float in SI base units (seconds, bytes,
joules, watts, hertz), except areas, which are mm^2 and carry ``_mm2`` in their
names. Plain numbers in YAML are taken as already being in those units.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from dse.diskcache import cache_dir

if TYPE_CHECKING:
    import pint

# Pint (and numpy, which it imports) cost about 0.25 s of CPU at import and its registry
# another 0.2 s to parse: more than a whole `dse run`. Both are built on first use; the
# parsed definitions are kept by Pint's own cache (see ``_cached_registry``), and the strings
# of quantities Pint has read before come from a small on-disk cache of its own answers (see
# ``_Cache``), so that a run of familiar files never imports Pint at all.


@cache
def _registry() -> "pint.UnitRegistry":
    """Pint's default units, except that information (bit, byte) is a dimension.

    Pint treats the bit as dimensionless, which would let "24 MiB" pass as a
    frequency-free number and "3 GHz" pass as a bandwidth; we need it checked.
    The amended definitions are kept as a file in the user's cache folder so that Pint's
    own definitions cache (``cache_folder``) can keep them parsed: building the registry
    then takes ~0.02 s of CPU instead of ~0.2 s (see :func:`_cached_registry`).
    """
    import pint

    base = Path(pint.__file__).parent
    lines: list[str] = []
    for line in (base / "default_en.txt").read_text().splitlines():
        if line.strip().startswith("@import"):
            lines.extend((base / line.split()[1]).read_text().splitlines())
        elif line.strip() == "bit = []":
            lines.append("bit = [information]")
        else:
            lines.append(line)
    ureg = _cached_registry(pint, "\n".join(lines) + "\n")
    if ureg is None:
        ureg = pint.UnitRegistry(None)
        ureg.load_definitions(lines)
    # Operation counts, for compute rates such as "989 TFLOPS" or "92 TOPS".
    ureg.define("operation = [operation] = op")
    ureg.define("FLOP = operation")
    ureg.define("FLOPS = operation / second")
    ureg.define("OPS = operation / second")
    ureg.define("MAC = 2 * operation")
    return ureg


def _cached_registry(pint, definitions: str) -> "pint.UnitRegistry | None":
    """A registry read from ``definitions`` through Pint's definitions cache, in
    ``<cache dir>/pint`` (the file is rewritten only when its text changes, so Pint's cache,
    keyed on the file, stays valid); None where the folder is missing, unwritable or another
    user's, or Pint's cache fails: the caller then parses the definitions itself."""
    from dse.diskcache import read_own, write_atomic

    folder = cache_dir() / "pint"
    path = folder / "default_en_information.txt"
    data = definitions.encode()
    try:
        if read_own(path) != data and not write_atomic(path, data):
            return None
        if hasattr(os, "getuid") and folder.stat().st_uid != os.getuid():
            return None
        return pint.UnitRegistry(str(path), cache_folder=str(folder / "parsed"))
    except Exception:  # noqa: BLE001 - a cache that fails (corrupt, unreadable) is not used
        return None


# name -> (pint unit in which the SI float is expressed, example for messages)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "time": ("second", "100 ns"),
    "frequency": ("hertz", "700 MHz"),
    "bytes": ("byte", "24 MiB"),
    "bandwidth": ("byte / second", "819 GB/s"),
    "energy": ("joule", "0.2 pJ"),
    "energy_per_bit": ("joule / bit", "3.9 pJ/bit"),
    "power": ("watt", "40 W"),
    "area": ("millimeter ** 2", "331 mm^2"),
    "compute_rate": ("operation / second", "989 TFLOPS"),
    "length": ("meter", "28 nm"),
}


@cache
def _unit(unit: str) -> "pint.Quantity":
    return _registry()(unit)


def _parse(text: str) -> "pint.Quantity":
    return _registry().Quantity(text)


class _Cache:
    """Pint's answers for strings it has read: text -> [dimension name, SI value].

    Only successful readings with one of the known dimensions (or none) are kept, so
    every error message still comes from Pint. The file lives in the user's cache
    folder (``$DSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/dse``, else ``~/.cache/dse``),
    is keyed on the size and time of Pint's definitions file and on this module, and is
    replaced atomically; an unreadable or unwritable one is simply not used.
    """

    def __init__(self) -> None:
        self.entries: dict[str, list] | None = None
        self.key = ""
        self.path: Path | None = None

    def _load(self) -> dict[str, list]:
        self.entries = {}
        try:
            spec = importlib.util.find_spec("pint")
            defs = Path(spec.origin).parent / "default_en.txt"  # type: ignore[union-attr, arg-type]
            d, m = defs.stat(), Path(__file__).stat()
            self.key = f"{d.st_size}-{d.st_mtime_ns}-{m.st_size}-{m.st_mtime_ns}"
            self.path = cache_dir() / "quantities.json"
            data = json.loads(self.path.read_text())
            if data.get("key") == self.key and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        return self.entries

    def get(self, text: str) -> list | None:
        entries = self.entries if self.entries is not None else self._load()
        return entries.get(text)

    def put(self, text: str, dimension: str, si: float) -> None:
        entries = self.entries if self.entries is not None else self._load()
        entries[text] = [dimension, si]
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:  # keep what other processes added since this one read the file
                data = json.loads(self.path.read_text())
                if data.get("key") == self.key and isinstance(data.get("entries"), dict):
                    entries.update({k: v for k, v in data["entries"].items() if k not in entries})
            except (OSError, ValueError):
                pass
            tmp.write_text(json.dumps({"key": self.key, "entries": entries}))
            os.replace(tmp, self.path)
        except OSError:
            self.path = None  # read-only home: keep the answers in memory only


_cache = _Cache()


_LABELS = {
    "time": "a time", "frequency": "a frequency", "bytes": "a size in bytes",
    "bandwidth": "a bandwidth", "energy": "an energy", "energy_per_bit": "an energy per bit",
    "power": "a power", "area": "an area", "compute_rate": "a compute rate", "length": "a length",
}


def _describe(q: "pint.Quantity") -> str:
    for name, (unit, _) in DIMENSIONS.items():
        if q.dimensionality == _unit(unit).dimensionality:
            return _LABELS[name]
    return f"a quantity of dimension {q.dimensionality}"


#: A quantity string: one plain number, then a unit made of names, ``/``, ``*`` and one-digit
#: powers ("819 GB/s", "331 mm^2", "3.9 pJ/bit"). Pint would also evaluate arithmetic
#: ("9**9**9 Hz" never finishes) and its parser is quadratic in the length; both are refused.
_UNIT_NAME = r"[A-Za-zµμΩ°%_][A-Za-z0-9µμΩ°_]*(?:\s*(?:\^|\*\*)\s*-?[1-4]|[²³])?"
_QUANTITY = re.compile(
    rf"\s*[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{{1,4}})?|(?i:inf|nan|infinity)\b)\s*"
    rf"(?:{_UNIT_NAME}(?:\s*[/*·]\s*{_UNIT_NAME})*)?\s*")
MAX_QUANTITY_CHARS = 80


def to_si(value: object, dimension: str) -> float:
    """Convert a YAML value ("819 GB/s" or a plain number) to an SI float.

    Raises ValueError with a message naming the expected dimension when the
    string has another dimension ("3 GHz" given as a bandwidth) or does not parse.
    """
    unit, example = DIMENSIONS[dimension]
    if isinstance(value, bool):
        raise ValueError(f"expected {_LABELS[dimension]} such as '{example}', got {value!r}")
    if isinstance(value, (int, float)):
        try:
            return _finite(float(value), value, dimension)
        except OverflowError:
            raise ValueError(f"{_short(value)} is out of range for {_LABELS[dimension]}") from None
    if not isinstance(value, str):
        raise ValueError(f"expected {_LABELS[dimension]} such as '{example}', got {_short(value)}")
    if len(value) > MAX_QUANTITY_CHARS or not _QUANTITY.fullmatch(value):
        raise ValueError(f"cannot read {_short(value)} as {_LABELS[dimension]} (a number and a unit, "
                         f"e.g. '{example}')")
    text = value.strip()
    known = _cache.get(text)
    if known is not None and known[0] in ("", dimension):
        return _finite(float(known[1]), value, dimension)
    try:
        q = _parse(text)
    except Exception:  # pint raises several types for garbage input
        raise ValueError(f"cannot read {_short(value)} as {_LABELS[dimension]} (e.g. '{example}')") from None
    if not hasattr(q, "dimensionality"):  # a bare number such as "42"
        return _remember(text, "", float(q), value, dimension)
    if q.dimensionless:
        return _remember(text, "", float(q.magnitude), value, dimension)
    target = _unit(unit)
    if q.dimensionality != target.dimensionality:
        raise ValueError(
            f"{value!r} is {_describe(q)}, expected {_LABELS[dimension]} such as '{example}'"
        )
    try:
        return _remember(text, dimension, float(q.to(unit).magnitude), value, dimension)
    except OverflowError:
        raise ValueError(f"{_short(value)} is out of range for {_LABELS[dimension]}") from None


def _remember(text: str, found: str, si: float, value: object, dimension: str) -> float:
    x = _finite(si, value, dimension)
    _cache.put(text, found, x)
    return x


def _finite(x: float, value: object, dimension: str) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{_short(value)} is not a finite {dimension.replace('_', ' ')} "
                         f"(at most about 1.8e308 in SI units)")
    return x


def _short(value: object, limit: int = 40) -> str:
    """repr of a value, cut to ``limit`` characters (a 5,000-digit number is not echoed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {len(str(abs(value)))}-digit integer" if value.bit_length() < 14000 else "a huge integer"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def fmt(value: float, dimension: str) -> str:
    """An SI float of ``dimension`` for people, to four digits (`dse check`, messages): no Pint."""
    from dse.humanize import DIMENSION_UNITS, human

    return human(value, DIMENSION_UNITS[dimension], sig=4)
