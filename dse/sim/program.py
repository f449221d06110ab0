"""The typed program every pass works on: tensors, tasks and their dependencies on a system.

A workload is a DAG of ops and knows no machine; a program is that DAG put on a
system: every operand of every op is a named tensor (shared weights once, an
activation by the op that produces it), every op is a task on a chip, and a
dependency says whether the consumer needs the whole of its producer or may start
on its first chunks. Today's systems hold one chip and no links; the fields for
several chips and for transfers on links are part of the type, so the partition
pass and the executor can grow into them without a new data model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from dse.spec.architecture import Architecture
from dse.workloads.ops import Op, Workload

#: Roles whose tensors live for the whole run (state of the model); others live from their
#: producer to their last consumer.
PERSISTENT_ROLES = ("weights", "kv_cache", "embeddings", "optimizer_state")
#: Operands an op reads (its output is "out"); an elementwise op with one input per producer
#: reads "in", "in1", "in2", ... (see ``input_operands``).
INPUT_KEYS = ("a", "b", "in")


class Tensor(NamedTuple):
    """One tensor of the program: its identity, size, role and who makes and reads it
    (``consumers`` in task order). Immutable; a named tuple because a program makes one
    per tensor and a frozen dataclass costs twice as much to build."""

    id: str
    bytes: float
    role: str
    producer: str | None = None
    consumers: tuple[str, ...] = ()

    @property
    def persistent(self) -> bool:
        return self.role in PERSISTENT_ROLES


class Dependency(NamedTuple):
    """``task`` must finish before the dependent task can (``streaming``: the dependent may
    start on the producer's first chunks; it still ends after the producer)."""

    task: str
    streaming: bool = False


TaskKind = Literal["compute", "transfer", "collective"]


class Task(NamedTuple):
    """A unit of work on one chip: an op on a compute unit (later also transfers on links)."""

    name: str
    kind: TaskKind
    op: Op
    deps: tuple[Dependency, ...] = ()
    chip: int = 0


@dataclass(frozen=True)
class Link:
    """A link between two chips (bandwidth in B/s, latency in s, energy in J/bit)."""

    name: str
    a: int
    b: int
    bandwidth_b_per_s: float
    latency_s: float
    energy_j_per_bit: float


@dataclass(frozen=True)
class System:
    """Chips and the links between them. One chip and no links is a single accelerator."""

    chips: tuple[Architecture, ...]
    links: tuple[Link, ...] = ()

    @classmethod
    def of(cls, arch: "Architecture | System") -> "System":
        return arch if isinstance(arch, System) else cls((arch,))


@dataclass
class Program:
    """Tasks in workload order, the tensors they touch, and which tensor each operand is."""

    system: System
    workload: Workload
    tasks: list[Task]
    tensors: dict[str, Tensor]
    #: task name -> operand key ("a", "b", "in", "out") -> tensor id
    operands: dict[str, dict[str, str]] = field(default_factory=dict)
    #: task name -> its op's ``tensor_bytes()`` (worked out once for every pass)
    sizes: dict[str, dict[str, dict]] = field(default_factory=dict)

    @property
    def arch(self) -> Architecture:
        """The chip of a one-chip program (what the single-chip passes take)."""
        return self.system.chips[0]

    def tensor(self, task: str, key: str) -> Tensor:
        return self.tensors[self.operands[task][key]]


def linked_input(op: Op, tensors: dict[str, dict]) -> str | None:
    """The operand of ``op`` that reads its first producer's output: its activation input
    ("a" of a GEMM, "in" of a vector op), unless that operand is fused on chip."""
    for key in ("a", "in"):
        if key in tensors and key not in op.on_chip and tensors[key]["role"] == "activations":
            return key
    return None


def input_operands(op: Op, tensors: dict[str, dict]) -> dict[str, dict] | None:
    """An elementwise op that reads one input of its size from each of its producers (a
    residual add: ``inputs=2``, two dependencies) reads each from where that producer put
    it: its ``in`` operand (``inputs`` x its elements, the workload's compulsory read) split
    into one operand per producer, ``in`` for the first, ``in1``, ``in2``, ... for the
    others, in the order of ``deps``. None where the op reads otherwise: one producer (a
    pool reads ``inputs`` elements of one tensor per output), a count of inputs other than
    of producers, gathers, or an input fused on chip."""
    src = tensors.get("in")
    n = op.inputs
    if (src is None or n < 2 or len(op.deps) != n or "in" in op.on_chip or op.pattern == "random"
            or src["role"] != "activations"):
        return None
    out = {("in" if i == 0 else f"in{i}"): {"role": src["role"], "bytes": src["bytes"] / n} for i in range(n)}
    out.update((key, t) for key, t in tensors.items() if key != "in")
    return out


class _Whole(dict):
    """Dependencies on whole producers by producer, made on first use (one per producer)."""

    def __missing__(self, task: str) -> Dependency:
        dep = self[task] = Dependency(task)
        return dep


def build_program(system: System, workload: Workload, *, streaming: bool = False) -> Program:
    """Put a workload on a system: one compute task per op on chip 0. Dependencies are on whole
    producers; with ``streaming``, an elementwise op streams from its first producer (it may
    start on the producer's first tile of output, as an activation pipeline fed by an array's
    accumulators does)."""
    # tensor id -> [bytes, role, producer, consumers], in the order ops first touch them
    found: dict[str, list] = {}
    operands: dict[str, dict[str, str]] = {}
    sizes: dict[str, dict[str, dict]] = {}
    tasks: list[Task] = []
    produced: dict[str, str] = {}  # op -> its output tensor
    whole = _Whole()  # dependencies on whole producers (immutable: shared)
    for op in workload.ops:
        name = op.name
        op_sizes = op.tensor_bytes()
        op_deps = op.deps
        # each producer's output, read back from its home: the first producer's by the op's
        # activation input, the others' by the inputs of their own (an add's skip connection)
        links: dict[str, str] = {}
        split = input_operands(op, op_sizes) if op.kind == "vector" and len(op_deps) > 1 else None
        if split is not None:
            op_sizes = split
            for i, dep in enumerate(op_deps):
                tid = produced.get(dep)
                if tid is not None:
                    links["in" if i == 0 else f"in{i}"] = tid
        else:
            link = linked_input(op, op_sizes)
            if link is not None and op_deps and op_deps[0] in produced:
                links[link] = produced[op_deps[0]]
        sizes[name] = op_sizes
        mine: dict[str, str] = {}
        for key, t in op_sizes.items():
            if key == "out":
                tid = f"{name}.out"
            elif key in links:
                tid = links[key]
            else:
                tid = op.tensor_id(key)
            mine[key] = tid
            entry = found.get(tid)
            if entry is None:
                entry = found[tid] = [t["bytes"], t["role"], name if key == "out" else None, []]
            if key != "out":
                entry[3].append(name)
        if "out" in mine and op_sizes["out"]["role"] not in PERSISTENT_ROLES:
            produced[name] = mine["out"]
        operands[name] = mine
        if streaming and op.kind == "vector" and op_deps:
            deps = tuple([Dependency(d, i == 0) for i, d in enumerate(op_deps)])
        else:
            deps = tuple(map(whole.__getitem__, op_deps))
        tasks.append(Task(name, "compute", op, deps))
    tensors = {tid: Tensor(tid, b, role, producer,
                           (names[0],) if len(names) == 1 else tuple(dict.fromkeys(names)))
               for tid, (b, role, producer, names) in found.items()}
    return Program(system, workload, tasks, tensors, operands, sizes)
