"""Small architectures built in tests, with round numbers that make hand counts easy."""
from __future__ import annotations

import copy

from dse.spec.architecture import Architecture

BASE = {
    "name": "toy",
    "compute": [
        {"name": "pe", "kind": "systolic", "rows": 16, "cols": 16, "clock": "1 GHz",
         "dataflow": "weight_stationary", "macs_per_cycle": {"int8": 1},
         "energy_per_mac": {"int8": "0.25 pJ"}, "leakage": "1 W", "area": "2 mm^2", "buffer": "buf"},
        {"name": "vec", "kind": "vector", "lanes": 16, "clock": "1 GHz", "energy_per_op": "0.5 pJ",
         "leakage": "0.1 W", "area": "0.5 mm^2", "buffer": "buf"},
    ],
    "sram": [
        {"name": "buf", "capacity": "1 MiB", "bandwidth": "1 TB/s", "read_energy": "0.1 pJ/bit",
         "write_energy": "0.2 pJ/bit", "leakage": "0.5 W", "area": "1 mm^2"},
    ],
    "memories": [
        {"name": "dram", "capacity": "4 GiB", "channels": 2, "bandwidth_per_channel": "5 GB/s",
         "latency": "100 ns", "read_energy": "10 pJ/bit", "write_energy": "12 pJ/bit",
         "background_power": "0.3 W"},
    ],
    "placement": {"weights": "dram", "activations": "buf"},
    "static": [{"name": "ctrl", "leakage": "0.2 W", "area": "1 mm^2"}],
}


def toy(**changes) -> Architecture:
    """The toy design with top-level keys or dotted component fields replaced."""
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        if "__" in path:  # compute__pe__rows=32
            section, name, field = path.split("__")
            item = next(c for c in data[section] if c["name"] == name)
            item[field] = value
        else:
            data[path] = value
    return Architecture.model_validate(data)
