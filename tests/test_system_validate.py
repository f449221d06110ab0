"""The `collective` validation kind: measured nccl-tests bus bandwidths against dse's links."""
from __future__ import annotations

import pytest

from dse.validate import load_cases
from dse.validate.kinds import collective


def _cases():
    return [(c, base) for c, base in load_cases() if c.kind == "collective"]


def test_at_least_three_cited_collective_cases():
    cases = _cases()
    assert len(cases) >= 3
    assert all(c.source and c.cite for c, _ in cases)


@pytest.mark.parametrize("case,base", _cases(), ids=lambda c: getattr(c, "name", ""))
def test_no_collective_beats_the_fastest_port_of_its_ranks(case, base):
    # bus bandwidth is what each rank moves over its links per second: it cannot exceed the
    # bandwidth of a rank's fastest port, whatever the algorithm
    from dse.system.spec import SystemSpec

    spec = SystemSpec.model_validate({"name": case.name, "chips": case.chips, "links": case.links,
                                      "topology": case.topology})
    fastest = max(link.bandwidth_bps for link in spec.links.values())
    value = collective.evaluate(case, base)
    assert 0 < value <= fastest * (1 + 1e-9)


def test_bus_bandwidth_factor_of_nccl_tests():
    # nccl-tests doc/PERFORMANCE.md: all-reduce 2(n-1)/n, all-gather (n-1)/n
    assert collective.bus_factor("all_reduce", 8) == pytest.approx(1.75)
    assert collective.bus_factor("all_gather", 8) == pytest.approx(0.875)
