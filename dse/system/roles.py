"""Per-chip compute of each distinct role, from the single-chip engine.

A role is the work of one chip for one micro-batch: a pipeline chunk's ops (sharded for
tensor parallelism, experts of one expert rank) on one chip design. Each distinct role is
simulated once by ``dse.sim.engine.simulate`` as a training step (forward, backward,
optimizer); its timeline is cut where the chip must talk to others (tensor-parallel
all-reduces, MoE all-to-alls) and where gradients become ready (for bucketed data-parallel
reduction).

Identical layers run one after another, so a chunk of L > 2 identical layers is simulated
with two of them and the second one's window repeated L - 1 times (``fold=True``): the
second layer meets the on-chip memory as the first left it, as later layers do. A test
compares folded and unfolded profiles.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from dse.sim.engine import simulate
from dse.spec.architecture import Architecture
from dse.system.parallelism import ATTENTION_CORE, Stage, _is_expert, _strip_layer, layer_of, suffix, weight_params
from dse.workloads.ops import Op, Workload
from dse.workloads.training import training_workload

_MARK = ("mark",)


@dataclass
class Profile:
    """One role's compute for one micro-batch, cut at its synchronisation points.

    ``fwd``/``bwd``: (seconds of compute, event after it) where an event is ``()``,
    ``("tp", bytes)``, ``("a2a", bytes)`` or ``("grad", bytes, is_expert)``.
    """

    fwd: list[tuple[float, tuple]] = field(default_factory=list)
    bwd: list[tuple[float, tuple]] = field(default_factory=list)
    recompute_s: float = 0.0
    optimizer_s: float = 0.0
    fwd_energy_j: float = 0.0
    bwd_energy_j: float = 0.0
    recompute_energy_j: float = 0.0
    optimizer_energy_j: float = 0.0
    static_power_w: float = 0.0
    grad_bytes: float = 0.0

    @property
    def fwd_s(self) -> float:
        return sum(d for d, _ in self.fwd)

    @property
    def bwd_s(self) -> float:
        return sum(d for d, _ in self.bwd) + self.recompute_s


def _segments(cuts: list[tuple[float, tuple]], start: float, end: float) -> list[tuple[float, tuple]]:
    out, t = [], start
    # a mark closes its window after the events at the same instant
    for when, ev in sorted(cuts, key=lambda c: (c[0], c[1] == _MARK)):
        when = min(max(when, t), end)
        out.append((when - t, ev))
        t = when
    out.append((max(end - t, 0.0), ()))
    return out


def _unfold(segs: list[tuple[float, tuple]], window: int, repeat: int) -> list[tuple[float, tuple]]:
    """Segments split by marks into windows, window ``window`` repeated ``repeat`` times."""
    windows: list[list[tuple[float, tuple]]] = [[]]
    for dur, ev in segs:
        if ev == _MARK:
            windows[-1].append((dur, ()))
            windows.append([])
        else:
            windows[-1].append((dur, ev))
    out = []
    for i, w in enumerate(windows):
        out.extend(w * (repeat if i == window else 1))
    return out


def _compact(segs: list[tuple[float, tuple]]) -> list[tuple[float, tuple]]:
    """Runs of compute with no event between them, as one segment."""
    out, acc = [], 0.0
    for dur, ev in segs:
        acc += dur
        if ev:
            out.append((acc, ev))
            acc = 0.0
    out.append((acc, ()))
    return out


def _identical_layers(ops: list[Op]) -> list[int]:
    """The stage's layer numbers if every layer has the same ops (else [])."""
    by_layer: dict[int, list] = {}
    for o in ops:
        li = layer_of(o)
        if li is not None:
            by_layer.setdefault(li, []).append(replace(o, name=_strip_layer(o.name), deps=()))
    layers = sorted(by_layer)
    if len(layers) < 2 or any(by_layer[i] != by_layer[layers[0]] for i in layers[1:]):
        return []
    return layers


