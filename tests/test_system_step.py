"""A training step on many chips: pipeline bubble, data-parallel scaling, memory per chip,
and the reduced simulation (one chip per role) against the full one (every chip)."""
from __future__ import annotations

import pytest

from dse.errors import DesignError
from dse.system import ParallelismSpec, simulate_system
from dse.system.parallelism import split_model
from dse.system.roles import profile
from dse.spec.loader import load_architecture
from dse.workloads import load_workload
from system_fixtures import FREE_SWITCH, system

#: links that cost nothing in time: only the schedule shapes the step
FREE = {"l": {"bandwidth": "1 EB/s", "latency": "0 s", "energy_per_bit": "0 pJ/bit", "static_power": "0 W"}}
#: a stack whose per-layer work dwarfs embedding and LM head, so stages are nearly uniform
MODEL = "gpt:layers={L},d_model=2048,heads=16,seq=512,batch=1,vocab=8"


@pytest.mark.parametrize("p,m", [(4, 8), (4, 4), (2, 6), (8, 8)])
def test_one_f_one_b_bubble(p, m):
    spec = system(p, {"kind": "ring", "link": "l"}, FREE, {"pipeline": p, "micro_batches": m})
    r = simulate_system(spec, MODEL.format(L=4 * p))
    assert r["pipeline_bubble"] == pytest.approx((p - 1) / (m + p - 1), rel=0.02)


def test_interleaved_bubble_shrinks_by_the_virtual_stages():
    p, m, v = 4, 8, 2
    spec = system(p, {"kind": "ring", "link": "l"}, FREE,
                  {"pipeline": p, "micro_batches": m, "schedule": "interleaved", "virtual_stages": v})
    r = simulate_system(spec, MODEL.format(L=2 * p * v))
    assert r["pipeline_bubble"] == pytest.approx((p - 1) / (v * m + p - 1), rel=0.03)


def _dgx(n: int, **par) -> object:
    links = {"nvlink": {"preset": "nvlink4", "lanes": 18}, "ib": {"preset": "ib-ndr"}}
    topo = {"kind": "two_level", "node_size": 8, "intra": {"link": "nvlink"},
            "inter": {"link": "ib", "switch": {"preset": "tomahawk5"}}}
    return system(n, topo, links, {"data": n, **par})


def test_data_parallel_scaling_throughput_rises_efficiency_falls():
    wl = "gpt:layers=4,d_model=1024,heads=16,seq=1024,batch=2"
    rows = [simulate_system(_dgx(n), wl).summary_row for n in (8, 16, 32, 64)]
    thr = [r["throughput_samples_per_s"] for r in rows]
    eff = [r["scaling_efficiency"] for r in rows]
    share = [r["comm_time_s"] / r["step_time_s"] for r in rows]
    assert all(b > a for a, b in zip(thr, thr[1:])), thr
    assert all(b < a for a, b in zip(eff, eff[1:])), eff
    assert all(0 < e <= 1 for e in eff)
    assert share[-1] > share[0]


def test_gradient_buckets_overlap_backward():
    wl = "gpt:layers=8,d_model=1024,heads=16,seq=1024,batch=2"
    over = simulate_system(_dgx(32), wl).summary_row
    serial = simulate_system(_dgx(32, overlap=False), wl).summary_row
    assert over["step_time_s"] < serial["step_time_s"]
    assert over["comm_energy_j"] == pytest.approx(serial["comm_energy_j"], rel=1e-9)


def test_reduced_equals_full_simulation_of_a_3d_parallel_step():
    links = {"fast": {"preset": "nvlink4", "lanes": 18}, "ib": {"preset": "ib-ndr"}}
    spec = system(16, {"kind": "two_level", "node_size": 4, "intra": {"link": "fast"},
                       "inter": {"link": "ib", "switch": {"preset": "tomahawk5"}}}, links,
                  {"data": 2, "tensor": 2, "pipeline": 4, "micro_batches": 4})
    wl = "gpt:layers=8,d_model=1024,heads=16,seq=512,batch=1"
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    for k in ("step_time_s", "energy_j", "comm_energy_j", "comm_time_s", "link_ib_bytes", "link_fast_bytes"):
        assert red[k] == pytest.approx(full[k], rel=1e-9), k


