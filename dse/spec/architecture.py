"""The architecture spec: one accelerator chip described in YAML, validated by pydantic.

A chip has compute units (systolic arrays, vector units), on-chip SRAM buffers,
off-chip memory tiers, a placement of tensor roles onto buffers or tiers, and
static components (control, I/O) whose power and area complete the totals.
All quantities are SI floats after validation (areas in mm^2).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dse.spec.quantities import (
    Bytes,
    BytesPerSecond,
    Hertz,
    Joules,
    JoulesPerBit,
    Metres,
    Seconds,
    SquareMillimetres,
    Watts,
)
from dse.datatypes import PRECISION_BYTES, ROLES


#: Largest count (rows, cols, lanes, channels, copies) accepted: far beyond any chip, and
#: small enough that products of counts stay exact in floats and int64 columns.
MAX_COUNT = 2**24


def at(path: str, message: str) -> str:
    """:func:`dse.spec.yaml_io.at` (imported on the error path only: YAML is not needed to
    use an architecture that was validated before, see dse.spec.cache)."""
    from dse.spec import yaml_io

    return yaml_io.at(path, message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class _Component(_Strict):
    name: str = Field(min_length=1)
    leakage: Watts = 0.0
    area: SquareMillimetres = 0.0
    source: str | None = None


def _check_precisions(value: dict) -> dict:
    for p in value:
        if p not in PRECISION_BYTES:
            raise ValueError(f"unknown precision '{p}' (known: {', '.join(PRECISION_BYTES)})")
    return value


Dataflow = Literal["weight_stationary", "output_stationary", "input_stationary"]


class SystolicArray(_Component):
    """A rows x cols array of MAC units (SCALE-Sim's model), ``count`` copies."""

    kind: Literal["systolic"]
    rows: int = Field(gt=0, le=MAX_COUNT)
    cols: int = Field(gt=0, le=MAX_COUNT)
    #: Identical arrays that work on one op together, its folds dealt round-robin (as a GPU's
    #: SMs share one kernel): they raise one op's peak, they do not run two ops at once. Units
    #: that run different ops concurrently are listed as separate units with their own names.
    count: int = Field(default=1, gt=0, le=MAX_COUNT)
    clock: Hertz
    #: one dataflow, or several that the planner chooses from per GEMM (fastest wins), as a
    #: GPU's kernel library picks a tiling per shape
    dataflow: Dataflow | Annotated[list[Dataflow], Field(min_length=1)] = "weight_stationary"
    #: MACs each PE completes per cycle at each supported precision.
    macs_per_cycle: Annotated[dict[str, Annotated[float, Field(gt=0, le=MAX_COUNT)]],
                              Field(min_length=1)] = {"int8": 1.0}
    #: Energy of one MAC at each precision (operand delivery inside the array included, unless
    #: ``register_file_energy`` breaks the PE-local level out). A precision left out comes from
    #: the compute table (dse/tech/compute.py) by the design's technology_node; one the table
    #: lacks is an error naming it.
    energy_per_mac: dict[str, Joules] = {}
    #: Energy of one access to a PE's local registers (an operand read or a partial-sum read
    #: or write); when given, each MAC is charged REGISTER_ACCESSES_PER_MAC of them on top of
    #: ``energy_per_mac``, reported as ``energy_<unit>_register_file_j``.
    register_file_energy: Joules | None = None
    #: Tiles of the stationary operand (weights, for weight-stationary) the PEs hold: 1 = the
    #: next fold's tile shifts in (R cycles) while the array waits, SCALE-Sim's timing; 2 =
    #: double-buffered, the next tile shifts in while the current fold streams, hiding up to
    #: T cycles of each load (more tiles change nothing with equal folds).
    weight_buffers: int = Field(default=1, ge=1, le=64)
    buffer: str | None = None

    _v = field_validator("macs_per_cycle", "energy_per_mac")(_check_precisions)

    @property
    def dataflows(self) -> list[str]:
        return list(self.dataflow) if isinstance(self.dataflow, list) else [self.dataflow]

    @property
    def pes(self) -> int:
        return self.rows * self.cols * self.count

    def peak_macs_per_s(self, precision: str) -> float:
        return self.pes * self.macs_per_cycle.get(precision, 0.0) * self.clock

    @property
    def precisions(self) -> list[str]:
        """Precisions the unit runs GEMMs at (its peak differs per precision)."""
        return list(self.macs_per_cycle)

    def peak_ops(self, precision: str | None = None) -> float:
        """Peak op/s at ``precision`` (2 per MAC; 0 for a precision it does not run)."""
        return 2.0 * self.peak_macs_per_s(precision) if precision else 0.0


class VectorUnit(_Component):
    """SIMD lanes for elementwise work (activations, normalisation, pooling)."""

    kind: Literal["vector"]
    lanes: int = Field(gt=0, le=MAX_COUNT)
    #: Identical vector units that work on one op together (lanes x count per cycle); list
    #: separate units to run different ops concurrently.
    count: int = Field(default=1, gt=0, le=MAX_COUNT)
    clock: Hertz
    ops_per_lane_per_cycle: float = Field(default=1.0, gt=0, le=MAX_COUNT)
    #: Energy of one vector op; left out, one fp32 add at the design's technology_node from
    #: the compute table (a labelled proxy, dse/tech/compute.py).
    energy_per_op: Joules
    buffer: str | None = None

    @property
    def peak_ops_per_s(self) -> float:
        return self.lanes * self.count * self.ops_per_lane_per_cycle * self.clock

    @property
    def precisions(self) -> list[str]:
        return []  # one rate for every precision

    def peak_ops(self, precision: str | None = None) -> float:
        """Peak op/s of the lanes (the same at every precision)."""
        return self.peak_ops_per_s


class ImcTile(_Component):
    """In-memory-compute crossbars holding weights in place (dse/tech/imc.py, ISAAC data).

    ``technology`` names an entry of dse/tech/data/imc.yaml; ``overrides`` sets any of
    its parameters (rows, cols, crossbars, adc_bits, ...). Layers whose weights do not
    fit the crossbars left run on the digital units. ``weights_resident: true`` means
    the weights were programmed before the run (not charged); otherwise programming
    every crossbar is charged once per run.
    """

    kind: Literal["imc"]
    technology: str = "reram-isaac"
    overrides: dict[str, float | int | str] = {}
    weights_resident: bool = False
    #: "always": layers whose weights fit run on the crossbars (weights stay put);
    #: "faster": only where the crossbars beat the digital units on that layer
    use: Literal["always", "faster"] = "always"
    buffer: str | None = None

    @model_validator(mode="after")
    def _valid_params(self) -> "ImcTile":
        self.params()  # raises ValueError with a clear message for impossible values
        return self

    @property
    def precisions(self) -> list[str]:
        return []  # the crossbars' rate follows the bits of each vector, not a precision table

    def peak_ops(self, precision: str | None = None) -> float:
        """Peak op/s (2 per MAC) with every crossbar busy on a full-sized weight block, from
        the crossbar timing model (dse/tech/imc.py), with weights and inputs of ``precision``'s
        bits as the engine runs a layer of that precision (fewer bits: fewer cells per weight,
        fewer bit-serial steps per input); without one, of the technology's own bits."""
        from dse.tech.imc import imc_gemm_cost, map_gemm

        p = self.params()
        bits = int(8 * PRECISION_BYTES[precision]) if precision in PRECISION_BYTES else None
        n = p.cols // map_gemm(p, 1, 1, 1, bits).cells_per_weight  # the weights one crossbar holds across
        one = imc_gemm_cost(p, 1, n, p.rows, weight_bits=bits, input_bits=bits)
        return 2.0 * one.macs / one.time_s * p.crossbars if one.time_s else 0.0

    def params(self):
        try:
            return _crossbar_params(self.technology, tuple(sorted(self.overrides.items())))
        except KeyError as exc:
            raise ValueError(str(exc).strip("'\"")) from None


@lru_cache(maxsize=256)
def _crossbar_params(technology: str, overrides: tuple):
    from dse.tech.imc import CrossbarParams

    return CrossbarParams.from_library(technology, **dict(overrides))


ComputeUnit = Annotated[Union[SystolicArray, VectorUnit, ImcTile], Field(discriminator="kind")]


class Sram(_Component):
    """An on-chip buffer: stages tiles and may hold whole tensors (placement).

    ``technology: sram-28nm-1mb`` (an SRAM entry of `dse list memories`) gives the read and
    write energy per bit from the sourced library; values in the YAML win.
    """

    technology: str | None = None
    capacity: Bytes
    bandwidth: BytesPerSecond
    read_energy: JoulesPerBit | None = None
    write_energy: JoulesPerBit | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_from_technology(cls, data):
        if not isinstance(data, dict) or not data.get("technology"):
            return data
        defaults = _library_defaults(str(data["technology"]), family="sram")
        return {**{k: v for k, v in defaults.items() if k in ("read_energy", "write_energy")},
                **{k: v for k, v in data.items() if v is not None}}

    @model_validator(mode="after")
    def _complete(self) -> "Sram":
        _require(self, ("read_energy", "write_energy"))
        return self


class MemoryTier(_Component):
    """An off-chip (or stacked) memory: channels of some bandwidth with an access latency.

    ``technology: hbm3`` (see `dse list memories`) fills every field left out from
    the sourced library, per unit of the technology (a DIMM channel, an HBM stack);
    ``channels`` then counts those units. Fields given in the YAML win.
    """

    technology: str | None = None
    capacity: Bytes | None = None
    channels: int = Field(default=1, gt=0, le=MAX_COUNT)
    bandwidth_per_channel: BytesPerSecond | None = None
    latency: Seconds | None = None
    read_energy: JoulesPerBit | None = None
    write_energy: JoulesPerBit | None = None
    #: one row activation (ACT + PRE) and one all-bank refresh of one unit (DRAM/HBM only)
    activate_energy: Joules | None = None
    refresh_energy: Joules | None = None
    background_power: Watts | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_from_technology(cls, data):
        if not isinstance(data, dict) or not data.get("technology"):
            return data
        defaults = _library_defaults(str(data["technology"]))
        # the library is per unit (a DIMM channel, an HBM stack): totals scale with the count
        units = data.get("channels", 1)
        if isinstance(units, int) and 0 < units <= MAX_COUNT:
            for key in ("capacity", "background_power"):
                if key in defaults:
                    defaults[key] = defaults[key] * units
        # a key with no value is dropped only where it is a field (a mistyped ``bandwith:``
        # stays, so that it is reported as unknown rather than silently ignored)
        return {**defaults, **{k: v for k, v in data.items() if v is not None or k not in cls.model_fields}}

    @model_validator(mode="after")
    def _complete(self) -> "MemoryTier":
        for name in ("capacity", "bandwidth_per_channel"):
            if getattr(self, name) is None:
                raise ValueError(at(name, "required field is missing (or give a `technology:` that defines it)"))
        if self.latency is None:
            object.__setattr__(self, "latency", 0.0)
        _require(self, self.energy_fields())
        return self

    def energy_fields(self) -> tuple[str, ...]:
        """The energy fields this tier must have: read, write and background power, plus row
        activation and refresh on a DRAM/HBM technology whose model charges them."""
        if self.technology:
            from dse.tech.library import required_energy_fields, technology

            return required_energy_fields(technology(self.technology))
        return ("read_energy", "write_energy", "background_power")

    @property
    def bandwidth(self) -> float:
        return self.channels * self.bandwidth_per_channel


def _library_defaults(name: str, family: str | None = None) -> dict:
    """A technology's tier fields, or a ValueError at `technology` (unknown name, wrong family)."""
    from dse.errors import DseError
    from dse.tech.library import technology, tier_defaults

    try:
        entry_family = technology(name).get("family")
        if family is not None and entry_family != family:
            raise ValueError(at("technology", f"'{name}' is a {entry_family} technology, not {family}"))
        if family is None and entry_family == "sram":
            raise ValueError(at("technology", f"'{name}' is an SRAM technology: use it on an `sram:` entry"))
        return tier_defaults(name)
    except DseError as exc:
        raise ValueError(at("technology", exc.message)) from None


def _require(component, fields) -> None:
    """No energy is charged as a silent zero: each field must come from the YAML or the technology."""
    for name in fields:
        if getattr(component, name) is not None:
            continue
        tech = getattr(component, "technology", None)
        if tech:
            msg = (f"no value: technology '{tech}' has no sourced figure for it "
                   f"(see dse/tech/data/SOURCES.md, Gaps); give it in the YAML")
        else:
            msg = "required field is missing (give a value, or a `technology:` that defines it)"
        raise ValueError(at(name, msg))


class StaticComponent(_Component):
    """Anything that only burns power and takes area (control, host I/O, PHYs)."""


class Prefetch(_Strict):
    """Tensors of ``role`` live on tier ``from`` and are copied to tier ``to`` the first time
    an op reads them (e.g. weights kept in NVM, used from DRAM); later reads hit ``to``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)
    role: str
    source: str = Field(alias="from")
    target: str = Field(alias="to")


class Architecture(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    technology_node: Metres | None = None
    tdp: Watts | None = None
    sources: dict[str, str] = {}
    compute: list[ComputeUnit] = Field(min_length=1)
    sram: list[Sram] = []
    memories: list[MemoryTier] = Field(min_length=1)
    placement: dict[str, str] = {}
    prefetch: list[Prefetch] = []
    static: list[StaticComponent] = []

    @model_validator(mode="before")
    @classmethod
    def _mac_energies_from_node(cls, data):
        """Fill each systolic array's missing energy_per_mac entries (and a vector unit's
        missing energy_per_op) from the compute table at the design's technology_node."""
        if not isinstance(data, dict) or not isinstance(data.get("compute"), list):
            return data
        from dse.errors import DseError
        from dse.tech.compute import mac_energy, vector_op_energy
        from dse.units import to_si

        node = data.get("technology_node")
        if node is not None:
            try:
                node = to_si(node, "length")
            except (DseError, ValueError):  # to_si says ValueError for a wrong unit ('-5 ns')
                return data  # the field's own validation names the bad value
            if not node > 0:
                return data
        compute = []
        for i, unit in enumerate(data["compute"]):
            if isinstance(unit, dict) and unit.get("kind") == "vector" and unit.get("energy_per_op") is None:
                where = f"compute[{i}].energy_per_op"
                if node is None:
                    raise ValueError(at(where, "no value and no technology_node to look it up in the "
                                               "compute table; give one of them"))
                try:
                    unit = {**unit, "energy_per_op": vector_op_energy(node)[0]}
                except DseError as exc:
                    raise ValueError(at(where, exc.message)) from None
            if not (isinstance(unit, dict) and unit.get("kind") == "systolic"):
                compute.append(unit)
                continue
            epm, mpc = unit.get("energy_per_mac") or {}, unit.get("macs_per_cycle") or {"int8": 1.0}
            if not isinstance(epm, dict) or not isinstance(mpc, dict):
                compute.append(unit)  # the wrong shape is reported by the field's own validation
                continue
            given = dict(epm)
            missing = [p for p in mpc if isinstance(p, str) and p not in given]
            for p in missing:
                where = f"compute[{i}].energy_per_mac.{p}"
                if node is None:
                    raise ValueError(at(where, "no value and no technology_node to look it up in the "
                                               "compute table; give one of them"))
                try:
                    given[p] = mac_energy(node, p)[0]
                except DseError as exc:
                    raise ValueError(at(where, exc.message)) from None
            compute.append({**unit, "energy_per_mac": given} if missing else unit)
        return {**data, "compute": compute}

    @field_validator("placement")
    @classmethod
    def _roles_known(cls, value: dict[str, str]) -> dict[str, str]:
        for role in value:
            if role not in ROLES:
                raise ValueError(f"unknown tensor role '{role}' (known: {', '.join(ROLES)})")
        return value

    @model_validator(mode="after")
    def _names_resolve(self) -> "Architecture":
        names = [c.name for c in self.components()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"component names must be unique; repeated: {', '.join(dupes)}")
        srams = {s.name for s in self.sram}
        storage = srams | {m.name for m in self.memories}
        for role, where in self.placement.items():
            if where not in storage:
                raise ValueError(at(f"placement.{role}", f"'{where}' is not an SRAM or memory tier "
                                    f"(have: {', '.join(sorted(storage))})"))
        tiers = {m.name for m in self.memories}
        for i, pf in enumerate(self.prefetch):
            if pf.role not in ROLES:
                raise ValueError(at(f"prefetch[{i}].role", f"unknown tensor role '{pf.role}'"))
            for key, tier in (("from", pf.source), ("to", pf.target)):
                if tier not in tiers:
                    raise ValueError(at(f"prefetch[{i}].{key}", f"'{tier}' is not a memory tier "
                                                               f"(have: {', '.join(sorted(tiers))})"))
            if pf.target == pf.source:
                raise ValueError(at(f"prefetch[{i}].to", f"copies {pf.role} from '{pf.source}' to itself "
                                    "(name another memory tier)"))
            if self.placement.get(pf.role, self.memories[0].name) != pf.source:
                raise ValueError(at(f"prefetch[{i}].from", f"{pf.role} are placed on "
                                    f"'{self.tier_of(pf.role)}', not '{pf.source}'"))
        for i, unit in enumerate(self.compute):
            if unit.buffer is not None and unit.buffer not in srams:
                raise ValueError(at(f"compute[{i}].buffer", f"'{unit.buffer}' is not an SRAM "
                                    f"(have: {', '.join(sorted(srams)) or 'none'})"))
        return self

    # ---- queries used by the engine --------------------------------------
    def components(self) -> list:
        return [*self.compute, *self.sram, *self.memories, *self.static]

    def tier_of(self, role: str) -> str:
        """Where a tensor role lives: its placement, else the first memory tier."""
        return self.placement.get(role, self.memories[0].name)

    def sram_named(self, name: str) -> Sram | None:
        return next((s for s in self.sram if s.name == name), None)

    def memory_named(self, name: str) -> MemoryTier | None:
        return next((m for m in self.memories if m.name == name), None)

    def buffer_of(self, unit) -> Sram | None:
        """The SRAM that stages a unit's tiles: its own, else the largest one."""
        if unit.buffer:
            return self.sram_named(unit.buffer)
        return max(self.sram, key=lambda s: s.capacity) if self.sram else None

    @property
    def area_mm2(self) -> float:
        return sum(component_area(c) for c in self.components())

    @property
    def static_power_w(self) -> float:
        return sum(component_leakage(c) for c in self.components()) + sum(m.background_power for m in self.memories)


def component_area(c) -> float:
    """A component's area; IMC tiles add their crossbars' area from the technology data."""
    return c.area + (c.params().area_mm2 if isinstance(c, ImcTile) else 0.0)


def component_leakage(c) -> float:
    return c.leakage + (c.params().leakage_w if isinstance(c, ImcTile) else 0.0)
