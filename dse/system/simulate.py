"""simulate_system(system, workload, parallelism) -> Result: one training step on many chips.

Per-chip compute comes from the single-chip engine, once per distinct role
(``dse.system.roles``). A SimPy model then runs the step: every simulated chip walks its
pipeline schedule; forward and backward passes stop at the tensor-parallel all-reduces and
MoE all-to-alls; activations and gradients go between stages point to point; gradients of
the last micro-batch are all-reduced over the data-parallel group in buckets while the
backward pass goes on (``overlap``); the optimizer step follows. Collectives are flows on
the links of the topology, sharing bandwidth where they meet.

The reduced view (default) simulates one chip per role, each standing for the chips in
the same role; ``full=True`` simulates every chip and every physical link (tests prove both
equal on small systems). A tree all-reduce is always simulated in the full view: in each of
its rounds a different subset of the chips sends (half in the first, one in the last), so
when a tree's rounds overlap other traffic (the next gradient bucket's tree, pipeline
messages) which ports they share depends on the chip, and no one chip can stand for the
others. Alone, a tree is exact in the reduced view too (``dse.system.collectives``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import simpy

from dse import results as R
from dse.errors import DesignError, SpecError
from dse.spec.architecture import Architecture
from dse.system.collectives import alpha_beta_s, phases
from dse.system.comm import Communicator, Group
from dse.system.parallelism import check_degrees, chip_memory, split_model
from dse.system.roles import Profile, profile
from dse.system.schedule import order, peak_in_flight
from dse.system.spec import ParallelismSpec, SystemSpec, load_system_spec
from dse.system.topology import Topology
from dse.units import fmt
from dse.workloads.ops import PRECISION_BYTES, Workload


@dataclass
class System:
    """A validated system: its spec, one architecture per chip group, its topology."""

    spec: SystemSpec
    archs: list[Architecture]
    topology: Topology
    source: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def chips(self) -> int:
        return self.spec.chip_count

    def design_of(self, chip: int) -> int:
        for i, g in enumerate(self.spec.chips):
            if chip < g.count:
                return i
            chip -= g.count
        raise IndexError(chip)


def _arch(name: str, base: Path | None) -> Architecture:
    from dse.spec.loader import load_architecture

    if base is not None and (base / name).is_file():
        return load_architecture(base / name)
    return load_architecture(name)


def build_system(spec: SystemSpec, base: Path | None = None, source: str | None = None) -> System:
    archs = []
    for i, g in enumerate(spec.chips):
        try:
            archs.append(_arch(g.architecture, base))
        except SpecError as exc:
            raise SpecError(f"chips[{i}].architecture: {exc}", where=source) from None
    return System(spec, archs, Topology(spec), source)


def load_system(path_or_name: str | Path | System | SystemSpec) -> System:
    """A system file (or bundled name), validated, with its chip designs loaded."""
    if isinstance(path_or_name, System):
        return path_or_name
    if isinstance(path_or_name, SystemSpec):
        return build_system(path_or_name)
    spec, doc = load_system_spec(path_or_name)
    return build_system(spec, Path(doc.name).parent, doc.name)


def _load_workload(workload: str | Workload) -> Workload:
    if isinstance(workload, Workload):
        wl = workload
    else:
        from dse.workloads import load_workload

        wl = load_workload(workload)
    if isinstance(wl.params, dict) and wl.params.get("train"):
        raise SpecError(f"workload '{wl.name}': give the model without train=true; a system "
                        "simulates one training step of it (its batch is one micro-batch)")
    return wl


def step_flops(wl: Workload, micro_batches: int, data_parallel: int) -> float:
    """The model FLOPs of one training step: forward, then backward at twice the forward
    (input and weight gradients), so 3 x 2 FLOPs per MAC, over every micro-batch of every
    data-parallel replica (recomputation is not model work)."""
    return 3 * 2.0 * wl.macs * micro_batches * data_parallel


def _peak_flops(arch: Architecture, precision: str) -> float:
    peak = sum(2.0 * u.peak_macs_per_s(precision) for u in arch.compute if getattr(u, "kind", "") == "systolic")
    return peak


def _capacity(arch: Architecture) -> float:
    return sum(m.capacity for m in arch.memories)


def _bigger_memory(arch: Architecture) -> Architecture:
    """The same chip with memory enough for any model (a one-chip baseline that may not fit)."""
    mems = [m.model_copy(update={"capacity": 1e18}) for m in arch.memories]
    return arch.model_copy(update={"memories": mems})


def memory_plan(sysm: System, wl: Workload, par: ParallelismSpec, chunks=None, orders=None):
    """Peak bytes per chip by stage (and expert rank) and design, and the largest excess over
    a design's memory (<= 0: every chip fits)."""
    wl = _load_workload(wl)
    check_degrees(par, sysm.chips)
    p, dp, tp = par.pipeline, par.data, par.tensor
    chunks = chunks if chunks is not None else split_model(wl, par)
    orders = orders if orders is not None else [order(s, p, par.micro_batches, par.virtual_stages) for s in range(p)]
    eb = PRECISION_BYTES[wl.ops[0].precision if wl.ops else "bf16"]
    rows, margin = [], -float("inf")
    for s in range(p):
        first = tp * dp * s
        designs = sorted({sysm.design_of(c) for c in range(first, first + tp * dp)})
        in_flight = peak_in_flight(orders[s])
        for r in range(len(chunks[0])):
            mine = [chunks[c][r] for c in range(s, len(chunks), p)]
            mems = [chip_memory(st, par, 1, eb) for st in mine]
            act = max(st.activation_bytes for st in mine) * in_flight / len(mine)
            total = (sum(x.weights for x in mems), sum(x.gradients for x in mems),
                     sum(x.optimizer for x in mems), act)
            for di in designs:
                cap = _capacity(sysm.archs[di])
                rows.append({"stage": s, "expert_rank": r, "design": sysm.archs[di].name, "weights": total[0],
                             "gradients": total[1], "optimizer": total[2], "activations": total[3],
                             "total": sum(total), "capacity": cap})
                margin = max(margin, sum(total) - cap)
    return rows, margin