def test_reduced_equals_full_on_a_torus_with_shared_links():
    # tensor on x, data on y, pipeline on z; static link power charged for the step
    spec = system(16, {"kind": "torus", "shape": [2, 4, 2], "link": "l"},
                  {"l": {"bandwidth": "50 GB/s", "latency": "1 us", "energy_per_bit": "5 pJ/bit",
                         "static_power": "1 W"}},
                  {"data": 4, "tensor": 2, "pipeline": 2, "micro_batches": 2})
    wl = "gpt:layers=4,d_model=1024,heads=16,seq=512,batch=1"
    assert simulate_system(spec, wl)["comm_static_energy_j"] > 0
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    for k in ("step_time_s", "energy_j", "comm_energy_j", "link_l_bytes"):
        assert red[k] == pytest.approx(full[k], rel=1e-9), k


def test_a_tree_all_reduce_step_gives_the_full_views_figures():
    # data-parallel gradients in a binomial tree inside each node, bucket after bucket, beside
    # pipeline messages across the nodes: which ports overlapping rounds share depends on the
    # chip, so one chip per role could not stand for the rest (3.23 ms against 3.06 ms here);
    # the step is simulated chip by chip
    links = {"fast": {"preset": "nvlink4", "lanes": 18}, "ib": {"preset": "ib-ndr"}}
    spec = system(16, {"kind": "two_level", "node_size": 8, "intra": {"link": "fast"},
                       "inter": {"link": "ib", "switch": {"preset": "tomahawk5", "hops": 3}}}, links,
                  {"data": 8, "tensor": 1, "pipeline": 2, "micro_batches": 2, "algorithm": "tree"})
    wl = "gpt:layers=4,d_model=1024,heads=16,seq=512,batch=1"
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    for k in ("step_time_s", "energy_j", "comm_energy_j", "comm_bytes", "link_ib_bytes", "link_fast_bytes"):
        assert red[k] == pytest.approx(full[k], rel=1e-9), k


def test_reduced_equals_full_for_a_flat_ring_over_two_torus_dimensions():
    # tensor-parallel all-reduces as one ring over x and y (4 chips, 2 x 2): half the
    # messages cross two links; their closed form (no other group on those links) included
    spec = system(16, {"kind": "torus", "shape": [2, 2, 4], "link": "l"},
                  {"l": {"bandwidth": "50 GB/s", "latency": "1 us", "energy_per_bit": "5 pJ/bit",
                         "static_power": "0 W"}},
                  {"data": 4, "tensor": 4, "algorithm": "ring"})
    wl = "gpt:layers=4,d_model=1024,heads=16,seq=512,batch=1"
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    for k in ("step_time_s", "energy_j", "comm_energy_j", "comm_bytes", "link_l_bytes"):
        assert red[k] == pytest.approx(full[k], rel=1e-9), k


def test_reduced_equals_full_for_a_flat_ring_across_nodes():
    # data-parallel gradients in one ring over 2 nodes of 4 (2 of its 8 messages cross
    # nodes), buckets overlapping the backward pass, pipeline messages on the same ports
    links = {"fast": {"preset": "nvlink4", "lanes": 18}, "ib": {"preset": "ib-ndr"}}
    spec = system(16, {"kind": "two_level", "node_size": 4, "intra": {"link": "fast"},
                       "inter": {"link": "ib", "switch": {"preset": "tomahawk5", "hops": 3}}}, links,
                  {"data": 8, "tensor": 1, "pipeline": 2, "micro_batches": 2, "algorithm": "ring",
                   "bucket": "8 MB"})
    wl = "gpt:layers=4,d_model=1024,heads=16,seq=512,batch=1"
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    for k in ("step_time_s", "energy_j", "comm_energy_j", "comm_bytes", "link_ib_bytes", "link_fast_bytes"):
        assert red[k] == pytest.approx(full[k], rel=1e-9), k


