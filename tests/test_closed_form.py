"""An op that runs alone is computed in closed form (dse/sim/pipeline.py: solo_end); the
tables must equal those of the event-by-event run (``closed_form=False``), on every bundled
design and every bundled workload, and on programs built to contend."""
from __future__ import annotations

import math

import pytest

from dse.errors import DseError
from dse.sim import execute
from dse.sim.engine import simulate
from dse.spec.loader import bundled_names, load_architecture
from dse.workloads import list_generators, load_workload
from dse.workloads.ops import Op, Workload

from archs import toy

#: every generator at its defaults, training steps, LLM configs in both phases, the example file
WORKLOADS = ([g.name for g in list_generators()]
             + ["mlp:train=true", "resnet50:train=true", "bert:layers=2,train=true", "lstm:seq=8,train=true",
                "llm:model=mixtral-8x7b,phase=prefill,seq=64", "llm:model=qwen1.5-moe-a2.7b,phase=decode",
                "llm:model=llama-3-70b,phase=decode,seq=512", "gpt:phase=decode,layers=4",
                "dse/workloads/examples/two_layer_mlp.yaml"])


def same(fast, slow) -> list[str]:
    """Columns of the summary and per-op times that differ beyond rounding."""
    diffs = []
    for key, value in slow.summary_row.items():
        other = fast.summary_row[key]
        if key == "sim_events":
            continue
        if isinstance(value, float):
            if not (math.isclose(other, value, rel_tol=1e-9, abs_tol=1e-30)
                    or (math.isnan(other) and math.isnan(value))):
                diffs.append(f"{key}: {other!r} vs {value!r}")
        elif other != value:
            diffs.append(f"{key}: {other!r} vs {value!r}")
    ends = {r["op"]: (r["start_s"], r["end_s"], r["resource"]) for r in slow.timeline}
    for r in fast.timeline:
        s, e, unit = ends[r["op"]]
        if unit != r["resource"] or not (math.isclose(r["start_s"], s, rel_tol=1e-9, abs_tol=1e-18)
                                         and math.isclose(r["end_s"], e, rel_tol=1e-9, abs_tol=1e-18)):
            diffs.append(f"{r['op']}: {r['resource']} {r['start_s']}-{r['end_s']} vs {unit} {s}-{e}")
    return diffs


@pytest.mark.parametrize("design", bundled_names("architectures"))
def test_the_closed_form_equals_the_event_by_event_run_on_every_bundled_design_and_workload(design):
    arch = load_architecture(design)
    ran = 0
    for spec in WORKLOADS:
        wl = load_workload(spec)
        try:
            slow = simulate(arch, wl, closed_form=False)
        except DseError:
            continue  # the design cannot run it (no tile fits, ...): same in both modes
        fast = simulate(arch, wl)
        assert same(fast, slow) == [], spec
        assert fast["sim_events"] <= slow["sim_events"]
        ran += 1
    assert ran >= 5  # (the edge NPU runs 7: its SRAM holds no tile of the large models)


def test_ops_that_run_side_by_side_go_event_by_event_and_still_agree():
    # 60 independent ops on two arrays and a vector unit: most of them contend (units, the
    # buffer's port, the DRAM bus); only the last to run may be alone
    units = toy().model_dump()["compute"]
    two = toy(compute=[*units, {**units[0], "name": "pe2"}])
    many = Workload("many", [Op(f"g{i}", "matmul", m=64, n=64, k=64 * (1 + i % 3)) for i in range(40)]
                    + [Op(f"v{i}", "vector", elements=4096 * (1 + i % 5)) for i in range(20)])
    slow, fast = simulate(two, many, closed_form=False), simulate(two, many)
    assert same(fast, slow) == []
    # the makespan is that of contended work: below the serial sum of the op latencies
    assert fast["latency_s"] < sum(r["end_s"] - r["start_s"] for r in fast.timeline)