def simulate_system(system: str | Path | System | SystemSpec, workload: str | Workload,
                    parallelism: ParallelismSpec | dict | None = None, *, full: bool = False) -> R.Result:
    """One training step of ``workload`` (one micro-batch per forward pass) on ``system``."""
    t0 = time.perf_counter()
    sysm = load_system(system)
    par = parallelism if parallelism is not None else sysm.spec.parallelism
    if par is None:
        par = ParallelismSpec(data=sysm.chips)
    elif isinstance(par, dict):
        par = ParallelismSpec.model_validate(par)
    check_degrees(par, sysm.chips)
    if par.algorithm == "tree":
        full = True       # the reduced view cannot stand for a tree's uneven rounds (above)
    wl = _load_workload(workload)
    p, dp, tp, ep, v, m = par.pipeline, par.data, par.tensor, par.expert, par.virtual_stages, par.micro_batches
    chunks = split_model(wl, par)          # [model chunk][expert rank]
    n_chunks = len(chunks)
    orders = [order(s, p, m, v) for s in range(p)]
    precision = wl.ops[0].precision if wl.ops else "bf16"
    eb = PRECISION_BYTES[precision]

    def chip_of(t: int, d: int, s: int) -> int:
        return t + tp * (d + dp * s)

    memory_rows, margin = memory_plan(sysm, wl, par, chunks, orders)
    if margin > 0:
        worst = max(memory_rows, key=lambda r_: r_["total"] - r_["capacity"])
        raise DesignError(
            f"'{wl.name}' does not fit: a chip of pipeline stage {worst['stage']} needs "
            f"{fmt(worst['total'], 'bytes')} (weights {fmt(worst['weights'], 'bytes')}, gradients "
            f"{fmt(worst['gradients'], 'bytes')}, optimizer {fmt(worst['optimizer'], 'bytes')}, activations "
            f"{fmt(worst['activations'], 'bytes')}) but {worst['design']} has {fmt(worst['capacity'], 'bytes')}; "
            "raise tensor or pipeline parallelism, the ZeRO stage or recomputation")

    # ---- one engine run per distinct role ------------------------------------------------
    cache: dict[tuple, Profile] = {}
    shards = dp if par.zero >= 1 else 1

    def prof_of(arch_i: int, st, *, shards_: int = shards, arch: Architecture | None = None) -> Profile:
        key = (arch_i, st.signature(), shards_, arch is not None)
        if key not in cache:
            cache[key] = profile(arch or sysm.archs[arch_i], st, optimizer_shards=shards_,
                                 recompute=par.recompute)
        return cache[key]

    by_role: dict[tuple, Profile] = {}

    def stage_designs(s: int) -> list[int]:
        first = tp * dp * s
        return sorted({sysm.design_of(x) for x in range(first, first + tp * dp)})

    def stage_profile(c: int, r: int, chip: int) -> Profile:
        """The chip's own profile (full view); in the reduced view, the slowest design of
        the stage, since its chips meet at every collective and the slowest sets the pace."""
        if full:
            designs = [sysm.design_of(chip)]
        else:
            designs = stage_designs(c % p)
        key = (c, r, tuple(designs))
        if key not in by_role:
            profs = [prof_of(di, chunks[c][r]) for di in designs]
            by_role[key] = max(profs, key=lambda pr: pr.fwd_s + pr.bwd_s + pr.optimizer_s)
        return by_role[key]

    # ---- the step, in SimPy ----------------------------------------------------------
    env = simpy.Environment()
    in_node = {}
    if not full and sysm.topology.kind == "two_level":
        # the chips a representative stands for that share its node's switch
        node = sysm.topology.node_of
        for s_ in range(p):
            for r_ in range(ep):
                rep = chip_of(0, r_, s_)
                in_node[rep] = sum(1 for t_ in range(tp) for d_ in range(r_, dp, ep)
                                   if node(chip_of(t_, d_, s_)) == node(rep))
    comm = Communicator(env, sysm.topology, full=full, algorithm=par.algorithm, in_node=in_node)
    boxes: dict[tuple, simpy.Event] = {}
    finish: dict[int, float] = {}
    fb_end: dict[int, float] = {}      # when a chip's last backward pass ended
    fb_busy: dict[int, float] = {}     # its compute and blocking communication until then
    busy: dict[int, float] = {}
    blocked: dict[int, float] = {}
    timeline: list[dict] = []
    dyn_energy = 0.0

    def box(key) -> simpy.Event:
        if key not in boxes:
            boxes[key] = env.event()
        return boxes[key]

    tp_group = lambda chip: Group(chip - chip % tp, tp, 1)  # noqa: E731
    if full:
        explicit = [(chip_of(t, d, s), 1.0) for s in range(p) for d in range(dp) for t in range(tp)]
    else:
        explicit = [(chip_of(0, r, s), tp * dp / ep) for s in range(p) for r in range(ep)]

    def groups_of(chip: int):
        t, rest = chip % tp, chip // tp
        d, s = rest % dp, rest // dp
        dp_g = Group(chip_of(t, 0, s), dp, tp)
        edp_g = Group(chip_of(t, d % ep, s), dp // ep, tp * ep)
        ep_g = Group(chip_of(t, d - d % ep, s), ep, tp)
        pp_g = Group(chip_of(t, d, 0), p, tp * dp)
        return t, d, s, dp_g, edp_g, ep_g, pp_g

    # A tensor-parallel group whose links nothing else uses (and no shared switch) never
    # meets contention: its all-reduces take their alpha-beta time, charged without events.
    # The full view never takes this shortcut, so the tests comparing views check it.
    def _keys(g: Group, chip: int) -> tuple[set, bool]:
        axes = comm.axes(g, chip)
        return {h.key for a in axes for h in a.hops}, any(h.shared for a in axes for h in a.hops)

    closed_tp = not full and tp > 1
    if closed_tp:
        for chip, _ in explicit:
            _, _, _, dp_g, edp_g, ep_g, pp_g = groups_of(chip)
            tp_keys, tp_shared = _keys(tp_group(chip), chip)
            others = set().union(*(_keys(g, chip)[0] for g in (dp_g, edp_g, ep_g, pp_g)))
            if tp_shared or tp_keys & others:
                closed_tp = False
    tp_times: dict[tuple, float] = {}
    tp_calls: dict[tuple, int] = {}     # charged after the run: energy and bytes are linear in them

    def tp_time(chip: int, nbytes: float, mult: float) -> float:
        key = (chip, nbytes, mult)
        if key not in tp_times:
            axes = comm.axes(tp_group(chip), chip)
            tp_times[key] = alpha_beta_s("all_reduce", nbytes, axes, par.algorithm, comm.switched)
        tp_calls[key] = tp_calls.get(key, 0) + 1
        return tp_times[key]

    def chip_proc(chip: int, mult: float):
        nonlocal dyn_energy
        t, d, s, dp_g, edp_g, ep_g, pp_g = groups_of(chip)
        r = d % ep
        tasks = orders[s]
        last_b = {}
        for i, task in enumerate(tasks):
            if task.phase == "B":
                last_b[task.chunk] = i
        reductions = []
        buckets = {"dense": [0.0, 0], "expert": [0.0, 0]}

        def flush(kind: str, c: int):
            nb, k = buckets[kind]
            if nb <= 0:
                return
            buckets[kind] = [0.0, k + 1]
            g = dp_g if kind == "dense" else edp_g
            coll = "reduce_scatter" if par.zero >= 1 else "all_reduce"
            reductions.append(env.process(comm.collective(coll, nb, g, chip, mult, ("dp", kind, c, k))))

        def talk(kind: str, nb: float, g: Group, seq: tuple):
            t_start = env.now
            yield from comm.collective(kind, nb, g, chip, mult, seq)
            blocked[chip] = blocked.get(chip, 0.0) + env.now - t_start

        for i, task in enumerate(tasks):
            gc = task.model_chunk(s, p)
            prof = stage_profile(gc, r, chip)
            if task.phase == "F" and gc > 0:
                yield box(("F", task.micro, gc, t, d))
            if task.phase == "B" and gc < n_chunks - 1:
                yield box(("B", task.micro, gc, t, d))
            start = env.now
            if par.zero >= 3:
                nb = chunks[gc][r].params * eb   # the chunk's weights, gathered for each pass
                yield from talk("all_gather", nb, dp_g, ("z3", task.phase, task.micro, gc))
            segs = prof.fwd if task.phase == "F" else prof.bwd
            if task.phase == "B" and prof.recompute_s:
                yield env.timeout(prof.recompute_s)
                busy[chip] = busy.get(chip, 0.0) + prof.recompute_s
            pending = 0.0          # compute (and closed-form communication) not yet waited for
            waited = 0.0           # of which communication
            last = i == last_b.get(task.chunk) and task.phase == "B"
            for j, (dur, ev) in enumerate(segs):
                pending += dur
                busy[chip] = busy.get(chip, 0.0) + dur
                if not ev or (ev[0] == "grad" and not last):
                    continue
                if ev[0] == "tp" and closed_tp:
                    dt = tp_time(chip, ev[1], mult)
                    pending += dt
                    waited += dt
                    continue
                if pending > 0:
                    yield env.timeout(pending)
                    pending = 0.0
                if ev[0] == "tp":
                    yield from talk("all_reduce", ev[1], tp_group(chip), ("tp", task.phase, task.micro, gc, j))
                elif ev[0] == "a2a":
                    yield from talk("all_to_all", ev[1], ep_g, ("a2a", task.phase, task.micro, gc, j))
                elif ev[0] == "grad":
                    kind = "expert" if (ev[2] and ep > 1) else "dense"
                    buckets[kind][0] += ev[1]
                    if par.overlap and buckets[kind][0] >= par.bucket:
                        flush(kind, gc)
            if pending > 0:
                yield env.timeout(pending)
            blocked[chip] = blocked.get(chip, 0.0) + waited
            dyn_energy += mult * (prof.fwd_energy_j if task.phase == "F"
                                  else prof.bwd_energy_j + prof.recompute_energy_j)
            timeline.append({"chip": chip, "stage": s, "phase": task.phase, "micro": task.micro,
                             "chunk": gc, "start_s": start, "end_s": env.now})
            st = chunks[gc][r]
            if task.phase == "F" and gc < n_chunks - 1:
                nxt = chip_of(t, d, (gc + 1) % p)
                _send(st.boundary_bytes, chip, nxt, pp_g, mult, ("F", task.micro, gc + 1, t, d))
            if task.phase == "B" and gc > 0:
                prv = chip_of(t, d, (gc - 1) % p)
                _send(chunks[gc - 1][r].boundary_bytes, chip, prv, pp_g, mult, ("B", task.micro, gc - 1, t, d))
            if task.phase == "B" and i == last_b[task.chunk]:
                for kind in buckets:
                    flush(kind, gc)
        fb_end[chip], fb_busy[chip] = env.now, busy.get(chip, 0.0) + blocked.get(chip, 0.0)
        wait_start = env.now
        if reductions:
            yield env.all_of(reductions)
        blocked[chip] = blocked.get(chip, 0.0) + env.now - wait_start
        opt = max(stage_profile(c, r, chip).optimizer_s for c in range(s, n_chunks, p))
        yield env.timeout(opt)
        busy[chip] = busy.get(chip, 0.0) + opt
        dyn_energy += mult * sum(stage_profile(c, r, chip).optimizer_energy_j for c in range(s, n_chunks, p))
        if par.zero >= 1:
            nb = sum(chunks[c][r].params for c in range(s, n_chunks, p)) * eb
            yield from talk("all_gather", nb, dp_g, ("zero-gather",))
        finish[chip] = env.now

    def _send(nb: float, src: int, dst: int, pp_g: Group, mult: float, key: tuple) -> None:
        ev = comm.p2p(nb, src, dst, pp_g, mult)
        ev.callbacks.append(lambda _e: box(key).succeed())

    for chip, mult in explicit:
        env.process(chip_proc(chip, mult))
    t_run = time.perf_counter()
    env.run()
    run_s = time.perf_counter() - t_run
    for (chip, nbytes, mult), count in tp_calls.items():
        axes = comm.axes(tp_group(chip), chip)
        for ph in phases("all_reduce", nbytes, axes, par.algorithm, comm.switched):
            comm.charge(ph, axes, mult * count)
    if len(finish) != len(explicit):
        raise DesignError("the pipeline schedule deadlocked (a stage waited for a message never sent)")
    step = max(finish.values())

    # ---- results ---------------------------------------------------------------------
    n = sysm.chips
    mults = dict(explicit)
    slowest = max(finish, key=lambda c: finish[c])
    static_chip = 0.0
    for chip, mult in explicit:
        s = groups_of(chip)[2]
        static_chip += mult * max(stage_profile(c, groups_of(chip)[1] % ep, chip).static_power_w
                                  for c in range(s, n_chunks, p)) * step
    led = comm.ledger
    link_static = sysm.topology.static_power_w() * step
    comm_energy = led.energy_j + link_static
    chip_energy = dyn_energy + static_chip
    energy = chip_energy + comm_energy
    samples = wl.samples * m * dp
    model_flops = step_flops(wl, m, dp)
    peak = sum(g.count * _peak_flops(a, precision) for a, g in zip(sysm.archs, sysm.spec.chips))
    # one chip (with memory enough) running the whole step: the unsharded chunks, every micro-batch
    base_par = ParallelismSpec(pipeline=p, virtual_stages=v, schedule=par.schedule, micro_batches=m,
                               recompute=par.recompute)
    base_chunks = split_model(wl, base_par)
    big = _bigger_memory(sysm.archs[0])
    t_one = 0.0
    for c in range(len(base_chunks)):
        for st in base_chunks[c][:1]:
            pr = prof_of(0, st, shards_=1, arch=big)
            t_one += m * dp * (pr.fwd_s + pr.bwd_s) + pr.optimizer_s
    one_chip = samples / t_one if t_one else math.nan
    thr = samples / step if step else 0.0
    row: dict = {"architecture": sysm.name, "workload": wl.name, "samples": samples, "chips": n,
                 "data": dp, "tensor": tp, "pipeline": p, "expert": ep, "micro_batches": m,
                 "zero": par.zero, "recompute": par.recompute, "schedule": par.schedule}
    row[R.LATENCY] = step
    row[R.STEP_TIME] = step
    row[R.THROUGHPUT_SAMPLES] = thr
    row[R.THROUGHPUT_OPS] = model_flops / step if step else 0.0
    row[R.ENERGY] = energy
    row[R.AVG_POWER] = energy / step if step else 0.0
    row[R.TOPS_PER_W] = model_flops / energy / 1e12 if energy else 0.0
    row[R.AREA] = sum(sysm.archs[i].area_mm2 * g.count for i, g in enumerate(sysm.spec.chips))
    row[R.ENERGY_PER_SAMPLE] = energy / samples
    row["total_ops"] = model_flops
    row[R.COMM_TIME] = blocked.get(slowest, 0.0)
    row["comm_share"] = row[R.COMM_TIME] / step if step else 0.0
    row[R.COMM_ENERGY] = comm_energy
    row["comm_static_energy_j"] = link_static
    row[R.COMM_BYTES] = led.moved_bytes
    row["compute_energy_j"] = chip_energy
    row[R.SCALING_EFFICIENCY] = thr / (n * one_chip) if one_chip else math.nan
    row["one_chip_samples_per_s"] = one_chip
    row[R.MFU] = model_flops / (step * peak) if step and peak else 0.0
    # idle share of the forward/backward part of the step (before gradient sync and optimizer)
    fb = max(fb_end.values())
    row["pipeline_bubble"] = 1.0 - sum(fb_busy.values()) / (len(fb_busy) * fb) if fb else 0.0
    worst = max(memory_rows, key=lambda r_: r_["total"])
    row[R.MEMORY_PER_CHIP] = worst["total"]
    for k in ("weights", "gradients", "optimizer", "activations"):
        row[f"memory_{k}_bytes"] = worst[k]
    row["memory_capacity_bytes"] = min(_capacity(a) for a in sysm.archs)
    cap = sysm.topology.capacity_bps()
    for name in sorted(set(cap) | set(led.bytes_by_type)):
        b = led.bytes_by_type.get(name, 0.0)
        row[R.link_col(name, "bytes")] = b
        if name in cap:
            row[R.link_col(name, "utilisation")] = b / (cap[name] * step) if step else 0.0
        row[R.link_col(name, "energy_j")] = led.energy_by_type.get(name, 0.0)
    for name in sysm.topology.switches():
        row[R.switch_col(name)] = led.energy_by_type.get(name, 0.0)
    row["sim_events"] = next(env._eid)
    role_rows = []
    for key, pr in cache.items():
        role_rows.append({"design": sysm.archs[key[0]].name if not key[3] else "one-chip baseline",
                          "forward_s": pr.fwd_s, "backward_s": pr.bwd_s, "optimizer_s": pr.optimizer_s,
                          "grad_bytes": pr.grad_bytes})
    result = R.Result(sysm.name, wl.name, row, role_rows, timeline)
    result.timing = {"run_s": run_s, "total_s": time.perf_counter() - t0, "roles": len(cache),
                     "explicit_chips": len(mults)}
    return result
