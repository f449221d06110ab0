"""What an access costs on a memory tier: bus time, energy, background power.

A model answers, for a transfer of some bytes of a kind (read/write) and pattern
(sequential stream or random accesses of ``access_bytes``), how long the tier's
bus is occupied and how much energy it takes; the SimPy layer decides queuing.
``GenericMemory`` is a plain bandwidth/latency/pJ-per-bit tier; DRAM, HBM and
NVM models (dram.py, nvm.py) add the behaviour of their technology.
"""
from __future__ import annotations

from dataclasses import dataclass, field

BITS = 8.0
SECONDS_PER_YEAR = 365.25 * 24 * 3600


@dataclass
class AccessStats:
    """Counts a model accumulates over a run (for per-tier result columns)."""

    bytes_read: float = 0.0
    bytes_written: float = 0.0
    media_bytes_written: float = 0.0   # NVM: after granularity rounding and read-modify-write
    activations: float = 0.0           # DRAM row activations
    bursts: float = 0.0                # DRAM column accesses (burst-sized)
    energy: dict[str, float] = field(default_factory=dict)


@dataclass
class GenericMemory:
    """Peak bandwidth, one access latency and a read/write energy per bit."""

    name: str
    bandwidth: float                 # B/s, all channels together
    latency_s: float
    read_energy_per_bit: float
    write_energy_per_bit: float
    background_power_w: float
    capacity: float
    family: str = "generic"

    def occupancy_s(self, nbytes: float, kind: str, pattern: str = "sequential",
                    access_bytes: float = 0.0) -> float:
        return nbytes / self.bandwidth

    def energy_j(self, nbytes: float, kind: str, pattern: str = "sequential",
                 access_bytes: float = 0.0) -> dict[str, float]:
        per_bit = self.read_energy_per_bit if kind == "read" else self.write_energy_per_bit
        return {"access": nbytes * BITS * per_bit}

    def account(self, stats: AccessStats, nbytes: float, kind: str, pattern: str, access_bytes: float) -> None:
        if kind == "read":
            stats.bytes_read += nbytes
        else:
            stats.bytes_written += nbytes
            stats.media_bytes_written += nbytes

    def turnaround_s(self, previous: str | None, kind: str) -> float:
        return 0.0

    @property
    def static_power_w(self) -> dict[str, float]:
        """Power drawn whether or not the tier is accessed, by cause."""
        return {"background": self.background_power_w}

    def extra_metrics(self, stats: AccessStats, makespan: float) -> dict[str, float]:
        return {}
