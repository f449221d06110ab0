"""Collectives on links against the alpha-beta model (Hockney; Thakur et al. 2005)."""
from __future__ import annotations

import math

import pytest

from dse.system.comm import Group
from system_fixtures import ALPHA, B, FREE_SWITCH, LINK, ring, run, switched, system, time_of

S = 1e9  # bytes


@pytest.mark.parametrize("n", [2, 4, 8, 16, 64])
@pytest.mark.parametrize("nbytes", [1e6, 1e9])
def test_ring_all_reduce_matches_alpha_beta(n, nbytes):
    ends, _ = run(ring(n), [("ar", "all_reduce", nbytes, Group(0, n, 1))])
    expected = 2 * (n - 1) * (ALPHA + nbytes / (n * B))
    assert time_of(ends, "ar") == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_tree_all_reduce_matches_alpha_beta(n):
    # binomial tree: reduce then broadcast, ceil(log2 n) rounds each, S bytes per round
    ends, _ = run(switched(n), [("t", "all_reduce", S, Group(0, n, 1))], algorithm="tree")
    expected = 2 * math.ceil(math.log2(n)) * (ALPHA + S / B)
    assert time_of(ends, "t") == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("kind", ["all_gather", "reduce_scatter"])
@pytest.mark.parametrize("n", [2, 8, 16])
def test_all_gather_and_reduce_scatter(kind, n):
    ends, _ = run(ring(n), [("x", kind, S, Group(0, n, 1))])
    assert time_of(ends, "x") == pytest.approx((n - 1) * (ALPHA + S / (n * B)), rel=0.02)


@pytest.mark.parametrize("n", [4, 8, 16])
def test_all_to_all_through_a_switch(n):
    # each chip sends S/n to each of the n-1 others through its one port
    ends, _ = run(switched(n), [("a", "all_to_all", S, Group(0, n, 1))])
    assert time_of(ends, "a") == pytest.approx((n - 1) * (ALPHA + S / (n * B)), rel=0.02)


@pytest.mark.parametrize("n", [4, 8])
def test_all_to_all_on_a_ring(n):
    # the message to the chip k hops away crosses k links, each shared by k messages:
    # sum over k of k (alpha + S/(nB)) = n(n-1)/2 (alpha + S/(nB))
    ends, _ = run(ring(n), [("a", "all_to_all", S, Group(0, n, 1))])
    assert time_of(ends, "a") == pytest.approx(n * (n - 1) / 2 * (ALPHA + S / (n * B)), rel=0.02)


def test_point_to_point():
    ends, _ = run(ring(4), [("p", "p2p", S, Group(0, 4, 1))])
    assert time_of(ends, "p") == pytest.approx(ALPHA + S / B, rel=0.02)


def test_hierarchical_all_reduce_on_two_levels():
    # nodes of 4 on 400 GB/s, 8 nodes on 50 GB/s: reduce-scatter inside (S), all-reduce
    # across of S/4, all-gather inside
    links = {"fast": {**LINK, "bandwidth": "400 GB/s", "latency": "1 us"},
             "slow": {**LINK, "bandwidth": "50 GB/s", "latency": "5 us"}}
    spec = system(32, {"kind": "two_level", "node_size": 4, "intra": {"link": "fast"},
                       "inter": {"link": "slow", "switch": FREE_SWITCH}}, links)
    ends, _ = run(spec, [("h", "all_reduce", S, Group(0, 32, 1))])
    g1, g2 = 4, 8
    expected = (2 * (g1 - 1) * (1e-6 + S / (g1 * 400e9))
                + 2 * (g2 - 1) * (5e-6 + S / (g1 * g2 * 50e9)))
    assert time_of(ends, "h") == pytest.approx(expected, rel=0.02)


def test_hierarchical_all_gather_crosses_the_slow_level_with_the_small_pieces():
    links = {"fast": {**LINK, "bandwidth": "400 GB/s", "latency": "1 us"},
             "slow": {**LINK, "bandwidth": "50 GB/s", "latency": "5 us"}}
    spec = system(32, {"kind": "two_level", "node_size": 4, "intra": {"link": "fast"},
                       "inter": {"link": "slow", "switch": FREE_SWITCH}}, links)
    ends, _ = run(spec, [("g", "all_gather", S, Group(0, 32, 1))])
    g1, g2 = 4, 8
    # across nodes first (each chip's S/32 from the 7 other nodes), then inside the node (S/4 pieces)
    expected = (g2 - 1) * (5e-6 + S / (g1 * g2 * 50e9)) + (g1 - 1) * (1e-6 + S / (g1 * 400e9))
    assert time_of(ends, "g") == pytest.approx(expected, rel=0.02)