def profile(arch: Architecture, st: Stage, *, optimizer_shards: int, recompute: str,
            fold: bool = True) -> Profile:
    """Simulate ``st`` on ``arch`` as one training step and cut its timeline."""
    layers = _identical_layers(st.ops) if fold else []
    if len(layers) < 3:
        layers = []
    repeat = len(layers) - 1 if layers else 1
    keep = set(layers[:2])
    ops = [o for o in st.ops if layer_of(o) is None or not layers or layer_of(o) in keep]
    if layers:  # ops after the layers read the last layer: point them at the last one simulated
        second = f"layer{layers[1]}."
        ops = [replace(o, deps=tuple(second + d.split(".", 1)[1] if layer_of_name(d) not in (None, *keep)
                                     else d for d in o.deps)) for o in ops]
    wl = training_workload(Workload(f"stage{st.index}", ops, samples=1, params={}))
    params = sum(weight_params(o) for o in st.ops)
    adam = max(1, int(params) // optimizer_shards)
    wl = replace(wl, ops=[replace(o, elements=adam) if o.name == "optimizer.adam" else o for o in wl.ops])
    res = simulate(arch, wl)
    rows = {r["op"]: r for r in res.op_rows}
    by_name = {o.name: o for o in wl.ops}
    fwd_names = [o.name for o in ops if o.name in rows]
    fwd_set = set(fwd_names)
    bwd_names = [n for n in rows if n not in fwd_set and n != "optimizer.adam"]
    f_end = max((rows[n]["end_s"] for n in fwd_names), default=0.0)
    b_end = max((rows[n]["end_s"] for n in bwd_names), default=f_end)

    def of_layer(n: str, k: int) -> bool:
        return bool(layers) and n.startswith(f"layer{layers[k]}.")

    def weight(n: str) -> int:
        return repeat if of_layer(n, 1) else 1

    f_cuts, b_cuts = [], []
    if layers:
        before = pre_names(st, layers)
        pre = [rows[n]["end_s"] for n in fwd_names if n in before]
        post_b = [rows[n]["end_s"] for n in bwd_names
                  if not of_layer(n, 0) and not of_layer(n, 1) and not _is_pre_bwd(n, before)]
        f_cuts += [(max(pre, default=0.0), _MARK),
                   (max(rows[n]["end_s"] for n in fwd_names if of_layer(n, 0)), _MARK),
                   (max(rows[n]["end_s"] for n in fwd_names if of_layer(n, 1)), _MARK)]
        b_cuts += [(max(post_b, default=f_end), _MARK),
                   (max(rows[n]["end_s"] for n in bwd_names if of_layer(n, 1)), _MARK),
                   (max(rows[n]["end_s"] for n in bwd_names if of_layer(n, 0)), _MARK)]
    for n, b in st.tp_forward.items():
        if n in rows:
            f_cuts.append((rows[n]["end_s"], ("tp", b)))
    for n, b in st.tp_backward.items():
        if n in rows:
            b_cuts.append((rows[n]["end_s"], ("tp", b)))
    if st.a2a_bytes:
        experts_f = [rows[n]["end_s"] for n in fwd_names if _is_expert(by_name[n])]
        experts_b = [rows[n]["end_s"] for n in bwd_names if n.startswith("expert")]
        if "dispatch" in rows:
            f_cuts.append((rows["dispatch"]["end_s"], ("a2a", st.a2a_bytes)))
        f_cuts.append((max(experts_f, default=f_end), ("a2a", st.a2a_bytes)))
        if "combine.bwd" in rows:
            b_cuts.append((rows["combine.bwd"]["end_s"], ("a2a", st.a2a_bytes)))
        b_cuts.append((max(experts_b, default=b_end), ("a2a", st.a2a_bytes)))
    prof = Profile()
    for n in bwd_names:
        o = by_name[n]
        if o.out_role == "gradients":
            nb = o.tensor_bytes()["out"]["bytes"]
            prof.grad_bytes += nb * weight(n)
            b_cuts.append((rows[n]["end_s"], ("grad", nb, n.startswith("expert"))))
    prof.fwd = _compact(_unfold(_segments(f_cuts, 0.0, f_end), 2, repeat))
    prof.bwd = _compact(_unfold(_segments(b_cuts, f_end, b_end), 1, repeat))
    prof.optimizer_s = res.summary_row["latency_s"] - b_end

    def energy(names) -> float:
        return sum(rows[n]["dynamic_energy_j"] * weight(n) for n in names)

    prof.fwd_energy_j = energy(fwd_names)
    prof.bwd_energy_j = energy(bwd_names)
    prof.optimizer_energy_j = rows["optimizer.adam"]["dynamic_energy_j"] if "optimizer.adam" in rows else 0.0
    if recompute == "full":
        prof.recompute_s, prof.recompute_energy_j = prof.fwd_s, prof.fwd_energy_j
    elif recompute == "selective":
        core = [n for n in fwd_names if suffix(n) in ATTENTION_CORE]
        prof.recompute_s = sum(rows[n]["latency_s"] * weight(n) for n in core)
        prof.recompute_energy_j = energy(core)
    makespan = res.summary_row["latency_s"]
    prof.static_power_w = res.summary_row["static_energy_j"] / makespan if makespan else 0.0
    return prof


def layer_of_name(name: str) -> int | None:
    return layer_of(Op(name, "vector"))


def _first(ops: list[Op], layer: int) -> int:
    return next(i for i, o in enumerate(ops) if layer_of(o) == layer)


def pre_names(st: Stage, layers: list[int]) -> set[str]:
    first = _first(st.ops, layers[0])
    return {o.name for o in st.ops[:first]}


def _is_pre_bwd(name: str, pre: set[str]) -> bool:
    return name.rsplit(".", 1)[0] in pre