@pytest.mark.parametrize("make", ["dgx", "switched", "torus"])
def test_communication_energy_columns_add_up_to_comm_energy(make):
    """Every joule of communication has a column: links by type, switches, static power;
    a switch's is the bits that cross it at its preset's energy per bit and hop."""
    from dse.system.links import switch_preset
    from dse.units import to_si

    wl = "gpt:layers=2,d_model=1024,heads=16,seq=512,batch=1"
    if make == "dgx":
        row = simulate_system("dgx-h100-ib", wl, {"data": 2, "tensor": 8}).summary_row
        # every IB message crosses two IB ports and the leaf-spine fabric once (3 hops)
        e_bit = 3 * to_si(switch_preset("tomahawk5")["energy_per_bit"], "energy_per_bit")
        assert row["inter_switch_energy_j"] == pytest.approx(row["link_ib_bytes"] / 2 * 8 * e_bit, rel=1e-9)
        assert row["inter_switch_energy_j"] > 0.3 * row["comm_energy_j"]
    elif make == "switched":
        spec = system(8, {"kind": "switched", "link": "l",
                          "switch": {**FREE_SWITCH, "energy_per_bit": "4 pJ/bit", "static_power": "20 W"}},
                      {"l": {"bandwidth": "100 GB/s", "latency": "1 us", "energy_per_bit": "2 pJ/bit",
                             "static_power": "0.5 W"}}, {"data": 8})
        row = simulate_system(spec, wl).summary_row
        # a message crosses two 2 pJ/bit ports and the 4 pJ/bit switch: the same energy
        assert row["switch_energy_j"] == pytest.approx(row["link_l_energy_j"], rel=1e-9)
        assert row["comm_static_energy_j"] == pytest.approx((20 + 8 * 0.5) * row["step_time_s"], rel=1e-9)
    else:
        spec = system(16, {"kind": "torus", "shape": [4, 4], "link": "l"},
                      {"l": {"bandwidth": "50 GB/s", "latency": "1 us", "energy_per_bit": "5 pJ/bit",
                             "static_power": "1 W"}}, {"data": 4, "tensor": 4})
        row = simulate_system(spec, wl).summary_row
        assert not any(c.endswith("switch_energy_j") for c in row)
    parts = [v for c, v in row.items() if c.startswith("link_") and c.endswith("_energy_j")]
    parts += [v for c, v in row.items() if c.endswith("switch_energy_j")]
    assert sum(parts) + row["comm_static_energy_j"] == pytest.approx(row["comm_energy_j"], rel=1e-12)


@pytest.mark.parametrize("par,wl", [
    ({"data": 4, "tensor": 4}, "gpt:layers=4,d_model=1024,heads=16,seq=512,batch=1"),
    ({"data": 16}, "gpt:layers=4,d_model=1024,heads=16,seq=512,batch=1"),
    ({"data": 16, "expert": 4}, "moe:tokens=4096,experts=8,skew=0,capacity_factor=0"),
], ids=["tensor in nodes", "data across nodes", "experts"])
def test_reduced_equals_full_with_blocking_node_switches(par, wl):
    # a node's switch carries only its own chips' messages: the chip standing for all 16
    # loads it with the 4 of them in its node (with all 16 the step took 1.9-3.5x as long)
    blocking = {**FREE_SWITCH, "bandwidth": "150 GB/s", "nonblocking": False}
    links = {"fast": {"preset": "nvlink4", "lanes": 18}, "ib": {"preset": "ib-ndr"}}
    spec = system(16, {"kind": "two_level", "node_size": 4, "intra": {"link": "fast", "switch": blocking},
                       "inter": {"link": "ib", "switch": {"preset": "tomahawk5"}}}, links, par)
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    for k in ("step_time_s", "energy_j", "comm_energy_j", "comm_bytes", "link_ib_bytes", "link_fast_bytes"):
        assert red[k] == pytest.approx(full[k], rel=1e-9), k


def test_reduced_equals_full_for_pipeline_messages_in_an_ocs_pod():
    # stages on z (2 chips, one cube of 2): stage 0 -> 1 crosses an electrical link, the
    # backward message 1 -> 0 the optical one that closes the ring; each at its own
    # bandwidth, latency and energy, not the ring's average
    links = {"ici": {"bandwidth": "100 GB/s", "latency": "1 us", "energy_per_bit": "3 pJ/bit", "static_power": "0 W"},
             "ocs": {"bandwidth": "40 GB/s", "latency": "4 us", "energy_per_bit": "9 pJ/bit", "static_power": "0 W"}}
    spec = system(16, {"kind": "ocs_pod", "shape": [4, 2, 2], "cube": [2, 2, 2], "link": "ici", "optical": "ocs"},
                  links, {"data": 2, "tensor": 4, "pipeline": 2, "micro_batches": 2})
    wl = "gpt:layers=4,d_model=512,heads=8,seq=256,batch=1"
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    for k in ("step_time_s", "energy_j", "comm_energy_j", "comm_bytes", "link_ici_bytes", "link_ocs_bytes"):
        assert red[k] == pytest.approx(full[k], rel=1e-9), k