def test_torus_all_reduce_dimension_by_dimension():
    spec = system(16, {"kind": "torus", "shape": [4, 4], "link": "l"})
    ends, _ = run(spec, [("t", "all_reduce", S, Group(0, 16, 1))])
    expected = 2 * 3 * (ALPHA + S / (4 * B)) + 2 * 3 * (ALPHA + S / (16 * B))
    assert time_of(ends, "t") == pytest.approx(expected, rel=0.02)


def test_two_collectives_sharing_links_each_take_the_bandwidth_split():
    n = 8
    alone = time_of(run(ring(n), [("a", "all_reduce", S, Group(0, n, 1))])[0], "a")
    latency = 2 * (n - 1) * ALPHA
    beta = alone - latency
    ends, _ = run(ring(n), [("a", "all_reduce", S, Group(0, n, 1)), ("b", "all_reduce", S, Group(0, n, 1))])
    for name in ("a", "b"):
        assert time_of(ends, name) - latency == pytest.approx(2 * beta, rel=0.02)


def test_unequal_collectives_share_then_the_larger_runs_alone():
    # half-size all-reduce shares the links until it is done (at its bandwidth term x 2),
    # the larger then has half its bytes left at full bandwidth: 1.5 x its bandwidth term
    n = 8
    latency = 2 * (n - 1) * ALPHA
    beta = 2 * (n - 1) * S / (n * B)
    ends, _ = run(ring(n), [("big", "all_reduce", S, Group(0, n, 1)),
                            ("small", "all_reduce", S / 2, Group(0, n, 1))])
    assert time_of(ends, "small") == pytest.approx(latency + beta, rel=0.02)
    assert time_of(ends, "big") == pytest.approx(latency + 1.5 * beta, rel=0.02)


def test_interleaved_groups_share_each_ring_link():
    # on a ring of 8, two all-reduce groups of every other chip: each step crosses 2 links
    # and every link carries both groups: half the bandwidth, twice the latency
    n, g = 8, 4
    ends, _ = run(ring(n), [("a", "all_reduce", S, Group(0, g, 2), 0.0, n), ])
    expected = 2 * (g - 1) * (2 * ALPHA + S / (g * B / 2))
    assert time_of(ends, "a") == pytest.approx(expected, rel=0.02)


CASES = [
    ("ring strided", lambda: ring(8), [("a", "all_reduce", S, Group(0, 4, 2)), ("b", "all_reduce", S, Group(1, 4, 2))]),
    ("torus 2 dims", lambda: system(16, {"kind": "torus", "shape": [4, 4], "link": "l"}),
     [("a", "all_reduce", S, Group(0, 4, 4)), ("b", "all_reduce", S, Group(1, 4, 4)),
      ("c", "all_reduce", S, Group(2, 4, 4)), ("d", "all_reduce", S, Group(3, 4, 4))]),
    ("switched", lambda: switched(8), [("a", "all_to_all", S, Group(0, 8, 1))]),
    ("blocking node switches", lambda: system(16, {"kind": "two_level", "node_size": 4,
                                                   "intra": {"link": "l", "switch": {**FREE_SWITCH, "bandwidth": "150 GB/s",
                                                                                     "nonblocking": False}},
                                                   "inter": {"link": "l", "switch": FREE_SWITCH}}),
     [(f"n{i}", "all_reduce", S, Group(4 * i, 4, 1)) for i in range(4)]),
    ("all to all on a torus", lambda: system(16, {"kind": "torus", "shape": [4, 4], "link": "l"}),
     [(f"a{i}", "all_to_all", S, Group(4 * i, 4, 1)) for i in range(4)]),
    ("two level", lambda: system(16, {"kind": "two_level", "node_size": 4, "intra": {"link": "l"},
                                      "inter": {"link": "l", "switch": {**FREE_SWITCH, "bandwidth": "200 GB/s"}}}),
     [(f"g{i}", "all_reduce", S, Group(i, 8, 2)) for i in range(2)]),
]


@pytest.mark.parametrize("label,make,calls", CASES, ids=[c[0] for c in CASES])
def test_reduced_view_equals_full_simulation(label, make, calls):
    """One representative chip per group (its flows weighted by the chips it stands for)
    gives the times, energy and bytes of simulating every chip on every physical link."""
    spec = make()
    n = spec.chip_count
    full_ends, full_led = run(spec, calls, full=True)
    # the first chip of the first group stands for every chip (all run the same collective)
    red_ends, red_led = run(spec, [(*calls[0], 0.0, n)])
    assert time_of(red_ends, calls[0][0]) == pytest.approx(max(full_ends.values()), rel=1e-9)
    assert red_led.energy_j == pytest.approx(full_led.energy_j, rel=1e-9)
    assert red_led.moved_bytes == pytest.approx(full_led.moved_bytes, rel=1e-9)
    assert red_led.bytes_by_type.keys() == full_led.bytes_by_type.keys()
    for k, v in full_led.bytes_by_type.items():
        assert red_led.bytes_by_type[k] == pytest.approx(v, rel=1e-9)


