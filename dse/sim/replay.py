"""Replaying a memory-access trace against a memory tier's technology model.

For studies that compare memories without a compute model: every access of the
trace (address, read/write, size) is served by one tier, as fast as the tier
allows (the trace's own times only set its span). DRAM and HBM map addresses
to channel, bank and row (row-interleaved: consecutive row buffers go to
consecutive channels, then banks), keep one open row per bank, and count an
access a row hit when its bank's open row is the one it needs. Each unit then
needs max(data time, activations / activation rate) of bus time, plus refresh;
units work in parallel. NVM rounds accesses up to its media granularity and
pays read-modify-write for partial writes. Vectorised with numpy: a million
accesses replay in well under a second.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dse.tech.memory import BITS, GenericMemory


def _row_hits(bank: np.ndarray, row: np.ndarray) -> np.ndarray:
    """True where an access finds its bank's open row (the previous access to that bank)."""
    order = np.argsort(bank, kind="stable")
    b, r = bank[order], row[order]
    hit_sorted = np.zeros(len(b), dtype=bool)
    hit_sorted[1:] = (b[1:] == b[:-1]) & (r[1:] == r[:-1])
    hits = np.empty_like(hit_sorted)
    hits[order] = hit_sorted
    return hits


def replay(trace: pd.DataFrame, model: GenericMemory) -> dict[str, float]:
    """Time, energy and behaviour of one tier serving every access of ``trace``."""
    addr = trace["address"].to_numpy(dtype=np.uint64)
    size = trace["size"].to_numpy(dtype=np.float64)
    is_write = trace["is_write"].to_numpy(dtype=bool)
    n = len(trace)
    read_bytes = float(size[~is_write].sum())
    write_bytes = float(size[is_write].sum())
    out: dict[str, float] = {"memory": model.name, "family": model.family, "accesses": n,
                             "bytes_read": read_bytes, "bytes_written": write_bytes}
    serve = _FAMILIES.get(model.family, _generic) if type(model) is not GenericMemory else _generic
    time_s, energy = serve(model, addr, size, is_write, out)
    static = sum(model.static_power_w.values()) * time_s
    out.update({"time_s": time_s, "energy_j": energy + static, "dynamic_energy_j": energy,
                "achieved_bandwidth_bps": (read_bytes + write_bytes) / time_s if time_s else 0.0,
                "energy_per_byte_j": (energy + static) / (read_bytes + write_bytes) if n else 0.0})
    return out


def _dram(model, addr: np.ndarray, size: np.ndarray, is_write: np.ndarray, out: dict) -> tuple[float, float]:
    """Open rows per bank, activation limits, turnaround and refresh (DRAM and HBM)."""
    n = len(addr)
    units = max(1, model.units)
    row_bytes = np.uint64(int(model.row_buffer_bytes))
    block = addr // row_bytes
    unit = (block % np.uint64(units)).astype(np.int64)
    banks_per_unit = model.banks * max(1, model.subchannels)
    bank_local = ((block // np.uint64(units)) % np.uint64(banks_per_unit)).astype(np.int64)
    row = (block // np.uint64(units * banks_per_unit)).astype(np.int64)
    bank = unit * banks_per_unit + bank_local
    hits = _row_hits(bank, row)
    bursts = np.ceil(size / model.burst_bytes)
    data_s = np.bincount(unit, weights=bursts * model.burst_bytes / model.unit_bandwidth_bps, minlength=units)
    acts = np.bincount(unit, weights=(~hits).astype(float), minlength=units)
    # a read after a write (or the reverse) on the same unit turns the bus around
    turn = np.zeros(n)
    if n > 1:
        same = unit[1:] == unit[:-1]
        switch = same & (is_write[1:] != is_write[:-1])
        turn[1:] = np.where(switch, np.where(is_write[:-1], model.t_wtr, model.t_rtw), 0.0)
    turn_s = np.bincount(unit, weights=turn, minlength=units)
    busy = np.maximum(data_s, acts / model.activation_rate()) + turn_s
    time_s = float(busy.max()) / (1.0 - model.refresh_fraction)
    moved = bursts * model.burst_bytes
    energy = (float(moved[~is_write].sum()) * BITS * model.read_energy_per_bit
              + float(moved[is_write].sum()) * BITS * model.write_energy_per_bit
              + float(acts.sum()) * model.activate_energy_j)
    out["row_hit_rate"] = float(hits.mean()) if n else float("nan")
    return time_s, energy


def _nvm(model, addr: np.ndarray, size: np.ndarray, is_write: np.ndarray, out: dict) -> tuple[float, float]:
    """Media blocks combined in the module buffer, read-modify-write of partial writes."""
    n = len(addr)
    # consecutive accesses of one kind to the same media block are combined in the
    # module's buffer (Optane's XPBuffer): a block is fetched or written once per run
    g = model.granularity
    blk = addr // np.uint64(int(g))
    start = np.ones(n, dtype=bool)
    if n > 1:
        start[1:] = (blk[1:] != blk[:-1]) | (is_write[1:] != is_write[:-1])
    group = np.cumsum(start) - 1
    g_bytes = np.bincount(group, weights=size)
    g_write = is_write[start]
    g_blocks = np.ceil(g_bytes / g)
    partial = (g_bytes % g) != 0
    media_read = float((g_blocks * g)[~g_write].sum())
    media_write = float((g_blocks * g)[g_write].sum())
    rmw = partial & g_write
    rmw_read = float(rmw.sum() * g)
    time_s = (media_read + rmw_read) / model.bandwidth + media_write / model.write_bandwidth
    energy = ((media_read + rmw_read) * BITS * model.read_energy_per_bit
              + media_write * BITS * model.write_energy_per_bit)
    out["media_bytes_written"] = media_write
    out["rmw_reads"] = float(rmw.sum())
    return time_s, energy


def _generic(model, addr: np.ndarray, size: np.ndarray, is_write: np.ndarray, out: dict) -> tuple[float, float]:
    """Bytes at the tier's bandwidth and per-bit energies."""
    read_bytes = float(size[~is_write].sum())
    write_bytes = float(size[is_write].sum())
    time_s = (read_bytes + write_bytes) / model.bandwidth
    energy = read_bytes * BITS * model.read_energy_per_bit + write_bytes * BITS * model.write_energy_per_bit
    return time_s, energy


#: How each memory family serves a trace, by the family its technology names.
_FAMILIES = {"dram": _dram, "hbm": _dram, "nvm": _nvm}