def test_a_chain_costs_a_few_events_per_op_in_closed_form():
    # a chain of 50 GEMMs: each runs alone, so each is one timeout in SimPy, not a pipeline
    # of processes with an event per chunk (the event-by-event run has dozens per op)
    chain = Workload("chain", [Op(f"g{i}", "matmul", m=256, n=256, k=256, deps=(f"g{i - 1}",) if i else ())
                               for i in range(50)])
    arch = toy(placement={"weights": "dram", "activations": "buf"})
    slow, fast = simulate(arch, chain, closed_form=False), simulate(arch, chain)
    assert same(fast, slow) == []
    assert fast["sim_events"] <= 2 * 50 < slow["sim_events"] / 5


@pytest.mark.parametrize("bw", [0.2e9, 2e9, 50e9])
@pytest.mark.parametrize("max_chunks", [None, 8])
def test_loads_and_stores_queueing_on_one_bus_agree(bw, max_chunks):
    # everything in DRAM: an op's loads and stores take turns on one bus (FIFO, with DRAM's
    # read/write turnaround); the closed form must order them as SimPy does
    arch = toy(placement={"weights": "dram", "activations": "dram"})
    dram = arch.memories[0].model_copy(update={"bandwidth_per_channel": bw})
    arch = arch.model_copy(update={"memories": [dram], "sram": [arch.sram[0].model_copy(update={"capacity": 64 * 1024})]})
    wl = Workload("g", [Op("a", "matmul", m=256, n=256, k=256),
                        Op("b", "vector", elements=65536, deps=("a",))])
    slow = simulate(arch, wl, max_chunks=max_chunks, closed_form=False)
    fast = simulate(arch, wl, max_chunks=max_chunks)
    assert same(fast, slow) == []
    assert fast["sim_events"] < slow["sim_events"]


def _fork(chain: bool = False) -> Workload:
    # ResNet's bottleneck with a downsample branch: when c1 ends, r1 (vector unit) and ds
    # (the array, which it waited for) start together, both using the buffer's port; with
    # ``chain``, r1's successor r2 starts on the vector unit while ds still runs
    r = [Op("r2", "vector", elements=32768, deps=("r1",))] if chain else []
    return Workload("fork", [
        Op("p", "vector", elements=65536),
        Op("c1", "matmul", m=256, n=128, k=256, deps=("p",)),
        Op("ds", "matmul", m=256, n=256, k=256, deps=("p",)),
        # (with ``chain``: few bytes, long enough that ds holds the port when r2 starts)
        Op("r1", "vector", elements=2048, ops_per_element=32, deps=("c1",)) if chain else
        Op("r1", "vector", elements=32768, deps=("c1",)), *r,
        Op("c2", "matmul", m=256, n=256, k=128, deps=("r2" if chain else "r1",)),
        Op("add", "vector", elements=65536, inputs=2, deps=("c2", "ds"))])


def _event_by_event(monkeypatch) -> list[str]:
    """The names of the ops (and copies) that the executor runs through SimPy's pipeline
    processes (``run_op``), in the order it starts them."""
    names: list[str] = []
    real = execute.run_op

    def spy(env, machine, plan, *args, **kwargs):
        names.append(plan.op.name)
        return real(env, machine, plan, *args, **kwargs)

    monkeypatch.setattr(execute, "run_op", spy)
    return names


def _both_ways(monkeypatch, arch, wl, **kwargs):
    """The closed-form run, checked equal to the event-by-event one, and the ops it ran
    through SimPy."""
    slow = simulate(arch, wl, closed_form=False, **kwargs)
    through_simpy = _event_by_event(monkeypatch)
    fast = simulate(arch, wl, **kwargs)
    assert same(fast, slow) == []
    return fast, slow, through_simpy


def _with_buffer(bandwidth: str):
    return toy(sram=[{**toy().model_dump()["sram"][0], "bandwidth": bandwidth}])