@pytest.mark.parametrize("full", [False, True])
def test_all_to_all_on_a_ring_sends_what_each_chip_holds_once(full):
    # each of 8 chips sends S/8 to each of the 7 others: 7 S bytes sent in all (comm_bytes),
    # though the message to the chip k hops away loads k links: 8 x 7 x 8 / 2 x S/8 = 28 S
    _, led = run(ring(8), [("a", "all_to_all", S, Group(0, 8, 1))], full=full)
    assert led.moved_bytes == pytest.approx(7 * S, rel=1e-9)
    assert led.bytes_by_type["l"] == pytest.approx(28 * S, rel=1e-9)


def test_ocs_pod_reduced_equals_full_with_optical_wraparound():
    links = {"ici": {**LINK, "bandwidth": "100 GB/s"},
             "ocs": {**LINK, "bandwidth": "50 GB/s", "latency": "3 us", "energy_per_bit": "20 pJ/bit"}}
    spec = system(32, {"kind": "ocs_pod", "shape": [2, 4, 4], "cube": [2, 2, 2], "link": "ici",
                       "optical": "ocs"}, links)
    calls = [(f"z{i}", "all_reduce", S, Group(i, 4, 8)) for i in range(8)]
    full_ends, full_led = run(spec, calls, full=True)
    red_ends, red_led = run(spec, [("z0", "all_reduce", S, Group(0, 4, 8), 0.0, 32)])
    assert time_of(red_ends, "z0") == pytest.approx(max(full_ends.values()), rel=1e-9)
    assert red_led.energy_j == pytest.approx(full_led.energy_j, rel=1e-9)
    # the ring along z (4 chips, blocks of 2) has 2 optical links of 4: the slow ones set the pace
    expected = 2 * 3 * (3e-6 + S / (4 * 50e9))
    assert time_of(red_ends, "z0") == pytest.approx(expected, rel=0.02)


def _blocking(bw: str) -> dict:
    return {**FREE_SWITCH, "bandwidth": bw, "nonblocking": False}


def _two_level(n: int, node: int, inter_switch: dict) -> "SystemSpec":
    links = {"l": LINK, "m": {**LINK, "bandwidth": "50 GB/s", "latency": "3 us", "energy_per_bit": "7 pJ/bit"}}
    return system(n, {"kind": "two_level", "node_size": node, "intra": {"link": "l"},
                      "inter": {"link": "m", "switch": {**inter_switch, "energy_per_bit": "2 pJ/bit"}}}, links)


# Collectives whose members do not all do the same: a binomial tree (half the members send in
# its first round, one in its last; a round's pairs inside a node or across nodes) and a flat
# ring over several axes (on a torus a member at a row's end reaches the next row in 2 hops).
UNEVEN = [
    ("tree switched 8", lambda: switched(8), "tree", [("t", "all_reduce", S, Group(0, 8, 1))]),
    ("tree blocking switch 8", lambda: system(8, {"kind": "switched", "link": "l", "switch": _blocking("150 GB/s")}),
     "tree", [("t", "all_reduce", S, Group(0, 8, 1))]),
    ("tree two level 4x4", lambda: _two_level(16, 4, _blocking("120 GB/s")), "tree",
     [("t", "all_reduce", S, Group(0, 16, 1))]),
    ("tree two level 3x2 mixed rounds", lambda: _two_level(6, 3, FREE_SWITCH), "tree",
     [("t", "all_reduce", S, Group(0, 6, 1))]),
    ("tree two level 4x3", lambda: _two_level(12, 4, _blocking("100 GB/s")), "tree",
     [("t", "all_reduce", S, Group(0, 12, 1))]),
    ("tree strided groups across nodes", lambda: _two_level(16, 4, _blocking("80 GB/s")), "tree",
     [(f"t{i}", "all_reduce", S, Group(i, 8, 2)) for i in range(2)]),
    ("flat ring torus 2x8", lambda: system(16, {"kind": "torus", "shape": [2, 8], "link": "l"}), "ring",
     [("r", "all_reduce", S, Group(0, 16, 1))]),
    ("flat ring torus 4x2x2", lambda: system(16, {"kind": "torus", "shape": [4, 2, 2], "link": "l"}), "ring",
     [("r", "all_reduce", S, Group(0, 16, 1))]),
    ("flat ring torus strided", lambda: system(16, {"kind": "torus", "shape": [4, 4], "link": "l"}), "ring",
     [(f"r{i}", "reduce_scatter", S, Group(i, 8, 2)) for i in range(2)]),
    ("flat ring two level", lambda: _two_level(16, 4, _blocking("100 GB/s")), "ring",
     [("r", "all_reduce", S, Group(0, 16, 1))]),
]


