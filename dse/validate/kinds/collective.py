"""Kind ``collective``: a collective over the links of a system, as nccl-tests measures it.

The case describes the measured machine as a system (``chips``, ``links``, ``topology``, in
the fields of a system file, dse/system/spec.py) and the collective (``collective``,
``size``, ``algorithm``); dse runs it on its SimPy link model (dse.system.collectives) and
reports nccl-tests' bus bandwidth: the bytes each rank must move over its links per second,
algbw x 2(n-1)/n for all-reduce and x (n-1)/n for all-gather, reduce-scatter and
all-to-all (nccl-tests doc/PERFORMANCE.md), so that it compares with the link bandwidth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from dse.spec.quantities import Bytes
from dse.validate.case import CaseBase


class Case(CaseBase):
    METRICS = {"busbw_bps": "bandwidth", "time_s": "time"}

    kind: Literal["collective"]
    chips: list[dict[str, Any]] = Field(min_length=1)
    links: dict[str, dict[str, Any]] = Field(min_length=1)
    topology: dict[str, Any]
    collective: Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all"] = "all_reduce"
    algorithm: Literal["auto", "ring", "tree", "hierarchical"] = "auto"
    size: Bytes


#: nccl-tests' bus bandwidth factor per collective, for n ranks
def bus_factor(collective: str, n: int) -> float:
    return 2 * (n - 1) / n if collective == "all_reduce" else (n - 1) / n


def evaluate(case: Case, base: Path) -> float:
    import simpy

    from dse.system.comm import Communicator, Group
    from dse.system.spec import SystemSpec
    from dse.system.topology import Topology

    spec = SystemSpec.model_validate({"name": case.name, "chips": case.chips, "links": case.links,
                                      "topology": case.topology})
    n = spec.chip_count
    env = simpy.Environment()
    comm = Communicator(env, Topology(spec), full=False, algorithm=case.algorithm)
    end: list[float] = []

    def run():
        # one rank stands for all n (every rank runs the same collective at once)
        yield from comm.collective(case.collective, case.size, Group(0, n, 1), 0, n, ("case",))
        end.append(env.now)

    env.process(run())
    env.run()
    t = end[0]
    if case.metric == "time_s":
        return t
    return case.size * bus_factor(case.collective, n) / t
