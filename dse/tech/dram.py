"""DRAM and HBM: row buffers, bank-level parallelism, refresh and bus turnaround.

Timing and energy per technology come from dse/tech/data/memories.yaml (JEDEC
tables and datasheet currents, cited there). One *unit* of an entry is a DIMM
channel or an HBM stack; a tier has ``units`` of them, interleaved.

- Sequential streams hit open rows: one activation per row buffer, hidden behind
  transfers by bank interleaving; the bus then runs at peak less refresh.
- Random accesses miss: each needs an activation, and activations per
  (pseudo-)channel are limited by banks/tRC, 1/tRRD and 4/tFAW; the bus time of
  an access is max(1/activation rate, bursts x tBURST).
- Refresh: every tREFI, tRFC of lost bus time (a fraction tRFC/tREFI) and one
  refresh energy, whether or not the tier is accessed.
- A change of direction (read <-> write) on the bus costs tWTR or tRTW.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from dse.tech.memory import BITS, AccessStats, GenericMemory


@dataclass
class DramMemory(GenericMemory):
    units: int = 1
    unit_bandwidth_bps: float = 0.0
    subchannels: int = 1             # independent (pseudo-)channels per unit
    banks: int = 16
    row_buffer_bytes: float = 8192
    burst_bytes: float = 64
    # JEDEC timing parameters (tRC, tRRD, tFAW, tRFC, tREFI, tWTR, tRTW), in seconds
    t_rc: float = 0.0
    t_rrd: float = 0.0
    t_faw: float = 0.0
    t_rfc: float = 0.0
    t_refi: float = 0.0
    t_wtr: float = 0.0
    t_rtw: float = 0.0
    activate_energy_j: float = 0.0    # J per ACT+PRE of one row
    refresh_energy_j: float = 0.0    # J per all-bank REF of one unit
    family: str = "dram"

    @property
    def refresh_fraction(self) -> float:
        return self.t_rfc / self.t_refi if self.t_refi else 0.0

    def activation_rate(self) -> float:
        """Row activations per second one unit sustains (bank, tRRD and tFAW limits)."""
        limits = []
        if self.t_rc:
            limits.append(self.banks / self.t_rc)
        if self.t_rrd:
            limits.append(1.0 / self.t_rrd)
        if self.t_faw:
            limits.append(4.0 / self.t_faw)
        per_sub = min(limits) if limits else float("inf")
        return per_sub * self.subchannels

    def occupancy_s(self, nbytes, kind, pattern="sequential", access_bytes=0.0):
        available = 1.0 - self.refresh_fraction
        if pattern != "random" or not access_bytes:
            return nbytes / (self.bandwidth * available)
        accesses = ceil(nbytes / access_bytes)
        bursts = ceil(access_bytes / self.burst_bytes)
        data_s = bursts * self.burst_bytes / self.unit_bandwidth_bps
        rows = ceil(access_bytes / self.row_buffer_bytes)
        per_access = max(rows / self.activation_rate(), data_s)
        return accesses * per_access / self.units / available

    def _activations(self, nbytes, pattern, access_bytes) -> float:
        if pattern == "random" and access_bytes:
            return ceil(nbytes / access_bytes) * ceil(access_bytes / self.row_buffer_bytes)
        return nbytes / self.row_buffer_bytes

    def energy_j(self, nbytes, kind, pattern="sequential", access_bytes=0.0):
        out = super().energy_j(nbytes, kind, pattern, access_bytes)
        moved = nbytes
        if pattern == "random" and access_bytes:  # whole bursts move even for a smaller access
            moved = ceil(nbytes / access_bytes) * ceil(access_bytes / self.burst_bytes) * self.burst_bytes
            per_bit = self.read_energy_per_bit if kind == "read" else self.write_energy_per_bit
            out["access"] = moved * BITS * per_bit
        out["activate"] = self._activations(nbytes, pattern, access_bytes) * self.activate_energy_j
        return out

    def account(self, stats: AccessStats, nbytes, kind, pattern, access_bytes):
        super().account(stats, nbytes, kind, pattern, access_bytes)
        stats.activations += self._activations(nbytes, pattern, access_bytes)
        if pattern == "random" and access_bytes:
            stats.bursts += ceil(nbytes / access_bytes) * ceil(access_bytes / self.burst_bytes)
        else:
            stats.bursts += nbytes / self.burst_bytes

    def turnaround_s(self, previous, kind):
        if previous is None or previous == kind:
            return 0.0
        return self.t_wtr if previous == "write" else self.t_rtw

    @property
    def static_power_w(self):
        refresh = self.refresh_energy_j / self.t_refi * self.units if self.t_refi else 0.0
        return {"background": self.background_power_w, "refresh": refresh}

    def extra_metrics(self, stats, makespan):
        hit = 1.0 - stats.activations / stats.bursts if stats.bursts else float("nan")
        return {"row_hit_rate": max(0.0, hit)}
