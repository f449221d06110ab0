"""Build the memory model of a tier from its spec and its technology's data table."""
from __future__ import annotations

from dse.tech.dram import DramMemory
from dse.tech.library import technology
from dse.tech.memory import GenericMemory
from dse.tech.nvm import NvmMemory
from dse.units import to_si


def _t(entry: dict, key: str, default: float = 0.0) -> float:
    timing = entry.get("timing") or {}
    for k in (key, f"{key}_S", f"{key}_L"):
        if k in timing:
            return to_si(timing[k], "time")
    return default


def tier_model(mem) -> GenericMemory:
    """The cost model of one MemoryTier: DRAM/HBM or NVM behaviour when its technology says so."""
    common = dict(name=mem.name, bandwidth=mem.bandwidth, latency_s=mem.latency,
                  read_energy_per_bit=mem.read_energy, write_energy_per_bit=mem.write_energy,
                  background_power_w=mem.background_power, capacity=mem.capacity)
    if not mem.technology:
        return GenericMemory(**common)
    entry = technology(mem.technology)
    family = entry.get("family")
    if family in ("dram", "hbm") and entry.get("timing"):
        units = mem.channels
        per_unit = mem.bandwidth_per_channel
        burst = float(entry.get("burst_bytes", 64))
        return DramMemory(
            **common, family=family, units=units, unit_bandwidth_bps=per_unit,
            subchannels=int(entry.get("pseudo_channels") or entry.get("channels") or 1),
            banks=int(entry.get("banks", 16)), row_buffer_bytes=float(entry.get("row_buffer_bytes", 8192)),
            burst_bytes=burst,
            t_rc=_t(entry, "tRC"), t_rrd=_t(entry, "tRRD"), t_faw=_t(entry, "tFAW"),
            t_rfc=_t(entry, "tRFC"), t_refi=_t(entry, "tREFI"),
            t_wtr=_t(entry, "tWTR"), t_rtw=_t(entry, "tRTW"),
            # the spec required both (library or YAML); 0 only where the per-bit figure includes them
            activate_energy_j=mem.activate_energy, refresh_energy_j=mem.refresh_energy)
    if family == "nvm":
        wbw = entry.get("write_bandwidth")
        write_bw = to_si(wbw, "bandwidth") * mem.channels if wbw else mem.bandwidth
        wlat = entry.get("write_latency")
        endurance = entry.get("endurance_cycles")
        return NvmMemory(**common, family=family, write_bandwidth=write_bw,
                         write_latency_s=to_si(wlat, "time") if wlat else mem.latency,
                         granularity=float(entry.get("access_granularity_bytes", 64)),
                         endurance_cycles=float(endurance) if endurance else 0.0)
    return GenericMemory(**common, family=family or "generic")