def test_folding_identical_layers_matches_simulating_them_all():
    arch = load_architecture("h100-class")
    wl = load_workload("gpt:layers=8,d_model=2048,heads=16,seq=1024,batch=2,vocab=32000")
    for par in (ParallelismSpec(pipeline=2, tensor=2, data=1), ParallelismSpec()):
        for st in (row[0] for row in split_model(wl, par)):
            folded = profile(arch, st, optimizer_shards=1, recompute="none", fold=True)
            whole = profile(arch, st, optimizer_shards=1, recompute="none", fold=False)
            assert folded.fwd_s == pytest.approx(whole.fwd_s, rel=0.01)
            assert folded.bwd_s == pytest.approx(whole.bwd_s, rel=0.02)
            assert folded.grad_bytes == whole.grad_bytes
            assert [e for _, e in folded.fwd if e] == [e for _, e in whole.fwd if e]
            assert [e[:2] for _, e in folded.bwd if e and e[0] == "tp"] == \
                   [e[:2] for _, e in whole.bwd if e and e[0] == "tp"]
            assert folded.bwd_energy_j == pytest.approx(whole.bwd_energy_j, rel=0.01)
            assert folded.fwd_energy_j == pytest.approx(whole.fwd_energy_j, rel=0.01)


def test_memory_per_chip_by_hand():
    # GPT with d=1024, 2 layers, vocab 1000: 12 d^2 weights per layer (QKV 3 d^2, output d^2,
    # FFN 8 d^2) plus the LM head d x vocab; tensor=2 halves them; bf16 weights and gradients
    # (2 B), Adam's fp32 master and moments (12 B) sharded over data=2 by ZeRO-1
    d, vocab = 1024, 1000
    params = (2 * 12 * d * d + d * vocab) / 2
    spec = system(4, {"kind": "switched", "link": "l", "switch": FREE_SWITCH}, FREE,
                  {"data": 2, "tensor": 2, "zero": 1})
    r = simulate_system(spec, f"gpt:layers=2,d_model={d},heads=16,seq=256,vocab={vocab}")
    assert r["memory_weights_bytes"] == pytest.approx(2 * params)
    assert r["memory_gradients_bytes"] == pytest.approx(2 * params)
    assert r["memory_optimizer_bytes"] == pytest.approx(12 * params / 2)


def test_model_too_big_for_the_chips_is_a_design_error():
    spec = system(8, {"kind": "switched", "link": "l", "switch": FREE_SWITCH}, FREE, {"data": 8})
    with pytest.raises(DesignError, match="does not fit"):
        simulate_system(spec, "gpt:layers=48,d_model=8192,heads=64,seq=2048")


def test_parallel_degrees_must_multiply_to_the_chip_count():
    spec = system(8, {"kind": "ring", "link": "l"}, FREE, {"data": 3})
    with pytest.raises(DesignError, match="system has 8 chips"):
        simulate_system(spec, "gpt:layers=2")


def test_expert_parallel_all_to_all_and_uneven_experts():
    links = {"l": {"preset": "nvlink4", "lanes": 18}}
    spec = system(8, {"kind": "switched", "link": "l", "switch": {"preset": "nvswitch3"}}, links,
                  {"data": 8, "expert": 4})
    even = simulate_system(spec, "moe:tokens=4096,experts=8,skew=0,capacity_factor=0").summary_row
    skewed = simulate_system(spec, "moe:tokens=4096,experts=8,skew=1.5,capacity_factor=0").summary_row
    assert even["comm_bytes"] > 0
    # a skewed router loads one expert rank more: the step waits for it
    assert skewed["step_time_s"] > even["step_time_s"]


def test_a_stage_of_two_designs_runs_at_the_pace_of_the_slower():
    # data parallelism over an H100-class and an A100-class chip: both meet at every
    # all-reduce, so the step is the A100-class one's; the reduced view (one chip per stage)
    # must agree with simulating both
    from dse.system import SystemSpec

    spec = SystemSpec.model_validate({
        "name": "mixed", "chips": [{"architecture": "h100-class", "count": 1},
                                   {"architecture": "a100-class", "count": 1}],
        "links": {"l": {"preset": "nvlink4", "lanes": 12}}, "topology": {"kind": "ring", "link": "l"},
        "parallelism": {"data": 2}})
    wl = "gpt:layers=2,d_model=1024,heads=16,seq=512,batch=1"
    red = simulate_system(spec, wl).summary_row
    full = simulate_system(spec, wl, full=True).summary_row
    assert red["step_time_s"] == pytest.approx(full["step_time_s"], rel=1e-9)
    h100 = simulate_system(system(2, {"kind": "ring", "link": "l"}, {"l": {"preset": "nvlink4", "lanes": 12}},
                                  {"data": 2}), wl).summary_row
    assert red["step_time_s"] > h100["step_time_s"]
