"""The system YAML: chips (one design used N times, or several), named link types, a
topology and, optionally, a default parallelism. Pydantic models; unit strings become SI.

    name: dgx-h100-x8
    chips:
      - {architecture: h100-class, count: 64}       # bundled name or path next to this file
    links:
      nvlink: {preset: nvlink4, lanes: 18}           # preset, fields may be overridden
      ib: {preset: ib-ndr}
      custom: {bandwidth: 50 GB/s, latency: 1 us, energy_per_bit: 10 pJ/bit, static_power: 2 W}
    topology:
      kind: two_level                                # ring | torus | switched | two_level | ocs_pod
      node_size: 8
      intra: {link: nvlink}
      inter: {link: ib, switch: {preset: tomahawk5}}
    parallelism: {data: 8, tensor: 8}
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dse.errors import SpecError
from dse.spec.quantities import Bytes, BytesPerSecond, JoulesPerBit, Seconds, Watts
from dse.spec.yaml_io import YamlDoc, at, read_yaml, spec_error_from_validation
from dse.system.links import link_preset, switch_preset


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _fill(data: Any, preset_of) -> Any:
    """Fields of the named preset under the fields written (those written win)."""
    if isinstance(data, dict) and data.get("preset") is not None:
        try:
            base = preset_of(str(data["preset"]))
        except SpecError as exc:
            raise ValueError(at("preset", exc.message)) from None
        return {**base, **data}
    return data


class LinkSpec(_Strict):
    """One link type: per-direction bandwidth of one link, ``lanes`` of them ganged per port."""

    preset: str | None = None
    kind: Literal["electrical", "optical"] = "electrical"
    bandwidth: BytesPerSecond
    latency: Seconds
    energy_per_bit: JoulesPerBit
    static_power: Watts
    lanes: int = Field(default=1, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_preset(cls, data: Any) -> Any:
        return _fill(data, link_preset)

    @property
    def bandwidth_bps(self) -> float:
        """Bytes per second per direction of a port (all its lanes)."""
        return self.bandwidth * self.lanes

    @property
    def static_power_w(self) -> float:
        return self.static_power * self.lanes


class SwitchSpec(_Strict):
    """A switch: aggregate bandwidth it forwards, its latency and energy per bit forwarded.

    ``hops``: switch chips a message crosses (1: one switch; 3: a two-tier leaf-spine
    fabric, leaf-spine-leaf), multiplying latency and energy per bit. ``nonblocking``: the
    fabric is sized never to limit (a fat tree with enough spines): its bandwidth is not a
    shared resource, only its latency and energy count."""

    preset: str | None = None
    bandwidth: BytesPerSecond
    latency: Seconds
    energy_per_bit: JoulesPerBit
    static_power: Watts
    hops: int = Field(default=1, gt=0)
    nonblocking: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_preset(cls, data: Any) -> Any:
        return _fill(data, switch_preset)


class Level(_Strict):
    """One level of a two-level system: the link each chip has into it, and its switch
    (none: chips of the level are fully connected point to point)."""

    link: str
    switch: SwitchSpec | None = None


TopologyKind = Literal["ring", "torus", "switched", "two_level", "ocs_pod"]


class TopologySpec(_Strict):
    kind: TopologyKind
    link: str | None = None
    shape: list[int] | None = None         # torus / ocs_pod slice shape
    switch: SwitchSpec | None = None       # switched
    node_size: int | None = Field(default=None, gt=0)   # two_level
    intra: Level | None = None
    inter: Level | None = None
    cube: list[int] = [4, 4, 4]            # ocs_pod: electrically wired block
    optical: str | None = None             # ocs_pod: link type between blocks, through the OCS

    @model_validator(mode="after")
    def _fields_of_kind(self) -> "TopologySpec":
        need = {"ring": ("link",), "torus": ("link", "shape"), "switched": ("link", "switch"),
                "two_level": ("node_size", "intra", "inter"), "ocs_pod": ("link", "optical", "shape")}
        for f in need[self.kind]:
            if getattr(self, f) is None:
                raise ValueError(at(f, f"a {self.kind} topology needs '{f}'"))
        if self.shape is not None:
            if not 1 <= len(self.shape) <= 3 or any(d < 1 for d in self.shape):
                raise ValueError(at("shape", f"expected 1 to 3 positive dimensions, got {self.shape}"))
        if self.kind == "ocs_pod":
            if len(self.shape) != 3 or len(self.cube) != 3:
                raise ValueError(at("shape", "an ocs_pod slice has three dimensions (and a 3-D cube)"))
            for d, c in zip(self.shape, self.cube):
                if d % c and c % d:
                    raise ValueError(at("shape", f"slice {_x(self.shape)} is not made of whole "
                                                 f"{_x(self.cube)} cubes"))
        return self

    def link_names(self) -> list[tuple[str, str]]:
        """(field path, link name) of every link this topology uses."""
        if self.kind == "two_level":
            return [("intra.link", self.intra.link), ("inter.link", self.inter.link)]
        out = [("link", self.link)]
        if self.kind == "ocs_pod":
            out.append(("optical", self.optical))
        return out

    def chip_count(self) -> int | None:
        if self.shape is not None:
            return math.prod(self.shape)
        return None


def _x(dims) -> str:
    return "x".join(str(d) for d in dims)


class ChipGroup(_Strict):
    architecture: str
    count: int = Field(gt=0)


class ParallelismSpec(_Strict):
    """How one training step is split over the chips (see dse/system/parallelism.py)."""

    data: int = Field(default=1, gt=0)
    tensor: int = Field(default=1, gt=0)
    pipeline: int = Field(default=1, gt=0)
    expert: int = Field(default=1, gt=0)
    sequence: bool = False
    micro_batches: int = Field(default=1, gt=0)
    schedule: Literal["1f1b", "interleaved"] = "1f1b"
    virtual_stages: int = Field(default=1, gt=0)
    zero: int = Field(default=0, ge=0, le=3)
    recompute: Literal["none", "selective", "full"] = "none"
    #: gradient bucket: PyTorch DDP's default bucket_cap_mb = 25 (torch.nn.parallel.DistributedDataParallel docs)
    bucket: Bytes = 25e6
    #: all-reduce gradient buckets while the backward pass still runs
    overlap: bool = True
    #: all-reduce algorithm of data-parallel gradients
    algorithm: Literal["auto", "ring", "tree", "hierarchical"] = "auto"

    @model_validator(mode="after")
    def _consistent(self) -> "ParallelismSpec":
        if self.schedule == "1f1b" and self.virtual_stages != 1:
            raise ValueError(at("virtual_stages", "virtual stages need schedule: interleaved"))
        if self.expert > 1 and self.data % self.expert:
            raise ValueError(at("expert", f"expert={self.expert} must divide data={self.data} "
                                          "(experts are spread over data-parallel ranks)"))
        if self.sequence and self.tensor == 1:
            raise ValueError(at("sequence", "sequence parallelism splits along the tensor-parallel "
                                            "group: give tensor > 1"))
        return self

    @property
    def chips(self) -> int:
        return self.data * self.tensor * self.pipeline


class SystemSpec(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    sources: dict[str, str] = {}
    chips: list[ChipGroup] = Field(min_length=1)
    links: dict[str, LinkSpec] = Field(min_length=1)
    topology: TopologySpec
    parallelism: ParallelismSpec | None = None

    @model_validator(mode="after")
    def _resolves(self) -> "SystemSpec":
        for path, name in self.topology.link_names():
            if name not in self.links:
                raise ValueError(at(f"topology.{path}", f"'{name}' is not a link type of this system "
                                                        f"(have: {', '.join(sorted(self.links))})"))
        n = self.chip_count
        t = self.topology
        expected = t.chip_count()
        if expected is not None and expected != n:
            raise ValueError(at("topology.shape", f"a {_x(t.shape)} {t.kind.replace('_', ' ')} has "
                                                  f"{expected} chips, the system has {n}"))
        if t.kind == "two_level" and n % t.node_size:
            raise ValueError(at("topology.node_size", f"{n} chips do not fill whole nodes of {t.node_size}"))
        if t.kind in ("ring", "switched") and n < 2:
            raise ValueError(at("chips", f"a {t.kind} topology needs at least 2 chips, the system has {n}"))
        return self

    @property
    def chip_count(self) -> int:
        return sum(c.count for c in self.chips)


def is_system_doc(data: Any) -> bool:
    """A YAML mapping that describes a system (it has chips and a topology), not a chip."""
    return isinstance(data, dict) and "topology" in data and "chips" in data


def system_from_doc(doc: YamlDoc, overrides: dict[str, Any] | None = None) -> SystemSpec:
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError("expected a mapping of system fields at the top level", where=doc.name)
    if overrides:
        data = apply_paths(data, overrides)
    try:
        return SystemSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, doc, SystemSpec) from None


def apply_paths(data: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``data`` with each dotted path set (``parallelism.data``, ``chips.0.count``,
    ``links.ib.preset``); a missing mapping on the way is created (``parallelism``)."""
    import copy

    out = copy.deepcopy(data)
    for path, value in overrides.items():
        parts = [p for p in path.replace("[", ".").replace("]", "").split(".") if p]
        node: Any = out
        for i, key in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise SpecError(f"'{path}': '{key}' is not an index of the list (0..{len(node) - 1})")
                key = int(key)
            elif not isinstance(node, dict):
                raise SpecError(f"'{path}' names no field of the system")
            if last:
                node[key] = value
            else:
                if isinstance(node, dict) and node.get(key) is None:
                    node[key] = {}
                node = node[key]
    return out


def load_system_spec(path_or_name: str | Path) -> tuple[SystemSpec, YamlDoc]:
    """The validated system file (or bundled name under architectures/systems/) and its YAML."""
    from dse.spec.loader import resolve

    doc = read_yaml(resolve(path_or_name, "systems"))
    if not is_system_doc(doc.data):
        raise SpecError("not a system file (a system has 'chips' and 'topology')", where=doc.name)
    return system_from_doc(doc), doc