@pytest.mark.parametrize("bandwidth", ["300 GB/s", "1 TB/s"])
@pytest.mark.parametrize("max_chunks", [None, 8])
def test_ops_that_start_together_but_never_wait_for_each_other_run_in_closed_form(bandwidth, max_chunks,
                                                                                   monkeypatch):
    # a fast buffer: r1 is done with the port (32 KiB in and out, at most 0.22 us) before ds's
    # first tile arrives from DRAM (100 ns latency + 16 KiB at 10 GB/s): they never contend
    fast, slow, through_simpy = _both_ways(monkeypatch, _with_buffer(bandwidth), _fork(), max_chunks=max_chunks)
    assert through_simpy == []
    assert fast["sim_events"] <= 3 * 6 < slow["sim_events"] / 10  # no op went event by event
    starts = {r["op"]: r["start_s"] for r in fast.timeline}
    assert starts["r1"] == starts["ds"] == {r["op"]: r["end_s"] for r in fast.timeline}["c1"]


@pytest.mark.parametrize("bandwidth", ["2 GB/s", "10 GB/s", "100 GB/s"])
@pytest.mark.parametrize("max_chunks", [None, 8])
def test_ops_that_start_together_and_would_queue_for_a_port_go_through_simpy(bandwidth, max_chunks,
                                                                              monkeypatch):
    # a slow buffer: r1 still holds the port when ds asks for it, so ds waits: contention,
    # which SimPy orders (r1 and ds event by event), and the tables still agree
    _, _, through_simpy = _both_ways(monkeypatch, _with_buffer(bandwidth), _fork(), max_chunks=max_chunks)
    assert {"r1", "ds"} <= set(through_simpy)


@pytest.mark.parametrize("bandwidth", ["2 GB/s", "10 GB/s"])
@pytest.mark.parametrize("max_chunks", [None, 8])
def test_an_op_left_alone_in_simpy_stops_asking_for_ports(bandwidth, max_chunks, monkeypatch):
    # r1 and ds contend for the buffer's port, so both go through SimPy; once r1 has ended,
    # c2 waits for the array that ds holds and nothing else can start: ds's later chunks hold
    # the port without asking (no request after r1's end), and the tables still agree
    import sys

    import simpy

    asked: list[float] = []  # when an op's compute stage asked for an SRAM port
    real = simpy.Resource.request

    def spy(port):
        if sys._getframe(1).f_code.co_name == "_compute":
            asked.append(port._env.now)
        return real(port)

    monkeypatch.setattr(simpy.Resource, "request", spy)
    arch, wl = _with_buffer(bandwidth), _fork()
    slow = simulate(arch, wl, max_chunks=max_chunks, closed_form=False)
    slow_asks = list(asked)
    asked.clear()
    through_simpy = _event_by_event(monkeypatch)
    fast = simulate(arch, wl, max_chunks=max_chunks)
    assert same(fast, slow) == []
    assert {"r1", "ds"} <= set(through_simpy)
    ends = {r["op"]: r["end_s"] for r in fast.timeline}
    assert ends["r1"] < ends["ds"]
    assert asked and max(asked) <= ends["r1"]  # contention went through SimPy, then no request
    # the event-by-event run asked for the port for every chunk of ds, after r1's end too
    assert any(ends["r1"] < t for t in slow_asks)


@pytest.mark.parametrize("bandwidth", ["2 GB/s", "10 GB/s"])
@pytest.mark.parametrize("max_chunks", [None, 8])
def test_an_op_left_alone_in_simpy_is_finished_in_closed_form(bandwidth, max_chunks, monkeypatch):
    # once r1 has ended, ds is alone: at the end of a chunk whose successor is loaded, its
    # pipeline stops (a last timeout to its end) instead of waiting chunk by chunk; the
    # event-by-event run keeps timing ds's chunks after r1's end, and the tables agree
    import sys

    import simpy

    waits: list[float] = []  # when a pipeline process asked SimPy for a timeout
    real = simpy.Environment.timeout

    def spy(env, delay=0, value=None):
        if sys._getframe(1).f_code.co_name in ("_load", "_transfer", "_compute"):
            waits.append(env.now)
        return real(env, delay, value)

    monkeypatch.setattr(simpy.Environment, "timeout", spy)
    arch, wl = _with_buffer(bandwidth), _fork()
    slow = simulate(arch, wl, max_chunks=max_chunks, closed_form=False)
    slow_waits = list(waits)
    waits.clear()
    fast = simulate(arch, wl, max_chunks=max_chunks)
    assert same(fast, slow) == []
    ends = {r["op"]: r["end_s"] for r in fast.timeline}
    after_slow = [t for t in slow_waits if ends["r1"] < t < ends["ds"]]
    after_fast = [t for t in waits if ends["r1"] < t < ends["ds"]]
    assert len(after_slow) > 8  # ds's chunks, timed one by one after r1's end
    assert len(after_fast) <= 4  # at most a chunk in flight, then one wait to the end


