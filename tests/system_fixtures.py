"""Small systems built in code for the system tests."""
from __future__ import annotations

import simpy

from dse.system.comm import Communicator, Group
from dse.system.spec import SystemSpec
from dse.system.topology import Topology

B = 100e9        # link bandwidth per direction, bytes/s
ALPHA = 2e-6     # link latency, s
LINK = {"bandwidth": "100 GB/s", "latency": "2 us", "energy_per_bit": "1 pJ/bit", "static_power": "0 W"}
#: a switch that never limits: the links do
FREE_SWITCH = {"bandwidth": "1 EB/s", "latency": "0 s", "energy_per_bit": "0 pJ/bit", "static_power": "0 W"}


def system(n: int, topology: dict, links: dict | None = None, parallelism: dict | None = None,
           arch: str = "h100-class") -> SystemSpec:
    return SystemSpec.model_validate({
        "name": "test", "chips": [{"architecture": arch, "count": n}],
        "links": links or {"l": LINK}, "topology": topology, "parallelism": parallelism})


def ring(n: int) -> SystemSpec:
    return system(n, {"kind": "ring", "link": "l"})


def switched(n: int) -> SystemSpec:
    return system(n, {"kind": "switched", "link": "l", "switch": FREE_SWITCH})


def run(spec: SystemSpec, calls, *, full: bool = False, algorithm: str = "auto"):
    """Run collectives ``calls`` = [(name, kind, bytes, Group, start_s)] at once; returns
    ({(name, chip): end time}, ledger). The reduced view simulates each group's first chip,
    standing for every chip that runs the same collective (``mult``)."""
    env = simpy.Environment()
    comm = Communicator(env, Topology(spec), full=full, algorithm=algorithm)
    ends = {}

    def member(name, kind, nbytes, group, chip, mult, start):
        yield env.timeout(start)
        yield from comm.collective(kind, nbytes, group, chip, mult, (name,))
        ends[(name, chip)] = env.now

    for name, kind, nbytes, group, *rest in calls:
        start = rest[0] if rest else 0.0
        mult = rest[1] if len(rest) > 1 else group.size
        chips = group.members() if full else [group.base]
        for chip in chips:
            env.process(member(name, kind, nbytes, group, chip, 1 if full else mult, start))
    env.run()
    return ends, comm.ledger


def time_of(ends, name) -> float:
    return max(t for (n, _), t in ends.items() if n == name)