@pytest.mark.parametrize("label,make,algorithm,calls", UNEVEN, ids=[c[0] for c in UNEVEN])
def test_reduced_view_equals_full_for_uneven_collectives(label, make, algorithm, calls):
    spec = make()
    n = spec.chip_count
    full_ends, full_led = run(spec, calls, full=True, algorithm=algorithm)
    red_ends, red_led = run(spec, [(*calls[0], 0.0, n)], algorithm=algorithm)
    assert time_of(red_ends, calls[0][0]) == pytest.approx(max(full_ends.values()), rel=1e-9)
    assert red_led.energy_j == pytest.approx(full_led.energy_j, rel=1e-9)
    assert red_led.moved_bytes == pytest.approx(full_led.moved_bytes, rel=1e-9)
    assert red_led.bytes_by_type.keys() == full_led.bytes_by_type.keys()
    for k, v in full_led.bytes_by_type.items():
        assert red_led.bytes_by_type[k] == pytest.approx(v, rel=1e-9), k
    for k, v in full_led.energy_by_type.items():
        assert red_led.energy_by_type[k] == pytest.approx(v, rel=1e-9), k


@pytest.mark.parametrize("full", [False, True])
def test_tree_all_reduce_over_two_dgx_nodes_by_hand(full):
    """16 GPUs, 8 to a node: a binomial tree's reduce has 8 + 4 + 2 pairs inside the nodes
    (three rounds on NVLink) and one across (one round on InfiniBand, through 3 switch hops);
    the broadcast mirrors it. Figures from the link presets the system file names."""
    from dse.system.links import link_preset, switch_preset
    from dse.system.spec import load_system_spec
    from dse.units import to_si

    spec, _ = load_system_spec("dgx-h100-ib")
    nv, ib, sw = link_preset("nvlink4"), link_preset("ib-ndr"), switch_preset("tomahawk5")
    b_nv = 18 * to_si(nv["bandwidth"], "bandwidth")         # 18 links ganged: 450 GB/s
    b_ib = to_si(ib["bandwidth"], "bandwidth")
    a_nv = to_si(nv["latency"], "time")
    a_ib = to_si(ib["latency"], "time") + 3 * to_si(sw["latency"], "time")
    grads = 76.6e6 * 2                                      # 76.6M bf16 gradients
    ends, led = run(spec, [("t", "all_reduce", grads, Group(0, 16, 1))], full=full, algorithm="tree")
    per_way = 3 * (a_nv + grads / b_nv) + (a_ib + grads / b_ib)
    assert time_of(ends, "t") == pytest.approx(2 * per_way, rel=1e-6)
    assert 2 * per_way == pytest.approx(8.16e-3, rel=0.01)   # the count written out: 2 (3 S/450G + S/50G)
    # a message leaves by its sender's port and arrives by its receiver's: two link crossings
    assert led.bytes_by_type["ib"] == pytest.approx(2 * 2 * grads, rel=1e-9)
    assert led.bytes_by_type["nvlink"] == pytest.approx(2 * 2 * 2 * (4 + 2 + 1) * grads, rel=1e-9)
    e_sw = 3 * to_si(sw["energy_per_bit"], "energy_per_bit")
    assert led.energy_by_type["inter_switch"] == pytest.approx(2 * grads * 8 * e_sw, rel=1e-9)
    assert led.moved_bytes == pytest.approx(2 * 15 * grads, rel=1e-9)


def test_flat_ring_on_a_torus_by_hand():
    """A ring of 16 over a 2 x 8 torus in chip order: (0,y) -> (1,y) is one link, (1,y) ->
    (0,y+1) two (x wraps, then y): 1.5 links a message on average, and a step waits for the
    two-link messages' start-up."""
    spec = system(16, {"kind": "torus", "shape": [2, 8], "link": "l"})
    g = 16
    for full in (False, True):
        ends, led = run(spec, [("r", "all_reduce", S, Group(0, g, 1))], full=full, algorithm="ring")
        assert time_of(ends, "r") == pytest.approx(2 * (g - 1) * (2 * ALPHA + S / (g * B)), rel=1e-6)
        link_bytes = 2 * (g - 1) * g * (S / g) * 1.5
        assert led.bytes_by_type["l"] == pytest.approx(link_bytes, rel=1e-9)
        assert led.energy_j == pytest.approx(link_bytes * 8 * 1e-12, rel=1e-9)   # 1 pJ/bit