@pytest.mark.parametrize("bandwidth", ["2 GB/s", "20 GB/s", "1 TB/s"])
def test_ops_that_start_together_while_another_can_start_beside_them_go_through_simpy(bandwidth, monkeypatch):
    # r2 starts on the vector unit when r1 ends, while ds still runs: whether or not r1 and
    # ds could contend, r2 might (at 20 GB/s r1 never meets ds at the port, but r2 does), so
    # the three go event by event and still agree
    fast, _, through_simpy = _both_ways(monkeypatch, _with_buffer(bandwidth), _fork(chain=True))
    assert {"r1", "ds", "r2"} <= set(through_simpy)
    ends = {r["op"]: r["end_s"] for r in fast.timeline}
    assert {r["op"]: r["start_s"] for r in fast.timeline}["r2"] < ends["ds"]


def _mapped(arch, wl):
    from dse.sim.allocate import allocate
    from dse.sim.cost import Coster, migration_plans
    from dse.sim.map import map_tasks
    from dse.sim.partition import partition
    from dse.sim.program import System, build_program
    from dse.tech.models import tier_model

    (program,) = partition(build_program(System.of(arch), wl))
    models = {m.name: tier_model(m) for m in arch.memories}
    return map_tasks(program, allocate(program), Coster(arch, models)), migration_plans(program, models)


def test_only_a_port_or_bus_that_one_unit_uses_one_way_is_never_asked_for():
    from dse.sim.execute import private_buses, private_ports

    # the TPU: only the MXU stages tiles in the weight FIFO and reads DDR3 (the weights); the
    # activation pipeline works in the unified buffer, which the MXU uses too
    mapping, copies = _mapped(load_architecture("tpu-v1-like"), load_workload("resnet50"))
    assert private_ports(mapping, copies) == {"weight_fifo"}
    assert private_buses(mapping, copies) == {"ddr3"}
    # in front of Optane, the DMA copies write DDR4 and read Optane: no bus is private
    mapping, copies = _mapped(load_architecture("dram-nvm-tiered"), load_workload("resnet50"))
    assert private_buses(mapping, copies) == set()
    # two arrays share the buffer and DRAM: nothing private, and their ops queue at both
    units = toy().model_dump()["compute"]
    two = toy(compute=[*units, {**units[0], "name": "pe2"}])
    wl = Workload("gemms", [Op(f"g{i}", "matmul", m=64, n=64, k=64) for i in range(4)])
    mapping, copies = _mapped(two, wl)
    assert private_ports(mapping, copies) == set() and private_buses(mapping, copies) == set()
    # where everything sits in DRAM, one array reads and writes it: both ways, not private
    one = toy(placement={"weights": "dram", "activations": "dram"})
    mapping, copies = _mapped(one, Workload("g", [Op("a", "matmul", m=256, n=256, k=256)]))
    assert "dram" not in private_buses(mapping, copies)


def _prefetching(nvm_bandwidth: str):
    """The toy design with its weights in a slower NVM tier, each copied into DDR4 before an op
    first reads it (a prefetch); activations in DDR4 too, so ops and copies share its bus."""
    nvm = {"name": "nvm", "capacity": "64 GiB", "channels": 1, "bandwidth_per_channel": nvm_bandwidth,
           "latency": "300 ns", "read_energy": "20 pJ/bit", "write_energy": "60 pJ/bit", "background_power": "0.1 W"}
    dram = {"name": "dram", "technology": "ddr4-3200", "channels": 1, "capacity": "4 GiB"}
    return toy(memories=[nvm, dram], placement={"weights": "nvm", "activations": "dram"},
               prefetch=[{"role": "weights", "from": "nvm", "to": "dram"}])


