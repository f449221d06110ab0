"""Finding and loading architecture files: by path, or by the name of a bundled design."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from dse.errors import SpecError, SpecWarning
from dse.paths import exists
from dse.spec.architecture import Architecture

if TYPE_CHECKING:
    from dse.spec.yaml_io import YamlDoc

# YAML, the variant builder and the technology tables are imported where a file is read, not
# here: `dse run` of a design validated before only resolves its name (see dse.spec.cache).


#: where each kind of bundled YAML sits in a source checkout (systems beside the designs)
_IN_REPOSITORY = {"architectures": "architectures", "studies": "studies", "systems": "architectures/systems"}


def bundled_dir(kind: str) -> Path:
    """Folder of bundled YAML ('architectures', 'systems' or 'studies'), wherever dse is installed.

    A wheel ships them inside the package (dse/architectures); a source checkout
    or an editable install keeps them in the repository (architectures/, architectures/systems/,
    studies/).
    """
    package = Path(str(resources.files("dse")))
    inside = package / kind
    if inside.is_dir() and any(inside.glob("*.yaml")):
        return inside
    return package.parent / _IN_REPOSITORY.get(kind, kind)


def bundled_names(kind: str) -> list[str]:
    return sorted(p.stem for p in bundled_dir(kind).glob("*.yaml"))


def resolve(path_or_name: str | Path, kind: str) -> Path:
    """A path that exists, or the bundled file of that name; else a SpecError listing names."""
    p = Path(path_or_name)
    if exists(p):
        return p
    candidate = bundled_dir(kind) / f"{path_or_name}.yaml"
    if exists(candidate):
        return candidate
    if p.suffix in (".yaml", ".yml") or "/" in str(path_or_name):
        raise SpecError("file not found", where=str(path_or_name))
    names = ", ".join(bundled_names(kind)) or "none"
    if kind == "architectures" and exists(bundled_dir("systems") / f"{path_or_name}.yaml"):
        raise SpecError(f"'{path_or_name}' is a bundled system of several chips, not one chip: describe or run it "
                        f"with `dse system {path_or_name}` (bundled architectures: {names})")
    raise SpecError(f"no file or bundled {kind[:-1]} named '{path_or_name}' (bundled: {names})")


def architecture_from_doc(doc: YamlDoc, overrides: dict[str, Any] | None = None) -> Architecture:
    """Validate a parsed file, with overrides applied by the variant builder (errors name the
    file and line of the field where it has one)."""
    from dse.spec.variants import apply_edits
    from dse.spec.yaml_io import spec_error_from_validation

    data = doc.data
    if not isinstance(data, dict):
        raise SpecError("expected a mapping of architecture fields at the top level", where=doc.name)
    if "chips" in data and "topology" in data:  # (the shape dse.system.spec.is_system_doc reads)
        raise SpecError("this file describes a system of several chips, not one chip: describe or run it "
                        f"with `dse system {doc.name}`", where=doc.name)
    if overrides:
        data = apply_edits(data, overrides)
    try:
        arch = Architecture.model_validate(data)
    except ValidationError as exc:
        error = spec_error_from_validation(exc, doc, Architecture)
        if overrides:
            override = _override_error(error, overrides)
            if override is not None:
                raise override from None
        raise error from None
    warn_implausible(arch, data, doc)
    return arch


def _override_error(error: SpecError, overrides: dict[str, Any]) -> SpecError | None:
    """An error in a value the overrides set, phrased for the override (not for the file it
    was applied to, which may be a bundled one inside the installed package)."""
    from dse.spec.variants import split_path

    field = split_path(error.field) if error.field else []
    for path in overrides:
        if len(field) >= 2 and field[-1] == split_path(path)[-1]:
            return SpecError(error.message, where="overrides", field=path)
    return None


def warn_implausible(arch: Architecture, raw: Any, doc: YamlDoc | None) -> None:
    """A SpecWarning (file:line: field: what) per field outside its plausible range."""
    import warnings

    from dse.spec.plausible import plausibility_warnings
    from dse.spec.yaml_io import dotted

    for loc, message in plausibility_warnings(arch, raw):
        where = doc.where(loc) if doc is not None else arch.name
        warnings.warn(SpecWarning(f"{where}: {dotted(loc)}: {message}"), stacklevel=2)


def load_architecture(path_or_name: str | Path | Architecture,
                      overrides: dict[str, Any] | None = None) -> Architecture:
    """Load and validate an architecture file (or bundled name), applying overrides."""
    from dse.spec.variants import build_variant, canonical_doc
    from dse.spec.yaml_io import read_yaml

    if isinstance(path_or_name, Architecture):
        if not overrides:
            return path_or_name
        return build_variant(canonical_doc(path_or_name), overrides).arch
    doc = read_yaml(resolve(path_or_name, "architectures"))
    return architecture_from_doc(doc, overrides)
