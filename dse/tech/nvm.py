"""Non-volatile memory (Optane-class, ReRAM, PCM, STT-MRAM): asymmetric and write-limited.

Reads and writes have their own bandwidth, latency and energy. The media is
accessed in ``granularity`` bytes (256 B for Optane, Izraelevitz et al. 2019):
a smaller or unaligned write rewrites whole blocks after reading them
(read-modify-write). There is no refresh. Endurance turns the simulated write
rate into a lifetime, assuming ideal wear levelling (every cell written equally).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from dse.tech.memory import BITS, SECONDS_PER_YEAR, AccessStats, GenericMemory


@dataclass
class NvmMemory(GenericMemory):
    write_bandwidth: float = 0.0     # B/s, all units
    write_latency_s: float = 0.0
    granularity: float = 64.0
    endurance_cycles: float = 0.0
    family: str = "nvm"

    def _media_write(self, nbytes: float, access_bytes: float) -> tuple[float, float]:
        """(bytes written to media, bytes read for read-modify-write)."""
        size = access_bytes or nbytes
        n = ceil(nbytes / size) if size else 0
        blocks = ceil(size / self.granularity)
        partial = (size % self.granularity) != 0
        return n * blocks * self.granularity, (n * self.granularity if partial else 0.0)

    def occupancy_s(self, nbytes, kind, pattern="sequential", access_bytes=0.0):
        if kind == "read":
            size = access_bytes if (pattern == "random" and access_bytes) else 0.0
            media = ceil(nbytes / size) * ceil(size / self.granularity) * self.granularity if size else nbytes
            return media / self.bandwidth
        written, rmw_read = self._media_write(nbytes, access_bytes if pattern == "random" else 0.0)
        return written / self.write_bandwidth + rmw_read / self.bandwidth

    def energy_j(self, nbytes, kind, pattern="sequential", access_bytes=0.0):
        if kind == "read":
            size = access_bytes if (pattern == "random" and access_bytes) else 0.0
            media = ceil(nbytes / size) * ceil(size / self.granularity) * self.granularity if size else nbytes
            return {"access": media * BITS * self.read_energy_per_bit}
        written, rmw_read = self._media_write(nbytes, access_bytes if pattern == "random" else 0.0)
        return {"access": written * BITS * self.write_energy_per_bit,
                "read_modify_write": rmw_read * BITS * self.read_energy_per_bit}

    def account(self, stats: AccessStats, nbytes, kind, pattern, access_bytes):
        if kind == "read":
            stats.bytes_read += nbytes
            return
        stats.bytes_written += nbytes
        written, _ = self._media_write(nbytes, access_bytes if pattern == "random" else 0.0)
        stats.media_bytes_written += written

    def lifetime_years(self, media_bytes_written: float, makespan: float) -> float:
        """Years until the average cell reaches its endurance at the simulated write rate."""
        if not media_bytes_written or not self.endurance_cycles or not makespan:
            return float("inf")
        rate = media_bytes_written / makespan
        return self.endurance_cycles * self.capacity / rate / SECONDS_PER_YEAR

    def extra_metrics(self, stats, makespan):
        return {"media_bytes_written": stats.media_bytes_written,
                "lifetime_years": self.lifetime_years(stats.media_bytes_written, makespan)}