def _twins() -> Workload:
    # two equal branches: their copies ask for the same bus at the same instants (ties that
    # only the order SimPy schedules events in decides)
    return Workload("twins", [
        Op("p", "vector", elements=65536),
        Op("c1", "matmul", m=256, n=256, k=128, deps=("p",)),
        Op("ds", "matmul", m=256, n=256, k=128, deps=("p",)),
        Op("c2", "matmul", m=256, n=256, k=256, deps=("c1",)),
        Op("add", "vector", elements=65536, inputs=2, deps=("c2", "ds"))])


@pytest.mark.parametrize("nvm_bandwidth", ["2 GB/s", "6.6 GB/s", "25 GB/s"])
@pytest.mark.parametrize("max_chunks", [None, 8, 2])
@pytest.mark.parametrize("closed_form", [True, False])
@pytest.mark.parametrize("workload", [_fork, _twins])
def test_a_copy_runs_with_fewer_events_and_the_same_times_as_with_its_compute_process(
        nvm_bandwidth, max_chunks, closed_form, workload, monkeypatch):
    # when p ends, c1 and ds start together and each first copies its weights from NVM to
    # DDR4: two copies at once, queueing on both buses; c2's copy runs while ds reads DDR4.
    # A copy's compute stage without a process (pipeline._copy_compute, its first tiles
    # processed in place: _FirstTile) must grant the buses in the same order at the same
    # times, with the op times, bus busy times and turnarounds of the same run with
    # _compute's process and plain events, and schedule fewer events
    from types import SimpleNamespace

    import simpy

    from dse.sim import pipeline

    from dse.sim.machine import MemoryBus

    arch, wl = _prefetching(nvm_bandwidth), workload()
    through_simpy = _event_by_event(monkeypatch)
    grants: list[tuple] = []  # every bus grant, in order: (bus, way, when, its busy time so far)
    turn = MemoryBus.turn

    def spy(bus, way):
        grants.append((bus.name, way, bus.env.now, bus.busy_s))
        return turn(bus, way)

    monkeypatch.setattr(MemoryBus, "turn", spy)
    chunks: list[int] = []  # chunks of each copy run through SimPy
    spied = pipeline._copy_compute

    def counted(env, chunk_list):
        chunks.append(len(chunk_list))
        spied(env, chunk_list)

    monkeypatch.setattr(pipeline, "_copy_compute", counted)
    new = simulate(arch, wl, max_chunks=max_chunks, closed_form=closed_form)
    copies = [name for name in through_simpy if ".prefetch_" in name]
    assert {"c1.prefetch_b", "ds.prefetch_b"} <= set(copies) and len(chunks) == len(copies)

    def as_process(env, chunk_list):  # the stage as it ran before: _compute's process
        env.process(pipeline._compute(env, chunk_list, 0.0, [], [], SimpleNamespace(sram_busy_s={})))

    new_grants = list(grants)
    grants.clear()
    monkeypatch.setattr(pipeline, "_copy_compute", as_process)
    monkeypatch.setattr(pipeline, "_FirstTile", lambda env, transfer_s: simpy.Event(env))  # (a plain event)
    old = simulate(arch, wl, max_chunks=max_chunks, closed_form=closed_form)
    assert new_grants == grants  # the buses granted in the same order at the same times
    assert new.timeline == old.timeline  # the same times to the bit, every op and copy
    for key, value in old.summary_row.items():
        if key != "sim_events":  # (bus busy times, energies, ...: the same to the bit)
            assert new.summary_row[key] == value or (math.isnan(value) and math.isnan(new.summary_row[key])), key
    assert new["bytes_written_dram"] > 0 and new["energy_j"] == old["energy_j"]
    # each copy through SimPy no longer schedules its process's start and end, nor a
    # zero-length array timeout per chunk
    assert new["sim_events"] <= old["sim_events"] - sum(g + 2 for g in chunks)
